"""`lagwatch status`: ask a running lagwatch through its Burrow v3 API and print a table read at a glance.

Only Burrow's endpoints are used (`/v3/kafka`, `/v3/kafka/<c>/consumer`, `/v3/kafka/<c>/consumer/<g>/lag`),
so the command works against Burrow too, plus the `lagwatch` field of lagwatch's `/v3/kafka/<c>`, which says
whether a cluster's statuses are current. One keep-alive connection carries every request. A group whose
answer cannot be read is reported on stderr and the others are shown. Exit codes: 0 when no group is ERR; 1
when one is, when a group could not be shown, or when `--group` names a group nobody knows; 2 when the server
cannot be reached or answers something other than the API; 3 when lagwatch cannot reach a Kafka cluster or has
not evaluated it yet (its statuses are frozen or missing; this wins over 1).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote, unquote, urlsplit

from exporter.core.model import Commit, GroupStatus, Partitions, PartitionStatus, Reason, Rule, Status
from exporter.core.reasons import FIGURES, group_reason
from exporter.core.retention import Headroom
from exporter.exposition.table import groups_table, partitions_table, worst_first
from exporter.settings import DEFAULT_PORT

__all__ = [
    "DEFAULT_URL",
    "EXIT_ERR",
    "EXIT_KAFKA_UNREACHABLE",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "add_arguments",
    "group_status",
    "run",
]

DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
EXIT_OK = 0
EXIT_ERR = 1
EXIT_UNREACHABLE = 2
EXIT_KAFKA_UNREACHABLE = 3
_PROG = "lagwatch status"
_TIMEOUT_S = 10.0


class _UnreachableError(Exception):
    """The server could not be asked, or did not answer like the Burrow API; the message is one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help=f"base URL of the lagwatch (or Burrow) to ask, with user:password@ for basic auth "
        f"(default: {DEFAULT_URL})",
    )
    parser.add_argument("--cluster", metavar="NAME", help="only this cluster (default: every cluster)")
    parser.add_argument("--group", metavar="NAME", help="show the partitions of this consumer group")
    parser.add_argument("--json", action="store_true", help="print the Burrow status objects as JSON")
    parser.add_argument(
        "--no-color",
        action="store_true",
        help="never colour the status (also: NO_COLOR set, or not a terminal)",
    )
    parser.add_argument("--ca-file", metavar="PATH", help="PEM CA bundle to verify an https server")
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the https server's certificate"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=_TIMEOUT_S,
        metavar="SECONDS",
        help="per-request timeout (default: 10)",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Fetch, print, and return the exit code."""
    stream = out if out is not None else sys.stdout
    try:
        client = _Client(args.url, args.timeout, args.ca_file, args.insecure)
    except ValueError as error:
        print(f"{_PROG}: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        with client:
            found, bodies, failed, states = _fetch(client, args.cluster, args.group)
    except _UnreachableError as error:
        print(f"{_PROG}: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    for (name, member), reason in failed.items():
        print(f"{_PROG}: cannot show group {member!r} of cluster {name}: {reason}", file=sys.stderr)
    stale = {name: state for name, state in states.items() if _stale(state)}
    if args.group is not None and not found and not failed and not stale:
        print(f"{_PROG}: consumer group {args.group!r} not found", file=sys.stderr)
        return EXIT_ERR
    ordered = worst_first(found.values())
    if args.json:
        raw = [bodies[g.cluster, g.group] for g in ordered]
        clusters = [{"cluster": name, **state} for name, state in states.items()]
        stream.write(json.dumps({"groups": raw, "clusters": clusters}, indent=2) + "\n")
    else:
        for name, state in stale.items():
            stream.write(f"cluster {name}: {_stale_line(state)}\n")
        color = _color(args.no_color, stream)
        if args.group is None:
            stream.write(groups_table(ordered, color=color))
        else:
            tables = (
                partitions_table(g, color=color, headroom=group_headroom(bodies[g.cluster, g.group]))
                for g in ordered
            )
            stream.write("\n".join(tables))
    if stale:
        return EXIT_KAFKA_UNREACHABLE
    return EXIT_ERR if failed or any(g.status == Status.ERR for g in ordered) else EXIT_OK


def _stale(state: Mapping[str, Any]) -> bool:
    return state.get("ready") is False or state.get("reachable") is False


def _stale_line(state: Mapping[str, Any]) -> str:
    """Why a cluster's statuses are not current, for the line above the table."""
    if state.get("reachable") is False:
        since = _when(state.get("unreachable_since"))
        cause = f" ({state['cause']})" if state.get("cause") else ""
        as_of = _when(state.get("statuses_as_of"))
        return f"UNREACHABLE since {since}{cause}; statuses as of {as_of}"
    return f"NOT READY: {state.get('waiting_for') or 'starting'}; no statuses yet"


