"""The status page's routes: `/` (the overview), `/group/<cluster>/<group>` and the page's own stylesheet and
script. The HTML comes from the `statuspage` package; this module reads the clusters' cached statuses and
snapshots from memory and answers, behind the same TLS, basic auth and rate limit as every other path
(server.py's guards).

`?fragment=1` answers only what the page's script swaps in when it filters or refreshes itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from importlib.resources import files
from typing import Protocol

from aiohttp import web

from exporter import __version__
from exporter.core.model import GroupSnapshot, GroupStatus
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.statuspage.cluster_state import ClusterState
from exporter.exposition.statuspage.group import group_page, not_found_page
from exporter.exposition.statuspage.overview import OverviewQuery, overview_page

__all__ = ["PageCluster", "routes"]

_HTML = "text/html"
_ASSETS = {"page.css": "text/css", "page.js": "text/javascript"}


class PageCluster(Protocol):
    """What the page reads of a cluster (handle.ClusterHandle provides it)."""

    def group_snapshot(self, group: str) -> GroupSnapshot | None: ...

    def statuses(self) -> Mapping[str, GroupStatus]: ...

    def view(self) -> ClusterView: ...


def routes(clusters: Mapping[str, PageCluster]) -> list[web.RouteDef]:
    """The page's routes, for `web.Application.add_routes`."""
    assets = {name: files("exporter.exposition").joinpath("static", name).read_bytes() for name in _ASSETS}

    async def overview(request: web.Request) -> web.Response:
        states = [_state(view) for view in (c.view() for c in clusters.values())]
        text = overview_page(
            states,
            OverviewQuery.parse(request.query.items()),
            _now_ms(),
            __version__,
            fragment=_fragment(request),
        )
        return _page(text)

    async def group(request: web.Request) -> web.Response:
        name = request.match_info["cluster"]
        group_name = request.match_info["group"]
        cluster = clusters.get(name)
        status = None if cluster is None else cluster.statuses().get(group_name)
        if cluster is None or status is None:
            return _page(not_found_page(name, group_name, __version__, _now_ms()), status=404)
        text = group_page(
            _state(cluster.view()),
            status,
            cluster.group_snapshot(group_name),
            _now_ms(),
            __version__,
            fragment=_fragment(request),
        )
        return _page(text)

    def asset(name: str) -> web.RouteDef:
        async def serve(_: web.Request) -> web.Response:
            return web.Response(
                body=assets[name],
                content_type=_ASSETS[name],
                charset="utf-8",
                headers={"Cache-Control": "no-cache"},
            )

        return web.get(f"/static/{name}", serve)

    return [
        web.get("/", overview),
        # Any path segment, as the API's routes: group names may hold braces, quotes or nothing at all.
        web.get("/group/{cluster:[^/]+}/{group:[^/]*}", group),
        *(asset(name) for name in _ASSETS),
    ]


def _state(view: ClusterView) -> ClusterState:
    return ClusterState(
        name=view.name,
        groups=view.groups,
        up=view.up,
        since_ms=view.since_ms,
        last_error=view.last_error,
        head_refresh_ms=view.head_refresh_ms,
        caught_up=view.caught_up,
        lag_seconds=view.lag_seconds,
        headroom=view.headroom,
    )


def _fragment(request: web.Request) -> bool:
    return request.query.get("fragment") == "1"


def _page(text: str, status: int = 200) -> web.Response:
    # The page is live data: a browser must not show an old copy.
    return web.Response(text=text, status=status, content_type=_HTML, headers={"Cache-Control": "no-store"})


def _now_ms() -> int:
    return int(time.time() * 1000)
