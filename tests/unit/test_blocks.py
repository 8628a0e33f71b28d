"""The block renderer: byte for byte `metrics.render`, one gzip stream, written again where it changed."""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.model import GroupStatus, Partitions, PartitionStatus, Reason, Rule, Status
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds
from exporter.exposition import blocks, gzip_parts
from exporter.exposition.blocks import BlockRenderer, Exposition
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.metrics import RenderOptions, group_costs, health, render
from exporter.exposition.rows import GroupRows
from exporter.exposition.text_format import escape
from exporter.exposition.writers import enabled
from exporter.settings import Granularity
from tests.unit.test_metrics import (
    T,
    _group,
    _partition,
    clusters,
    fixture,
    headrooms,
    lag_seconds,
    partitions,
)

OPTIONS = [
    RenderOptions(),
    RenderOptions(granularity="group"),
    RenderOptions(burrow_compatible=True),
    RenderOptions(kafka_exporter=True),
    RenderOptions(max_series=85),
]


def part_text(part: gzip_parts.Part) -> bytes:
    """A part's text: the renderer keeps it deflated only."""
    return b"".join(gzip_parts.inflated([part]))


@dataclass(frozen=True)
class Whole:
    """A render as a scrape sends it: the renderer's data families, then the health families of the same
    views (which /metrics writes at each scrape)."""

    exposition: Exposition
    health: bytes

    @property
    def parts(self) -> list[gzip_parts.Part]:
        return self.exposition.parts

    @property
    def series(self) -> int:
        return self.exposition.series

    @property
    def dropped(self) -> int:
        return self.exposition.dropped

    @property
    def body(self) -> bytes:
        return self.exposition.body + self.health


def whole(renderer: BlockRenderer, views: Sequence[ClusterView]) -> Whole:
    exposition = renderer.render(views)
    compat = renderer._options.compat
    return Whole(exposition, health(views, exposition.series, exposition.dropped, compat))


def gunzip_one_member(rendered: Whole, tail: bytes) -> bytes:
    """The gzipped answer as /metrics sends it, decompressed as curl would: one member only."""
    exposition = rendered.exposition
    stream = (
        gzip_parts.HEADER
        + b"".join(p.deflated for p in exposition.parts)
        + gzip_parts.finish(exposition.crc, exposition.size, rendered.health + tail)
    )
    single = zlib.decompressobj(31)
    text = single.decompress(stream)
    assert single.eof
    assert not single.unused_data
    assert text == gzip.decompress(stream)
    return text


@pytest.mark.parametrize("options", OPTIONS)
def test_the_text_is_the_renderers(options: RenderOptions) -> None:
    renderer = BlockRenderer(options)
    for views in (fixture(), fixture()[:1], fixture()):
        exposition = whole(renderer, views)
        expected = render(views, options)
        assert exposition.body == expected.body
        assert (exposition.series, exposition.dropped) == (expected.series, expected.dropped)
        assert gunzip_one_member(exposition, b"# own\n") == expected.body + b"# own\n"


def renders_as_the_renderer(sequence: list[list[ClusterView]], options: RenderOptions) -> list[Whole]:
    """Each set of views rendered by one BlockRenderer in turn, each byte for byte `metrics.render`'s."""
    renderer = BlockRenderer(options)
    renders = []
    for views in sequence:
        exposition = whole(renderer, views)
        expected = render(views, options)
        assert exposition.body == expected.body
        assert (exposition.series, exposition.dropped) == (expected.series, expected.dropped)
        renders.append(exposition)
    return renders


@settings(max_examples=80, deadline=None)
@given(
    st.lists(clusters(), min_size=1, max_size=3),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["partition", "group"]),
    st.just(1_000_000) | st.integers(0, 60),
)
def test_any_sequence_of_views_renders_as_the_renderer_does(
    sequence: list[list[ClusterView]], burrow: bool, kafka: bool, granularity: Granularity, cap: int
) -> None:
    options = RenderOptions(
        granularity=granularity, burrow_compatible=burrow, kafka_exporter=kafka, max_series=cap
    )
    for exposition in renders_as_the_renderer(sequence, options):
        assert gunzip_one_member(exposition, b"") == exposition.body


