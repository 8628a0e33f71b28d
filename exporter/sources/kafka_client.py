"""What every Kafka source needs beyond aiokafka: client kwargs from a cluster's configuration, and the
cluster's topic metadata with topic ids.

aiokafka speaks Metadata v5 only, which has no topic ids, while KIP-848 records in `__consumer_offsets` name
topics by id. `fetch_topology` sends Metadata v12, declared below with aiokafka's protocol types, and falls
back to aiokafka's own metadata on brokers older than Kafka 3.1, which cannot host KIP-848 groups anyway.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
from collections.abc import Collection
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IncompatibleBrokerVersion,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.abstract import AbstractType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.metadata import MetadataRequest, MetadataResponse_v5
from aiokafka.protocol.types import Boolean, CompactArray, CompactString, Int16, Int32, Schema, TaggedFields
from aiokafka.structs import TopicPartition

from exporter.core.decoder import uuid_string
from exporter.setting_values import split_host_port
from exporter.settings import ClusterSettings

__all__ = ["Topology", "bootstrap", "client_kwargs", "fetch_topology", "retry_log_level"]

_PROBE_TIMEOUT_S = 5.0


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
        # aiokafka takes the SCRAM credentials through the sasl_plain_* arguments too.
        kwargs["sasl_mechanism"] = security.sasl_mechanism
        kwargs["sasl_plain_username"] = security.sasl_username
        kwargs["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return kwargs


async def bootstrap(client: AIOKafkaClient, cluster: ClusterSettings) -> None:
    """`client.bootstrap()`, whose failure says why. aiokafka reports every cause (a refused connection, a
    certificate not trusted, a client certificate missing, a wrong password) as "Unable to bootstrap" and logs
    the cause itself, at a level lagwatch silences; one more direct connection to the first bootstrap server,
    given at most `_PROBE_TIMEOUT_S`, tells the causes apart. The HEAD poller's backoff paces both. Never a
    secret in the reason: only the user name and mechanism are named."""
    try:
        await client.bootstrap()
    except KafkaConnectionError as error:
        raise KafkaConnectionError(await _why_unreachable(cluster) or str(error)) from error


def retry_log_level(error: BaseException) -> int:
    """The level at which a source logs a failure it retries: a cluster that cannot be reached is the HEAD
    poller's to report, once per outage and with its cause (lagwatch_cluster_up says so too), so the other
    sources keep that to DEBUG rather than repeat it at every retry."""
    return logging.DEBUG if isinstance(error, KafkaConnectionError) else logging.WARNING


async def _why_unreachable(cluster: ClusterSettings) -> str | None:
    kwargs = client_kwargs(cluster)
    kwargs.pop("bootstrap_servers")
    server = cluster.bootstrap_servers[0]
    host, port = split_host_port(server)
    connection = None
    try:
        # Bounded: a broker that accepts connections without answering must not hold the poller's retries.
        async with asyncio.timeout(min(cluster.request_timeout, _PROBE_TIMEOUT_S)):
            connection = await create_conn(host, port, **kwargs)
            # A TLS 1.3 listener that wants a client certificate says so only after the handshake.
            await connection.send(MetadataRequest([]))
    except TimeoutError:
        return None
    except (KafkaError, OSError) as error:
        return _describe(_cause(error), server, cluster)
    finally:
        if connection is not None:
            connection.close()
    return None


def _cause(error: BaseException) -> BaseException:
    """The first SSL or authentication error in the chain, else the error itself."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError | AuthenticationFailedError | SaslAuthenticationFailed):
            return seen
        seen = seen.__cause__ or seen.__context__
    return error


def _describe(error: BaseException, server: str, cluster: ClusterSettings) -> str:
    security = cluster.security
    no_cert = "" if security.cert_file else " (does it require a client certificate? see security.cert_file)"
    if isinstance(error, AuthenticationFailedError | SaslAuthenticationFailed):
        return (
            f"authentication failed at {server} as {security.sasl_username!r} with "
            f"{security.sasl_mechanism}: {error} (check security.sasl_username and security.sasl_password)"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS with {server}: the broker's certificate is not trusted: {error.verify_message} "
            "(security.ca_file)"
        )
    if isinstance(error, ssl.SSLError):
        return f"TLS with {server} failed: {error.reason or error}" + (
            no_cert if "CERTIFICATE" in str(error.reason) else ""
        )
    if isinstance(error, UnsupportedSaslMechanismError):
        return f"{server}: {error}"
    if isinstance(error, KafkaConnectionError) and security.protocol in ("SSL", "SASL_SSL"):
        return f"{server} closed the connection: {error}{no_cert}"
    return f"cannot connect to {server}: {getattr(error, 'strerror', None) or error or type(error).__name__}"


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


