"""Burrow's v3 HTTP API: clusters, topics, consumers, statuses and lags, the admin token's DELETE and log
level, and the configuration endpoints.

Burrow's paths, status codes and bodies (built by burrow_json) are copied exactly; docs/http-api.md lists the
deliberate differences.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from exporter.core.model import ClusterState, GroupStatus, Status, not_found
from exporter.exposition import burrow_json
from exporter.exposition.guard.credentials import bearer_matches
from exporter.exposition.handle import ClusterHandle
from exporter.settings import ClusterSettings, Settings

__all__ = ["install", "unknown_path"]

log = logging.getLogger(__name__)

_JSON = "application/json"
_DEFAULT_MODULE = "default"
"""The name of lagwatch's one storage and evaluator module in `/v3/config`, Burrow's usual name."""
# Module names of `/v3/config/(coordinator)` that are not the clusters': lagwatch has no notifier (it alerts
# through Prometheus and Alertmanager).
_FIXED_MODULES: Mapping[str, tuple[str, ...]] = {
    "storage": (_DEFAULT_MODULE,),
    "evaluator": (_DEFAULT_MODULE,),
    "notifier": (),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class _State:
    clusters: Mapping[str, ClusterHandle]
    hostname: str
    admin_token: str
    settings: Settings
    tls: bool
    """Whether the web configuration serves TLS."""


_STATE = web.AppKey("lagwatch_burrow_api", _State)


def install(
    app: web.Application, clusters: Mapping[str, ClusterHandle], settings: Settings, *, tls: bool
) -> None:
    """Add Burrow's routes to `app`."""
    app[_STATE] = _State(
        clusters=clusters,
        hostname=socket.gethostname(),
        admin_token=settings.http.admin_token.get_secret_value(),
        settings=settings,
        tls=tls,
    )
    # Segments match anything but a slash (aiohttp decodes them after matching, so %2F is part of a name):
    # every group id Kafka accepts, braces, quotes, unicode and the empty one included, has its URL.
    app.add_routes(
        [
            web.get("/v3/kafka", _cluster_list),
            web.get("/v3/kafka/{cluster:[^/]+}", _cluster_detail),
            web.get("/v3/config/cluster/{cluster:[^/]+}", _cluster_detail),
            web.get("/v3/kafka/{cluster:[^/]+}/topic", _topic_list),
            web.get("/v3/kafka/{cluster:[^/]+}/topic/{topic:[^/]+}", _topic_offsets),
            web.get("/v3/kafka/{cluster:[^/]+}/topic/{topic:[^/]+}/consumers", _topic_consumers),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer", _consumer_list),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}", _consumer_detail),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}/status", _consumer_status),
            web.get("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}/lag", _consumer_lag),
            web.delete("/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}", _with_admin_token(_delete_group)),
            web.delete(
                "/v3/kafka/{cluster:[^/]+}/consumer/{group:[^/]*}/topic/{topic:[^/]+}",
                _with_admin_token(_delete_group),
            ),
            web.get("/v3/admin/loglevel", _log_level),
            web.post("/v3/admin/loglevel", _with_admin_token(_set_log_level)),
            web.get("/v3/config", _config_main),
            web.get("/v3/config/{coordinator:storage|evaluator|cluster|consumer|notifier}", _module_list),
            web.get("/v3/config/storage/{name}", _storage_module),
            web.get("/v3/config/evaluator/{name}", _evaluator_module),
            web.get("/v3/config/consumer/{name}", _consumer_module),
            web.get("/v3/config/notifier/{name}", _notifier_module),
        ]
    )


def unknown_path() -> web.Response:
    """Burrow's answer to a path it does not know."""
    return _json(burrow_json.not_found(), status=404)