def many_groups(count: int, lag: int = 0) -> ClusterView:
    groups = [
        _group("prod", f"g{i:04d}", Status.OK, [_partition("t", p, lag=lag + p) for p in range(2)])
        for i in range(count)
    ]
    return ClusterView(
        name="prod",
        groups=groups,
        topics=[("t", [100, 100])],
        lag_seconds={g.group: (LagSeconds(1.5, "interpolated"), None) for g in groups},
        headroom={g.group: (Headroom(0, 10, 60.0), None) for g in groups},
    )


def test_only_the_buckets_that_changed_are_written_again() -> None:
    renderer = BlockRenderer(RenderOptions())
    view = many_groups(1000)
    first = whole(renderer, [view])
    buckets = renderer.rendered_buckets
    assert buckets > 3
    # The same statuses and equal figures: nothing is written, every block is the same object.
    again = whole(renderer, [replace(view, head_refresh_ms=1)])
    assert renderer.rendered_buckets == 0
    assert {id(p) for p in first.parts if part_text(p).startswith(b"lagwatch_partition")} <= {
        id(p) for p in again.parts
    }
    # One group re-evaluated: its bucket only.
    groups = list(view.groups)
    groups[500] = replace(groups[500], totallag=7)
    changed = replace(view, groups=groups)
    assert whole(renderer, [changed]).body == render([changed]).body
    assert renderer.rendered_buckets == 1
    # A new group moves the edges of its own bucket only (which it splits in two if its name is an edge).
    added = replace(changed, groups=[*groups[:10], _group("prod", "g0009a", Status.OK, []), *groups[10:]])
    assert whole(renderer, [added]).body == render([added]).body
    assert 1 <= renderer.rendered_buckets <= 2


def test_a_figure_that_moved_writes_only_the_families_that_read_it() -> None:
    renderer = BlockRenderer(RenderOptions())
    view = many_groups(300)
    first = {part_text(p): p for p in whole(renderer, [view]).parts}
    lags = dict(view.lag_seconds)
    lags["g0100"] = (LagSeconds(9.25, "interpolated"), None)
    moved = replace(view, lag_seconds=lags)
    second = whole(renderer, [moved])
    assert second.body == render([moved]).body
    assert renderer.rendered_buckets == 1
    rewritten = [
        re.split(rb"[{ ]", part_text(p), maxsplit=1)[0].decode()
        for p in second.parts
        if first.get(part_text(p)) is not p
    ]
    assert set(rewritten) <= {
        "lagwatch_group_max_lag_seconds",
        "lagwatch_group_lag_seconds_partitions",
        "lagwatch_partition_lag_seconds",
        "lagwatch_partition_lag_seconds_source",
        # Written every time.
        "lagwatch_topic_partition_end_offset",
        "lagwatch_cluster_up",
        "lagwatch_offsets_caught_up",
        "lagwatch_series_exposed",
        "lagwatch_series_dropped",
        "lagwatch_series_cap_exceeded",
    }
    assert "lagwatch_partition_lag_seconds" in rewritten


def varied(name: str, count: int) -> ClusterView:
    """Groups of 0 to 3 partitions, some with lag in seconds or headroom, some partitions without: costs
    that differ from group to group, so that every cap lands somewhere else."""
    groups = [
        _group(
            name,
            f"g{i:04d}",
            (Status.OK, Status.WARN, Status.ERR)[i % 3],
            [_partition(f"t{i % 3}", p, lag=None if (i + p) % 5 == 0 else i + p) for p in range(i % 4)],
        )
        for i in range(count)
    ]
    return ClusterView(
        name=name,
        groups=groups,
        topics=[(f"t{t}", [100 + t, None, 300][: t + 1]) for t in range(3)],
        lag_seconds={
            g.group: tuple(
                None if p.partition == 1 else LagSeconds(2.5 * p.partition, "interpolated")
                for p in g.partitions
            )
            for g in groups
            if int(g.group[1:]) % 2
        },
        headroom={
            g.group: tuple(Headroom(0, 10, 60.0) for _ in g.partitions) for g in groups if len(g.group) % 3
        },
        topic_starts={"t2": [5, None, 7]},
    )


