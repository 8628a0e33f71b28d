"""The state file: one cluster's HEAD histories of lag in seconds, and the id of the Kafka cluster they
were observed on, kept across restarts so that lag in seconds is available at once (docs/lag-seconds.md,
section 3).

Everything about the file lives here: its name, the start-up check of its directory, its format (`dump`,
`load`), the atomic write, the restore at start with its log lines, and the saves (every 300 s and at
shutdown) with one log line per change of state. `core/timelag.py` stays pure: it only hands its histories
out and takes restored ones in.

Format version 2, little-endian: magic, u16 version, u32 CRC-32 of the body; body: cluster name, Kafka cluster
id (empty when unknown), u32 count, then per partition: topic name, u32 partition, u32 n, n int64 offsets, n
float64 times. A name is a u16 length and UTF-8 bytes. Raw arrays rather than JSON: 16 bytes per point,
written and read at memcpy speed. Version 1 had no cluster id; it was kept beside the file in
`heads-<cluster>.cluster-id`. A version-1 file is read once, with that sidecar, and the next save writes
version 2 and removes the sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import struct
import sys
import tempfile
import zlib
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise, starmap
from operator import le
from pathlib import Path
from typing import BinaryIO

from exporter.core.head_history import HeadHistory, Policy
from exporter.settings import StartupError

__all__ = [
    "Saved",
    "StateFile",
    "StateFileError",
    "check_state_dir",
    "describe",
    "dump",
    "load",
    "restore",
    "state_path",
]

log = logging.getLogger(__name__)

_MAGIC = b"\x89LWHEAD\n"
_VERSION = 2
_READS = (1, 2)
_HEADER = struct.Struct("<8sHI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_ENTRY = struct.Struct("<II")
_SAVE_BATCH = 200
"""HEAD histories read between two turns of the event loop when saving: about 1 ms of it, and a piece of
about 1 MiB at 363 points each."""

Histories = Mapping[tuple[str, int], HeadHistory]


class StateFileError(Exception):
    """Not a lagwatch state file, another version or cluster, or corrupt; the message says which."""


@dataclass(frozen=True, slots=True)
class Saved:
    """What a state file holds."""

    histories: dict[tuple[str, int], HeadHistory] = field(default_factory=dict)
    cluster_id: str = ""
    """The Kafka cluster the histories were observed on; empty when unknown."""
    version: int = _VERSION


def state_path(state_dir: str, cluster: str) -> Path:
    """The state file of `cluster` in `state_dir`. Cluster names are restricted to [A-Za-z0-9._-], so the name
    is safe in a file name."""
    return Path(state_dir).expanduser() / f"heads-{cluster}.bin"


def _sidecar(path: Path) -> Path:
    """Beside a version-1 state file: the id of the Kafka cluster its histories were observed on."""
    return path.with_suffix(".cluster-id")


def check_state_dir(state_dir: str, clusters: list[str]) -> None:
    """Fail now, not at the first save five minutes later, when the HEAD history cannot be written: the
    directory cannot be created or written, or a cluster's state file is in the way."""
    if not state_dir:
        return
    directory = Path(state_dir).expanduser()
    setting = f"lag_seconds.state_dir {str(directory)!r}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".lagwatch-check-"):
            pass
    except OSError as exc:
        raise StartupError(f"{setting}: {describe(exc)}") from None
    for name in clusters:
        state_file = state_path(state_dir, name)
        try:
            if state_file.exists():
                if not state_file.is_file():
                    raise StartupError(f"{setting}: {state_file.name} is not a regular file")
                with state_file.open("r+b"):
                    pass
        except OSError as exc:
            raise StartupError(f"{setting}: state file {state_file.name}: {describe(exc)}") from None


def describe(exc: OSError) -> str:
    """The cause of an OSError in words, without the exception's name or a repeated path."""
    if exc.errno == errno.EACCES or exc.errno == errno.EPERM:
        return "permission denied"
    return (exc.strerror or str(exc)).lower() if exc.errno is not None else str(exc)


# ----------------------------------------------------------------------------------------------------
# The format


def dump(cluster: str, histories: Histories, cluster_id: str = "") -> bytes:
    """The state file (version 2) of one cluster's HEAD histories, observed on Kafka cluster `cluster_id`."""
    payload = b"".join(_body(cluster, histories, cluster_id, _SAVE_BATCH))
    return _HEADER.pack(_MAGIC, _VERSION, zlib.crc32(payload)) + payload


