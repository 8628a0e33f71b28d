"""The family writers, series counters and the cap's cheap bound, compiled from the `FAMILIES` table.

Each family's writer is one list comprehension of f-strings over the parallel lists of its unit's rows,
generated from the family's declaration when this module is imported: a table-driven renderer calling a
Python function per sample would be several times slower at 600,000 samples, a comprehension is not. Per-row
tuples are avoided on purpose: at 100k partitions they made the garbage collector walk every status object and
doubled the time.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exporter.core.model import GroupStatus, Status
from exporter.core.timelag import SOURCE_CODES
from exporter.exposition.families import DATA_UNITS, FAMILIES, Family, Unit
from exporter.exposition.text_format import MS_PER_S, escape, format_float, ratio, seconds

if TYPE_CHECKING:
    from exporter.settings import CompatibleSet as Compat


Writer = Callable[[Any], list[str]]
"""Writes a family's samples for the rows of its unit (`rows.py`): one list per row variable."""

UNIT_VARIABLES: dict[Unit, tuple[str, ...]] = {
    "group": ("lb", "blb", "klb", "g", "mx", "src", "lost", "mh", "sums"),
    "partition": (
        "lb",
        "blb",
        "klb",
        "st",
        "lag",
        "off",
        "cts",
        "own",
        "cid",
        "mid",
        "cmp",
        "ls",
        "lsrc",
        "hl",
        "hm",
        "hs",
    ),
    "topic": ("c", "t", "heads", "starts", "r"),
    "cluster": ("lb", "v", "s"),
    "broker": ("lb", "b"),
    "cap": ("series", "dropped"),
}
LABEL_VARIABLES = frozenset({"lb", "blb", "klb"})
"""Open label sets the rows carry ready-made: built once per row and shared by every family of the unit."""
_PREFIXES: dict[Unit, dict[tuple[str, ...], str]] = {
    "group": {
        ("kafka_cluster", "group"): "lb",
        ("cluster", "consumer_group"): "blb",
        ("consumergroup", "kafka_cluster"): "klb",
    },
    "partition": {
        ("kafka_cluster", "group", "topic", "partition"): "lb",
        ("cluster", "consumer_group", "topic", "partition"): "blb",
        ("consumergroup", "kafka_cluster", "partition", "topic"): "klb",
    },
    "cluster": {("kafka_cluster",): "lb"},
    "broker": {("kafka_cluster", "broker"): "lb"},
}
_ROW_LABELS: dict[Unit, dict[str, str]] = {
    "topic": {"kafka_cluster": "c", "cluster": "c", "topic": "t", "partition": "p"},
}

GROUP_STATES = ((Status.OK, "OK"), (Status.WARN, "WARN"), (Status.ERR, "ERR"))
BROKER_ERRORS = ("deadline", "error")
# Indexed by Status: a tuple lookup is twice as fast as formatting the IntEnum for every sample.
CODE = tuple(str(int(status)) for status in Status)
SOURCE_TEXT = {source: str(code) for source, code in SOURCE_CODES.items()}


def members(g: GroupStatus) -> int:
    """Members owning at least one of the group's partitions: by member id, and by host and client id where
    the member id is not known (and the pair belongs to no member with an id)."""
    columns = g.partitions
    owners = list(zip(columns.owners, columns.client_ids, columns.member_ids, strict=True))
    identified = {(owner, client) for owner, client, member in owners if member}
    found: set[object] = {member for member in columns.member_ids if member}
    found.update(
        (owner, client)
        for owner, client, member in owners
        if not member and (owner or client) and (owner, client) not in identified
    )
    return len(found)


def topic_sums(g: GroupStatus) -> list[tuple[str, int, int | None]]:
    """Per topic with a committed partition, in partition order: the sum of the committed offsets and the sum
    of the known lags (None when no lag of the topic is known)."""
    sums: dict[str, tuple[int, int | None]] = {}
    columns = g.partitions
    for topic, committed, current in zip(columns.topics, columns.committed(), columns.lags, strict=True):
        if committed is not None:
            offsets, lag = sums.get(topic, (0, None))
            if current >= 0:
                lag = current if lag is None else lag + current
            sums[topic] = (offsets + committed, lag)
    return [(topic, offsets, lag) for topic, (offsets, lag) in sums.items()]


_NAMESPACE: dict[str, object] = {
    "CODE": CODE,
    "SOURCE_TEXT": SOURCE_TEXT,
    "GROUP_STATES": GROUP_STATES,
    "BROKER_ERRORS": BROKER_ERRORS,
    "MS_PER_S": MS_PER_S,
    "escape": escape,
    "seconds": seconds,
    "ratio": ratio,
    "format_float": format_float,
    "members": members,
}


