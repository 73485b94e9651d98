"""Parse the units scenario files use: durations, rates and sizes.

Internally every duration is seconds (float), every rate is per second and every size is bytes.

>>> parse_duration("250ms")
0.25
>>> parse_duration("10min")
600.0
>>> parse_rate("120/min")
2.0
>>> parse_size("10GiB") == 10 * 2**30
True
"""

from __future__ import annotations

import math
import re

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"

DURATION_UNITS = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
RATE_UNITS = {"s": 1.0, "sec": 1.0, "min": 1 / 60.0, "h": 1 / 3600.0}
SIZE_UNITS: dict[str, float] = {
    "B": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
}

_DURATION_RE = re.compile(rf"^\s*{_NUMBER}\s*([a-z]+)\s*$")
_RATE_RE = re.compile(rf"^\s*{_NUMBER}\s*/\s*([a-z]+)\s*$")
_SIZE_RE = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-z]+)\s*$")

DURATION_HELP = "a duration such as 250ms, 5s, 10min, 1h (a bare number means seconds)"
RATE_HELP = "a rate such as 2000/s, 120/min, 10/h (a bare number means per second)"
SIZE_HELP = "a size such as 500GiB, 10GB, 1TiB (a bare number means bytes)"


def _finite_non_negative(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite")
    if value < 0:
        raise ValueError(f"{what} must not be negative")
    return float(value)


def _plain_number(value: object) -> float | None:
    if isinstance(value, bool):
        raise ValueError("expected a number with a unit, not true/false")
    if isinstance(value, int | float):
        return float(value)
    return None


def _parse(
    value: object, pattern: re.Pattern[str], units: dict[str, float], help_text: str, what: str
) -> float:
    number = _plain_number(value)
    if number is None:
        if not isinstance(value, str):
            raise ValueError(f"expected {help_text}")
        match = pattern.match(value)
        if not match or match.group(2) not in units:
            raise ValueError(f"{value!r} is not {help_text}")
        number = float(match.group(1)) * units[match.group(2)]
    return _finite_non_negative(number, what)


def parse_duration(value: object) -> float:
    """Seconds from ``"250ms"``, ``"5s"``, ``"10min"``, ``"1h"``, ``"2d"`` or a bare number of seconds."""
    return _parse(value, _DURATION_RE, DURATION_UNITS, DURATION_HELP, "a duration")


def parse_rate(value: object) -> float:
    """Events per second from ``"2000/s"``, ``"120/min"``, ``"10/h"`` or a bare number per second."""
    return _parse(value, _RATE_RE, RATE_UNITS, RATE_HELP, "a rate")


def parse_size(value: object) -> float:
    """Bytes from ``"500GiB"``, ``"10GB"`` or a bare number of bytes."""
    return _parse(value, _SIZE_RE, SIZE_UNITS, SIZE_HELP, "a size")


def format_duration(seconds: float) -> str:
    """The shortest exact unit string for a duration, used in resolved scenarios and messages."""
    if seconds == 0:
        return "0s"
    for unit, factor in (("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3)):
        scaled = seconds / factor
        if scaled >= 1 and abs(scaled - round(scaled)) < 1e-9:
            return f"{round(scaled)}{unit}"
    return f"{seconds!r}s"