def _body(cluster: str, histories: Histories, cluster_id: str, batch: int) -> Iterator[bytes]:
    """The body of the state file in pieces of `batch` partitions, in topic, partition order, the first
    after the names and the count. A piece reads its partitions whole in one step, so an owner of the
    histories on an event loop may serve between pieces (a history that moves meanwhile is written as it is
    when its turn comes); nothing but the piece being built is copied."""
    keys = sorted(key for key, history in histories.items() if len(history))
    held = [histories[key] for key in keys]
    names = _name(cluster) + _name(cluster_id) + _U32.pack(len(keys))
    for start in range(0, max(len(keys), 1), batch):
        parts: list[bytes | array[int] | array[float]] = [] if start else [names]
        for (topic, partition), history in zip(
            keys[start : start + batch], held[start : start + batch], strict=True
        ):
            offsets, times = history.arrays()
            parts += (
                _name(topic),
                _ENTRY.pack(partition, len(offsets)),
                _little_endian(offsets),
                _little_endian(times),
            )
        yield b"".join(parts)


def load(data: bytes, cluster: str, policy: Policy) -> Saved:
    """What a state file written by `dump` (version 2) or an older lagwatch (version 1) for `cluster` holds,
    the histories trimmed to `policy.max_points`. Raises StateFileError."""
    if len(data) < _HEADER.size or not data.startswith(_MAGIC):
        raise StateFileError("not a lagwatch HEAD history file")
    _, version, checksum = _HEADER.unpack_from(data)
    if version not in _READS:
        raise StateFileError(f"format version {version}, this lagwatch reads versions 1 and 2")
    cursor = _Cursor(memoryview(data)[_HEADER.size :])
    if zlib.crc32(cursor.data) != checksum:
        raise StateFileError("checksum mismatch (truncated or corrupt)")
    written_for = cursor.name()
    if written_for != cluster:
        raise StateFileError(f"written for cluster {written_for!r}, not {cluster!r}")
    cluster_id = cursor.name() if version >= 2 else ""
    histories: dict[tuple[str, int], HeadHistory] = {}
    for _ in range(cursor.unpack(_U32)[0]):
        topic = cursor.name()
        partition, count = cursor.unpack(_ENTRY)
        offsets, times = array("q"), array("d")
        offsets.frombytes(cursor.take(8 * count))
        times.frombytes(cursor.take(8 * count))
        if sys.byteorder == "big":
            offsets.byteswap()
            times.byteswap()
        if (topic, partition) in histories or not _plausible(offsets, times):
            raise StateFileError(f"corrupt history for {topic}/{partition}")
        histories[(topic, partition)] = HeadHistory.from_arrays(policy, offsets, times)
    if cursor.position != len(cursor.data):
        raise StateFileError("corrupt: trailing bytes")
    return Saved(histories, cluster_id, version)


def _plausible(offsets: array[int], times: array[float]) -> bool:
    # Non-decreasing times with finite ends are all finite (NaN fails every comparison).
    return (
        len(offsets) > 0
        and offsets[0] >= 0
        and math.isfinite(times[0])
        and math.isfinite(times[-1])
        and all(starmap(le, pairwise(offsets)))
        and all(starmap(le, pairwise(times)))
    )


def _name(text: str) -> bytes:
    encoded = text.encode()
    return _U16.pack(len(encoded)) + encoded


def _little_endian(values: array[int] | array[float]) -> array[int] | array[float]:
    """The values as little-endian bytes for `bytes.join`: the array itself where the machine is
    little-endian (no copy), a byte-swapped copy otherwise."""
    if sys.byteorder == "little":
        return values
    swapped = values[:]
    swapped.byteswap()
    return swapped


class _Cursor:
    __slots__ = ("data", "position")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.position = 0

    def take(self, size: int) -> memoryview:
        end = self.position + size
        if end > len(self.data):
            raise StateFileError("corrupt: truncated")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        return tuple(layout.unpack(self.take(layout.size)))

    def name(self) -> str:
        try:
            return str(self.take(self.unpack(_U16)[0]), "utf-8")
        except UnicodeDecodeError:
            raise StateFileError("corrupt: a name is not UTF-8") from None