def sample_source(family: Family) -> str:
    """The f-string of one sample of the family."""
    labels = family.labels
    prefixes = _PREFIXES.get(family.unit, {})
    prefix = next((labels[:k] for k in range(len(labels), 0, -1) if labels[:k] in prefixes), ())
    values = {**_ROW_LABELS.get(family.unit, {}), **dict(family.label_values)}
    pairs = [f'{label}="{{{values[label]}}}"' for label in labels[len(prefix) :]]
    if prefix:
        label_text = "{" + prefixes[prefix] + "}" + "".join("," + pair for pair in pairs) + "}}"
    elif pairs:
        label_text = "{{" + ",".join(pairs) + "}}"
    else:
        label_text = ""
    suffix = "{" + family.suffix + "}" if family.suffix else ""
    return f"f'''{family.name}{suffix}{label_text} {{{family.value}}}\\n'''"


def _loop(unit: Unit, variables: Collection[str], *, rows: str = "rows") -> str:
    """The `for` clause walking the given row variables of the unit, in the unit's order."""
    names = [name for name in UNIT_VARIABLES[unit] if name in variables]
    if len(names) == 1:
        return f"for {names[0]} in {rows}.{names[0]}"
    return f"for {', '.join(names)} in zip({', '.join(f'{rows}.{name}' for name in names)}, strict=True)"


def _uses(unit: Unit, *expressions: str) -> set[str]:
    found = {
        node.id
        for expression in expressions
        if expression
        for node in ast.walk(ast.parse(expression.strip()))
        if isinstance(node, ast.Name)
    }
    return found & set(UNIT_VARIABLES[unit])


def _clauses(family: Family) -> str:
    each = f" {family.each}" if family.each else ""
    present = f" if {family.present}" if family.present else ""
    return each + present


def writer_source(family: Family) -> str:
    """The writer of one family: a function of its unit's rows returning its samples."""
    sample = sample_source(family)
    used = _uses(family.unit, sample, _comprehension_expression(family))
    return f"def write(rows):\n    return [{sample} {_loop(family.unit, used)}{_clauses(family)}]\n"


def _comprehension_expression(family: Family) -> str:
    """The `each` and `present` clauses as an expression, to find the row variables they read."""
    each = family.each.removeprefix("for ").split(" in ", 1)[1] if family.each else ""
    return " , ".join(part for part in (each, family.present) if part) or "0"


def _compile(source: str, name: str) -> Any:
    namespace = dict(_NAMESPACE)
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace[source.split("(", 1)[0].removeprefix("def ")]


WRITERS: dict[str, Writer] = {
    f.name: _compile(writer_source(f), f.name) for f in FAMILIES if f.unit != "registry"
}


@dataclass(slots=True)
class _Read:
    """How a family reads one value of a row (a row variable, or an attribute path under one)."""

    whole: bool = False
    """The value itself is used: compared as a whole."""
    attributes: dict[str, _Read] = field(default_factory=dict)
    """Attributes read under it, when it is not used whole."""


def reads(family: Family) -> dict[str, _Read]:
    """What the family's samples read of a row of its unit, but for the label sets (which the names of the
    row's group, topic and partition give), by row variable. A path only tested against None is read for
    that alone: `lag is not None` does not make the family read every field of `lag`."""
    found: dict[str, _Read] = {}
    for source in (sample_source(family), _comprehension_expression(family)):
        tree = ast.parse(source.strip())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Name) or node.id not in UNIT_VARIABLES[family.unit]:
                continue
            if node.id in LABEL_VARIABLES:
                continue
            path = [node.id]
            top: ast.expr = node
            while isinstance(parent := parents.get(top), ast.Attribute):
                path.append(parent.attr)
                top = parent
            use = parents.get(top)
            if isinstance(use, ast.Call) and use.func is top:
                # A method's result depends on all of its object.
                path.pop()
            read = found.setdefault(path[0], _Read())
            for name in path[1:]:
                read = read.attributes.setdefault(name, _Read())
            if not _none_test(use, top):
                read.whole = True
    return found


def _none_test(node: ast.AST | None, operand: ast.expr) -> bool:
    """Whether `node` is `operand is None` or `operand is not None`."""
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.Is | ast.IsNot)
        and node.left is operand
        and isinstance(node.comparators[0], ast.Constant)
        and node.comparators[0].value is None
    )


def _differ(read: _Read, old: str, new: str) -> str:
    """An expression true when `old` and `new` differ in what `read` reads of them. Every path with
    attributes under it is tested against None first, whether or not the family tests it: a path the family
    guards otherwise (by truth, say) must not make the comparison raise."""
    if read.whole:
        return f"{old} != {new}"
    none = f"({old} is None) is not ({new} is None)"
    if not read.attributes:
        return none
    under = " or ".join(_differ(r, f"{old}.{a}", f"{new}.{a}") for a, r in read.attributes.items())
    return f"{none} or ({old} is not None and ({under}))"


