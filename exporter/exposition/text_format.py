"""Sample and label values as the Prometheus text format (0.0.4) writes them, shared by the family writers."""

from __future__ import annotations

import math

MS_PER_S = 1000


def escape(value: str) -> str:
    """Label-value escaping of the text format; the membership tests spare the usual clean names a copy."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def seconds(value: float) -> str:
    # Lag in seconds is a duration, written like the others, to the millisecond its inputs support. Most
    # partitions are caught up: 0 skips the formatting. A lag is almost always above 0 and below 1e6 s, where
    # `format_float(round(value, 3))` is the three decimals of `:.3f` without trailing zeros (both round the
    # exact binary value correctly, half to even), at a third of the cost: a steady-state render at 100,000
    # group-partitions formats 220,000 of them. Below 999,999.5 the three decimals never round up to 1e6,
    # which Go writes with an exponent.
    if value == 0:
        return "0"
    if 0 < value < 999_999.5:
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return format_float(round(value, 3))


_RATIOS: dict[float, str] = {}
_RATIOS_KEPT = 4096


def ratio(value: float) -> str:
    # Ratios take few distinct values (k/n for small n), so formatting each once pays off at 10k groups; the
    # cache is bounded in case they do not.
    text = _RATIOS.get(value)
    if text is None:
        if len(_RATIOS) >= _RATIOS_KEPT:
            _RATIOS.clear()
        text = _RATIOS[value] = format_float(value)
    return text


def format_float(value: float) -> str:
    """A sample value as Go's client (and client_python) writes it, except that integral values below 2**53
    are written as integers (`1`, not `1.0` or Go's `1e+06`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = repr(value)
    dot = text.find(".")
    # Go switches to exponent notation from 1e+06 up, Python only from 1e+16.
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text