def _when(millis: object) -> str:
    if not isinstance(millis, int):
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(millis / 1000))


def group_status(body: Mapping[str, Any]) -> GroupStatus:
    """A Burrow `status` object (from `/status` or `/lag`) as the model's GroupStatus."""
    maxlag = body.get("maxlag")
    status = _status(body["status"])
    partitions = Partitions.of(_partition(p) for p in body.get("partitions") or ())
    # lagwatch's partitions carry their reasons; the group's follows from them (Burrow's carry none).
    known = None not in partitions.reasons and len(partitions) == body["partition_count"]
    return GroupStatus(
        cluster=body["cluster"],
        group=body["group"],
        status=status,
        complete=float(body["complete"]),
        partitions=partitions,
        partition_count=int(body["partition_count"]),
        maxlag=None if maxlag is None else _partition(maxlag),
        totallag=int(body["totallag"]),
        reason=group_reason(status, partitions) if known else None,
    )


def group_headroom(body: Mapping[str, Any]) -> dict[tuple[str, int], Headroom]:
    """The `retention` keys of a status object's partitions (lagwatch's addition; Burrow has none)."""
    found: dict[tuple[str, int], Headroom] = {}
    for p in body.get("partitions") or ():
        figures = p.get("retention")
        if isinstance(figures, dict):
            try:
                seconds = figures["headroom_seconds"]
                found[p["topic"], int(p["partition"])] = Headroom(
                    int(figures["lost_messages"]),
                    int(figures["margin"]),
                    None if seconds is None else float(seconds),
                )
            except (KeyError, TypeError, ValueError):
                continue
    return found


_Key = tuple[str, str]


def _fetch(
    client: _Client, cluster: str | None, group: str | None
) -> tuple[
    dict[_Key, GroupStatus], dict[_Key, Mapping[str, Any]], dict[_Key, str], dict[str, Mapping[str, Any]]
]:
    """Every wanted group's status and the JSON object it was read from, by (cluster, group); why the groups
    that could not be read were not; and the `lagwatch` state of each cluster whose detail has one (Burrow's
    has not). Only a server that cannot be asked at all fails the whole."""
    clusters = [cluster] if cluster is not None else _list(client, "/v3/kafka", "clusters")
    found: dict[_Key, GroupStatus] = {}
    bodies: dict[_Key, Mapping[str, Any]] = {}
    failed: dict[_Key, str] = {}
    states: dict[str, Mapping[str, Any]] = {}
    for name in clusters:
        base = f"/v3/kafka/{quote(name, safe='')}"
        code, detail = client.get(base)
        state = detail.get("lagwatch") if code == 200 and isinstance(detail, dict) else None
        if isinstance(state, dict):
            states[name] = state
        groups = [group] if group is not None else _list(client, f"{base}/consumer", "consumers")
        for member in groups:
            code, body = client.get(f"{base}/consumer/{quote(member, safe='')}/lag")
            raw = body.get("status") if isinstance(body, dict) else None
            try:
                if code not in (200, 404) or not isinstance(raw, dict):
                    raise _UnreachableError(client.describe(code))
                status = group_status(raw)
            except (_UnreachableError, KeyError, TypeError, ValueError) as error:
                failed[name, member] = (
                    str(error) if isinstance(error, _UnreachableError) else "malformed answer"
                )
                continue
            if group is None or status.status != Status.NOTFOUND:
                found[name, member] = status
                bodies[name, member] = raw
    return found, bodies, failed, states


