"""Health and readiness: Prometheus' `/-/healthy` and `/-/ready`, Burrow's `/burrow/admin` and
`/burrow/admin/ready`, and the runbooks page. The status page at `/` is pages.py's."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web

from exporter import __version__
from exporter.core.model import ClusterState
from exporter.exposition import runbooks
from exporter.exposition.handle import ClusterHandle

__all__ = ["routes"]

_TEXT = "text/plain"


def routes(clusters: Mapping[str, ClusterHandle]) -> list[web.RouteDef]:
    """The health routes, for `web.Application.add_routes`."""

    async def ready(_: web.Request) -> web.Response:
        return _ready(clusters)

    async def burrow_ready(_: web.Request) -> web.Response:
        if any(not cluster.ready for cluster in clusters.values()):
            return web.Response(status=503, text="STARTING", content_type=_TEXT)
        return web.Response(text="READY", content_type=_TEXT)

    return [
        web.get("/-/healthy", _healthy),
        web.get("/-/ready", ready),
        web.get("/runbooks", _runbooks),
        web.get("/burrow/admin", _burrow_admin),
        web.get("/burrow/admin/ready", burrow_ready),
    ]


async def _runbooks(_: web.Request) -> web.Response:
    return web.Response(text=runbooks.page(runbooks.runbooks(), __version__), content_type="text/html")


async def _healthy(_: web.Request) -> web.Response:
    return web.Response(text="lagwatch is Healthy.\n", content_type=_TEXT)


def _ready(clusters: Mapping[str, ClusterHandle]) -> web.Response:
    """503 until every cluster was replayed, has HEAD offsets and was evaluated, naming each cluster that is
    not and why; a cluster that was ready and became unreachable keeps lagwatch ready (its statuses are
    served, frozen) and is named too."""
    states = {name: cluster.state() for name, cluster in clusters.items()}
    lines = [
        f"cluster {name}: {state.waiting_for if not state.ready else _unreachable(state)}"
        for name, state in states.items()
        if not state.ready or not state.reachable
    ]
    details = "".join(f"{line}\n" for line in lines)
    if any(not state.ready for state in states.values()):
        return web.Response(status=503, text=f"lagwatch is not ready.\n{details}", content_type=_TEXT)
    return web.Response(text=f"lagwatch is Ready.\n{details}", content_type=_TEXT)


def _unreachable(state: ClusterState) -> str:
    since = "" if state.unreachable_since is None else f" since {_utc(state.unreachable_since)}"
    cause = f" ({state.cause})" if state.cause else ""
    as_of = "never" if state.statuses_as_of is None else _utc(state.statuses_as_of)
    return f"unreachable{since}{cause}; statuses as of {as_of}"


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def _burrow_admin(_: web.Request) -> web.Response:
    return web.Response(text="GOOD", content_type=_TEXT)
