"""Basic auth against the web configuration's bcrypt hashes: one check at a time off the event loop and one at
a time per client address; trusted addresses first, then unknown ones, then those that failed recently; an
address that keeps failing is limited (429, answered late); results cached both ways."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from exporter.exposition.guard.counters import GuardCounters
from exporter.exposition.guard.credentials import basic_credentials
from exporter.exposition.webconfig import check_password
from exporter.token_bucket import TokenBucket

__all__ = [
    "FAILURE_BURST",
    "FAILURE_INTERVAL_S",
    "MAX_WAITING",
    "SUSPECT_S",
    "TARPIT_HELD",
    "TARPIT_S",
    "PasswordChecker",
    "Verdict",
]

_CACHE_SIZE = 1024
_CLIENTS = 10_000
"""Addresses whose failures are remembered; the least recently failed is forgotten first."""
FAILURE_BURST = 5
"""Wrong credentials an address may send before it is limited."""
FAILURE_INTERVAL_S = 10.0
"""Once limited, an address gets one more check every this many seconds."""
SUSPECT_S = 60.0
"""An address that failed within this time waits behind the others for its next check."""
MAX_WAITING = 16
"""Password checks that may wait, per priority, before more are answered 429."""
TARPIT_S = 1.0
"""A 429 is answered this late, so that a client retrying at once costs little; at most `TARPIT_HELD` are
held back at a time, the others are answered at once."""
TARPIT_HELD = 64


class Verdict(Enum):
    OK = "ok"
    DENIED = "denied"
    LIMITED = "limited"


class _Turns:
    """One password check at a time. Waiters go by priority (0 first), at most `MAX_WAITING` of each."""

    PRIORITIES = 3

    def __init__(self) -> None:
        self._busy = False
        self._queues: tuple[deque[asyncio.Future[None]], ...] = tuple(deque() for _ in range(self.PRIORITIES))

    async def acquire(self, priority: int) -> bool:
        """Wait for the turn; False (at once) when too many already wait."""
        if not self._busy:
            self._busy = True
            return True
        queue = self._queues[priority]
        if len(queue) >= MAX_WAITING:
            return False
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()
            else:
                queue.remove(turn)
            raise
        return True

    def release(self) -> None:
        for queue in self._queues:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._busy = False


@dataclass(slots=True)
class _Failures:
    bucket: TokenBucket
    last: float


class PasswordChecker:
    """Basic auth against the web configuration's bcrypt hashes, for requests from a client address."""

    def __init__(
        self, users: Mapping[str, str], counters: GuardCounters, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._users = users
        self._counters = counters
        self._clock = clock
        self._verified: set[str] = set()
        self._refused: OrderedDict[str, None] = OrderedDict()
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._trusted: OrderedDict[str, None] = OrderedDict()
        """Addresses that sent correct credentials: their checks go first."""
        self._checking: set[str] = set()
        """Addresses with a check waiting or running: one at a time each."""
        self._turns = _Turns()
        self._held = 0
        """429 answers held back (`TARPIT_S`)."""

    async def check(self, header: str | None, client: str) -> Verdict:
        verdict = await self._check(header, client)
        if verdict is Verdict.LIMITED and self._held < TARPIT_HELD:
            self._held += 1
            try:
                await asyncio.sleep(TARPIT_S)
            finally:
                self._held -= 1
        return verdict

    async def _check(self, header: str | None, client: str) -> Verdict:
        if header is not None and header in self._verified:
            return Verdict.OK
        credentials = None if header is None else basic_credentials(header)
        if header is None or credentials is None or header in self._refused:
            return self._refuse("credentials")
        failures = self._failures.get(client)
        if client in self._checking or (failures is not None and failures.bucket.delay() > 0):
            return self._refuse("limited")
        if failures is not None and self._clock() - failures.last < SUSPECT_S:
            priority = 2
        else:
            priority = 0 if client in self._trusted else 1
        self._checking.add(client)
        try:
            if not await self._turns.acquire(priority):
                return self._refuse("limited")
            try:
                # Another request may have checked the same header while this one waited.
                ok = header in self._verified or (
                    header not in self._refused
                    and await asyncio.to_thread(check_password, self._users, *credentials)
                )
            finally:
                self._turns.release()
        finally:
            self._checking.discard(client)
        if ok:
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified.add(header)
            self._trusted.pop(client, None)
            self._trusted[client] = None
            if len(self._trusted) > _CLIENTS:
                self._trusted.popitem(last=False)
            return Verdict.OK
        self._refused[header] = None
        if len(self._refused) > _CACHE_SIZE:
            self._refused.popitem(last=False)
        self._failed(client)
        return self._refuse("credentials")

    def _failed(self, client: str) -> None:
        failures = self._failures.pop(client, None)
        if failures is None:
            failures = _Failures(TokenBucket(1 / FAILURE_INTERVAL_S, FAILURE_BURST, self._clock), 0.0)
            if len(self._failures) >= _CLIENTS:
                self._failures.popitem(last=False)
        failures.bucket.take()
        failures.last = self._clock()
        self._failures[client] = failures

    def _refuse(self, reason: str) -> Verdict:
        self._counters.auth_refused[reason] += 1
        return Verdict.LIMITED if reason == "limited" else Verdict.DENIED
