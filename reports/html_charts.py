"""The HTML reports' charts, drawn here as inline SVG (no script, no network): p50 latency per route
of a model, parity error per route [target] on a log axis, and the lock-in score per route stacked by
factor. Every label and tooltip is escaped with `esc`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any, Callable, Iterable

from convcheck.reports.cell_view import Cell, label
from convcheck.reports.escaping import clip, esc
from convcheck.reports.html_parts import tolerance_text
from convcheck.reports.numbers import finite, fmt_g, fmt_ms
from convcheck.reports.status_groups import status_css
from convcheck.types import Status

#: Lock-in factors in the contract's order, with colour-blind-safe (Okabe-Ito) colours.
FACTOR_COLOURS = {
    "format_openness": "#0072B2", "runtime_diversity": "#E69F00", "hardware_diversity": "#009E73",
    "reversibility": "#CC79A7", "fidelity": "#D55E00", "toolchain_health": "#56B4E9",
}
_SPARE_COLOURS = ("#999999", "#F0E442", "#000000", "#7f3b08")
#: The bar colour of each status class (html_parts.status_css).
BAR_COLOUR = {"s-pass": "#2da44e", "s-fail": "#cf222e", "s-warn": "#bf8700", "s-unsup": "#8250df", "s-skip": "#8c959f"}


class LogScale:
    """log10 axis over whole decades, with at least `min_decades` of span."""

    def __init__(self, values: Iterable[float], x0: float, width: float, min_decades: int = 1,
                 floor: float = 1e-12, ceil: float = 1e9) -> None:
        vals = [v for v in values if v > 0]
        lo = math.floor(math.log10(max(min(vals), floor))) if vals else -3
        hi = math.ceil(math.log10(min(max(vals), ceil))) if vals else 0
        if hi - lo < min_decades:
            hi = lo + min_decades
        self.lo, self.hi, self.x0, self.width = lo, hi, x0, width

    def x(self, value: float) -> float:
        """Position of `value`; zero and below sit on the left edge, far outliers on the right one."""
        if value <= 0:
            return self.x0
        frac = (math.log10(value) - self.lo) / (self.hi - self.lo)
        return self.x0 + self.width * min(max(frac, 0.0), 1.0)

    def decades(self) -> list[int]:
        step = max(1, math.ceil((self.hi - self.lo) / 8))  # at most ~9 gridlines
        return list(range(self.lo, self.hi + 1, step))


def _ms_tick(exp: int) -> str:
    """A decade of milliseconds in its shortest unit: 1 µs .. 100 µs, 1 ms .. 100 ms, 1 s and up."""
    value = 10.0 ** exp
    if value < 1:
        return f"{value * 1000:g} µs"
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def _axis(scale: LogScale, top: float, bottom: float, text: Callable[[int], str]) -> str:
    parts = []
    for exp in scale.decades():
        x = scale.x(10.0 ** exp)
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom:.1f}"/>'
                     f'<text class="axis" x="{x:.1f}" y="{bottom + 12:.1f}" text-anchor="middle">'
                     f"{esc(text(exp))}</text>")
    return "".join(parts)


def _svg(width: float, height: float, body: str, title: str) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{esc(title)}">'
            f"<title>{esc(title)}</title>{body}</svg>")


def latency_panel(model: str, cells: list[Cell]) -> str | None:
    """One model's p50 latency per route (bars on a log axis, p90 as a whisker); None if nothing ran."""
    ran = [(c, finite((c.get("latency_ms") or {}).get("p50"))) for c in cells]
    ran = sorted([(c, v) for c, v in ran if v is not None and v > 0], key=lambda item: item[1])
    if not ran:
        return None
    label_w, value_w, bar_w, row_h, top = 236, 74, 230, 17, 4
    p90s = [finite((c.get("latency_ms") or {}).get("p90")) or v for c, v in ran]
    scale = LogScale([v for _, v in ran] + p90s, label_w, bar_w)
    height = top + row_h * len(ran) + 22
    body = [_axis(scale, top, top + row_h * len(ran), _ms_tick)]
    for i, ((cell, p50), p90) in enumerate(zip(ran, p90s)):
        y = top + i * row_h
        colour = BAR_COLOUR[status_css(cell["status"])]
        x_end, x90 = scale.x(p50), scale.x(max(p90, p50))
        noisy = bool((cell.get("latency_ms") or {}).get("noisy"))
        tip = (f"{model} × {label(cell)}: p50 {fmt_ms(p50)}, p90 {fmt_ms(p90)} ({cell['status']})"
               + (" — noisy" if noisy else ""))
        body.append(
            f"<g><title>{esc(tip)}</title>"
            f'<text class="lbl" x="{label_w - 6}" y="{y + 12}" text-anchor="end">{esc(clip(label(cell), 38, rstrip=False))}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{max(x_end - label_w, 1.5):.1f}" height="{row_h - 6}" '
            f'fill="{colour}" fill-opacity="{0.55 if noisy else 0.9}"/>'
            f'<line x1="{x_end:.1f}" x2="{x90:.1f}" y1="{y + row_h / 2:.1f}" y2="{y + row_h / 2:.1f}" '
            'stroke="#1f2328" stroke-width="1.2"/>'
            f'<text x="{label_w + bar_w + 6}" y="{y + 12}">{esc(fmt_ms(p50))}{" ~" if noisy else ""}</text></g>')
    return _svg(label_w + bar_w + value_w, height, "".join(body), f"p50 latency per route of {model}")