@dataclass(frozen=True, slots=True)
class Topology:
    """The topics of a cluster as one Metadata response lists them."""

    leaders: dict[str, tuple[int, ...]]
    """Leader broker of each partition by topic, -1 where a partition has none; the length is the partition
    count."""
    failed: frozenset[str] = frozenset()
    """Topics listed with an error code: their partitions are unknown this time, not gone."""
    topic_ids: dict[str, str] = field(default_factory=dict)
    """Topic id (as Kafka's `Uuid.toString()`) -> topic name; empty when the broker predates Metadata v12."""
    cluster_id: str = ""
    """The Kafka cluster's id; empty when the broker predates Metadata v12."""


async def fetch_topology(
    client: AIOKafkaClient, *, deadline: float | None = None, last: Collection[int] = ()
) -> Topology:
    """Every topic of the cluster, from the first broker that answers within `deadline` seconds (the
    client's request timeout when None), in random order but the brokers in `last` last. Asks for all
    topics, so no topic is ever auto-created. Raises KafkaError when no broker answers."""
    nodes = [broker.nodeId for broker in client.cluster.brokers()]
    random.shuffle(nodes)
    nodes.sort(key=lambda node: node in last)
    failure: KafkaError = KafkaConnectionError("no broker is known")
    for node in nodes:
        try:
            async with asyncio.timeout(deadline):
                response = await client.send(node, _MetadataRequest())
        except (NotImplementedError, IncompatibleBrokerVersion):
            return await _legacy_topology(client)
        except TimeoutError:
            failure = KafkaConnectionError(f"broker {node} did not answer Metadata within {deadline} s")
            continue
        except KafkaError as exc:
            failure = exc
            continue
        # client.send looks leaders up in the client's own metadata: keep its broker list current.
        client.cluster.update_metadata(
            MetadataResponse_v5(
                response.throttle_time_ms,
                [(node_id, host, port, rack) for node_id, host, port, rack, _tags in response.brokers],
                response.cluster_id,
                response.controller_id,
                [],
            )
        )
        return _topology(response)
    raise failure


def _topology(response: _MetadataResponseV12) -> Topology:
    leaders: dict[str, tuple[int, ...]] = {}
    failed: set[str] = set()
    ids: dict[str, str] = {}
    for error_code, name, topic_id, _internal, partitions, _operations, _tags in response.topics:
        if name is None:
            continue
        if topic_id != _ZERO_UUID:
            ids[topic_id] = name
        if error_code:
            failed.add(name)
        else:
            leaders[name] = _by_index({index: leader for _error, index, leader, *_rest in partitions})
    return Topology(leaders, frozenset(failed), ids, response.cluster_id or "")


async def _legacy_topology(client: AIOKafkaClient) -> Topology:
    if not await client.force_metadata_update():
        raise KafkaConnectionError("metadata request failed on every known broker")
    metadata: ClusterMetadata = client.cluster
    leaders = {}
    for topic in metadata.topics(exclude_internal_topics=False):
        partitions = metadata.partitions_for_topic(topic) or set()
        leaders[topic] = _by_index(
            {p: metadata.leader_for_partition(TopicPartition(topic, p)) for p in partitions}
        )
    return Topology(leaders)


def _by_index(leaders: dict[int, int]) -> tuple[int, ...]:
    # Kafka never leaves gaps in partition indexes; a gap would be a partition without a leader.
    return tuple(leaders.get(p, -1) for p in range(max(leaders, default=-1) + 1))


# ------------------------------------------------------------------------------------------------------------
# Metadata v12 (KIP-516 topic ids; flexible encoding), as Kafka's MetadataRequest.json/MetadataResponse.json.
# aiokafka ships no type information, hence the ignores on its base classes.


class _Uuid(AbstractType[str]):  # type: ignore[misc]
    """16 bytes, rendered by the decoder's `uuid_string` so metadata ids match those of KIP-848 records."""

    @classmethod
    def encode(cls, value: str) -> bytes:
        return base64.urlsafe_b64decode(value + "==")

    @classmethod
    def decode(cls, data: BytesIO) -> str:
        raw = data.read(16)
        if len(raw) != 16:
            raise ValueError("Buffer underrun decoding UUID")
        return uuid_string(raw)


_ZERO_UUID = _Uuid.decode(BytesIO(bytes(16)))
"""Kafka's Uuid.ZERO_UUID: a topic without an id."""


class _MetadataResponseV12(Response):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 12
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _MetadataRequestV12(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 12
    RESPONSE_TYPE = _MetadataResponseV12
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(("topic_id", _Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields)),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _MetadataRequest(Request[_MetadataRequestV12]):  # type: ignore[misc]
    """All topics (a null topic array), never auto-created."""

    API_KEY = 3

    def build(self, request_struct_class: type[_MetadataRequestV12]) -> _MetadataRequestV12:
        return request_struct_class(None, False, False, {})
