"""Bodies of Burrow's v3 HTTP API, built from lagwatch's model values, with Burrow's keys verbatim.

Pure: every function returns a dict ready for `json.dumps`, keys in the order Burrow's Go structs emit them.
Burrow's keys are inconsistent (`current-lag` in the consumer detail, `current_lag` in the status;
`observedAt`, `totallag`, `partition_count`); they are copied exactly, here and nowhere else, because existing
Burrow clients parse them. Where lagwatch deliberately differs, docs/burrow-api.md says so.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from exporter.core.model import (
    Commit,
    GroupSnapshot,
    GroupStatus,
    PartitionSnapshot,
    PartitionStatus,
    Reason,
    Status,
)
from exporter.core.reasons import figure_map, text
from exporter.core.retention import Headroom

Body = dict[str, Any]

# Burrow's error messages, for the HTTP layer's 404 answers.
CLUSTER_MODULE_NOT_FOUND = "cluster module not found"
CLUSTER_NOT_FOUND = "cluster not found"
CLUSTER_OR_TOPIC_NOT_FOUND = "cluster or topic not found"
CLUSTER_OR_CONSUMER_NOT_FOUND = "cluster or consumer not found"
STORAGE_MODULE_NOT_FOUND = "storage module not found"
EVALUATOR_MODULE_NOT_FOUND = "evaluator module not found"
CONSUMER_MODULE_NOT_FOUND = "consumer module not found"
NOTIFIER_MODULE_NOT_FOUND = "notifier module not found"
UNKNOWN_LOG_LEVEL = "unknown log level"
UNDECODABLE_BODY = "could not decode message body"

# The level names Burrow's POST /v3/admin/loglevel accepts, as Python levels (zap's fatal is CRITICAL).
_LEVELS = {
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
# zap's names for the levels above, least severe first.
_LEVEL_NAMES = (
    (logging.DEBUG, "debug"),
    (logging.INFO, "info"),
    (logging.WARNING, "warn"),
    (logging.ERROR, "error"),
)


@dataclass(frozen=True, slots=True)
class TLSProfile:
    name: str
    no_verify: bool = False
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""


@dataclass(frozen=True, slots=True)
class SASLProfile:
    name: str
    username: str = ""
    handshake_first: bool = True


@dataclass(frozen=True, slots=True)
class ClusterModule:
    """What `/v3/kafka/(cluster)` shows of a cluster's configuration. Never holds a secret."""

    servers: Sequence[str]
    client_id: str
    topic_refresh: float
    """Seconds."""
    offset_refresh: float
    """Seconds."""
    class_name: str = "kafka"
    client_profile: str = "default"
    kafka_version: str = ""
    tls: TLSProfile | None = None
    sasl: SASLProfile | None = None


@dataclass(frozen=True, slots=True)
class MainConfig:
    """What `/v3/config` shows: lagwatch's counterparts of Burrow's logging and httpserver sections."""

    log_level: int
    """The configured Python level (the current one is `/v3/admin/loglevel`'s)."""
    listen: str
    tls: bool


@dataclass(frozen=True, slots=True)
class StorageModule:
    intervals: int
    min_distance: float
    """Seconds."""
    expire_group: float
    """Seconds."""
    group_allowlist: str = ""
    group_denylist: str = ""


@dataclass(frozen=True, slots=True)
class EvaluatorModule:
    expire_cache: float
    """Seconds a cached status may be old."""
    minimum_complete: float
    allowed_lag: int


@dataclass(frozen=True, slots=True)
class ConsumerModule:
    """How one cluster's committed offsets are read; `client` gives its servers and client profile."""

    cluster: str
    client: ClusterModule
    class_name: str = "kafka"
    offsets_topic: str = "__consumer_offsets"
    start_latest: bool = False
    group_allowlist: str = ""
    group_denylist: str = ""


def parse_log_level(name: str) -> int | None:
    """The Python level for a level name Burrow accepts, any case; None for any other name."""
    return _LEVELS.get(name.lower())