def _row_tolerance(cells: list[Cell]) -> dict[str, Any] | None:
    """The tolerance most of a row's cells were judged by (a noise floor can raise it on some)."""
    tols = [json.dumps((c.get("parity") or {}).get("tolerance") or {}, sort_keys=True) for c in cells]
    tols = [t for t in tols if t != "{}"]
    return json.loads(Counter(tols).most_common(1)[0][0]) if tols else None


def parity_ok(cell: Cell) -> bool:
    return bool((cell.get("parity") or {}).get("ok", cell["status"] == Status.PASS.value))


def parity_chart(rows: dict[str, list[Cell]]) -> str | None:
    """max_abs of every cell that ran, one line per route [target], log axis, the row's atol marked.

    A max_abs beyond the axis (1e4) or missing on a failed comparison (NaN/Inf outputs are written as
    null) is drawn as a triangle on the right edge: off the scale, not off the chart."""
    data = {r: [c for c in cs if c.get("parity") and (finite(c["parity"].get("max_abs")) is not None
                                                      or not parity_ok(c))] for r, cs in rows.items()}
    data = {r: cs for r, cs in data.items() if cs}
    if not data:
        return None
    label_w, plot_w, right_w, row_h, top = 270, 560, 250, 22, 6
    x0 = label_w + 12  # room for a mark of an exact (0) result left of the first decade
    tols = {r: _row_tolerance(cs) for r, cs in data.items()}
    values = [finite(c["parity"].get("max_abs")) or 0.0 for cs in data.values() for c in cs]
    values += [finite(t.get("atol")) or 0.0 for t in tols.values() if t and t.get("check") != "snr"]
    scale = LogScale(values, x0, plot_w, min_decades=3, floor=1e-10, ceil=1e4)
    ceiling = 10.0 ** scale.hi
    height = top + row_h * len(data) + 24
    body = [_axis(scale, top, top + row_h * len(data), lambda e: f"1e{e}")]
    for i, (row, cs) in enumerate(data.items()):
        y = top + i * row_h + row_h / 2
        tol = tols[row] or {}
        body.append(f'<line class="track" x1="{label_w}" x2="{x0 + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="lbl" x="{label_w - 6}" y="{y + 4:.1f}" text-anchor="end">'
                    f"<title>{esc(row)}</title>{esc(clip(row, 42, rstrip=False))}</text>")
        atol = finite(tol.get("atol"))
        if tol.get("check") != "snr" and atol:
            tx = scale.x(atol)
            body.append(f'<g><title>{esc(f"{row}: tolerance {tolerance_text(tol)}")}</title>'
                        f'<rect x="{tx - 1.5:.1f}" y="{y - 8:.1f}" width="3" height="16" fill="#1f2328"/></g>')
        failing = []
        for c in sorted(cs, key=parity_ok, reverse=True):  # failures drawn last, on top
            v, ok = finite(c["parity"].get("max_abs")), parity_ok(c)
            shown = "non-finite or missing" if v is None else fmt_g(v)
            tip = f"{c['model']}: max_abs {shown} — {'within' if ok else 'outside'} tolerance ({c['status']})"
            if not ok:
                failing.append(c["model"])
            if v is None or v > ceiling:
                x = x0 + plot_w
                colour = "#2da44e" if ok else "#cf222e"
                shape = f'<path d="M{x - 7:.1f},{y - 6:.1f}L{x + 2:.1f},{y:.1f}L{x - 7:.1f},{y + 6:.1f}Z" fill="{colour}"/>'
            elif v <= 0:
                shape = f'<circle cx="{label_w + 5}" cy="{y:.1f}" r="4" fill="#fff" stroke="#2da44e" stroke-width="1.5"/>'
            elif ok:
                shape = f'<circle cx="{scale.x(v):.1f}" cy="{y:.1f}" r="4" fill="#2da44e" fill-opacity="0.55"/>'
            else:
                x = scale.x(v)
                shape = (f'<path d="M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}M{x - 5:.1f},{y + 5:.1f}'
                         f'L{x + 5:.1f},{y - 5:.1f}" stroke="#cf222e" stroke-width="2.4"/>')
            body.append(f"<g><title>{esc(tip)}</title>{shape}</g>")
        finite_abs = [v for v in (finite(c["parity"].get("max_abs")) for c in cs) if v is not None]
        snrs = [v for v in (finite(c["parity"].get("snr_db")) for c in cs) if v is not None]
        if tol.get("check") == "snr":  # the bound is on SNR: its worst figure is the one to read
            right = f"SNR ≥ {fmt_g(tol.get('min_snr_db'))} dB · worst " + (f"{min(snrs):.1f} dB" if snrs else "—")
        else:
            right = f"worst {fmt_g(max(finite_abs), 2)}" if finite_abs else "worst: non-finite"
        if failing:
            right += f" · ✘ {', '.join(failing)}"
        fill = ' class="bad"' if failing else ""
        body.append(f'<text x="{x0 + plot_w + 10}" y="{y + 4:.1f}"{fill}><title>{esc(right)}</title>'
                    f"{esc(clip(right, 44, rstrip=False))}</text>")
    return _svg(x0 + plot_w + right_w, height, "".join(body), "parity error (max_abs) per route")


