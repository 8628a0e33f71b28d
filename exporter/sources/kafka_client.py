"""Connection settings shared by every Kafka source: one place turns a cluster's configuration into client kwargs."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from exporter.settings import ClusterSettings


def client_kwargs(cluster: ClusterSettings) -> dict[str, Any]:
    """Keyword arguments accepted by AIOKafkaClient, AIOKafkaConsumer and AIOKafkaAdminClient alike."""
    security = cluster.security
    kwargs: dict[str, Any] = {
        "bootstrap_servers": list(cluster.bootstrap_servers),
        "client_id": cluster.client_id,
        "request_timeout_ms": int(cluster.request_timeout * 1000),
        "security_protocol": security.protocol,
    }
    if security.protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = _ssl_context(cluster)
    if security.protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        kwargs["sasl_mechanism"] = security.sasl_mechanism
        kwargs["sasl_plain_username"] = security.sasl_username
        kwargs["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return kwargs


def _ssl_context(cluster: ClusterSettings) -> ssl.SSLContext:
    security = cluster.security
    context: ssl.SSLContext = create_ssl_context(
        cafile=security.ca_file or None,
        certfile=security.cert_file or None,
        keyfile=security.key_file or None,
        password=security.key_password.get_secret_value() or None,
    )
    context.check_hostname = security.check_hostname
    return context