def log_level_name(level: int) -> str:
    """Burrow's (zap's) name for a Python level: the least severe of zap's levels that `level` lets through,
    so NOTSET and custom levels under DEBUG are `debug` and anything above ERROR is `fatal`."""
    for threshold, name in _LEVEL_NAMES:
        if level <= threshold:
            return name
    return "fatal"


def cluster_list(clusters: Iterable[str], *, url: str, host: str) -> Body:
    """`GET /v3/kafka`."""
    return _reply("cluster list returned", "clusters", sorted(clusters), url, host)


def cluster_detail(module: ClusterModule, *, url: str, host: str) -> Body:
    """`GET /v3/kafka/(cluster)`."""
    body = {
        "class-name": module.class_name,
        "servers": list(module.servers),
        "client-profile": _client_profile(module),
        "topic-refresh": _number(module.topic_refresh),
        "offset-refresh": _number(module.offset_refresh),
    }
    return _reply("cluster module detail returned", "module", body, url, host)


def topic_list(topics: Iterable[str], *, url: str, host: str) -> Body:
    """`GET /v3/kafka/(cluster)/topic`."""
    return _reply("topic list returned", "topics", sorted(topics), url, host)


def topic_offsets(offsets: Sequence[int | None], *, url: str, host: str) -> Body:
    """`GET /v3/kafka/(cluster)/topic/(topic)`: the newest HEAD offset per partition, indexed by partition.

    A partition whose HEAD is not known yet is null; Burrow leaves it out, which shifts every later index."""
    return _reply("topic offsets returned", "offsets", list(offsets), url, host)


def topic_consumers(groups: Iterable[str], *, url: str, host: str) -> Body:
    """`GET /v3/kafka/(cluster)/topic/(topic)/consumers`."""
    return _reply("consumers of topic returned", "consumers", sorted(groups), url, host)


def consumer_list(groups: Iterable[str], *, url: str, host: str) -> Body:
    """`GET /v3/kafka/(cluster)/consumer`."""
    return _reply("consumer list returned", "consumers", sorted(groups), url, host)


def consumer_detail(snapshot: GroupSnapshot, *, url: str, host: str) -> Body:
    """`GET /v3/kafka/(cluster)/consumer/(group)`: topic -> array indexed by partition id.

    Burrow's arrays are dense; a partition missing from the snapshot is filled in as a placeholder."""
    topics = {
        topic: _partition_array(list(partitions))
        for topic, partitions in groupby(snapshot.partitions, key=lambda p: p.topic)
    }
    return _reply("consumer detail returned", "topics", topics, url, host)


HeadroomByPartition = Mapping[tuple[str, int], Headroom]
"""Retention headroom of a group's partitions by (topic, partition); partitions without one are missing."""


def consumer_status(
    status: GroupStatus, *, url: str, host: str, headroom: HeadroomByPartition | None = None
) -> Body:
    """`GET /v3/kafka/(cluster)/consumer/(group)/status`: only the partitions worse than OK, every other field
    unfiltered (so `maxlag` may name a partition that is not listed). Burrow answers 404 for NOTFOUND."""
    bad = [p for p in status.partitions if p.status > Status.OK]
    body = _group_status(status, bad, headroom or {})
    return _reply("consumer status returned", "status", body, url, host)


def consumer_lag(
    status: GroupStatus, *, url: str, host: str, headroom: HeadroomByPartition | None = None
) -> Body:
    """`GET /v3/kafka/(cluster)/consumer/(group)/lag`: every partition."""
    body = _group_status(status, status.partitions, headroom or {})
    return _reply("consumer status returned", "status", body, url, host)


def group_removed(*, url: str, host: str) -> Body:
    """`DELETE /v3/kafka/(cluster)/consumer/(group)[/topic/(topic)]`; Burrow answers 200 even when unknown."""
    return {"error": False, "message": "consumer group removed", "request": _request(url, host)}