async def _cluster_list(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    return _json(burrow_json.cluster_list(state.clusters, **_where(request)))


async def _cluster_detail(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_MODULE_NOT_FOUND)
    body = burrow_json.cluster_detail(_module(cluster.settings), **_where(request))
    # lagwatch's own field, which Burrow clients ignore: whether the statuses are current.
    body["lagwatch"] = _cluster_state(cluster.state())
    return _json(body)


def _cluster_state(state: ClusterState) -> dict[str, object]:
    def millis(seconds: float | None) -> int | None:
        return None if seconds is None else int(seconds * 1000)

    return {
        "ready": state.ready,
        "waiting_for": state.waiting_for,
        "reachable": state.reachable,
        "unreachable_since": millis(state.unreachable_since),
        "cause": state.cause,
        "statuses_as_of": millis(state.statuses_as_of),
    }


async def _topic_list(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_NOT_FOUND)
    return _json(burrow_json.topic_list(cluster.topics(), **_where(request)))


async def _topic_offsets(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    offsets = None if cluster is None else cluster.head_offsets(request.match_info["topic"])
    if offsets is None:
        return _error(request, burrow_json.CLUSTER_OR_TOPIC_NOT_FOUND)
    return _json(burrow_json.topic_offsets(offsets, **_where(request)))


async def _topic_consumers(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_NOT_FOUND)
    # Only evaluated groups: a group any endpoint lists has a status at the same instant.
    statuses = cluster.statuses()
    groups = [g for g in cluster.groups_for_topic(request.match_info["topic"]) if g in statuses]
    return _json(burrow_json.topic_consumers(groups, **_where(request)))


async def _consumer_list(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    if cluster is None:
        return _error(request, burrow_json.CLUSTER_NOT_FOUND)
    # Only evaluated groups: a group any endpoint lists has a status at the same instant.
    return _json(burrow_json.consumer_list(sorted(cluster.statuses()), **_where(request)))


async def _consumer_detail(request: web.Request) -> web.Response:
    cluster = _cluster(request)
    group = request.match_info["group"]
    snapshot = None
    if cluster is not None and group in cluster.statuses():
        snapshot = cluster.group_snapshot(group)
    if snapshot is None:
        return _error(request, burrow_json.CLUSTER_OR_CONSUMER_NOT_FOUND)
    return _json(burrow_json.consumer_detail(snapshot, **_where(request)))


async def _consumer_status(request: web.Request) -> web.Response:
    status = _group_status(request)
    body = burrow_json.consumer_status(status, headroom=_headroom(request, status), **_where(request))
    return _json(body, status=_status_code(status))


async def _consumer_lag(request: web.Request) -> web.Response:
    status = _group_status(request)
    body = burrow_json.consumer_lag(status, headroom=_headroom(request, status), **_where(request))
    return _json(body, status=_status_code(status))


def _headroom(request: web.Request, status: GroupStatus) -> burrow_json.HeadroomByPartition:
    """The retention headroom computed from exactly this status, by partition; empty when there is none."""
    cluster = request.app[_STATE].clusters.get(request.match_info["cluster"])
    figures = None if cluster is None else cluster.headroom().get(status.group)
    if figures is None:
        return {}
    return {
        (p.topic, p.partition): h for p, h in zip(status.partitions, figures, strict=True) if h is not None
    }


def _with_admin_token(handler: Handler) -> Handler:
    """The handler of a request that changes lagwatch: off (an unknown path) while no admin token is set, and
    401 unless the request carries it. Burrow's are open to anyone."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        state = request.app[_STATE]
        if not state.admin_token:
            return unknown_path()
        if not bearer_matches(request.headers.get("Authorization", ""), state.admin_token):
            return _json(
                burrow_json.error("missing or invalid admin token", **_where(request)),
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return guarded


async def _delete_group(request: web.Request) -> web.Response:
    """Burrow's DELETE, which answers 200 whether or not anything was removed."""
    cluster = _cluster(request)
    group = request.match_info["group"]
    topic = request.match_info.get("topic")
    if cluster is not None and cluster.delete_group(group, topic):
        log.info(
            "cluster %s: group %r%s removed through the HTTP API",
            cluster.name,
            group,
            "" if topic is None else f" topic {topic!r}",
        )
    return _json(burrow_json.group_removed(**_where(request)))


async def _log_level(request: web.Request) -> web.Response:
    return _json(burrow_json.log_level(logging.getLogger().level, **_where(request)))


async def _set_log_level(request: web.Request) -> web.Response:
    """Burrow's POST: sets the root logger's level; aiokafka's own stays where app.py put it."""
    try:
        name = _level_field(await request.json())
    except (ValueError, RecursionError):
        name = None
    if name is None:
        return _json(burrow_json.error(burrow_json.UNDECODABLE_BODY, **_where(request)), status=400)
    level = burrow_json.parse_log_level(name)
    if level is None:
        return _error(request, burrow_json.UNKNOWN_LOG_LEVEL)
    logging.getLogger().setLevel(level)
    # At INFO or above the new level, so that the change itself is always on record.
    log.log(
        max(level, logging.INFO),
        "log level set to %s through the HTTP API",
        burrow_json.log_level_name(level),
    )
    return _json(burrow_json.log_level_set(**_where(request)))


def _level_field(body: object) -> str | None:
    """The `level` of a decoded body as Go's encoding/json reads it into Burrow's struct: the last key that
    matches in any case, a missing key or a null read as ""; None when the body does not fit the struct."""
    if body is None:
        return ""
    if not isinstance(body, dict):
        return None
    values = [value for key, value in body.items() if key.lower() == "level"]
    value = values[-1] if values else None
    if value is None:
        return ""
    return value if isinstance(value, str) else None


async def _config_main(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    settings = state.settings
    config = burrow_json.MainConfig(
        log_level=logging.getLevelNamesMapping()[settings.log_level.upper()],
        listen=settings.http.listen,
        tls=state.tls,
    )
    return _json(burrow_json.config_main(config, **_where(request)))


async def _module_list(request: web.Request) -> web.Response:
    coordinator = request.match_info["coordinator"]
    modules = _FIXED_MODULES.get(coordinator, request.app[_STATE].clusters.keys())
    return _json(burrow_json.module_list(coordinator, modules, **_where(request)))


async def _storage_module(request: web.Request) -> web.Response:
    if request.match_info["name"] != _DEFAULT_MODULE:
        return _error(request, burrow_json.STORAGE_MODULE_NOT_FOUND)
    settings = request.app[_STATE].settings
    module = burrow_json.StorageModule(
        intervals=settings.storage.intervals,
        min_distance=settings.storage.min_distance,
        expire_group=settings.storage.expire_group,
        group_allowlist=settings.filters.group_allow,
        group_denylist=settings.filters.group_deny,
    )
    return _json(burrow_json.storage_module(module, **_where(request)))


async def _evaluator_module(request: web.Request) -> web.Response:
    if request.match_info["name"] != _DEFAULT_MODULE:
        return _error(request, burrow_json.EVALUATOR_MODULE_NOT_FOUND)
    state = request.app[_STATE]
    evaluator = state.settings.evaluator
    module = burrow_json.EvaluatorModule(
        # lagwatch re-evaluates after every HEAD round rather than expiring a cache, so a status is at most
        # one round old: the longest offset_refresh is the counterpart of Burrow's expire-cache.
        expire_cache=max((c.settings.offset_refresh for c in state.clusters.values()), default=0.0),
        minimum_complete=evaluator.minimum_complete,
        allowed_lag=evaluator.allowed_lag,
    )
    return _json(burrow_json.evaluator_module(module, **_where(request)))


async def _consumer_module(request: web.Request) -> web.Response:
    """One consumer module per cluster, named after it: what reads the cluster's committed offsets."""
    state = request.app[_STATE]
    name = request.match_info["name"]
    cluster = state.clusters.get(name)
    if cluster is None:
        return _error(request, burrow_json.CONSUMER_MODULE_NOT_FOUND)
    settings = cluster.settings
    filters = state.settings.filters
    from_topic = settings.offsets_source == "offsets-topic"
    module = burrow_json.ConsumerModule(
        cluster=name,
        client=_module(settings),
        class_name="kafka" if from_topic else "kafka_admin_api",
        offsets_topic=settings.offsets_topic if from_topic else "",
        start_latest=settings.start_latest and from_topic,
        group_allowlist=filters.group_allow,
        group_denylist=filters.group_deny,
    )
    return _json(burrow_json.consumer_module(module, **_where(request)))


async def _notifier_module(request: web.Request) -> web.Response:
    return _error(request, burrow_json.NOTIFIER_MODULE_NOT_FOUND)


def _cluster(request: web.Request) -> ClusterHandle | None:
    return request.app[_STATE].clusters.get(request.match_info["cluster"])


def _group_status(request: web.Request) -> GroupStatus:
    name = request.match_info["cluster"]
    group = request.match_info["group"]
    cluster = request.app[_STATE].clusters.get(name)
    # Burrow's evaluator answer for an unknown cluster or group: the evaluator's own NOTFOUND shape.
    return not_found(name, group) if cluster is None else cluster.status(group)


def _status_code(status: GroupStatus) -> int:
    return 404 if status.status == Status.NOTFOUND else 200


def _module(settings: ClusterSettings) -> burrow_json.ClusterModule:
    security = settings.security
    tls = None
    if security.protocol in ("SSL", "SASL_SSL"):
        tls = burrow_json.TLSProfile(
            "default", cert_file=security.cert_file, key_file=security.key_file, ca_file=security.ca_file
        )
    sasl = None
    if security.protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        sasl = burrow_json.SASLProfile("default", username=security.sasl_username)
    return burrow_json.ClusterModule(
        servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        topic_refresh=settings.topic_refresh,
        offset_refresh=settings.offset_refresh,
        tls=tls,
        sasl=sasl,
    )


def _where(request: web.Request) -> dict[str, str]:
    """The `url` and `host` of Burrow's `request` object: the decoded path and this machine's name."""
    return {"url": request.path, "host": request.app[_STATE].hostname}


def _error(request: web.Request, message: str) -> web.Response:
    return _json(burrow_json.error(message, **_where(request)), status=404)


def _json(body: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, status=status, content_type=_JSON, headers=headers)
