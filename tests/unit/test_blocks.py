"""The block renderer: byte for byte `metrics.render`, one gzip stream, written again where it changed."""

from __future__ import annotations

import gzip
import os
import re
import zlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.model import Status
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds
from exporter.exposition import gzip_parts
from exporter.exposition.blocks import BlockRenderer, Exposition
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.metrics import RenderOptions, render
from exporter.settings import Granularity
from tests.unit.test_metrics import _group, _partition, clusters, fixture

OPTIONS = [
    RenderOptions(),
    RenderOptions(granularity="group"),
    RenderOptions(burrow_compatible=True),
    RenderOptions(kafka_exporter=True),
    RenderOptions(max_series=85),
]


def gunzip_one_member(exposition: Exposition, tail: bytes) -> bytes:
    """The gzipped answer as /metrics sends it, decompressed as curl would: one member only."""
    stream = (
        gzip_parts.HEADER
        + b"".join(p.deflated for p in exposition.parts)
        + gzip_parts.finish(exposition.crc, exposition.size, tail)
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
        exposition = renderer.render(views)
        expected = render(views, options)
        assert exposition.body == expected.body
        assert (exposition.series, exposition.dropped) == (expected.series, expected.dropped)
        assert gunzip_one_member(exposition, b"# own\n") == expected.body + b"# own\n"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(clusters(), min_size=1, max_size=3),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["partition", "group"]),
)
def test_any_sequence_of_views_renders_as_the_renderer_does(
    sequence: list[list[ClusterView]], burrow: bool, kafka: bool, granularity: Granularity
) -> None:
    options = RenderOptions(granularity=granularity, burrow_compatible=burrow, kafka_exporter=kafka)
    renderer = BlockRenderer(options)
    for views in sequence:
        exposition = renderer.render(views)
        assert exposition.body == render(views, options).body
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
    first = renderer.render([view])
    buckets = renderer.rendered_buckets
    assert buckets > 3
    # The same statuses and equal figures: nothing is written, every block is the same object.
    again = renderer.render([replace(view, head_refresh_ms=1)])
    assert renderer.rendered_buckets == 0
    assert {id(p) for p in first.parts if p.data.startswith(b"lagwatch_partition")} <= {
        id(p) for p in again.parts
    }
    # One group re-evaluated: its bucket only.
    groups = list(view.groups)
    groups[500] = replace(groups[500], totallag=7)
    changed = replace(view, groups=groups)
    assert renderer.render([changed]).body == render([changed]).body
    assert renderer.rendered_buckets == 1
    # A new group moves the edges of its own bucket only (which it splits in two if its name is an edge).
    added = replace(changed, groups=[*groups[:10], _group("prod", "g0009a", Status.OK, []), *groups[10:]])
    assert renderer.render([added]).body == render([added]).body
    assert 1 <= renderer.rendered_buckets <= 2


def test_a_figure_that_moved_writes_only_the_families_that_read_it() -> None:
    renderer = BlockRenderer(RenderOptions())
    view = many_groups(300)
    first = {p.data: p for p in renderer.render([view]).parts}
    lags = dict(view.lag_seconds)
    lags["g0100"] = (LagSeconds(9.25, "interpolated"), None)
    moved = replace(view, lag_seconds=lags)
    second = renderer.render([moved])
    assert second.body == render([moved]).body
    assert renderer.rendered_buckets == 1
    rewritten = [
        re.split(rb"[{ ]", p.data, maxsplit=1)[0].decode() for p in second.parts if first.get(p.data) is not p
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


def test_over_the_cap_the_capped_exposition_is_the_renderers() -> None:
    options = RenderOptions(max_series=100)
    view = many_groups(50)
    renderer = BlockRenderer(options)
    exposition = renderer.render([view])
    expected = render([view], options)
    assert renderer.rendered_buckets == 0
    assert expected.dropped > 0
    assert (exposition.body, exposition.series, exposition.dropped) == (
        expected.body,
        expected.series,
        expected.dropped,
    )


@pytest.mark.parametrize("combine", [gzip_parts.crc32_combine, gzip_parts.python_crc32_combine])
def test_crc32_combine_is_zlibs(combine: object) -> None:
    assert callable(combine)
    first, second = os.urandom(3000), os.urandom(70_001)
    assert combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)
    assert combine(zlib.crc32(first), 0, 0) == zlib.crc32(first)


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