def log_level(level: int, *, url: str, host: str) -> Body:
    """`GET /v3/admin/loglevel`."""
    return _reply("log level returned", "level", log_level_name(level), url, host)


def log_level_set(*, url: str, host: str) -> Body:
    """`POST /v3/admin/loglevel`, when the level was changed."""
    return {"error": False, "message": "set log level", "request": _request(url, host)}


def config_main(config: MainConfig, *, url: str, host: str) -> Body:
    """`GET /v3/config`. Unlike the other bodies, Burrow's struct puts `request` right after `message`.

    lagwatch has no pid file, stdout log file, CORS header nor ZooKeeper: those are Burrow's empty values.
    Logs go to stderr, so the rotation settings are Burrow's defaults, unused as in a Burrow without a log
    file. The one listener is `default`, its `tls` the web configuration's (`default` when on); `timeout` is
    0 because lagwatch sets no request timeout."""
    return {
        "error": False,
        "message": "main config returned",
        "request": _request(url, host),
        "general": {"pidfile": "", "stdout-logfile": "", "access-control-allow-origin": ""},
        "logging": {
            "filename": "",
            "max-size": 100,
            "max-backups": 10,
            "max-age": 30,
            "use-local-time": False,
            "use-compression": False,
            "level": log_level_name(config.log_level),
        },
        "zookeeper": {"servers": [], "timeout": 0, "root-path": ""},
        "httpserver": {
            "default": {"address": config.listen, "tls": "default" if config.tls else "", "timeout": 0}
        },
    }


def module_list(coordinator: str, modules: Iterable[str], *, url: str, host: str) -> Body:
    """`GET /v3/config/(coordinator)`; `request` comes before the list, as in Burrow's struct."""
    return {
        "error": False,
        "message": "module list returned",
        "request": _request(url, host),
        "coordinator": coordinator,
        "modules": sorted(modules),
    }


def storage_module(module: StorageModule, *, url: str, host: str) -> Body:
    """`GET /v3/config/storage/(name)`: Burrow's keys, then lagwatch's `group-denylist`, which Burrow's body
    lacks although its storage has the setting."""
    body = {
        "class-name": "inmemory",
        "intervals": module.intervals,
        "min-distance": _number(module.min_distance),
        "group-allowlist": module.group_allowlist,
        "expire-group": _number(module.expire_group),
        "group-denylist": module.group_denylist,
    }
    return _reply("storage module detail returned", "module", body, url, host)


def evaluator_module(module: EvaluatorModule, *, url: str, host: str) -> Body:
    """`GET /v3/config/evaluator/(name)`: Burrow's keys, then the two thresholds Burrow's body leaves out."""
    body = {
        "class-name": "caching",
        "expire-cache": _number(module.expire_cache),
        "minimum-complete": _number(module.minimum_complete),
        "allowed-lag": module.allowed_lag,
    }
    return _reply("evaluator module detail returned", "module", body, url, host)


def consumer_module(module: ConsumerModule, *, url: str, host: str) -> Body:
    """`GET /v3/config/consumer/(name)`: Burrow's keys (the ZooKeeper ones empty), then `group-denylist`."""
    body = {
        "class-name": module.class_name,
        "cluster": module.cluster,
        "servers": list(module.client.servers),
        "group-allowlist": module.group_allowlist,
        "zookeeper-path": "",
        "zookeeper-timeout": 0,
        "client-profile": _client_profile(module.client),
        "offsets-topic": module.offsets_topic,
        "start-latest": module.start_latest,
        "group-denylist": module.group_denylist,
    }
    return _reply("consumer module detail returned", "module", body, url, host)


def error(message: str, *, url: str, host: str) -> Body:
    """Body of an error answer (its HTTP status is the caller's)."""
    return {"error": True, "message": message, "request": _request(url, host)}


def not_found() -> Body:
    """Body of the 404 for a path Burrow does not know; unlike every other body it has no `request`."""
    return {"error": True, "message": "invalid request type", "result": {}}


