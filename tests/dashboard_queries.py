"""Every PromQL expression of every panel of the shipped Grafana dashboards, ready to send to Prometheus.

No Grafana server can render the dashboards in a test, so an end-to-end test instead sends each panel's query,
with the template variables replaced by concrete values, to a real Prometheus that scrapes lagwatch and checks
that it returns data. Values are inserted verbatim, as Grafana inserts a single value: pass values that
are valid where the dashboards use them (a regex after `=~`, a literal after `=`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "grafana" / "dashboards"

BUILTIN_DEFAULTS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
"""Grafana's global variables, at what Grafana gives them for a 1 h range and a 15 s scrape interval."""

# `$name` or `${name}`; a `$` followed by anything else (a `${name:format}`, a regex anchor) is refused, so
# that no expression reaches Prometheus with a `$` Grafana would have replaced.
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))?")


def panel_queries(dashboard_dir: Path, variables: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) of every target of every panel, in file, panel and target order.

    `variables` maps variable names (without `$`) to values; it overrides `BUILTIN_DEFAULTS`. Panels nested in
    collapsed rows are included. Raises ValueError, naming the dashboard and panel, for a variable that has no
    value.
    """
    values = {**BUILTIN_DEFAULTS, **variables}
    queries = []
    for path in sorted(dashboard_dir.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        title = dashboard["title"]
        for panel in _panels(dashboard["panels"]):
            for target in panel.get("targets", ()):
                if "expr" in target:
                    where = f"{path.name}: panel {panel['title']!r}, target {target.get('refId')!r}"
                    queries.append((title, panel["title"], _substitute(target["expr"], values, where)))
    return queries


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    # A collapsed row keeps its panels inside itself; an expanded one has them after it at top level.
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _substitute(expr: str, values: Mapping[str, str], where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        if name is None:
            raise ValueError(f"{where}: a '$' that is not a variable reference in {expr!r}")
        if name not in values:
            raise ValueError(f"{where}: no value for variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)
