"""Allow/deny name filters for groups and topics, with Burrow's semantics.

Burrow compiles `group-allowlist` / `group-denylist` as Go regexps and calls `MatchString`, an unanchored
search: `test` matches `mytestgroup`. An empty pattern counts as unset, as in Burrow's configuration code.
"""

from __future__ import annotations

import re

__all__ = ["NameFilter"]


class NameFilter:
    """Accepts a name when `allow` (if set) matches somewhere in it and `deny` (if set) matches nowhere in it.

    Invalid patterns raise `re.error` at construction, so a bad configuration fails at startup, not at ingest.
    """

    __slots__ = ("_allow", "_deny")

    def __init__(self, allow: str | None = None, deny: str | None = None) -> None:
        self._allow = re.compile(allow) if allow else None
        self._deny = re.compile(deny) if deny else None

    def __call__(self, name: str) -> bool:
        if self._allow is not None and self._allow.search(name) is None:
            return False
        return self._deny is None or self._deny.search(name) is None

    def __repr__(self) -> str:
        allow = self._allow.pattern if self._allow is not None else None
        deny = self._deny.pattern if self._deny is not None else None
        return f"NameFilter(allow={allow!r}, deny={deny!r})"
