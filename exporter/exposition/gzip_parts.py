"""One gzip stream assembled from parts deflated one by one, so that a part that did not change since the last
exposition is not compressed again.

Each part is raw deflate data from its own compressor, ended by a sync flush: byte-aligned, never final, and
referring to nothing before it, so that parts concatenate into one valid deflate stream in any order. The
stream is one gzip member (curl, wget and zlib read only the first member of several); its CRC-32 is
combined from the parts' own, never computed again over the whole text.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

# Level 1 compresses a text exposition to about 5% at several times the speed of the default level 6.
LEVEL = 1
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""A gzip member header: deflate, no name, no time, unknown OS."""


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of text kept only deflated: the text is about 20 times the size, and gzip scrapes, which
    Prometheus' are, never need it. `size` and `crc` are the text's."""

    deflated: bytes
    crc: int
    size: int


EMPTY = Part(b"", 0, 0)


def part(data: bytes) -> Part:
    if not data:
        return EMPTY
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return Part(compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data), len(data))


def inflated(parts: Iterable[Part], most: int = 1 << 20) -> Iterator[bytes]:
    """The parts' text in pieces of at most `most` bytes: never more than one piece of it exists at a time."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for p in parts:
        pending = p.deflated
        while pending:
            piece = inflater.decompress(pending, most)
            pending = inflater.unconsumed_tail
            if piece:
                yield piece


def crc_of(parts: Iterable[Part]) -> tuple[int, int]:
    """The CRC-32 and length of the parts' text concatenated."""
    crc = size = 0
    for p in parts:
        if p.size:
            crc = crc32_combine(crc, p.crc, p.size)
            size += p.size
    return crc, size


def finish(crc: int, size: int, tail: bytes) -> bytes:
    """The end of a stream whose parts' data have the CRC-32 `crc` and `size` bytes: `tail` compressed, the
    final block and the gzip trailer."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    return deflated + struct.pack("<II", zlib.crc32(tail, crc), (size + len(tail)) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------------------------
# crc32_combine: zlib has it, Python's zlib module does not expose it. The C function through ctypes takes
# about 3 us; the pure-Python one below about 40 us (it serves where libz cannot be loaded).

_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    """a times b modulo the CRC-32 polynomial, both reflected (zlib's multmodp)."""
    m = 1 << 31
    product = 0
    while True:
        if a & m:
            product ^= b
            if a & (m - 1) == 0:
                return product
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _powers() -> list[int]:
    """x^(2^k) modulo the polynomial, k = 0..31."""
    table = [1 << 30]
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return table


_X2N = _powers()


def python_crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A followed by B from crc1 of A, crc2 of B and the length of B."""
    shift = 1 << 31
    n, k = len2, 3
    while n:
        if n & 1:
            shift = _multmodp(_X2N[k & 31], shift)
        n >>= 1
        k += 1
    return _multmodp(shift, crc1) ^ crc2


def _zlib_combine() -> Callable[[int, int, int], int] | None:
    name = ctypes.util.find_library("z")
    try:
        combine = ctypes.CDLL(name or "libz.so.1").crc32_combine
    except (OSError, AttributeError):
        return None
    combine.restype = ctypes.c_ulong
    combine.argtypes = [ctypes.c_ulong, ctypes.c_ulong, ctypes.c_long]
    return combine


crc32_combine: Callable[[int, int, int], int] = _zlib_combine() or python_crc32_combine