CAPPED_VIEWS = [varied("prod", 160), varied("stage", 40)]


def cap_edges(views: list[ClusterView], options: RenderOptions) -> dict[str, list[int]]:
    """Caps that cut inside each tier, and exactly at the edges of its first buckets (and one either side)."""
    compat = options.compat
    rows = GroupRows(kafka=options.kafka_exporter)
    for view in views:
        for g in view.groups:
            rows.add(escape(view.name), g, view.lag_seconds.get(g.group), view.headroom.get(g.group))
    # Bucket edges hash the group names (salted per process): at most 100 groups a bucket makes 3 at least.
    sizes = [len(bucket.statuses) for bucket in blocks._buckets(views)]
    assert len(sizes) >= 3
    ends = list(accumulate(sizes))
    tiers = {"group": group_costs(rows, "group", compat)}
    tiers["partition"] = group_costs(rows, "partition", compat) if options.granularity == "partition" else []
    before = 0
    caps: dict[str, list[int]] = {}
    for tier, costs in tiers.items():
        if not costs:
            continue
        running = [before + c for c in accumulate(costs)]
        at_edges = [running[end - 1] + d for end in ends[:3] for d in (-1, 0, 1)]
        caps[tier] = [before + 1, *at_edges, (before + running[-1]) // 2, running[-1] - 1]
        before = running[-1]
    total = render(views, options).series
    caps["topic"] = [before, before + 1, (before + total) // 2, total - 1]
    caps["whole"] = [0, total, total + 1]
    return caps


@pytest.mark.parametrize(
    "options",
    [
        RenderOptions(),
        RenderOptions(burrow_compatible=True, kafka_exporter=True),
        RenderOptions(granularity="group"),
    ],
)
def test_over_the_cap_the_blocks_are_the_renderers_capped_text(options: RenderOptions) -> None:
    """Wherever the cap cuts (inside a bucket, at its edge, in any tier), from a first render or from the
    blocks a previous one kept."""
    views = CAPPED_VIEWS
    prod = list(views[0].groups)
    # A change in the first bucket, one in the last, and a group added in the middle.
    prod[0] = replace(prod[0], totallag=99)
    prod[-1] = replace(prod[-1], status=Status.ERR)
    prod.insert(80, _group("prod", "g0079a", Status.WARN, [_partition("t0", 0, lag=3)]))
    lags = dict(views[0].lag_seconds)
    lags["g0041"] = (LagSeconds(77.0, "interpolated"),)
    changed = [replace(views[0], groups=prod, lag_seconds=lags), views[1]]
    for tier, caps in cap_edges(views, options).items():
        for cap in caps:
            capped = replace(options, max_series=cap)
            renderer = BlockRenderer(capped)
            for current in (views, changed, changed, views):
                exposition = whole(renderer, current)
                expected = render(current, capped)
                assert exposition.body == expected.body, (tier, cap)
                assert (exposition.series, exposition.dropped) == (expected.series, expected.dropped)
                assert exposition.series <= cap
                assert gunzip_one_member(exposition, b"") == expected.body
            # The clock alone moved: every block is kept, the straddling bucket's admitted groups too.
            later = [replace(view, head_refresh_ms=T) for view in views]
            assert whole(renderer, later).body == render(later, capped).body
            assert renderer.rendered_buckets == 0


def test_the_cap_gauges_say_what_the_cap_left_out() -> None:
    def gauges(cap: int) -> tuple[int, int, int]:
        body = whole(BlockRenderer(RenderOptions(max_series=cap)), CAPPED_VIEWS).body.decode()
        found = dict(re.findall(r"^lagwatch_series_(exposed|dropped|cap_exceeded) (\d+)$", body, re.M))
        health = ("#", "lagwatch_series_", "lagwatch_cluster_up", "lagwatch_offsets_caught_up")
        assert sum(not line.startswith(health) for line in body.splitlines()) == int(found["exposed"])
        return int(found["exposed"]), int(found["dropped"]), int(found["cap_exceeded"])

    total = render(CAPPED_VIEWS).series
    assert gauges(total) == (total, 0, 0)
    exposed, dropped, exceeded = gauges(total - 10)
    # The first unit that does not fit ends the admission: 10 series less may leave out more.
    assert exposed <= total - 10
    assert (exposed + dropped, exceeded) == (total, 1)


def test_parts_are_zlibs_deflate_and_crc() -> None:
    # ISA-L deflates and sums: zlib (and so every gzip reader) must read its parts, and its CRC-32 be zlib's.
    first, second = os.urandom(3000), b"lagwatch_partition_lag 7\n" * 70_001
    parts = [gzip_parts.part(first), gzip_parts.part(second)]
    assert [p.crc for p in parts] == [zlib.crc32(first), zlib.crc32(second)]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    assert inflater.decompress(b"".join(p.deflated for p in parts)) == first + second
    assert gzip_parts.crc_of(parts) == (zlib.crc32(first + second), len(first) + len(second))
    assert gzip_parts.crc_of([parts[0], gzip_parts.EMPTY]) == (zlib.crc32(first), len(first))
    stream = gzip_parts.HEADER + parts[0].deflated + gzip_parts.finish(parts[0].crc, len(first), b"")
    assert gzip.decompress(stream) == first


def test_parts_keep_no_text_and_inflate_in_bounded_pieces() -> None:
    # The text of 100,000 group-partitions is about 100 MB: the kept copy is the deflated one only.
    assert set(gzip_parts.Part.__slots__) == {"deflated", "crc", "size"}
    text = b"".join(b'lagwatch_partition_lag{group="g%d"} %d\n' % (i, i * 7919) for i in range(20_000))
    parts = [gzip_parts.part(text[:1000]), gzip_parts.EMPTY, gzip_parts.part(text[1000:])]
    assert [p.size for p in parts] == [1000, 0, len(text) - 1000]
    pieces = list(gzip_parts.inflated(parts, most=4096))
    assert b"".join(pieces) == text
    assert max(map(len, pieces)) == 4096
    assert len(pieces) == 1 + -(-(len(text) - 1000) // 4096)
    assert gzip_parts.crc_of(parts) == (zlib.crc32(text), len(text))


# A round in the steady state replaces every group's status with a new object in which some figures moved and
# most did not: each family's blocks must be written again exactly when its samples changed.


@st.composite
def a_round_later(draw: st.DrawFn, views: list[ClusterView]) -> list[ClusterView]:
    """The same groups and partitions, each group a new status object (or, now and then, the same one), each
    field of a status, lag in seconds or headroom either kept or drawn anew."""
    later = []
    for view in views:
        statuses = []
        for g in view.groups:
            if draw(st.integers(0, 9)) == 0:
                statuses.append(g)
                continue
            parts = []
            for p in g.partitions:
                new = draw(partitions(p.topic, p.partition))
                moved = [f for f in new._fields if f not in ("topic", "partition") and draw(st.booleans())]
                parts.append(p._replace(**{f: getattr(new, f) for f in moved}))
            group = {
                "status": draw(st.sampled_from([Status.OK, Status.WARN, Status.ERR])),
                "complete": draw(st.sampled_from([0.0, 0.5, 1.0])),
                "partition_count": draw(st.integers(0, 5)),
                "maxlag": draw(st.none() | st.sampled_from(parts)) if parts else None,
                "totallag": draw(st.integers(0, 10**6)),
            }
            statuses.append(
                replace(
                    g,
                    partitions=Partitions.of(parts),
                    **{k: v for k, v in group.items() if draw(st.booleans())},
                )
            )
        lags = {
            g.group: tuple(lag if draw(st.booleans()) else draw(st.none() | lag_seconds()) for lag in lags)
            for g in view.groups
            if (lags := view.lag_seconds.get(g.group)) is not None
        }
        headroom = {
            g.group: tuple(h if draw(st.booleans()) else draw(st.none() | headrooms) for h in figures)
            for g in view.groups
            if (figures := view.headroom.get(g.group)) is not None
        }
        later.append(replace(view, groups=statuses, lag_seconds=lags, headroom=headroom))
    return later


@st.composite
def rounds(draw: st.DrawFn) -> list[list[ClusterView]]:
    views = draw(clusters())
    sequence = [views]
    for _ in range(draw(st.integers(1, 3))):
        sequence.append(draw(a_round_later(sequence[-1])))
    return sequence


@settings(max_examples=150, deadline=None)
@given(
    rounds(),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["partition", "group"]),
    st.just(1_000_000) | st.integers(0, 60),
)
def test_rounds_of_new_statuses_with_some_figures_moved_render_as_the_renderer_does(
    sequence: list[list[ClusterView]], burrow: bool, kafka: bool, granularity: Granularity, cap: int
) -> None:
    options = RenderOptions(
        granularity=granularity, burrow_compatible=burrow, kafka_exporter=kafka, max_series=cap
    )
    renders_as_the_renderer(sequence, options)


def busy(count: int) -> ClusterView:
    """Groups of 1 to 3 partitions with every figure a family reads, some of them absent."""
    groups = [
        _group(
            "prod",
            f"g{i:04d}",
            (Status.OK, Status.WARN, Status.ERR)[i % 3],
            [
                _partition(
                    f"t{i % 3}",
                    p,
                    (Status.OK, Status.STALL)[(i + p) % 2],
                    lag=None if (i + p) % 5 == 0 else i + p,
                    end=None if (i + p) % 7 == 0 else 1000 + i,
                    complete=(1.0, 0.5)[p % 2],
                    owner=f"/10.0.0.{i % 4}" if p else "",
                    client_id=f"c-{i % 4}",
                    member_id=f"m-{i % 4}" if i % 2 else "",
                )
                for p in range(1 + i % 3)
            ],
        )
        for i in range(count)
    ]
    return ClusterView(
        name="prod",
        groups=groups,
        topics=[(f"t{t}", [5000, 5001, 5002]) for t in range(3)],
        lag_seconds={
            g.group: tuple(
                None if p.end is None else LagSeconds(2.5 * p.partition, "interpolated") for p in g.partitions
            )
            for g in groups
            if int(g.group[1:]) % 4
        },
        headroom={
            g.group: tuple(None if p.end is None else Headroom(p.partition, 10, 60.0) for p in g.partitions)
            for g in groups
            if int(g.group[1:]) % 5
        },
    )


def moved(
    view: ClusterView,
    *,
    partition: Callable[[PartitionStatus], PartitionStatus] = lambda p: p,
    group: Callable[[GroupStatus], GroupStatus] = lambda g: g,
    lag: Callable[[LagSeconds], LagSeconds] = lambda lag: lag,
    headroom: Callable[[Headroom], Headroom] = lambda h: h,
) -> ClusterView:
    """The view a round later: every status a new object, with the given changes."""
    return replace(
        view,
        groups=[
            group(replace(g, partitions=Partitions.of(partition(p._replace()) for p in g.partitions)))
            for g in view.groups
        ],
        lag_seconds={
            name: tuple(None if x is None else lag(x) for x in lags)
            for name, lags in view.lag_seconds.items()
        },
        headroom={
            name: tuple(None if h is None else headroom(h) for h in figures)
            for name, figures in view.headroom.items()
        },
    )


def handed_over(view: ClusterView) -> ClusterView:
    """Each group of three partitions hands its last one to the next group: the same groups, the same
    partitions in the same order, under other groups."""
    groups = [list(g.partitions) for g in view.groups]
    lags = [list(view.lag_seconds.get(g.group, (None,) * len(g.partitions))) for g in view.groups]
    for i in range(len(groups) - 1):
        if len(groups[i]) == 3:
            groups[i + 1].insert(0, groups[i].pop())
            lags[i + 1].insert(0, lags[i].pop())
    return replace(
        view,
        groups=[replace(g, partitions=Partitions.of(p)) for g, p in zip(view.groups, groups, strict=True)],
        lag_seconds={g.group: tuple(x) for g, x in zip(view.groups, lags, strict=True)},
        headroom={},
    )


def _end(p: PartitionStatus, **changes: int) -> PartitionStatus:
    return p if p.end is None else p._replace(end=p.end._replace(**changes))


ROUNDS: dict[str, Callable[[ClusterView], ClusterView]] = {
    "nothing": moved,
    "partition status": lambda v: moved(
        v, partition=lambda p: p._replace(status=Status.REWIND if p.status == Status.OK else Status.OK)
    ),
    "current lag": lambda v: moved(
        v, partition=lambda p: p._replace(current_lag=None if p.current_lag is None else p.current_lag + 1)
    ),
    "lag known": lambda v: moved(v, partition=lambda p: p._replace(current_lag=p.current_lag or 0)),
    "committed offset": lambda v: moved(
        v, partition=lambda p: _end(p, offset=p.end.offset + 1 if p.end else 0)
    ),
    "commit time": lambda v: moved(
        v, partition=lambda p: _end(p, timestamp_ms=p.end.timestamp_ms + 10 if p.end else 0)
    ),
    "commit order and lag": lambda v: moved(v, partition=lambda p: _end(p, order=7, lag=3)),
    "owner": lambda v: moved(v, partition=lambda p: p._replace(owner=f"{p.owner}x")),
    "client id": lambda v: moved(v, partition=lambda p: p._replace(client_id="")),
    "member id": lambda v: moved(v, partition=lambda p: p._replace(member_id=f"{p.member_id}x")),
    "partition complete": lambda v: moved(v, partition=lambda p: p._replace(complete=1.5 - p.complete)),
    "reason and start": lambda v: moved(
        v, partition=lambda p: p._replace(reason=Reason(Rule.STALLED), start=None)
    ),
    "topic renamed": lambda v: moved(v, partition=lambda p: p._replace(topic=f"{p.topic}x")),
    "partition renumbered": lambda v: moved(v, partition=lambda p: p._replace(partition=p.partition + 1)),
    "partition handed over": handed_over,
    "group status": lambda v: moved(v, group=lambda g: replace(g, status=Status(g.status % 3 + 1))),
    "total lag": lambda v: moved(v, group=lambda g: replace(g, totallag=g.totallag + 1)),
    "max lag": lambda v: moved(
        v, group=lambda g: replace(g, maxlag=g.partitions[-1] if g.maxlag != g.partitions[-1] else None)
    ),
    "group complete": lambda v: moved(v, group=lambda g: replace(g, complete=g.complete / 2)),
    "partition count": lambda v: moved(v, group=lambda g: replace(g, partition_count=g.partition_count + 1)),
    "lag in seconds": lambda v: moved(v, lag=lambda lag: lag._replace(seconds=lag.seconds + 1)),
    "lag in seconds source": lambda v: moved(v, lag=lambda lag: lag._replace(source="exact")),
    "lost messages": lambda v: moved(v, headroom=lambda h: h._replace(lost=h.lost + 1)),
    "retention margin": lambda v: moved(v, headroom=lambda h: h._replace(margin=h.margin + 1)),
    "retention headroom": lambda v: moved(v, headroom=lambda h: h._replace(seconds=None)),
}
ALL_FAMILIES = RenderOptions(burrow_compatible=True, kafka_exporter=True)
GROUP_FAMILIES = {f.name for f in enabled(ALL_FAMILIES.compat) if f.unit in ("group", "partition")}
# Families that read a figure computed from several fields: written again when any of those changed.
COARSE = {
    "kafka_consumergroup_members",
    "kafka_consumergroup_current_offset_sum",
    "kafka_consumergroup_lag_sum",
}


def samples_by_family(body: bytes) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for line in body.splitlines():
        if not line.startswith(b"#"):
            found.setdefault(re.split(rb"[{ ]", line, maxsplit=1)[0].decode(), []).append(line)
    return found


def written(before: Whole, after: Whole) -> set[str]:
    """Families with a block `after` did not take from `before`, or that `after` no longer has."""
    kept = {id(p) for p in before.parts}
    new = {re.split(rb"[{ ]", part_text(p), maxsplit=1)[0].decode() for p in after.parts if id(p) not in kept}
    return new | (samples_by_family(before.body).keys() - samples_by_family(after.body).keys())


@pytest.mark.parametrize("change", ROUNDS)
def test_new_statuses_write_again_the_families_whose_samples_changed_and_no_other(change: str) -> None:
    renderer = BlockRenderer(ALL_FAMILIES)
    view = busy(120)
    first = whole(renderer, [view])
    later = ROUNDS[change](view)
    second = whole(renderer, [later])
    assert second.body == render([later], ALL_FAMILIES).body
    before, after = samples_by_family(first.body), samples_by_family(second.body)
    changed = {f for f in GROUP_FAMILIES if before.get(f) != after.get(f)}
    assert changed <= written(first, second) & GROUP_FAMILIES <= changed | COARSE
    if change == "nothing":
        assert renderer.rendered_buckets == 0


def test_every_family_is_changed_by_some_round() -> None:
    """So that a comparison that missed what one family reads would keep a stale block in the test above."""
    view = busy(120)
    before = samples_by_family(render([view], ALL_FAMILIES).body)
    changed: set[str] = set()
    for change in ROUNDS.values():
        after = samples_by_family(render([change(view)], ALL_FAMILIES).body)
        changed |= {f for f in GROUP_FAMILIES if before.get(f) != after.get(f)}
    assert changed == GROUP_FAMILIES


def test_a_comparison_that_misses_a_change_fails_the_comparison_with_the_renderer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(blocks.DIFFERS, "lagwatch_partition_lag", lambda old, new: False)
    renderer = BlockRenderer(ALL_FAMILIES)
    view = busy(120)
    whole(renderer, [view])
    later = ROUNDS["current lag"](view)
    assert whole(renderer, [later]).body != render([later], ALL_FAMILIES).body


def test_a_group_renamed_inside_its_bucket_is_written_under_its_new_name() -> None:
    renderer = BlockRenderer(ALL_FAMILIES)
    view = busy(120)
    whole(renderer, [view])
    # Only a bucket's last group can end it: its second of three or more keeps the bucket's edges, and so does
    # a new name that is no edge either.
    bucket = next(b for b in blocks._buckets([view]) if len(b.statuses) >= 3)
    old = bucket.statuses[1].group
    new = next(name for k in range(100) if hash(name := f"{old}-{k}") % blocks._BUCKET)
    renamed = replace(
        view,
        groups=[replace(g, group=new) if g.group == old else g for g in view.groups],
        lag_seconds={new if name == old else name: lags for name, lags in view.lag_seconds.items()},
        headroom={new if name == old else name: h for name, h in view.headroom.items()},
    )
    later = ROUNDS["nothing"](renamed)
    assert len(blocks._buckets([later])) == len(blocks._buckets([view]))
    body = whole(renderer, [later]).body
    assert body == render([later], ALL_FAMILIES).body
    assert f'lagwatch_group_status{{kafka_cluster="prod",group="{new}"}}'.encode() in body


def test_views_of_the_same_round_keep_every_bucket_and_show_everything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The runtime hands out a round's statuses as one tuple, its lag in seconds and headroom as the same
    # mappings, until the next round: between rounds only HEAD offsets, health and brokers move.
    views = [replace(v, groups=tuple(v.groups)) for v in fixture()]
    renderer = BlockRenderer(RenderOptions())
    assert whole(renderer, views).body == render(views).body
    moved = [
        replace(
            v,
            topics=[(t, [None if h is None else h + 5 for h in heads]) for t, heads in v.topics],
            up=not v.up,
            head_refresh_ms=T + 12_500,
        )
        for v in views
    ]

    def no_cutting(clusters: object) -> list[object]:
        raise AssertionError("the groups were cut into buckets again")

    with monkeypatch.context() as patched:
        patched.setattr(blocks, "_buckets", no_cutting)
        rendered = whole(renderer, moved)
    assert renderer.rendered_buckets == 0
    assert rendered.body == render(moved).body
    # The same objects under other cluster names, in another order, or as a list are other views.
    for other in (
        [replace(v, name=f"{v.name}-b") for v in views],
        views[::-1],
        [replace(v, groups=list(v.groups)) for v in views],
        views[:1],
    ):
        assert whole(renderer, other).body == render(other).body
        assert whole(renderer, views).body == render(views).body