def _route_lockins(document: dict[str, Any], cells: list[Cell]) -> dict[str, dict[str, Any]]:
    found = {k: v for k, v in ((document.get("lockin") or {}).get("routes") or {}).items() if isinstance(v, dict)}
    for c in cells:
        if isinstance(c.get("lockin"), dict):
            found.setdefault(c["route"], c["lockin"])
    return found


def _factor_colour(name: str, names: list[str]) -> str:
    if name in FACTOR_COLOURS:
        return FACTOR_COLOURS[name]
    extra = [n for n in names if n not in FACTOR_COLOURS]
    return _SPARE_COLOURS[extra.index(name) % len(_SPARE_COLOURS)] if name in extra else "#999999"


def contributions(lock: dict[str, Any]) -> list[tuple[str, float, float, float, str]]:
    """(factor, weight, value, points of the 0..100 score, evidence): the points add up to the score."""
    factors = {k: f for k, f in (lock.get("factors") or {}).items() if isinstance(f, dict)}
    total = sum(finite(f.get("weight")) or 0.0 for f in factors.values())
    out = []
    for name, f in factors.items():
        w, v = finite(f.get("weight")) or 0.0, finite(f.get("value")) or 0.0
        out.append((name, w, v, 100 * w * v / total if total else 0.0, str(f.get("evidence") or "")))
    return out


def lockin_chart(document: dict[str, Any], cells: list[Cell]) -> str | None:
    """Per route, a stacked bar of weight × value per factor: its length is the route's score."""
    routes = _route_lockins(document, cells)
    if not routes:
        return None
    names = list(dict.fromkeys(list(FACTOR_COLOURS) + [n for r in routes.values() for n in (r.get("factors") or {})]))
    names = [n for n in names if any(n in (r.get("factors") or {}) for r in routes.values())]
    label_w, plot_w, right_w, row_h, top = 220, 600, 60, 20, 6
    ordered = sorted(routes.items(), key=lambda kv: (finite(kv[1].get("score")) or 0.0, kv[0]))
    height = top + row_h * len(ordered) + 24
    body = []
    for tick in (0, 25, 50, 75, 100):
        x = label_w + plot_w * tick / 100
        body.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + row_h * len(ordered)}"/>'
                    f'<text class="axis" x="{x:.1f}" y="{top + row_h * len(ordered) + 12}" '
                    f'text-anchor="middle">{tick}</text>')
    for i, (route, lock) in enumerate(ordered):
        y = top + i * row_h
        body.append(f'<text class="lbl" x="{label_w - 6}" y="{y + 14}" text-anchor="end"><title>{esc(route)}</title>'
                    f"{esc(clip(route, 34, rstrip=False))}</text>")
        x = float(label_w)
        for name, w, v, points, evidence in contributions(lock):
            width = plot_w * points / 100
            if width <= 0:
                continue
            tip = f"{route} — {name}: weight {fmt_g(w)} × value {fmt_g(v)} = {points:.1f} points. {evidence}"
            body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{row_h - 6}" '
                        f'fill="{_factor_colour(name, names)}"><title>{esc(tip)}</title></rect>')
            x += width
        body.append(f'<text x="{label_w + plot_w + 8}" y="{y + 14}">{esc(fmt_g(lock.get("score"), 3))}</text>')
    legend = "".join(f'<span><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" '
                     f'fill="{_factor_colour(n, names)}"/></svg> {esc(n)} '
                     f'(weight {esc(fmt_g((document.get("lockin") or {}).get("weights", {}).get(n)))})</span>'
                     for n in names)
    return (_svg(label_w + plot_w + right_w, height, "".join(body), "lock-in score per route, by factor")
            + f'<div class="legend">{legend}</div>')


