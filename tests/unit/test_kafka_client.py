"""exporter.sources.kafka_client: client kwargs per security protocol, and topic metadata with topic ids.

Metadata responses are written here byte by byte with tests/unit/offsets_encoder.py, from Kafka's
MetadataResponse.json, so that a mistake in the module's schema declarations is not mirrored by the test.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError, KafkaError, NodeNotReadyError
from aiokafka.protocol.metadata import MetadataResponse_v5
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.decoder import decode
from exporter.core.model import ConsumerGroupAssignment, TopicPartitions
from exporter.settings import ClusterSettings, SecuritySettings
from exporter.sources.kafka_client import Topology, client_kwargs, fetch_topology
from tests.unit.offsets_encoder import (
    array,
    int8,
    int16,
    int32,
    int32_array,
    string,
    tagged_fields,
    uuid_string,
)
from tests.unit.offsets_encoder import encode as encode_record

_PASSWORD = "key-secret"


def _cluster(**security: Any) -> ClusterSettings:
    return ClusterSettings(
        bootstrap_servers=("k1:9092", "k2:9093"),
        client_id="lagwatch-test",
        request_timeout=2.5,
        security=SecuritySettings(**security),
    )


_BASE = {
    "bootstrap_servers": ["k1:9092", "k2:9093"],
    "client_id": "lagwatch-test",
    "request_timeout_ms": 2500,
}

# ------------------------------------------------------------------------------------------------------------
# client_kwargs


def test_plaintext_has_no_tls_and_no_sasl() -> None:
    assert client_kwargs(_cluster()) == {**_BASE, "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_passes_mechanism_and_credentials(mechanism: str) -> None:
    kwargs = client_kwargs(
        _cluster(protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism, sasl_username="u1", sasl_password="p1")
    )
    assert kwargs == {
        **_BASE,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "u1",
        "sasl_plain_password": "p1",
    }


@dataclass(frozen=True)
class _Pki:
    cert: Path
    """Self-signed, CN and DNS name alike, IP 127.0.0.1: CA, server and client certificate at once."""
    key: Path


def _self_signed(directory: Path, name: str, password: str | None) -> _Pki:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    protection = ["-passout", f"pass:{password}"] if password else ["-noenc"]
    subprocess.run(
        [
            *(
                "openssl",
                "req",
                "-x509",
                "-days",
                "1",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ),
            *("-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert), *protection),
        ],
        check=True,
        capture_output=True,
    )
    return _Pki(cert, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> _Pki:
    return _self_signed(tmp_path_factory.mktemp("pki"), "localhost", _PASSWORD)


@pytest.fixture
def other_ca(tmp_path: Path) -> _Pki:
    return _self_signed(tmp_path, "other", None)


def _tls(pki: _Pki, protocol: str = "SSL", **extra: Any) -> dict[str, Any]:
    return client_kwargs(
        _cluster(
            protocol=protocol,
            ca_file=str(pki.cert),
            cert_file=str(pki.cert),
            key_file=str(pki.key),
            key_password=_PASSWORD,
            **extra,
        )
    )


async def _handshake(context: ssl.SSLContext, pki: _Pki, server_hostname: str) -> dict[str, Any] | None:
    """Connect to a loopback TLS server that requires a client certificate signed by the test CA; returns the
    client certificate the server saw."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.cert))
    server_context.load_cert_chain(pki.cert, pki.key, password=_PASSWORD)
    server_context.verify_mode = ssl.CERT_REQUIRED
    seen: list[dict[str, Any] | None] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peercert"))
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=server_hostname
        )
        assert await reader.read() == b"ok"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return seen[0]


async def test_ssl_context_verifies_the_broker_and_presents_the_client_certificate(pki: _Pki) -> None:
    kwargs = _tls(pki)
    context = kwargs.pop("ssl_context")
    assert kwargs == {**_BASE, "security_protocol": "SSL"}
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    peer = await _handshake(context, pki, "localhost")
    assert peer is not None
    assert peer["subject"] == ((("commonName", "localhost"),),)


async def test_ssl_context_checks_the_host_name_unless_told_not_to(pki: _Pki) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await _handshake(_tls(pki)["ssl_context"], pki, "broker.example")
    relaxed = _tls(pki, check_hostname=False)["ssl_context"]
    assert relaxed.check_hostname is False
    assert relaxed.verify_mode == ssl.CERT_REQUIRED
    assert await _handshake(relaxed, pki, "broker.example") is not None


async def test_ssl_context_rejects_a_broker_signed_by_another_ca(pki: _Pki, other_ca: _Pki) -> None:
    context = client_kwargs(_cluster(protocol="SSL", ca_file=str(other_ca.cert)))["ssl_context"]
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await _handshake(context, pki, "localhost")


