"""The wire format of `__consumer_offsets` records: binary primitives and a declarative schema reader.

A schema transcribes one of Kafka's JSON message definitions field by field (`Field`, `Struct`, `Array`), and
`Message` compiles it into a table of one reader per version. In a flexible version, strings, bytes and arrays
carry unsigned-varint lengths and every struct ends with tagged fields; lagwatch needs no tagged field, so all
are skipped. Bytes after the last declared field are ignored, as Kafka's generated readers ignore them, and a
flexible value that ends just before its final tagged-field count is read as having none. Bytes that do not
fit raise `MalformedError` naming the part, the problem and the byte position.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "BYTES",
    "INT8",
    "INT32",
    "INT64",
    "NULLABLE_STRING",
    "STRING",
    "UUID",
    "Array",
    "Field",
    "MalformedError",
    "Message",
    "Read",
    "Reader",
    "Struct",
    "int16",
    "key_reader",
    "read_value",
    "schema",
    "since",
    "unpack_int16",
    "uuid_string",
]


class MalformedError(Exception):
    """Bytes that do not fit the schema; `decode` turns it into a `DecodeError`."""


class Reader:
    """A cursor over one key, value or nested payload; `part` names it in error reasons."""

    __slots__ = ("buf", "part", "pos")

    def __init__(self, buf: bytes, part: str, pos: int = 0) -> None:
        self.buf = buf
        self.part = part
        self.pos = pos

    def error(self, problem: str, at: int | None = None) -> MalformedError:
        """The fault, placed at byte `at` (by default the cursor): where the wrong or missing bytes start."""
        return MalformedError(f"{self.part}: {problem} at byte {self.pos if at is None else at}")


Read = Callable[[Reader], Any]


# ------------------------------------------------------------------------------------------------------------
# Primitives. Fixed-width integers go through precompiled Structs: `unpack_from` does the bounds check.


def _fixed(layout: struct.Struct, name: str) -> Read:
    unpack_from = layout.unpack_from
    size = layout.size

    def read(r: Reader) -> Any:
        try:
            (value,) = unpack_from(r.buf, r.pos)
        except struct.error:
            raise r.error(f"truncated {name}") from None
        r.pos += size
        return value

    return read


_INT16_LAYOUT: Final = struct.Struct(">h")
unpack_int16: Final = _INT16_LAYOUT.unpack_from
_int8: Final = _fixed(struct.Struct(">b"), "int8")
int16: Final = _fixed(_INT16_LAYOUT, "int16")
_int32: Final = _fixed(struct.Struct(">i"), "int32")
_int64: Final = _fixed(struct.Struct(">q"), "int64")


def _uvarint(r: Reader) -> int:
    buf = r.buf
    pos = r.pos
    result = 0
    for shift in range(0, 35, 7):
        if pos >= len(buf):
            raise r.error("truncated unsigned varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            r.pos = pos
            return result
    raise r.error("unsigned varint longer than 5 bytes")


def _take(r: Reader, size: int) -> bytes:
    start = r.pos
    end = start + size
    if end > len(r.buf):
        raise r.error(f"{size}-byte field with {len(r.buf) - start} bytes left")
    r.pos = end
    return r.buf[start:end]


def _text(r: Reader, size: int) -> str:
    return _take(r, size).decode("utf-8", "replace")


def _string(r: Reader) -> str:
    # The hot path (three per offset commit), hence one call instead of int16 + _text.
    buf = r.buf
    pos = r.pos
    try:
        (size,) = unpack_int16(buf, pos)
    except struct.error:
        raise r.error("truncated string length") from None
    if size < 0:
        raise r.error("null or negative length in a non-nullable string")
    end = pos + 2 + size
    if end > len(buf):
        raise r.error(f"{size}-byte string with {len(buf) - pos - 2} bytes left", pos + 2)
    r.pos = end
    return buf[pos + 2 : end].decode("utf-8", "replace")


def _nullable_string(r: Reader) -> str | None:
    start = r.pos
    size = int16(r)
    if size == -1:
        return None
    if size < 0:
        raise r.error(f"negative string length {size}", start)
    return _text(r, size)


def _compact_size(r: Reader, what: str) -> int:
    """The length of a non-nullable compact string or bytes (`what`, named in the error on a null)."""
    start = r.pos
    size = _uvarint(r) - 1
    if size < 0:
        raise r.error(f"null in {what}", start)
    return size


def _compact_string(r: Reader) -> str:
    return _text(r, _compact_size(r, "a non-nullable compact string"))


def _compact_nullable_string(r: Reader) -> str | None:
    size = _uvarint(r) - 1
    return None if size < 0 else _text(r, size)


def _bytes(r: Reader) -> bytes:
    start = r.pos
    size = _int32(r)
    if size < 0:
        raise r.error("null or negative length in non-nullable bytes", start)
    return _take(r, size)


def _compact_bytes(r: Reader) -> bytes:
    return _take(r, _compact_size(r, "non-nullable compact bytes"))


def uuid_string(raw: bytes) -> str:
    """A 16-byte Kafka Uuid as `Uuid.toString()` renders it: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uuid(r: Reader) -> str:
    return uuid_string(_take(r, 16))