def _list(client: _Client, path: str, key: str) -> list[str]:
    code, body = client.get(path)
    if code == 404 and isinstance(body, dict) and body.get("error") is True:
        raise _UnreachableError(f"{path}: {body.get('message', 'not found')}")
    values = body.get(key) if isinstance(body, dict) else None
    if code != 200 or not isinstance(values, list):
        raise _UnreachableError(f"{client.describe(code)} for {path}")
    return [str(v) for v in values]


def _partition(body: Mapping[str, Any]) -> PartitionStatus:
    return PartitionStatus(
        topic=body["topic"],
        partition=int(body["partition"]),
        owner=body.get("owner") or "",
        client_id=body.get("client_id") or "",
        status=_status(body["status"]),
        start=_commit(body.get("start")),
        end=_commit(body.get("end")),
        current_lag=body.get("current_lag"),
        complete=float(body["complete"]),
        reason=_partition_reason(body.get("reason")),
    )


def _partition_reason(body: object) -> Reason | None:
    """A partition's `reason` key; None when absent (Burrow) or from a lagwatch with other rules."""
    if not isinstance(body, dict):
        return None
    try:
        rule = Rule(body["rule"])
        figures = body["figures"]
        return Reason(rule, tuple(figures[name] for name in FIGURES[rule]))
    except (KeyError, TypeError, ValueError):
        return None


def _commit(body: Mapping[str, Any] | None) -> Commit | None:
    if body is None:
        return None
    # Burrow's JSON has no `order`; the table never shows it.
    return Commit(
        offset=int(body["offset"]),
        order=0,
        timestamp_ms=int(body["timestamp"]),
        lag=body.get("lag"),
        observed_ms=int(body.get("observedAt") or 0),
    )


def _status(name: str) -> Status:
    try:
        return Status[name]
    except KeyError:
        raise _UnreachableError(f"unknown status {name!r} in the answer") from None


def _color(disabled: bool, stream: TextIO) -> bool:
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return not disabled and not os.environ.get("NO_COLOR") and stream.isatty()


@dataclass(frozen=True, slots=True)
class _Target:
    https: bool
    host: str
    port: int
    prefix: str
    authorization: str | None


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--url {url!r} is not an http:// or https:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"--url {url!r} has an invalid port") from None
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
    return _Target(parts.scheme == "https", parts.hostname, port, parts.path.rstrip("/"), authorization)


class _Client:
    """GETs over one keep-alive connection, reconnecting once if the server closed it in between."""

    def __init__(self, url: str, timeout: float, ca_file: str | None, insecure: bool) -> None:
        self._url = url.rstrip("/")
        self._target = _target(url)
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None
        if self._target.https:
            self._context = ssl.create_default_context(cafile=ca_file)
            if insecure:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE
        self._connection = self._connect()

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._connection.close()

    def describe(self, code: int) -> str:
        reason = http.client.responses.get(code, "")
        return f"{self._url} answered {code} {reason}".rstrip()

    def get(self, path: str) -> tuple[int, Any]:
        """Status code and decoded JSON body (None when the body is not JSON)."""
        for attempt in (1, 2):
            try:
                return self._get(path)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                self._connection.close()
                self._connection = self._connect()
                if attempt == 2:
                    raise _UnreachableError(f"cannot reach {self._url}: {error}") from None
            except (OSError, http.client.HTTPException) as error:
                raise _UnreachableError(f"cannot reach {self._url}: {_reason(error)}") from None
        raise AssertionError("unreachable")

    def _get(self, path: str) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if self._target.authorization is not None:
            headers["Authorization"] = self._target.authorization
        self._connection.request("GET", self._target.prefix + path, headers=headers)
        response = self._connection.getresponse()
        data = response.read()
        if response.status == 401:
            hint = "; put user:password@ in --url" if self._target.authorization is None else ""
            raise _UnreachableError(f"{self.describe(401)}{hint}")
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, None

    def _connect(self) -> http.client.HTTPConnection:
        target = self._target
        if target.https:
            return http.client.HTTPSConnection(
                target.host, target.port, timeout=self._timeout, context=self._context
            )
        return http.client.HTTPConnection(target.host, target.port, timeout=self._timeout)


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({error.verify_message}); see --ca-file"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