# ----------------------------------------------------------------------------------------------------
# The file


async def _save_pieces(path: Path, pieces: Iterator[bytes]) -> None:
    """Replace the state file at `path` with the one whose body comes in `pieces`, so that a crash leaves the
    old file or the new one, never a mix (a temporary file in the same directory, fsync, rename, fsync of the
    directory). Each piece is taken on the event loop; every file operation, the checksum carried on over
    the pieces and the header written last with it run in a thread."""
    file, temporary = await asyncio.to_thread(_open, path)
    try:
        checksum = 0
        for piece in pieces:
            # Handed over in a list the thread empties, and let go of here: the executor's work item holds
            # its arguments until its thread next runs, which on a busy machine came after the loop had
            # built the next piece or two (three pieces alive at once instead of one).
            held = [piece]
            del piece
            checksum = await asyncio.to_thread(_write_piece, file, held, checksum)
        await asyncio.to_thread(_finish, file, temporary, path, checksum)
    except BaseException:
        file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _open(path: Path) -> tuple[BinaryIO, str]:
    """A new temporary file beside `path` (its directory made if missing), open for writing after room for
    the header, and its name."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    file = os.fdopen(fd, "wb")
    file.write(bytes(_HEADER.size))
    return file, temporary


def _write_piece(file: BinaryIO, held: list[bytes], checksum: int) -> int:
    """Write the piece `held` holds, taking it out; returns the checksum carried on over it."""
    piece = held.pop()
    file.write(piece)
    return zlib.crc32(piece, checksum)


def _finish(file: BinaryIO, temporary: str, path: Path, checksum: int) -> None:
    """The header with the body's checksum, then the temporary file in the place of `path`: fsync, rename,
    fsync of the directory."""
    with file:
        file.seek(0)
        file.write(_HEADER.pack(_MAGIC, _VERSION, checksum))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    # The version-2 file carries the cluster id: the sidecar of version 1 is read once, then goes.
    with contextlib.suppress(FileNotFoundError):
        _sidecar(path).unlink()


def restore(path: Path | str, cluster: str, policy: Policy) -> Saved:
    """What the state file at `path` holds, or nothing: a missing, unreadable, foreign or corrupt file is
    logged and ignored, never raised. A version-1 file's cluster id is read from its sidecar file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        log.info("cluster %s: no HEAD history at %s; lag in seconds starts from exact reads", cluster, path)
        return Saved()
    except OSError as exc:
        log.warning("cluster %s: cannot read HEAD history %s (%s); starting without it", cluster, path, exc)
        return Saved()
    try:
        saved = load(data, cluster, policy)
    except StateFileError as exc:
        log.warning("cluster %s: ignoring HEAD history %s: %s", cluster, path, exc)
        return Saved()
    if saved.version == 1:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            saved = Saved(saved.histories, _sidecar(path).read_text().strip(), saved.version)
    count = len(saved.histories)
    log.info("cluster %s: HEAD history of %d partitions restored from %s", cluster, count, path)
    return saved


class StateFile:
    """The state file of one cluster: its saves, each failure logged once and its recovery once."""

    def __init__(self, path: Path, cluster: str) -> None:
        self.path = path
        self._cluster = cluster
        self._failing = False

    def restore(self, policy: Policy) -> Saved:
        return restore(self.path, self._cluster, policy)

    async def save(self, histories: Histories, cluster_id: str) -> None:
        """Write the histories; a failure is logged, not raised. They are read on the event loop, which owns
        them, `_SAVE_BATCH` partitions a piece with the loop serving in between, and each piece is written in
        a thread. Copying them all first (57 MiB at 10,000 busy partitions), as lagwatch did before, made the
        saves a step up of the resident memory each: the copies' small objects, alive across many turns of
        the loop, left pymalloc's arenas part-used when they went."""
        try:
            await _save_pieces(self.path, _body(self._cluster, histories, cluster_id, _SAVE_BATCH))
        except OSError as exc:
            if not self._failing:
                log.warning(
                    "cluster %s: cannot save the HEAD history to %s (%s); lag in seconds will need exact "
                    "reads after a restart",
                    self._cluster,
                    self.path,
                    exc,
                )
            self._failing = True
            return
        if self._failing:
            log.info("cluster %s: HEAD history saved to %s again", self._cluster, self.path)
        self._failing = False
