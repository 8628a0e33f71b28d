"""The state file: its format (version 2 with the Kafka cluster id inside, version 1 read once with its
sidecar), the atomic write, the restore at start and the saves that log each change of state once."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import struct
import tracemalloc
import zlib
from array import array
from pathlib import Path
from typing import BinaryIO

import pytest

from exporter import state_file
from exporter.core.head_history import HeadHistory, Policy
from exporter.state_file import Saved, StateFile, StateFileError, dump, load, restore

T = 1_700_000_000.0
POLICY = Policy()
LOGGER = "exporter.state_file"


def _history(*points: tuple[int, float], policy: Policy = POLICY) -> HeadHistory:
    history = HeadHistory(policy)
    for offset, time_s in points:
        history.append(offset, time_s)
    return history


def _points(
    histories: dict[tuple[str, int], HeadHistory],
) -> dict[tuple[str, int], tuple[tuple[int, float], ...]]:
    return {key: h.points() for key, h in histories.items() if len(h)}


def _histories() -> dict[tuple[str, int], HeadHistory]:
    return {
        ("orders", 1): _history((100, T), (103, T + 8.25)),
        ("orders", 0): _history((5, T), (5, T + 60), (9, T + 70)),
        ("idle", 0): HeadHistory(POLICY),
        ("ünïcode", 7): _history((2**62, T)),
    }


def test_state_round_trip() -> None:
    data = dump("prod", _histories(), "kafka-a")
    saved = load(data, "prod", POLICY)
    assert _points(saved.histories) == _points(_histories())
    assert (saved.cluster_id, saved.version) == ("kafka-a", 2)
    assert all(h.policy is POLICY for h in saved.histories.values())
    assert dump("prod", saved.histories, "kafka-a") == data


def test_state_layout_is_version_2_with_the_cluster_id_inside() -> None:
    data = dump("c", {("t", 3): _history((1, 2.0))}, "id")
    body = (
        b"\x01\x00c" + b"\x02\x00id" + b"\x01\x00\x00\x00" + b"\x01\x00t" + struct.pack("<IIqd", 3, 1, 1, 2.0)
    )
    assert data == b"\x89LWHEAD\n" + struct.pack("<HI", 2, zlib.crc32(body)) + body
    assert load(dump("c", {}), "c", POLICY) == Saved({}, "", 2)


def test_version_1_is_still_read() -> None:
    body = b"\x01\x00c" + b"\x01\x00\x00\x00" + b"\x01\x00t" + struct.pack("<IIqd", 3, 1, 1, 2.0)
    saved = load(_file(body, version=1), "c", POLICY)
    assert (_points(saved.histories), saved.cluster_id, saved.version) == ({("t", 3): ((1, 2.0),)}, "", 1)


def test_loading_trims_to_the_policy() -> None:
    data = dump("prod", {("t", 0): _history(*((i, T + i) for i in range(10)))})
    restored = load(data, "prod", Policy(max_points=4)).histories
    assert restored[("t", 0)].points() == tuple((i, T + i) for i in range(6, 10))


def _file(body: bytes, version: int = 2) -> bytes:
    return b"\x89LWHEAD\n" + struct.pack("<HI", version, zlib.crc32(body)) + body


def _entry(topic: bytes, partition: int, offsets: list[int], times: list[float]) -> bytes:
    n = len(offsets)
    return struct.pack("<H", len(topic)) + topic + struct.pack(f"<II{n}q{n}d", partition, n, *offsets, *times)


GOOD_ENTRY = _entry(b"t", 0, [1, 2], [T, T + 1])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a lagwatch HEAD history file"),
        (b'{"heads": []}', "not a lagwatch HEAD history file"),
        (
            _file(b"\x01\x00c\x00\x00\x00\x00", version=3),
            "format version 3, this lagwatch reads versions 1 and 2",
        ),
        (dump("c", _histories())[:-1], "checksum mismatch"),
        (_file(b"\x04\x00prod\x00\x00\x00\x00\x00\x00"), "written for cluster 'prod', not 'c'"),
        (_file(b"\x01\x00c\x05\x00id"), "corrupt: truncated"),
        (_file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + GOOD_ENTRY[:-1]), "corrupt: truncated"),
        (_file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + GOOD_ENTRY + b"\x00"), "corrupt: trailing bytes"),
        (_file(b"\x01\x00c\x00\x00\x02\x00\x00\x00" + GOOD_ENTRY * 2), "corrupt history for t/0"),
        (
            _file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + _entry(b"t", 0, [2, 1], [T, T])),
            "corrupt history for t/0",
        ),
        (
            _file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + _entry(b"t", 0, [1, 2], [T, T - 1])),
            "corrupt history",
        ),
        (_file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + _entry(b"t", 0, [1], [math.nan])), "corrupt history"),
        (_file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + _entry(b"t", 0, [-1], [T])), "corrupt history"),
        (_file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + _entry(b"t", 0, [], [])), "corrupt history"),
        (
            _file(b"\x01\x00c\x00\x00\x01\x00\x00\x00" + _entry(b"\xff", 0, [1], [T])),
            "corrupt: a name is not UTF-8",
        ),
    ],
)
def test_foreign_or_corrupt_state_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(StateFileError, match=message):
        load(data, "c", POLICY)


async def test_a_save_replaces_the_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "heads-prod.bin"
    path.write_bytes(b"old")
    await StateFile(path, "prod").save(_histories(), "kafka-a")
    assert path.read_bytes() == dump("prod", _histories(), "kafka-a")
    assert os.listdir(tmp_path) == ["heads-prod.bin"]
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "heads-prod.bin"
    path.write_bytes(b"old")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    await StateFile(path, "prod").save(_histories(), "kafka-a")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["heads-prod.bin"]


async def test_a_save_holds_one_piece_of_the_histories_at_a_time(tmp_path: Path) -> None:
    """Nothing is copied first: the copies of a whole save (57 MiB at 10,000 busy partitions), alive across
    many turns of the loop, were a step up of the resident memory at each save."""
    policy = Policy.for_refresh(10.0)
    points = policy.max_points
    histories = {
        ("t", p): HeadHistory.from_arrays(
            policy, array("q", range(p, p + points)), array("d", (T + 10 * i for i in range(points)))
        )
        for p in range(2000)
    }
    path = tmp_path / "heads-prod.bin"
    tracemalloc.start()
    try:
        await StateFile(path, "prod").save(histories, "kafka-a")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.read_bytes() == dump("prod", histories, "kafka-a")
    # The histories hold 2000 x 363 x 16 bytes, 11.6 MB. A save holds one piece of 200 partitions joined from
    # the histories' own arrays (1.2 MB) and the sorted names: about 1.3 MB. With the piece written last still
    # held while the next was joined, 2.5 MB, and 3.6 MB on a busy machine whenever the executor's threads
    # held theirs too (CI failed so); with each array copied into the piece's parts first, 3.7 MB; copying
    # every history before writing, 47 MB.
    assert peak < 2_000_000


async def test_a_save_reads_each_partition_whole_while_the_loop_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each piece is read whole in one turn of the loop, and the loop serves between pieces: a history that
    moves meanwhile is written as it is when its turn comes, every entry consistent."""
    monkeypatch.setattr("exporter.state_file._SAVE_BATCH", 2)
    histories = {("t", p): _history((10 * p, T), (10 * p + 5, T + 10)) for p in range(7)}
    path = tmp_path / "heads-prod.bin"
    turns: list[int] = []
    seen_at_writes: list[int] = []
    write_piece = state_file._write_piece

    def write_and_move(file: BinaryIO, piece: list[bytes], checksum: int) -> int:
        # Between the first piece (the names, the count, partitions 0 and 1) and the three still to be read.
        if not seen_at_writes:
            histories[("t", 0)].append(99, T + 20)
            histories[("t", 6)].append(99, T + 20)
        seen_at_writes.append(len(turns))
        return write_piece(file, piece, checksum)

    async def serve() -> None:
        # Until cancelled: a loaded machine may take more turns than any fixed count before the save ends.
        for turn in itertools.count():
            turns.append(turn)
            await asyncio.sleep(0)

    monkeypatch.setattr(state_file, "_write_piece", write_and_move)
    server = asyncio.ensure_future(serve())
    await StateFile(path, "prod").save(histories, "kafka-a")
    server.cancel()
    # The loop served other work between every two pieces.
    assert len(seen_at_writes) == 4
    assert all(b > a for a, b in itertools.pairwise(seen_at_writes))
    saved = load(path.read_bytes(), "prod", POLICY)
    # The first piece was read before the move, the last after it.
    assert saved.histories[("t", 0)].points() == ((0, T), (5, T + 10))
    assert saved.histories[("t", 6)].points() == ((60, T), (65, T + 10), (99, T + 20))
    assert {key: h.points() for key, h in saved.histories.items() if key[1] in range(1, 6)} == {
        key: h.points() for key, h in histories.items() if key[1] in range(1, 6)
    }


