"""Progress of a committed-offsets source, shared by the offsets-topic and admin-API sources."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SourceProgress:
    """What a committed-offsets source has read so far; the app turns it into self-metrics and readiness."""

    records: Counter[type] = field(default_factory=Counter)
    """Records read, by record type (`model.Record`); the self-metrics name the kinds."""
    decode_errors: Counter[str] = field(default_factory=Counter)
    """Malformed records, by key type ("unknown" when not even the key type could be read)."""
    skipped_types: Counter[int] = field(default_factory=Counter)
    """Records of key types lagwatch does not interpret, by type."""
    caught_up: bool = False
    """True once the source has read everything that existed when it started (admin-API source: once a round
    ended with no group left out by a retriable error)."""
    poll_errors: Counter[str] = field(default_factory=Counter)
    """Groups the admin-API source could not poll in a round, by error class name."""
    complete_as_of: float | None = None
    """Every commit made before this instant (seconds since the epoch, the source's clock) has been applied:
    the read had reached the end of the stream as the broker reported it then. Stays put while the stream is
    interrupted or behind; None before the first complete read."""
    problem: str = ""
    """Why the source cannot read at the moment, one line; empty while it can."""