def test_sasl_ssl_has_both_tls_and_credentials(pki: _Pki) -> None:
    kwargs = _tls(
        pki, "SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="svc", sasl_password="p@ss word"
    )
    assert isinstance(kwargs.pop("ssl_context"), ssl.SSLContext)
    assert kwargs == {
        **_BASE,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "p@ss word",
    }


async def test_every_aiokafka_client_accepts_the_kwargs(pki: _Pki) -> None:
    kwargs = _tls(pki, "SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="svc", sasl_password="pw")
    client = AIOKafkaClient(**kwargs)
    AIOKafkaConsumer(**kwargs)
    AIOKafkaAdminClient(**kwargs)
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-256"
    assert client._ssl_context is kwargs["ssl_context"]


# ------------------------------------------------------------------------------------------------------------
# fetch_topology


@dataclass(frozen=True)
class _Topic:
    name: str
    raw_id: bytes
    leaders: dict[int, int]
    """Partition index -> leader, in the order the response lists them."""
    error_code: int = 0
    internal: bool = False


def _metadata_v12(brokers: Sequence[tuple[int, str, int]], topics: Sequence[_Topic]) -> bytes:
    """A MetadataResponse v12 body, as MetadataResponse.json describes it."""

    def partition(index: int, leader: int) -> bytes:
        replicas = int32_array([leader] if leader >= 0 else [], flexible=True)
        return (
            int16(5 if leader < 0 else 0)
            + int32(index)
            + int32(leader)
            + int32(7)
            + replicas * 2
            + (int32_array([], flexible=True) + tagged_fields())
        )

    def topic(t: _Topic) -> bytes:
        partitions = [partition(index, leader) for index, leader in t.leaders.items()]
        return (
            int16(t.error_code)
            + string(t.name, flexible=True)
            + t.raw_id
            + int8(int(t.internal))
            + array(partitions, flexible=True)
            + int32(-(2**31))
            + tagged_fields()
        )

    encoded_brokers = [
        int32(node)
        + string(host, flexible=True)
        + int32(port)
        + string(None, flexible=True)
        + tagged_fields()
        for node, host, port in brokers
    ]
    return (
        int32(0)
        + array(encoded_brokers, flexible=True)
        + string("cluster-1", flexible=True)
        + int32(brokers[0][0])
        + array([topic(t) for t in topics], flexible=True)
        + tagged_fields({1: b"future"})
    )


def _metadata_v5(brokers: Sequence[tuple[int, str, int]], topics: Sequence[_Topic]) -> MetadataResponse_v5:
    return MetadataResponse_v5(
        0,
        [(node, host, port, None) for node, host, port in brokers],
        "cluster-1",
        brokers[0][0],
        [
            (
                t.error_code,
                t.name,
                t.internal,
                [(0, p, leader, [], [], []) for p, leader in t.leaders.items()],
            )
            for t in topics
        ],
    )


class _ScriptedClient:
    """What fetch_topology uses of AIOKafkaClient, with each broker's answer scripted."""

    def __init__(
        self,
        brokers: Sequence[tuple[int, str, int]],
        answers: dict[int, bytes | KafkaError],
        max_metadata_version: int = 13,
        legacy: MetadataResponse_v5 | None = None,
    ) -> None:
        self.cluster = ClusterMetadata(bootstrap_servers="k1:9092")
        self.cluster.update_metadata(_metadata_v5(brokers, []))
        self.sent: list[tuple[int, int, bool, bytes]] = []
        self._answers = answers
        self._versions = {3: (0, max_metadata_version)}
        self._legacy = legacy

    async def send(self, node: int, request: Any) -> Any:
        prepared = request.prepare(self._versions)
        self.sent.append((node, prepared.API_VERSION, prepared.FLEXIBLE_VERSION, prepared.encode()))
        answer = self._answers[node]
        if isinstance(answer, KafkaError):
            raise answer
        buffer = BytesIO(answer)
        response = prepared.RESPONSE_TYPE.decode(buffer)
        assert buffer.tell() == len(answer), "the schema left bytes undecoded"
        return response

    async def force_metadata_update(self) -> bool:
        if self._legacy is None:
            return False
        self.cluster.update_metadata(self._legacy)
        return True


_ID_A = bytes(range(1, 17))
_ID_B = bytes([0xFB, 0xFF, 0xBF] * 5 + [0xFE])
"""Bytes whose base64 holds '-' and '_', where URL-safe and standard base64 differ."""
_ZERO = bytes(16)
_BROKERS = [(1, "k1", 9092), (2, "k2", 9093)]


async def test_topology_has_leaders_ids_and_failed_topics_and_asks_for_all_topics_without_creating_any() -> (
    None
):
    topics = [
        _Topic("orders", _ID_A, {2: -1, 0: 1, 1: 2}),
        _Topic("__consumer_offsets", _ID_B, {0: 2}, internal=True),
        _Topic("creating", _ZERO, {}, error_code=5),
        _Topic("legacy", _ZERO, {0: 1}),
    ]
    response = _metadata_v12([*_BROKERS, (3, "k3", 9094)], topics)
    client = _ScriptedClient(_BROKERS, {1: response, 2: response})

    topology = await fetch_topology(client)

    assert topology == Topology(
        leaders={"orders": (1, 2, -1), "__consumer_offsets": (2,), "legacy": (1,)},
        failed=frozenset({"creating"}),
        topic_ids={"AQIDBAUGBwgJCgsMDQ4PEA": "orders", "-_-_-_-_-_-_-_-_-_-__g": "__consumer_offsets"},
        cluster_id="cluster-1",
    )
    ((node, version, flexible, body),) = client.sent
    assert node in (1, 2)
    # A null topic array (all topics), AllowAutoTopicCreation false, no authorized operations, no tags.
    assert (version, flexible, body) == (12, True, b"\x00\x00\x00\x00")
    # A broker the response names is reachable by client.send afterwards.
    assert client.cluster.broker_metadata(3) is not None
    assert (client.cluster.broker_metadata(3).host, client.cluster.broker_metadata(3).port) == ("k3", 9094)


async def test_topology_comes_from_the_broker_that_answers() -> None:
    response = _metadata_v12(_BROKERS, [_Topic("t", _ID_A, {0: 2})])
    for failing in (1, 2):
        answers: dict[int, bytes | KafkaError] = {1: response, 2: response}
        answers[failing] = NodeNotReadyError("down")
        topology = await fetch_topology(_ScriptedClient(_BROKERS, answers))
        assert topology.leaders == {"t": (2,)}


async def test_topology_raises_when_no_broker_answers() -> None:
    client = _ScriptedClient(_BROKERS, {1: KafkaConnectionError("one"), 2: KafkaConnectionError("two")})
    with pytest.raises(KafkaConnectionError):
        await fetch_topology(client)
    assert sorted(node for node, *_ in client.sent) == [1, 2]


async def test_brokers_before_metadata_v12_give_aiokafkas_metadata_without_ids() -> None:
    topics = [
        _Topic("gappy", _ID_A, {0: 1, 2: 2}),
        _Topic("offline", _ID_B, {0: -1}),
        _Topic("gone", _ZERO, {}, 3),
    ]
    client = _ScriptedClient(_BROKERS, {}, max_metadata_version=11, legacy=_metadata_v5(_BROKERS, topics))

    assert await fetch_topology(client) == Topology(leaders={"gappy": (1, -1, 2), "offline": (-1,)})


async def test_legacy_metadata_failure_raises() -> None:
    client = _ScriptedClient(_BROKERS, {}, max_metadata_version=9)
    with pytest.raises(KafkaError):
        await fetch_topology(client)


_topic_names = st.text("abcdefghijklmnopqrstuvwxyz._-0123456789", min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        _topic_names,
        st.tuples(st.binary(min_size=16, max_size=16), st.lists(st.integers(-1, 3), max_size=6)),
        max_size=6,
    )
)
def test_any_topology_round_trips_and_ids_read_as_the_decoder_reads_them(
    generated: dict[str, tuple[bytes, list[int]]],
) -> None:
    topics = [_Topic(name, raw, dict(enumerate(leaders))) for name, (raw, leaders) in generated.items()]
    response = _metadata_v12(_BROKERS, topics)
    client = _ScriptedClient(_BROKERS, {1: response, 2: response})

    topology = asyncio.run(fetch_topology(client))

    assert topology.leaders == {name: tuple(leaders) for name, (_raw, leaders) in generated.items()}
    assert topology.failed == frozenset()
    expected_ids = {uuid_string(raw): name for name, (raw, _leaders) in generated.items() if raw != _ZERO}
    assert topology.topic_ids == expected_ids
    # The id __consumer_offsets records carry for the same 16 bytes is the same string.
    for topic_id in expected_ids:
        key, value = encode_record(
            ConsumerGroupAssignment("g", "m", (TopicPartitions(topic_id, (0,), True),))
        )
        record = decode(key, value)
        assert isinstance(record, ConsumerGroupAssignment)
        assert record.partitions[0].topic == topic_id