def test_restore_reads_what_was_saved(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "heads-prod.bin"
    path.write_bytes(dump("prod", _histories()))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        restored = restore(path, "prod", POLICY).histories
    assert _points(restored) == _points(_histories())
    assert caplog.messages == [f"cluster prod: HEAD history of 3 partitions restored from {path}"]


@pytest.mark.parametrize(
    ("content", "level", "message"),
    [
        (
            None,
            logging.INFO,
            "cluster prod: no HEAD history at {path}; lag in seconds starts from exact reads",
        ),
        (b"garbage", logging.WARNING, "cluster prod: ignoring HEAD history {path}: not a lagwatch HEAD"),
        (b"dir", logging.WARNING, "cluster prod: cannot read HEAD history {path} ([Errno 21] Is a directory"),
    ],
)
def test_restore_ignores_a_missing_foreign_or_unreadable_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes | None, level: int, message: str
) -> None:
    path = tmp_path / "heads-prod.bin"
    if content == b"dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert restore(path, "prod", POLICY) == Saved()
    (record,) = caplog.records
    assert record.levelno == level
    assert record.getMessage().startswith(message.format(path=path))


async def test_a_version_1_file_and_its_sidecar_are_read_once_then_written_as_version_2(
    tmp_path: Path,
) -> None:
    path = tmp_path / "heads-prod.bin"
    body = b"\x04\x00prod\x01\x00\x00\x00\x06\x00orders" + struct.pack("<IIqqdd", 1, 2, 100, 103, T, T + 8)
    path.write_bytes(_file(body, version=1))
    (tmp_path / "heads-prod.cluster-id").write_text("kafka-a\n")
    saved = restore(path, "prod", POLICY)
    expected = {("orders", 1): ((100, T), (103, T + 8))}
    assert (_points(saved.histories), saved.cluster_id, saved.version) == (expected, "kafka-a", 1)

    await StateFile(path, "prod").save(saved.histories, saved.cluster_id)
    assert os.listdir(tmp_path) == ["heads-prod.bin"]
    again = restore(path, "prod", POLICY)
    assert (_points(again.histories), again.cluster_id, again.version) == (expected, "kafka-a", 2)


def test_a_version_1_file_without_its_sidecar_has_no_cluster_id(tmp_path: Path) -> None:
    path = tmp_path / "heads-prod.bin"
    path.write_bytes(_file(b"\x04\x00prod\x00\x00\x00\x00", version=1))
    assert restore(path, "prod", POLICY) == Saved({}, "", 1)


async def test_a_failed_save_is_logged_once_and_its_recovery_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be")
    state = StateFile(blocked / "heads-prod.bin", "prod")
    histories = _histories()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await state.save(histories, "kafka-a")
        await state.save(histories, "kafka-a")
        blocked.unlink()
        await state.save(histories, "kafka-a")
    assert [(r.levelno, r.getMessage().split(" (")[0]) for r in caplog.records] == [
        (logging.WARNING, f"cluster prod: cannot save the HEAD history to {blocked}/heads-prod.bin"),
        (logging.INFO, f"cluster prod: HEAD history saved to {blocked}/heads-prod.bin again"),
    ]
    assert load((blocked / "heads-prod.bin").read_bytes(), "prod", POLICY).cluster_id == "kafka-a"
