"""Why a partition or a group has its status: the rule that decided and the figures it used, as a value, and
those values in words an operator reads. Pure, standard library only.

The evaluator decides which rule settled a partition (a `Rule`) and hands it here with the window the rules
looked at; `explain` picks out the figures of that rule. Keeping the figures out of the rules themselves keeps
the rules' hot path unchanged and lets either side change without the other. docs/reasons.md lists every
wording.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from exporter.core.model import STATUS_BY_CODE, GroupReason, Partitions, Reason, Rule, Status

__all__ = [
    "EXPLAIN",
    "FIGURES",
    "RULE_STATUS",
    "caught_up",
    "detail",
    "figure_map",
    "group_reason",
    "group_text",
    "text",
]


RULE_STATUS: Mapping[Rule, Status] = MappingProxyType(
    {
        Rule.NO_COMMITS: Status.OK,
        Rule.LAG_UNKNOWN: Status.OK,
        Rule.INCOMPLETE: Status.OK,
        Rule.CAUGHT_UP: Status.OK,
        Rule.STOPPED: Status.STOP,
        Rule.REWOUND: Status.REWIND,
        Rule.STALLED: Status.STALL,
        Rule.LAG_NOT_DECREASING: Status.WARN,
        Rule.LAG_ZERO_IN_WINDOW: Status.OK,
        Rule.LAGS_UNKNOWN_IN_WINDOW: Status.OK,
        Rule.LAG_DECREASED: Status.OK,
    }
)
"""The partition status each rule gives."""

FIGURES: Mapping[Rule, tuple[str, ...]] = {
    Rule.NO_COMMITS: (),
    Rule.LAG_UNKNOWN: (),
    Rule.INCOMPLETE: ("complete_percent", "minimum_percent"),
    Rule.CAUGHT_UP: ("lag", "allowed_lag"),
    Rule.STOPPED: ("last_commit_ms", "span_s", "offset", "head"),
    Rule.REWOUND: ("from_offset", "to_offset", "at_ms"),
    Rule.STALLED: ("offset", "commits", "lag"),
    Rule.LAG_NOT_DECREASING: ("commits", "first_lag", "last_lag"),
    Rule.LAG_ZERO_IN_WINDOW: ("lag", "allowed_lag", "at_ms"),
    Rule.LAGS_UNKNOWN_IN_WINDOW: ("unknown_lags", "commits"),
    Rule.LAG_DECREASED: ("from_lag", "to_lag", "at_ms"),
}


_new = tuple.__new__
"""`_new(Reason, (rule, figures))` is `Reason(rule, figures)` without NamedTuple's Python-level __new__ (one
is built per partition), called directly: through a `functools.partial` it cost half as much again."""
_CAUGHT_UP_AT_ZERO = Reason(Rule.CAUGHT_UP, (0, 0))


def caught_up(current_lag: int, allowed_lag: int) -> Reason:
    """`explain` for Rule.CAUGHT_UP, the commonest answer, without the dispatch (and one shared value for a
    lag of 0 under the default allowed_lag)."""
    if current_lag == 0 and allowed_lag == 0:
        return _CAUGHT_UP_AT_ZERO
    return _new(Reason, (Rule.CAUGHT_UP, (current_lag, allowed_lag)))


# Every explainer takes the same arguments, in EXPLAIN's order, so that the evaluator calls one directly: the
# window's columns as the rules read them (lags -1 where unknown).


def _caught_up(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    return _new(Reason, (rule, (lag, allowed)))


def _stopped(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    # The time of the last commit, not the time since: a cached STOP stays true as time passes, so the figures
    # must too.
    head = broker_offsets[-1] if broker_offsets else None
    span_s = (timestamps[-1] - timestamps[0]) // 1000
    return _new(Reason, (rule, (timestamps[-1], span_s, offsets[-1], head)))


def _rewound(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    index = next(i for i in range(1, len(offsets)) if offsets[i] < offsets[i - 1])
    return _new(Reason, (rule, (offsets[index - 1], offsets[index], timestamps[index])))


def _stalled(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    return _new(Reason, (rule, (offsets[-1], len(offsets), lag)))


def _not_decreasing(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    # The rule runs only on windows whose every lag is known.
    return _new(Reason, (rule, (len(lags), lags[0], lags[-1])))


def _zero_in_window(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    # The newest such lag: a loop rather than next() over a generator, which cost twice as much.
    index = len(lags) - 1
    while not 0 <= lags[index] <= allowed:
        index -= 1
    return _new(Reason, (rule, (lags[index], allowed, timestamps[index])))


def _lags_unknown(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    return _new(Reason, (rule, (sum(1 for known in lags if known < 0), len(lags))))


def _incomplete(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    return _new(Reason, (rule, (_floor_percent(complete), _floor_percent(minimum))))


def _no_figures(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    return _new(Reason, (rule, ()))


def _decreased(
    rule: Rule,
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    lag: int | None,
    allowed: int,
    complete: float,
    minimum: float,
) -> Reason:
    """The newest commit whose known lag is below the known lag before it."""
    found: tuple[int | None, ...] = ()
    previous = -1
    for known, ts in zip(lags, timestamps, strict=True):
        if known < 0:
            continue
        if known < previous:
            found = (previous, known, ts)
        previous = known
    return _new(Reason, (rule, found))


def _floor_percent(ratio: float) -> int:
    return int(ratio * 100)


Explainer = Callable[
    [Rule, Sequence[int], Sequence[int], Sequence[int], Sequence[int], int | None, int, float, float], Reason
]

EXPLAIN: Mapping[Rule, Explainer] = {
    Rule.NO_COMMITS: _no_figures,
    Rule.LAG_UNKNOWN: _no_figures,
    Rule.INCOMPLETE: _incomplete,
    Rule.CAUGHT_UP: _caught_up,
    Rule.STOPPED: _stopped,
    Rule.REWOUND: _rewound,
    Rule.STALLED: _stalled,
    Rule.LAG_NOT_DECREASING: _not_decreasing,
    Rule.LAG_ZERO_IN_WINDOW: _zero_in_window,
    Rule.LAGS_UNKNOWN_IN_WINDOW: _lags_unknown,
    Rule.LAG_DECREASED: _decreased,
}
"""For each rule, the function that picks its figures: `EXPLAIN[rule](rule, offsets, timestamps, lags,
broker_offsets, current_lag, allowed_lag, complete, minimum_complete)`, with the window's columns the rules
looked at (oldest first, without its empty slots, lags -1 where unknown)."""


# ------------------------------------------------------------------------------------------------------------
# Words


def text(reason: Reason) -> str:
    """The reason in words, starting with the status: `STOP: no commit for 660 s, ...`."""
    return f"{RULE_STATUS[reason.rule].name}: {detail(reason)}"


def detail(reason: Reason) -> str:
    """The reason in words without the status."""
    return _DETAIL[reason.rule](*reason.figures)


def figure_map(reason: Reason) -> dict[str, int | None]:
    """The figures by name (`*_ms` are times in milliseconds since the epoch, `*_s` durations in seconds)."""
    return dict(zip(FIGURES[reason.rule], reason.figures, strict=True))


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _clock(ms: int | None) -> str:
    if ms is None:
        return "an unknown time"
    return time.strftime("%H:%M:%S UTC", time.gmtime(ms // 1000))


def _plural(count: int | None, word: str) -> str:
    return f"{_count(count)} {word}{'' if count == 1 else 's'}"


def _say_no_commits() -> str:
    return "no commit stored for this partition yet"


def _say_lag_unknown() -> str:
    return "lag unknown until lagwatch reads the partition's HEAD offset"


def _say_incomplete(complete: int | None, minimum: int | None) -> str:
    return f"window only {complete}% full, below minimum_complete {minimum}%, so no rule is applied"


def _say_caught_up(lag: int | None, allowed: int | None) -> str:
    if not allowed:
        return f"lag is {_count(lag)}"
    return f"lag {_count(lag)} is within allowed_lag {_count(allowed)}"


def _say_stopped(last_ms: int | None, span_s: int | None, offset: int | None, head: int | None) -> str:
    return (
        f"no commit since {_clock(last_ms)}, longer than the window's span of {_count(span_s)} s, and the "
        f"partition's HEAD moved past the last commit (offset {_count(offset)}, HEAD {_count(head)})"
    )


def _say_rewound(from_offset: int | None, to_offset: int | None, at_ms: int | None) -> str:
    return (
        f"committed offset went back from {_count(from_offset)} to {_count(to_offset)} at {_clock(at_ms)} "
        f"and has not returned to {_count(from_offset)} since"
    )


def _say_stalled(offset: int | None, commits: int | None, lag: int | None) -> str:
    times = "once" if commits == 1 else f"{_count(commits)} times"
    return f"offset {_count(offset)} committed {times} while {_plural(lag, 'message')} wait"


def _say_not_decreasing(commits: int | None, first: int | None, last: int | None) -> str:
    return f"lag never fell over the last {_plural(commits, 'commit')} ({_count(first)} -> {_count(last)})"


def _say_lags_unknown(unknown: int | None, commits: int | None) -> str:
    return (
        f"lag unknown at {_count(unknown)} of the last {_plural(commits, 'commit')} (it might have been 0), "
        "so neither STALL nor WARN is shown"
    )


def _say_zero_in_window(lag: int | None, allowed: int | None, at_ms: int | None) -> str:
    within = f" (within allowed_lag {_count(allowed)})" if allowed else ""
    return f"lag was {_count(lag)}{within} at {_clock(at_ms)}"


def _say_decreased(from_lag: int | None, to_lag: int | None, at_ms: int | None) -> str:
    return f"lag fell from {_count(from_lag)} to {_count(to_lag)} at {_clock(at_ms)}"


_DETAIL: Mapping[Rule, Callable[..., str]] = {
    Rule.NO_COMMITS: _say_no_commits,
    Rule.LAG_UNKNOWN: _say_lag_unknown,
    Rule.INCOMPLETE: _say_incomplete,
    Rule.CAUGHT_UP: _say_caught_up,
    Rule.STOPPED: _say_stopped,
    Rule.REWOUND: _say_rewound,
    Rule.STALLED: _say_stalled,
    Rule.LAG_NOT_DECREASING: _say_not_decreasing,
    Rule.LAG_ZERO_IN_WINDOW: _say_zero_in_window,
    Rule.LAGS_UNKNOWN_IN_WINDOW: _say_lags_unknown,
    Rule.LAG_DECREASED: _say_decreased,
}


# ------------------------------------------------------------------------------------------------------------
# Groups


_NAMED = 3
"""How many of the worst partitions a group's reason names."""
_OK = int(Status.OK)


