"""How Docker and the Docker provider read and write the values the program declares: Go
durations (health checks, stop timeouts, Swarm's update delays) and CPU counts.

Pure functions, shared by the unit tests (the program's values read back as the provider reads
them) and by the end-to-end harness that stands in for the provider.
"""

from __future__ import annotations

import re
from fractions import Fraction

_DURATION_UNITS = {
    "ns": Fraction(1),
    "us": Fraction(1_000),
    "µs": Fraction(1_000),
    "μs": Fraction(1_000),
    "ms": Fraction(1_000_000),
    "s": Fraction(1_000_000_000),
    "m": Fraction(60_000_000_000),
    "h": Fraction(3_600_000_000_000),
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go duration string ("300ms", "1m30s", "0"), as time.ParseDuration reads it."""
    value = text.strip()
    sign = 1
    if value.startswith(("+", "-")):
        sign = -1 if value[0] == "-" else 1
        value = value[1:]
    if value == "0":
        return 0
    if not value:
        raise ValueError(f"invalid duration {text!r}")
    total = Fraction(0)
    position = 0
    while position < len(value):
        match = _DURATION_PART.match(value, position)
        if match is None:
            raise ValueError(f"invalid duration {text!r} (units: ns, us, ms, s, m, h)")
        total += Fraction(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return sign * int(total)


def parse_cpus(text: str) -> int:
    """NanoCpus for a `cpus` value ("0.6" -> 600000000), as docker's opts.ParseCPUs computes it."""
    try:
        cpus = Fraction(text.strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"invalid cpus value {text!r}") from exc
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError(f"cpus value {text!r} is too precise")
    return int(nano)


_NANOS_PER_SECOND = 1_000_000_000
_GO_UNITS = ((3600 * _NANOS_PER_SECOND, "h"), (60 * _NANOS_PER_SECOND, "m"))


def nano_cpus_text(nano_cpus: int) -> str:
    """NanoCpus as the provider's `nanoInt64ToDecimalString` writes them ("1.0", "0.25", "0.1", "10.")."""
    if nano_cpus == 0:
        return "0"
    value = Fraction(nano_cpus, _NANOS_PER_SECOND)
    whole, nanos = divmod(nano_cpus, _NANOS_PER_SECOND)
    nine_places = f"{whole}.{nanos:09d}"
    if nine_places.count("0") == 9:
        # big.Rat.FloatString(1): one decimal, rounded half away from zero.
        tenths = value * 10
        rounded = int(tenths) + (1 if tenths - int(tenths) >= Fraction(1, 2) else 0)
        return f"{rounded // 10}.{rounded % 10}"
    return nine_places.rstrip("0")


def go_duration_text(nanoseconds: int) -> str:
    """A duration as Go's `time.Duration.String()` prints it ("0s", "500ms", "1m0s", "1h0m30s")."""
    if nanoseconds == 0:
        return "0s"
    if nanoseconds < _NANOS_PER_SECOND:
        for size, unit in ((1_000_000, "ms"), (1_000, "µs"), (1, "ns")):
            if nanoseconds >= size:
                return f"{_decimal(Fraction(nanoseconds, size))}{unit}"
    text = ""
    rest = nanoseconds
    for size, unit in _GO_UNITS:
        if nanoseconds >= size:
            count, rest = divmod(rest, size)
            text += f"{count}{unit}"
    return f"{text}{_decimal(Fraction(rest, _NANOS_PER_SECOND))}s"


def _decimal(value: Fraction) -> str:
    whole = int(value)
    fraction = value - whole
    if fraction == 0:
        return str(whole)
    digits = f"{int(fraction * _NANOS_PER_SECOND):09d}".rstrip("0")
    return f"{whole}.{digits}"


def short_duration_text(nanoseconds: int) -> str:
    """A duration as the service's flatteners write it (`shortDur`): Go's String() without a
    trailing "0s" after minutes or "0m" after hours ("1m", "1h", "1m30s", "500ms", "0s")."""
    text = go_duration_text(nanoseconds)
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text