def _skip_tagged_fields(r: Reader) -> None:
    for _ in range(_uvarint(r)):
        _uvarint(r)
        _take(r, _uvarint(r))


def _skip_final_tagged_fields(r: Reader) -> None:
    # A value that ends where its own tagged fields would start has none. Kafka always writes the count, but
    # Burrow's v4 fixtures omit it, and nothing is lost by accepting them.
    if r.pos < len(r.buf):
        _skip_tagged_fields(r)


def _array_length(r: Reader) -> int:
    return int(_int32(r))


def _compact_array_length(r: Reader) -> int:
    return _uvarint(r) - 1


# ------------------------------------------------------------------------------------------------------------
# Schema vocabulary, after Kafka's JSON message definitions. A type compiles to a reader for one version.

_ANY_VERSION: Final = range(0x8000)


def since(version: int) -> range:
    return range(version, 0x8000)


@dataclass(frozen=True, slots=True)
class _Scalar:
    """A type whose encoding depends only on whether the version is flexible."""

    classic: Read
    flexible: Read

    def reader(self, version: int, flexible: bool) -> Read:
        return self.flexible if flexible else self.classic


INT8: Final = _Scalar(_int8, _int8)
INT32: Final = _Scalar(_int32, _int32)
INT64: Final = _Scalar(_int64, _int64)
UUID: Final = _Scalar(_uuid, _uuid)
STRING: Final = _Scalar(_string, _compact_string)
NULLABLE_STRING: Final = _Scalar(_nullable_string, _compact_nullable_string)
BYTES: Final = _Scalar(_bytes, _compact_bytes)


@dataclass(frozen=True, slots=True)
class Array:
    """A non-nullable array: int32 count in classic versions, unsigned varint count + 1 in flexible ones."""

    item: _Type

    def reader(self, version: int, flexible: bool) -> Read:
        length = _compact_array_length if flexible else _array_length
        if self.item is INT32:
            return _int32_array(length)
        item = self.item.reader(version, flexible)

        def read(r: Reader) -> list[Any]:
            start = r.pos
            count = length(r)
            _check_count(r, start, count, 1)
            return [item(r) for _ in range(count)]

        return read


def _check_count(r: Reader, start: int, count: int, item_size: int) -> None:
    # Every item takes at least `item_size` bytes, so garbage counts fail here instead of looping.
    if count < 0:
        raise r.error("null or negative count in a non-nullable array", start)
    if count * item_size > len(r.buf) - r.pos:
        raise r.error(f"array of {count} items in {len(r.buf) - r.pos} bytes", start)


def _int32_array(length: Read) -> Read:
    def read(r: Reader) -> tuple[int, ...]:
        start = r.pos
        count = length(r)
        _check_count(r, start, count, 4)
        values: tuple[int, ...] = struct.unpack_from(f">{count}i", r.buf, r.pos)
        r.pos += 4 * count
        return values

    return read


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its name, its type and the versions that have it (Kafka's "versions")."""

    name: str
    type: _Type
    versions: range = _ANY_VERSION
    default: Any = None
    """The value of the field in versions that do not have it."""


@dataclass(frozen=True, slots=True)
class Struct:
    """Fields in order, then (in flexible versions) tagged fields. Reads a dict of field name to value."""

    fields: tuple[Field, ...]

    def reader(self, version: int, flexible: bool, trailer: Read = _skip_tagged_fields) -> Read:
        present = tuple(
            (f.name, f.type.reader(version, flexible)) for f in self.fields if version in f.versions
        )
        absent = {f.name: f.default for f in self.fields if version not in f.versions}

        def read(r: Reader) -> dict[str, Any]:
            out = dict(absent)
            for name, read_field in present:
                out[name] = read_field(r)
            if flexible:
                trailer(r)
            return out

        return read


_Type = _Scalar | Array | Struct


@dataclass(frozen=True, slots=True)
class Message:
    """A record value schema: `validVersions` and `flexibleVersions` as in Kafka's JSON, and the body."""

    valid: range
    flexible: range
    body: Struct
    table: dict[int, tuple[str, Read]] = field(init=False, repr=False)
    """Version to (the part name for error reasons, the reader)."""

    def __post_init__(self) -> None:
        table = {
            v: (f"value v{v}", self.body.reader(v, v in self.flexible, _skip_final_tagged_fields))
            for v in self.valid
        }
        object.__setattr__(self, "table", table)


def schema(*fields: Field) -> Struct:
    return Struct(fields)


def key_reader(*fields: Field) -> Read:
    """Keys are version 0 and never flexible: the record type is followed directly by the fields."""
    return schema(*fields).reader(0, flexible=False)


def read_value(message: Message, value: bytes) -> dict[str, Any]:
    r = Reader(value, "value")
    version = int16(r)
    entry = message.table.get(version)
    if entry is None:
        raise r.error(f"unsupported version {version}", 0)
    r.part, read = entry
    result: dict[str, Any] = read(r)
    return result