def _reply(message: str, key: str, value: object, url: str, host: str) -> Body:
    return {"error": False, "message": message, key: value, "request": _request(url, host)}


def _request(url: str, host: str) -> Body:
    return {"url": url, "host": host}


def _client_profile(module: ClusterModule) -> Body:
    tls = module.tls
    sasl = module.sasl
    return {
        "name": module.client_profile,
        "client-id": module.client_id,
        "kafka-version": module.kafka_version,
        "tls": None
        if tls is None
        else {
            "name": tls.name,
            "noverify": tls.no_verify,
            "certfile": tls.cert_file,
            "keyfile": tls.key_file,
            "cafile": tls.ca_file,
        },
        "sasl": None
        if sasl is None
        else {"name": sasl.name, "handshake-first": sasl.handshake_first, "username": sasl.username},
    }


def _group_status(
    status: GroupStatus, partitions: Iterable[PartitionStatus], headroom: HeadroomByPartition
) -> Body:
    maxlag = status.maxlag
    return {
        "cluster": status.cluster,
        "group": status.group,
        "status": status.status.name,
        "complete": _float32(status.complete),
        "partitions": [_partition_status(p, headroom) for p in partitions],
        "partition_count": status.partition_count,
        "maxlag": None if maxlag is None else _partition_status(maxlag, headroom),
        "totallag": status.totallag,
    }


def _partition_status(p: PartitionStatus, headroom: HeadroomByPartition) -> Body:
    body = {
        "topic": p.topic,
        "partition": p.partition,
        "owner": p.owner,
        "client_id": p.client_id,
        "status": p.status.name,
        "start": _offset(p.start),
        "end": _offset(p.end),
        # Burrow reports 0 whenever it cannot compute a lag (no HEAD, no commit); its clients expect a number.
        "current_lag": p.current_lag or 0,
        "complete": _float32(p.complete),
    }
    # lagwatch's additions to Burrow's object (clients ignore unknown keys): why the status is what it is.
    if p.reason is not None:
        body["reason"] = reason_body(p.reason)
    # And how close retention is to deleting what the group has not read (docs/metrics.md).
    figures = headroom.get((p.topic, p.partition))
    if figures is not None:
        body["retention"] = {
            "lost_messages": figures.lost,
            "margin": figures.margin,
            "headroom_seconds": None if figures.seconds is None else round(figures.seconds, 3),
        }
    return body


def reason_body(reason: Reason) -> Body:
    """The `reason` key of a partition object: the rule's API name, its figures by name, and the words."""
    return {"rule": reason.rule.value, "figures": figure_map(reason), "text": text(reason)}


def _partition_array(partitions: list[PartitionSnapshot]) -> list[Body]:
    by_id = {p.partition: p for p in partitions}
    return [_partition_detail(by_id.get(i)) for i in range(max(by_id) + 1)]


def _partition_detail(p: PartitionSnapshot | None) -> Body:
    if p is None:
        return {"offsets": [], "owner": "", "client_id": "", "current-lag": 0}
    return {
        "offsets": [_offset(c) for c in p.window],
        "owner": p.owner,
        "client_id": p.client_id,
        "current-lag": p.current_lag or 0,
    }


def _offset(commit: Commit | None) -> Body | None:
    if commit is None:
        return None
    return {
        "offset": commit.offset,
        "timestamp": commit.timestamp_ms,
        "observedAt": commit.observed_ms,
        "lag": commit.lag,
    }


def _float32(value: float) -> int | float:
    """The value as Go's encoding/json writes a float32: the shortest decimal that reads back as the same
    float32 (`0.33333334`, `0.1`), and integral values without a fraction (`1`, not `1.0`)."""
    single = _to_float32(value)
    if single.is_integer():
        return int(single)
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if _to_float32(shortest) == single:
            return shortest
    return single


def _to_float32(value: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def _number(value: float) -> int | float:
    """Seconds as Burrow's int64 settings, keeping a fraction Burrow could not have had."""
    return int(value) if float(value).is_integer() else value