def group_reason(status: Status, partitions: Partitions) -> GroupReason:
    """The reason of a group with `status` and these partitions (in topic, partition order): the partitions
    with the worst partition status, and the first one's reason."""
    statuses = partitions.statuses
    worst_code = max(statuses) if statuses else _OK
    if worst_code < _OK:
        worst_code = _OK
    worst_count = statuses.count(worst_code)
    named: list[int] = []
    at = statuses.find(worst_code)
    while at >= 0 and len(named) < _NAMED:
        named.append(at)
        at = statuses.find(worst_code, at + 1)
    topics, numbers = partitions.topics, partitions.numbers
    return GroupReason(
        status,
        len(statuses),
        STATUS_BY_CODE[worst_code],
        tuple((topics[i], numbers[i]) for i in named),
        worst_count,
        partitions.reasons[named[0]] if named else None,
    )


def group_text(reason: GroupReason) -> str:
    """The group's reason in words: `ERR: 2 of 8 partitions STOP (orders/3, orders/5); orders/3: ...`."""
    if reason.status == Status.NOTFOUND:
        return "NOTFOUND: lagwatch knows no such group"
    if reason.partition_count == 0:
        return "OK: no partitions"
    if reason.worst_status == Status.OK:
        return f"OK: all {_plural(reason.partition_count, 'partition')} OK"
    names = ", ".join(f"{topic}/{partition}" for topic, partition in reason.worst)
    more = reason.worst_count - len(reason.worst)
    if more:
        names += f" and {more:,} more"
    words = (
        f"{reason.status.name}: {reason.worst_count:,} of {_plural(reason.partition_count, 'partition')} "
        f"{reason.worst_status.name} ({names})"
    )
    if reason.first is not None:
        topic, partition = reason.worst[0]
        words += f"; {topic}/{partition}: {detail(reason.first)}"
    return words
