"""Parsers of setting values the model's validators share: `host:port` (or `[v6]:port`), a list given as one
comma-separated string (or a JSON list), and a file that must be readable."""

from __future__ import annotations

import json
import re

__all__ = ["readable", "split_host_port", "split_list"]

_HOST_PORT = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]\s]*)):(?P<port>\d{1,5})")


def split_list(value: object) -> object:
    # Environment variables and flags carry one string; a JSON list is accepted too, since that is what
    # pydantic-settings users are used to writing for list fields.
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON list: {error.msg}") from None
    return [server.strip() for server in value.split(",") if server.strip()]


def split_host_port(address: str, *, allow_empty_host: bool = False) -> tuple[str, int]:
    """Split `host:port` (or `[v6]:port`) into its parts; ValueError when it is not one."""
    match = _HOST_PORT.fullmatch(address)
    if match is None or int(match["port"]) > 65535:
        raise ValueError(f"{address!r} is not host:port")
    host = match["v6"] if match["v6"] is not None else match["host"]
    if not host and not allow_empty_host:
        raise ValueError(f"{address!r} has no host")
    return host, int(match["port"])


def readable(path: str) -> None:
    if path:
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise ValueError(f"cannot read file {path!r}: {error.strerror}") from None