def differs_source(family: Family) -> str:
    """A function of two rows of the family's unit holding the same groups (and partitions) in the same order,
    true when the family's samples for them may differ: when some value it reads differs. A value is compared
    with `!=`, so a value that compares equal must render the same: true of the rows' values, whose fields
    each keep one type (never 0 for 0.0 or False, nor -0.0, which `seconds` writes as 0 anyway)."""
    found = reads(family)
    whole = [f"old.{name} != new.{name}" for name, read in found.items() if read.whole]
    paths = {name: read for name, read in found.items() if not read.whole}
    if paths:
        names = ", ".join(f"{name}0, {name}1" for name in paths)
        lists = ", ".join(f"old.{name}, new.{name}" for name in paths)
        test = " or ".join(_differ(read, f"{name}0", f"{name}1") for name, read in paths.items())
        walk = f"any({test} for {names} in zip({lists}, strict=True))"
        whole.append(walk)
    return f"def differs(old, new):\n    return {' or '.join(whole) or 'False'}\n"


Differs = Callable[[Any, Any], bool]
"""Whether a family's samples may differ between two rows of its unit holding the same groups and partitions
(see `differs_source`)."""

DIFFERS: dict[str, Differs] = {
    f.name: _compile(differs_source(f), f"differs {f.name}")
    for f in FAMILIES
    if f.unit in ("group", "partition")
}


def header(family: Family) -> str:
    """The HELP and TYPE lines that start the family's block."""
    return f"# HELP {family.name} {family.help}\n# TYPE {family.name} {family.type}\n"


def enabled(compat: Collection[Compat]) -> list[Family]:
    """The rendered families, in exposition order, with the given compatible sets."""
    return [f for f in FAMILIES if f.unit != "registry" and (f.compat is None or f.compat in compat)]


def counter_source(unit: Unit, families: Sequence[Family]) -> str:
    """Series per row of the unit, for the given families: what their writers would emit for each row."""
    terms = []
    for f in families:
        if f.each:
            terms.append(f"sum(1 {_clauses(f).strip()})")
        elif f.present:
            terms.append(f"(1 if {f.present} else 0)")
        else:
            terms.append("1")
    used = _uses(unit, *(_comprehension_expression(f) for f in families))
    if LABEL_VARIABLES & used:
        raise ValueError(f"a {unit} family's presence reads a label set")
    # A unit whose families are all always present still walks one list, for the row count.
    loop = _loop(unit, used or [next(v for v in UNIT_VARIABLES[unit] if v not in LABEL_VARIABLES)])
    return f"def count(rows):\n    return [{' + '.join(terms) or '0'} {loop}]\n"


def bound_source(unit: Unit, families: Sequence[Family]) -> tuple[int, str]:
    """An upper bound of the series of the unit's rows: a constant per row plus a per-row expression."""
    constant = sum(int(eval(f.most, dict(_NAMESPACE))) for f in families if not _uses(unit, f.most))
    variable = [f"({f.most})" for f in families if _uses(unit, f.most)]
    if not variable:
        return constant, "def bound(rows):\n    return 0\n"
    loop = _loop(unit, _uses(unit, *variable))
    return constant, f"def bound(rows):\n    return sum({' + '.join(variable)} {loop})\n"


_COUNTERS: dict[tuple[Unit, frozenset[Compat]], Callable[[Any], list[int]]] = {}
_BOUNDS: dict[tuple[Unit, frozenset[Compat]], tuple[int, Callable[[Any], int]]] = {}


def counter(unit: Unit, compat: frozenset[Compat]) -> Callable[[Any], list[int]]:
    """Series per row of the unit with the given compatible sets."""
    key = (unit, compat)
    if key not in _COUNTERS:
        families = [f for f in enabled(compat) if f.unit == unit]
        _COUNTERS[key] = _compile(counter_source(unit, families), f"count {unit}")
    return _COUNTERS[key]


def bound(unit: Unit, compat: frozenset[Compat]) -> tuple[int, Callable[[Any], int]]:
    """(series per row at most, function of the rows adding the rest of the bound)."""
    key = (unit, compat)
    if key not in _BOUNDS:
        families = [f for f in enabled(compat) if f.unit == unit]
        constant, source = bound_source(unit, families)
        _BOUNDS[key] = (constant, _compile(source, f"bound {unit}"))
    return _BOUNDS[key]


def _check() -> None:
    """The table's shape the renderer relies on: data families first, partition bounds constant."""
    units = [f.unit for f in FAMILIES if f.unit != "registry"]
    first_health = next(i for i, unit in enumerate(units) if unit not in DATA_UNITS)
    if any(unit in DATA_UNITS for unit in units[first_health:]):
        raise ValueError("every data family comes before the health families")
    if any(f.unit == "partition" and _uses("partition", f.most) for f in FAMILIES):
        raise ValueError("a partition family's bound is a constant: partition rows are built after the plan")


_check()
