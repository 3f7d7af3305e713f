"""Figures convcheck formats itself: significant figures, durations, sizes, shares, money, dates.

Each report keeps the look it has always had (a model page prints `1.5 ms` and `3.0 MiB`, the HTML
report `1.5 ms` and `3 MiB`, the audit `0.150` and `3.15 MB`), but every one of those looks is written
once, here, and documents' junk values (None, booleans, NaN from an older tool, strings) are handled
the same way wherever a number is read: `finite` turns them into None.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Callable

_BINARY = ("B", "KiB", "MiB", "GiB")
_DECIMAL = ("B", "kB", "MB", "GB")


def finite(value: Any) -> float | None:
    """A finite float, or None for anything else (null, a bool, a string, NaN or ∞ written by an older tool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scaled(value: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    """`value` in the largest unit it reaches (`base` of one unit make the next), with that unit."""
    k = 0
    while k < len(units) - 1 and abs(value) >= base ** (k + 1):
        k += 1
    return value / base ** k, units[k]


# --- the look of the Markdown pages (matrix.md, models/<page>.md) ---------------------------------------------

def num_text(x: Any, spec: str = ".3g", other: Callable[[Any], str] = str) -> str:
    """A number as text with `spec`: counts (ints) stay exact, NaN/∞ spelled out, a bool yes/no, None a
    dash; anything else is `other(x)` (the Markdown pages pass their escaping)."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        if isinstance(x, float) and math.isnan(x):
            return "NaN"
        if isinstance(x, float) and math.isinf(x):
            return "∞" if x > 0 else "-∞"
        if isinstance(x, int) and spec in (".3g", ".1f", ".2f"):
            return str(x)  # counts stay exact: 27996 calls, not 2.8e+04
        return format(x, spec)
    return other(x)


def human_bytes(n: Any) -> str:
    """438502 -> '428.2 KiB' (binary units, as Core ML's package check and most tools print)."""
    if not is_number(n):
        return "—"
    size, unit = _scaled(float(n), 1024, _BINARY)
    return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"


def percent(x: float) -> str:
    """0.061 -> '6.1%'."""
    return f"{x * 100:.1f}%"


# --- the look of the HTML pages (matrix.html, models/<page>.html) ---------------------------------------------

def fmt_g(value: Any, digits: int = 3) -> str:
    v = finite(value)
    return "—" if v is None else f"{v:.{digits}g}"


def fmt_ms(value: Any) -> str:
    """Milliseconds, in seconds from 1000 ms up: '1.5 ms', '1.8 s'."""
    v = finite(value)
    if v is None:
        return "—"
    return f"{v / 1000:.3g} s" if v >= 1000 else f"{v:.3g} ms"


def fmt_s(value: Any) -> str:
    """Seconds, in milliseconds below one second: '12 ms', '3.4 s'."""
    v = finite(value)
    return "—" if v is None else (f"{v * 1000:.3g} ms" if v < 1 else f"{v:.3g} s")


def fmt_bytes(value: Any) -> str:
    """Binary units, 3 significant figures: '3 MiB', '428 KiB'."""
    v = finite(value)
    if v is None:
        return "—"
    size, unit = _scaled(v, 1024, _BINARY)
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}"


def fmt_mib(value: Any) -> str:
    v = finite(value)
    return "—" if v is None else f"{v:,.1f} MiB"


def fmt_pct(value: Any) -> str:
    v = finite(value)
    return "—" if v is None else percent(v)


def fmt_db(value: Any) -> str:
    v = finite(value)
    return "—" if v is None else f"{v:.1f} dB"


def fmt_rate(value: Any) -> str:
    """Rows per second: whole numbers with thousands separators from 100 up."""
    v = finite(value)
    return "—" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.3g}")


def fmt_value(value: Any) -> str:
    """Any JSON value as one short line (lists and objects compactly)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_g(value, 4)
    if isinstance(value, list):
        return ", ".join(fmt_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {fmt_value(v)}" for k, v in value.items()) or "none"
    return str(value)


def fmt_date(value: Any) -> str:
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return str(value)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --- the look of the audit (audit.md, audit.html, the audit's own sentences) -----------------------------------

def readable(x: float | None, digits: int = 3) -> str:
    """Numbers for people: 3 significant figures, no exponent for everyday magnitudes."""
    if x is None:
        return "—"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if 1e-4 <= abs(x) < 1000:
        return f"{x:.{max(0, digits - 1 - magnitude)}f}"
    if 1000 <= abs(x) < 1e15:  # 4,930,000 reads faster than 4.93e+06 in a cost table
        return f"{round(x, digits - 1 - magnitude):,.0f}"
    return f"{x:.{digits - 1}e}"


def share(x: float) -> str:
    """A ratio as a percentage with 3 significant figures ('93.5%'); ∞ for an infinite one."""
    return "∞" if not math.isfinite(x) else f"{x * 100:.3g}%"


def score_text(score: float | None) -> str:
    """A lock-in score as the contract rounds it: one decimal."""
    return "—" if score is None else f"{score:.1f}"


def money(x: float | None) -> str:
    """Dollars: cents from a dollar up; below, two significant digits written out ($0.025, $0.000047)."""
    if x is None:
        return "—"
    if x >= 1 or x == 0:
        return f"${x:,.2f}"
    if x < 1e-9:
        return f"${x:.1e}"
    return f"${x:.{1 - math.floor(math.log10(x))}f}"


def si_bytes(n: float | None) -> str:
    """Decimal units, as cloud and disk sizes are quoted: '3.15 MB', '812 B'."""
    if n is None:
        return "—"
    if n < 1000:
        return f"{int(n)} B"
    size, unit = _scaled(n, 1000, _DECIMAL)
    return f"{size:.3g} {unit}"


def rows_text(batch: int | None) -> str:
    return "1 row" if (batch or 1) == 1 else f"{batch} rows"