#: Line colours of the latency-vs-QPS chart (Okabe-Ito, then greys): one per route [target].
_CURVE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442",
                  "#999999", "#7f3b08")


def load_curve_panel(model: str, cells: list[Cell]) -> str | None:
    """One model's Server-scenario runs (MLPerf LoadGen) per route [target]; None when none ran under load."""
    from convcheck.reports.load_view import curve_points

    lines = [(label(c), curve_points(c)) for c in cells]
    bounds = [finite(((c.get("load") or {}).get("settings") or {}).get("latency_bound_ms")) for c in cells]
    return qps_chart(model, [(name, pts) for name, pts in lines if pts], [b for b in bounds if b])


def qps_chart(model: str, lines: list[tuple[str, list[dict[str, Any]]]], bounds: list[float]) -> str | None:
    """p99 against achieved QPS, one line per route [target], both axes log; filled marks are runs LoadGen
    judged VALID, hollow ones INVALID; the dashed red line is the latency bound. `lines`: (label, points with
    qps, p50, p99, valid). None without a point."""
    if not lines:
        return None
    left, plot_w, plot_h, top, legend_w = 58, 360, 200, 8, 250
    xs = LogScale([p["qps"] for _, pts in lines for p in pts], left, plot_w)
    ys = LogScale([p["p99"] for _, pts in lines for p in pts] + bounds, 0, plot_h)
    bottom = top + plot_h

    def y_of(value: float) -> float:
        return bottom - ys.x(value)

    body = [_axis(xs, top, bottom, lambda e: f"{10.0 ** e:g}/s")]
    for exp in ys.decades():
        y = y_of(10.0 ** exp)
        body.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="axis" x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{esc(_ms_tick(exp))}</text>')
    for bound in sorted(set(bounds)):
        y = y_of(bound)
        body.append(f'<g><title>{esc(f"latency bound {fmt_ms(bound)}")}</title><line x1="{left}" x2="{left + plot_w}" '
                    f'y1="{y:.1f}" y2="{y:.1f}" stroke="#cf222e" stroke-dasharray="5 3" stroke-width="1.2"/></g>')
    for i, (name, pts) in enumerate(lines):
        colour = _CURVE_COLOURS[i % len(_CURVE_COLOURS)]
        coords = " ".join(f"{xs.x(p['qps']):.1f},{y_of(p['p99']):.1f}" for p in pts)
        marks = []
        for p in pts:
            tip = (f"{model} × {name}: {p['qps']:.4g} QPS achieved, p99 {fmt_ms(p['p99'])}, p50 {fmt_ms(p['p50'])}, "
                   f"LoadGen {'VALID' if p['valid'] else 'INVALID'}")
            marks.append(f'<circle cx="{xs.x(p["qps"]):.1f}" cy="{y_of(p["p99"]):.1f}" r="3.2" '
                         f'fill="{colour if p["valid"] else "#ffffff"}" stroke="{colour}" stroke-width="1.4">'
                         f"<title>{esc(tip)}</title></circle>")
        ly = top + 12 + i * 15
        body.append(f'<g><polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>{"".join(marks)}'
                    f'<line x1="{left + plot_w + 14}" x2="{left + plot_w + 30}" y1="{ly - 4}" y2="{ly - 4}" '
                    f'stroke="{colour}" stroke-width="2"/><text class="lbl" x="{left + plot_w + 34}" y="{ly}">'
                    f"{esc(clip(name, 36, rstrip=False))}</text></g>")
    body.append(f'<text class="axis" x="{left + plot_w / 2:.0f}" y="{bottom + 26}" text-anchor="middle">achieved QPS '
                "(queries/s, each one call at the cell's batch)</text>"
                f'<text class="axis" x="4" y="{bottom + 26}" text-anchor="start">p99 (log)</text>')
    height = max(bottom + 32, top + 16 + 15 * len(lines))
    return _svg(left + plot_w + legend_w, height, "".join(body), f"p99 latency against QPS per route of {model}")
