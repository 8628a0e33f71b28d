"""One gzip stream assembled from parts deflated one by one, so that a part that did not change since the last
exposition is not compressed again.

Each part is raw deflate data from its own compressor, ended by a sync flush: byte-aligned, never final, and
referring to nothing before it, so that parts concatenate into one valid deflate stream in any order. The
stream is one gzip member (curl, wget and zlib read only the first member of several); its CRC-32 is
combined from the parts' own, never computed again over the whole text.

Deflate and CRC-32 are ISA-L's (`isal`): on the text of 100,000 group-partitions (144 MB, 7,500 parts) its
level 1 deflates in 98 ms of CPU to 6.8 MB where zlib's level 1 took 261 ms for 7.1 MB, and its CRC-32 takes
14 ms against zlib's 69; its streams are plain deflate, which any gzip reader inflates. Inflating (a scrape
without gzip) stays zlib's.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from isal import isal_zlib

LEVEL = 1
"""ISA-L's levels go from 0 to 3; 1 compresses a text exposition to under 5%, 0 to 7% for 30% less time."""
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
    compressor = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    deflated = compressor.compress(data) + compressor.flush(isal_zlib.Z_SYNC_FLUSH)
    return Part(deflated, isal_zlib.crc32(data), len(data))


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
            crc = isal_zlib.crc32_combine(crc, p.crc, p.size)
            size += p.size
    return crc, size


def finish(crc: int, size: int, tail: bytes) -> bytes:
    """The end of a stream whose parts' data have the CRC-32 `crc` and `size` bytes: `tail` compressed, the
    final block and the gzip trailer."""
    compressor = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    deflated = compressor.compress(tail) + compressor.flush(isal_zlib.Z_FINISH)
    return deflated + struct.pack("<II", isal_zlib.crc32(tail, crc), (size + len(tail)) & 0xFFFFFFFF)
