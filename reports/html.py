"""HTML reports of a results.json: `matrix.html` (the whole run) and `models/<page>.html` (one model).

Each page is one self-contained file: CSS and JavaScript inline, charts drawn here as inline SVG, and a
Content-Security-Policy that forbids every fetch, so a report can be archived or mailed and opened
anywhere without reaching the network. The table and charts are static HTML; the script only adds
sorting, filtering and a cell detail drawer.

Every string of a document may come from a user's model (model and output names, op names, error
messages), so every one is escaped for where it lands: `esc` for text and attributes, `_script_json`
for the data block the script reads. Every field but model/route/status is optional: older runs lack
memory, localisation and lock-in, and a killed run has `finished: null`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Callable, Iterable

from convcheck.reports.html_assets import CSS, MATRIX_JS
from convcheck.reports.terminal import STYLE, headline, row_label
from convcheck.types import Status

Cell = dict[str, Any]

LADDER = ("exported", "converted", "loaded", "ran", "compared", "benchmarked")
_STAGE_STEP = {"load": "loaded", "run": "ran", "compare": "compared", "benchmark": "benchmarked"}
NOT_HERE = (Status.MISSING_DEP.value, Status.NO_DEVICE.value)
#: Lock-in factors in the contract's order, with colour-blind-safe (Okabe-Ito) colours.
FACTOR_COLOURS = {
    "format_openness": "#0072B2", "runtime_diversity": "#E69F00", "hardware_diversity": "#009E73",
    "reversibility": "#CC79A7", "fidelity": "#D55E00", "toolchain_health": "#56B4E9",
}
_SPARE_COLOURS = ("#999999", "#F0E442", "#000000", "#7f3b08")
#: The rich colour of terminal.STYLE -> this page's CSS class (the same grouping, one source of truth).
_CSS_OF_RICH = {"green": "s-pass", "red": "s-fail", "yellow": "s-warn", "magenta": "s-unsup", "dim": "s-skip"}
_BAR_COLOUR = {"s-pass": "#2da44e", "s-fail": "#cf222e", "s-warn": "#bf8700", "s-unsup": "#8250df", "s-skip": "#8c959f"}
#: Which distributions a route token touches, to show the tool versions that matter for a cell.
_TOKEN_PACKAGES = {
    "torch": ("torch",), "eager": ("torch",), "exported_program": ("torch",), "onnx": ("onnx", "onnxscript"),
    "onnx_legacy": ("onnx", "torch"), "ort": ("onnxruntime", "onnxruntime-gpu"), "openvino": ("openvino",),
    "tvm": ("apache-tvm", "tvm"), "tensorrt": ("tensorrt", "polygraphy"),
    "tflite": ("ai-edge-litert", "tensorflow", "tensorflow-cpu", "litert-torch"),
    "keras": ("keras", "tensorflow", "tensorflow-cpu"), "coreml": ("coremltools",),
}
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'")


# --- escaping and formatting -----------------------------------------------------------------------------------

def esc(value: Any) -> str:
    """Text or attribute value: quotes escaped too, so one function is safe in both places."""
    return escape("" if value is None else str(value), quote=True)


def _script_json(data: Any) -> str:
    """JSON for a <script type="application/json"> block: `</script>`, `<!--` and the JS line separators
    cannot appear raw, so no string of the data can end the block or be read as markup."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    for raw, safe in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"),
                      ("\u2029", "\\u2029")):
        text = text.replace(raw, safe)
    return text


def _num(value: Any) -> float | None:
    """A finite float, or None for anything else (null, a string, NaN written by an older tool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt_g(value: Any, digits: int = 3) -> str:
    v = _num(value)
    return "—" if v is None else f"{v:.{digits}g}"


def fmt_ms(value: Any) -> str:
    v = _num(value)
    if v is None:
        return "—"
    return f"{v / 1000:.3g} s" if v >= 1000 else f"{v:.3g} ms"


def fmt_s(value: Any) -> str:
    v = _num(value)
    return "—" if v is None else (f"{v * 1000:.3g} ms" if v < 1 else f"{v:.3g} s")


def fmt_bytes(value: Any) -> str:
    v = _num(value)
    if v is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.3g} {unit}"
        v /= 1024
    return "—"


def fmt_mib(value: Any) -> str:
    v = _num(value)
    return "—" if v is None else f"{v:,.1f} MiB"


def fmt_pct(value: Any) -> str:
    v = _num(value)
    return "—" if v is None else f"{100 * v:.1f}%"


def fmt_db(value: Any) -> str:
    v = _num(value)
    return "—" if v is None else f"{v:.1f} dB"


def _rate(value: Any) -> str:
    v = _num(value)
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


def _date(value: Any) -> str:
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return str(value)


def _first_line(text: Any, limit: int = 220) -> str:
    line = str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")[:60]


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


# --- cells -------------------------------------------------------------------------------------------------------

def model_page_name(model: str) -> str:
    """The file name (with `.html`) of a model's page under `models/`.

    Deterministic and collision-free: a name made only of safe lower-case characters is kept as is;
    any other name (a `/`, `<`, a space, unicode, upper case that a case-insensitive disk would merge)
    gets its slug plus a hash of the exact name."""
    slug = _slug(model)
    if slug == model and slug == slug.lower() and slug:
        return f"{slug}.html"
    return f"{slug or 'model'}-{_short_hash(model)}.html"


def cell_anchor(cell: Cell) -> str:
    """The id of a cell's section on its model page: readable, and unique even for odd route names."""
    target = f"{cell['route']}|{cell.get('device', 'cpu')}|{cell.get('precision', 'fp32')}"
    return f"c-{_slug(target.replace('/', '-').replace('|', '-')) or 'cell'}-{_short_hash(target)[:6]}"


def label(cell: Cell) -> str:
    """terminal.row_label, tolerant of a cell without a target (older or hand-made documents)."""
    return row_label({"device": "cpu", "precision": "fp32", **cell})


def status_css(status: str) -> str:
    return _CSS_OF_RICH.get(STYLE.get(status, ("?", "red"))[1], "s-fail")


def mark(status: str) -> str:
    return STYLE.get(status, ("?", "red"))[0]


def group(status: str) -> str:
    """pass / failure / notrun: what a reader acts on. An unknown status counts as a failure."""
    if status == Status.PASS.value:
        return "pass"
    return "notrun" if status in NOT_HERE else "failure"


def figure(cell: Cell) -> str:
    """The figure under the status word: terminal.headline where it has one, else where it stopped."""
    p50 = _num((cell.get("latency_ms") or {}).get("p50"))
    if cell["status"] == Status.PASS.value and p50 is not None:
        return fmt_ms(p50)  # terminal.headline's figure, in seconds past 1000 ms rather than 1.8e+03 ms
    try:
        head = headline(cell)
    except (KeyError, TypeError, ValueError):
        head = cell["status"]
    if head != cell["status"]:
        return head
    err = cell.get("error") or {}
    if err.get("op"):
        return f"op {err['op']}"
    if err.get("stage") and cell["status"] not in NOT_HERE:
        return f"at {err['stage']}"
    return ""


def sort_value(cell: Cell) -> float:
    """One number that orders a column: passes by p50, then mismatches by error, failures, not run here."""
    lat = _num((cell.get("latency_ms") or {}).get("p50"))
    par = _num((cell.get("parity") or {}).get("max_abs"))
    kind = group(cell["status"])
    if kind == "pass":
        return lat if lat is not None else 1e8
    if cell["status"] in ("mismatch", "vacuous"):
        return 1e9 + (par if par is not None else 0.0)
    return 2e9 if kind == "failure" else 3e9


def lockin_of(document: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """The route's lock-in breakdown: on the cell, else in the document's per-route table."""
    if isinstance(cell.get("lockin"), dict):
        return cell["lockin"]
    routes = (document.get("lockin") or {}).get("routes") or {}
    found = routes.get(cell["route"])
    return found if isinstance(found, dict) else None


def _tolerance_text(tol: dict[str, Any] | None) -> str:
    if not tol:
        return "—"
    if tol.get("check") == "snr":
        return f"SNR ≥ {fmt_g(tol.get('min_snr_db'))} dB ({tol.get('profile') or 'snr'})"
    text = f"atol {fmt_g(tol.get('atol'))}, rtol {fmt_g(tol.get('rtol'))}"
    return text + (f" ({tol['profile']})" if tol.get("profile") else "")


def _localization_text(loc: dict[str, Any] | None) -> str | None:
    if not isinstance(loc, dict):
        return None
    if loc.get("found"):
        return str(loc.get("summary") or loc.get("node") or loc.get("layer") or "found")
    return f"not found: {loc.get('reason') or 'no reason given'}"


def _outputs_line(per_output: Any, limit: int = 8) -> str:
    """`name: ok` per output, the first `limit` of them (a detector can have dozens of outputs)."""
    items = [(n, o) for n, o in (per_output or {}).items()] if isinstance(per_output, dict) else []
    line = ", ".join(f"{n}: {'ok' if isinstance(o, dict) and o.get('ok') else 'FAIL'}" for n, o in items[:limit])
    return (line + (f", … {len(items) - limit} more" if len(items) > limit else "")) or "—"


def cell_detail(document: dict[str, Any], cell: Cell, href: str) -> dict[str, Any]:
    """What the detail drawer shows, formatted here so the script only places text."""
    err = cell.get("error") or {}
    par = cell.get("parity") or {}
    lat = cell.get("latency_ms") or {}
    mem = cell.get("memory_mb") or {}
    sections: list[list[Any]] = []
    where = [["stage", err.get("stage")], ["op", err.get("op")]]
    if any(v for _, v in where):
        sections.append(["where it stopped", [[k, str(v)] for k, v in where if v]])
    if par:
        sections.append(["parity (worst output)", [
            ["max_abs", fmt_g(par.get("max_abs"))], ["max_rel", fmt_g(par.get("max_rel"))],
            ["cosine", fmt_g(par.get("cosine"), 6)], ["SNR", fmt_db(par.get("snr_db"))],
            ["tolerance", _tolerance_text(par.get("tolerance"))],
            ["outputs", _outputs_line(par.get("per_output"))]]])
    if lat:
        sections.append(["latency", [
            ["p50", fmt_ms(lat.get("p50"))], ["p90", fmt_ms(lat.get("p90"))], ["p99", fmt_ms(lat.get("p99"))],
            ["calls", f"{lat.get('n', '—')} × batch {lat.get('batch', '—')}"],
            ["threads", fmt_value(lat.get("threads"))]]])
    other = [["artifact size", fmt_bytes(cell.get("artifact_bytes"))]]
    if mem:
        other += [["RSS after load", fmt_mib(mem.get("rss_after_load"))],
                  ["process peak RSS", fmt_mib(mem.get("process_peak_rss"))]]
        if mem.get("gpu_peak") is not None:
            other.append(["GPU peak", fmt_mib(mem.get("gpu_peak"))])
    lock = lockin_of(document, cell)
    other.append(["lock-in score", fmt_g(lock.get("score"), 3) if lock else "—"])
    sections.append(["size, memory, lock-in", other])
    loc = _localization_text(cell.get("localization"))
    if loc:
        sections.append(["localisation", [["where the error starts", loc]]])
    if cell.get("warnings"):
        sections.append(["warnings", [[str(i + 1), str(w)] for i, w in enumerate(cell["warnings"])]])
    return {"title": f"{cell['model']} × {label(cell)}", "status": cell["status"], "mark": mark(cell["status"]),
            "css": status_css(cell["status"]), "headline": figure(cell),
            "message": None if err.get("message") is None else str(err["message"]),
            "sections": sections, "href": href}


# --- page skeleton -----------------------------------------------------------------------------------------------

def _page(title: str, body: str, script: str = "", data: Any = None) -> str:
    data_block = (f'<script type="application/json" id="cc-data">{_script_json(data)}</script>\n'
                  if data is not None else "")
    script_block = f"<script>{script}</script>\n" if script else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(_CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"{data_block}{script_block}</body>\n</html>\n")


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs)
    return f'<dl class="kv">{items}</dl>'


def _table(headers: list[str], rows: list[list[Any]], numeric: Iterable[int] = ()) -> str:
    """A plain table; `rows` hold text (escaped here). Columns in `numeric` align right."""
    num = set(numeric)
    head = "".join(f'<th{" class=num" if i in num else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in num else ""}>{esc(v)}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _badge(status: str) -> str:
    return f'<span class="badge {status_css(status)}">{esc(mark(status))} {esc(status)}</span>'


def _status_counts(cells: list[Cell]) -> Counter:
    return Counter(c["status"] for c in cells)


def _chips(counts: Counter) -> str:
    order = [s.value for s in Status] + sorted(set(counts) - {s.value for s in Status})
    return '<div class="chips">' + "".join(
        f'<span class="chip {status_css(s)}">{esc(mark(s))} {esc(s)} <b>{counts[s]}</b></span>'
        for s in order if counts.get(s)) + "</div>"


def _legend() -> str:
    """The marks, once each, with every status that uses them (several failures share ✘)."""
    by_mark: dict[str, list[str]] = defaultdict(list)
    for status, (sign, _) in STYLE.items():
        by_mark[sign].append(status)
    items = "".join(f'<span><span class="mark {status_css(names[0])}">{esc(sign)}</span> {esc(", ".join(names))}'
                    "</span>" for sign, names in by_mark.items())
    return (f'<div class="legend">{items}<span><span class="warnmark">*</span> the cell has warnings</span>'
            '<span>figures: p50 latency of a pass, max_abs of a mismatch, the op or stage of a failure</span></div>')


# --- charts (inline SVG) -----------------------------------------------------------------------------------------

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


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: float, height: float, body: str, title: str) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{esc(title)}">'
            f"<title>{esc(title)}</title>{body}</svg>")


def latency_panel(model: str, cells: list[Cell]) -> str | None:
    """One model's p50 latency per route (bars on a log axis, p90 as a whisker); None if nothing ran."""
    ran = [(c, _num((c.get("latency_ms") or {}).get("p50"))) for c in cells]
    ran = sorted([(c, v) for c, v in ran if v is not None and v > 0], key=lambda item: item[1])
    if not ran:
        return None
    label_w, value_w, bar_w, row_h, top = 236, 74, 230, 17, 4
    p90s = [_num((c.get("latency_ms") or {}).get("p90")) or v for c, v in ran]
    scale = LogScale([v for _, v in ran] + p90s, label_w, bar_w)
    height = top + row_h * len(ran) + 22
    body = [_axis(scale, top, top + row_h * len(ran), _ms_tick)]
    for i, ((cell, p50), p90) in enumerate(zip(ran, p90s)):
        y = top + i * row_h
        colour = _BAR_COLOUR[status_css(cell["status"])]
        x_end, x90 = scale.x(p50), scale.x(max(p90, p50))
        noisy = bool((cell.get("latency_ms") or {}).get("noisy"))
        tip = (f"{model} × {label(cell)}: p50 {fmt_ms(p50)}, p90 {fmt_ms(p90)} ({cell['status']})"
               + (" — noisy" if noisy else ""))
        body.append(
            f"<g><title>{esc(tip)}</title>"
            f'<text class="lbl" x="{label_w - 6}" y="{y + 12}" text-anchor="end">{esc(_clip(label(cell), 38))}</text>'
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


def _parity_ok(cell: Cell) -> bool:
    return bool((cell.get("parity") or {}).get("ok", cell["status"] == Status.PASS.value))


def parity_chart(rows: dict[str, list[Cell]]) -> str | None:
    """max_abs of every cell that ran, one line per route [target], log axis, the row's atol marked.

    A max_abs beyond the axis (1e4) or missing on a failed comparison (NaN/Inf outputs are written as
    null) is drawn as a triangle on the right edge: off the scale, not off the chart."""
    data = {r: [c for c in cs if c.get("parity") and (_num(c["parity"].get("max_abs")) is not None
                                                      or not _parity_ok(c))] for r, cs in rows.items()}
    data = {r: cs for r, cs in data.items() if cs}
    if not data:
        return None
    label_w, plot_w, right_w, row_h, top = 270, 560, 250, 22, 6
    x0 = label_w + 12  # room for a mark of an exact (0) result left of the first decade
    tols = {r: _row_tolerance(cs) for r, cs in data.items()}
    values = [_num(c["parity"].get("max_abs")) or 0.0 for cs in data.values() for c in cs]
    values += [_num(t.get("atol")) or 0.0 for t in tols.values() if t and t.get("check") != "snr"]
    scale = LogScale(values, x0, plot_w, min_decades=3, floor=1e-10, ceil=1e4)
    ceiling = 10.0 ** scale.hi
    height = top + row_h * len(data) + 24
    body = [_axis(scale, top, top + row_h * len(data), lambda e: f"1e{e}")]
    for i, (row, cs) in enumerate(data.items()):
        y = top + i * row_h + row_h / 2
        tol = tols[row] or {}
        body.append(f'<line class="track" x1="{label_w}" x2="{x0 + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="lbl" x="{label_w - 6}" y="{y + 4:.1f}" text-anchor="end">'
                    f"<title>{esc(row)}</title>{esc(_clip(row, 42))}</text>")
        atol = _num(tol.get("atol"))
        if tol.get("check") != "snr" and atol:
            tx = scale.x(atol)
            body.append(f'<g><title>{esc(f"{row}: tolerance {_tolerance_text(tol)}")}</title>'
                        f'<rect x="{tx - 1.5:.1f}" y="{y - 8:.1f}" width="3" height="16" fill="#1f2328"/></g>')
        failing = []
        for c in sorted(cs, key=_parity_ok, reverse=True):  # failures drawn last, on top
            v, ok = _num(c["parity"].get("max_abs")), _parity_ok(c)
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
        finite = [v for v in (_num(c["parity"].get("max_abs")) for c in cs) if v is not None]
        snrs = [v for v in (_num(c["parity"].get("snr_db")) for c in cs) if v is not None]
        if tol.get("check") == "snr":  # the bound is on SNR: its worst figure is the one to read
            right = f"SNR ≥ {fmt_g(tol.get('min_snr_db'))} dB · worst " + (f"{min(snrs):.1f} dB" if snrs else "—")
        else:
            right = f"worst {fmt_g(max(finite), 2)}" if finite else "worst: non-finite"
        if failing:
            right += f" · ✘ {', '.join(failing)}"
        fill = ' class="bad"' if failing else ""
        body.append(f'<text x="{x0 + plot_w + 10}" y="{y + 4:.1f}"{fill}><title>{esc(right)}</title>'
                    f"{esc(_clip(right, 44))}</text>")
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


def _contributions(lock: dict[str, Any]) -> list[tuple[str, float, float, float, str]]:
    """(factor, weight, value, points of the 0..100 score, evidence): the points add up to the score."""
    factors = {k: f for k, f in (lock.get("factors") or {}).items() if isinstance(f, dict)}
    total = sum(_num(f.get("weight")) or 0.0 for f in factors.values())
    out = []
    for name, f in factors.items():
        w, v = _num(f.get("weight")) or 0.0, _num(f.get("value")) or 0.0
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
    ordered = sorted(routes.items(), key=lambda kv: (_num(kv[1].get("score")) or 0.0, kv[0]))
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
                    f"{esc(_clip(route, 34))}</text>")
        x = float(label_w)
        for name, w, v, points, evidence in _contributions(lock):
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


# --- the matrix page ---------------------------------------------------------------------------------------------

def _breakable(name: str) -> str:
    """Escaped, with line-break chances after `_` and `/` so a column header wraps at word parts."""
    return esc(name).replace("_", "_<wbr>").replace("/", "/<wbr>")


def _grid(cells: list[Cell]) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    models = list(dict.fromkeys(c["model"] for c in cells))
    rows = list(dict.fromkeys(label(c) for c in cells))
    return models, rows, {(label(c), c["model"]): c for c in cells}


def _run_header(document: dict[str, Any], title: str) -> str:
    run = document.get("run") or {}
    host = run.get("host") or {}
    finished = run.get("finished")
    settings = run.get("settings") or {}
    gpus = ", ".join(map(str, host.get("gpus") or [])) or "no GPU"
    state = f"finished {_date(finished)}" if finished else "unfinished (still running, or killed)"
    facts = [f"run {run.get('id', '—')}", f"started {_date(run.get('started'))}", state,
             f"host {host.get('hostname', '—')}: {host.get('cpu', '—')}, {host.get('cores', '—')} cores, {gpus}"]
    # Only what the document says: an older or hand-made run lacks settings, and "size —" tells nobody anything.
    facts += [text for key, text in (("size", f"size {settings.get('size')}"),
                                     ("samples", f"{settings.get('samples')} samples")) if settings.get(key) is not None]
    if run.get("convcheck_version"):
        facts.append(f"convcheck {run['convcheck_version']}")
    return f"<h1>{esc(title)}</h1>\n<p class=\"meta\">" + "".join(f"<span>{esc(f)}</span>" for f in facts) + "</p>"


def _matrix_table(document: dict[str, Any], cells: list[Cell], pages: dict[str, str]) -> tuple[str, dict[str, Any]]:
    models, rows, grid = _grid(cells)
    row_cells: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        row_cells[label(c)].append(c)
    details: dict[str, Any] = {}
    head = ['<th class="rowhead" data-sortable><button class="sort" type="button">route [target]</button></th>',
            '<th class="nowrap" data-sortable title="lock-in score of the route, 0 (open) .. 100 (locked in)">'
            '<button class="sort" type="button">lock-in</button></th>',
            '<th class="nowrap" data-sortable title="cells that passed / cells in the row">'
            '<button class="sort" type="button">'
            "passed</button></th>"]
    for m in models:
        head.append(f'<th data-sortable><button class="sort" type="button" title="sort the rows by this model">'
                    f'{_breakable(m)}</button><a class="page" href="models/{esc(pages[m])}">page</a></th>')
    body = []
    for r, row in enumerate(rows):
        lock = lockin_of(document, row_cells[row][0])
        score = _num(lock.get("score")) if lock else None
        passed = sum(c["status"] == "pass" for c in row_cells[row])
        bar = "" if score is None else f' style="--v:{min(max(score, 0), 100):.0f}%"'
        tds = [f'<th class="rowhead" scope="row" data-sort="{esc(row)}">{esc(row)}</th>',
               f'<td class="lock" data-sort="{"" if score is None else score}"{bar}>'
               f'{"—" if score is None else esc(fmt_g(score, 3))}</td>',
               f'<td class="ran" data-sort="{passed}">{passed}/{len(row_cells[row])}</td>']
        for m_i, m in enumerate(models):
            c = grid.get((row, m))
            if c is None:
                tds.append('<td class="empty" data-sort=""><span class="sr">not in this run</span></td>')
                continue
            key = f"{r}-{m_i}"
            href = f"models/{pages[m]}#{cell_anchor(c)}"
            details[key] = cell_detail(document, c, href)
            warn = '<span class="warnmark" title="this cell has warnings">*</span>' if c.get("warnings") else ""
            fig = figure(c)
            tds.append(
                f'<td class="cell {status_css(c["status"])}" data-key="{key}" data-status="{esc(c["status"])}" '
                f'data-group="{group(c["status"])}" data-sort="{sort_value(c)}">'
                f'<a href="{esc(href)}" title="{esc(m)} × {esc(row)}: {esc(c["status"])}">'
                f'<span class="st">{esc(mark(c["status"]))} {esc(c["status"])}</span>{warn}'
                + (f'<br><span class="fig">{esc(fig)}</span>' if fig else "") + "</a></td>")
        body.append(f'<tr data-label="{esc(row)}" data-order="{r}">{"".join(tds)}</tr>')
    table = (f'<div class="wrap"><table class="matrix" id="matrix"><thead><tr>{"".join(head)}</tr></thead>'
             f'<tbody>{"".join(body)}</tbody></table>'
             '<p id="nomatch" class="muted hidden">No row matches the filter.</p></div>')
    return table, details


def _controls(counts: Counter) -> str:
    options = [("all", "every status"), ("failure", "failures"), ("pass", "passes"), ("notrun", "could not run here")]
    options += [(s, s) for s in sorted(counts)]
    opts = "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in options)
    return ('<div class="controls"><label>Filter <input type="search" id="filter" '
            'placeholder="a route (tflite) or a model (resnet)" autocomplete="off"></label>'
            f'<label>Status <select id="status-filter">{opts}</select></label>'
            '<span id="shown" class="muted small"></span>'
            '<span class="muted small">Click a column header to sort, a cell for its detail.</span></div>')


def _failure_list(cells: list[Cell], models: list[str], rows: list[str], pages: dict[str, str]) -> str:
    failed = [c for c in cells if group(c["status"]) == "failure"]
    if not failed:
        return '<p class="muted">No cell failed.</p>'
    items = []
    for c in failed:
        err = c.get("error") or {}
        key = f"{rows.index(label(c))}-{models.index(c['model'])}"
        href = f"models/{pages[c['model']]}#{cell_anchor(c)}"
        why = f"{c['status']} at {err.get('stage') or '?'}: {_first_line(err.get('message')) or 'no message'}"
        items.append(f'<li data-key="{key}">{_badge(c["status"])} <a href="{esc(href)}">{esc(c["model"])} × '
                     f'{esc(label(c))}</a> — <span class="why">{esc(why)}</span></li>')
    return f'<ul class="fails" id="failures">{"".join(items)}</ul>'


def _reason_key(message: Any) -> str:
    """The part of a could-not-run message shared by its cells (what follows is per-cell detail)."""
    text = _first_line(message, 400)
    cut = min([i for i in (text.find(";"), text.find(". ")) if i > 0] or [len(text)])
    return text[:cut]


def _not_here_list(cells: list[Cell]) -> str:
    skipped = [c for c in cells if c["status"] in NOT_HERE]
    if not skipped:
        return ""
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in skipped:
        groups[(c["status"], _reason_key((c.get("error") or {}).get("message")))].append(c)
    items = []
    for (status, reason), cs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        example = _first_line((cs[0].get("error") or {}).get("message"), 400)
        routes = ", ".join(dict.fromkeys(label(c) for c in cs))
        items.append(f"<li>{_badge(status)} <b>{_plural(len(cs), 'cell')}</b> — {esc(reason or 'no reason given')}"
                     f'<br><span class="muted small">routes: {esc(routes)}</span>'
                     f'<br><span class="muted small">e.g.: {esc(example)}</span></li>')
    counts = _status_counts(skipped)
    summary = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    return (f"<details><summary><b>{_plural(len(skipped), 'cell')} could not run on this machine</b> ({esc(summary)}): "
            f'not failures, stated reasons</summary><ul class="fails">{"".join(items)}</ul></details>')


def _models_table(cells: list[Cell], pages: dict[str, str]) -> str:
    by_model: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        by_model[c["model"]].append(c)
    rows = []
    for m, cs in by_model.items():
        kinds = Counter(group(c["status"]) for c in cs)
        fastest = min(((_num((c.get("latency_ms") or {}).get("p50")), label(c)) for c in cs
                       if c["status"] == "pass" and _num((c.get("latency_ms") or {}).get("p50")) is not None),
                      default=None)
        best = f"{fmt_ms(fastest[0])} ({fastest[1]})" if fastest else "—"
        rows.append(f'<tr><td><a href="models/{esc(pages[m])}">{esc(m)}</a></td><td class="num">{kinds["pass"]}</td>'
                    f'<td class="num">{kinds["failure"]}</td><td class="num">{kinds["notrun"]}</td>'
                    f"<td>{esc(best)}</td></tr>")
    return ('<table class="grid"><thead><tr><th>model</th><th class="num">passed</th><th class="num">failed</th>'
            '<th class="num">not run here</th><th>fastest passing route (p50)</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _environment(document: dict[str, Any]) -> str:
    run = document.get("run") or {}
    host = run.get("host") or {}
    mem = _num(host.get("memory_bytes"))
    host_pairs = [("hostname", host.get("hostname")), ("cpu", host.get("cpu")), ("cores", host.get("cores")),
                  ("memory", fmt_bytes(mem) if mem else "—"), ("GPUs", ", ".join(map(str, host.get("gpus") or [])) or "none"),
                  ("os", host.get("os")), ("python", host.get("python")),
                  ("convcheck", run.get("convcheck_version"))]
    settings = run.get("settings") or {}
    set_pairs = [(k, fmt_value(v)) for k, v in settings.items() if k not in ("models", "routes")]
    set_pairs += [(k, f"{len(settings[k])}: {', '.join(map(str, settings[k]))}") for k in ("models", "routes")
                  if isinstance(settings.get(k), list)]
    packages = run.get("packages") or {}
    pkg = _table(["package", "version"], [[k, v] for k, v in sorted(packages.items())]) if packages else \
        '<p class="muted">No package versions recorded.</p>'
    snapshot = (document.get("lockin") or {}).get("data_snapshot") or {}
    lock = ""
    if snapshot:
        # Sources are shown as text, never as links: the report loads and links nothing outside itself.
        sources = "".join(f"<li>{esc(fmt_value(s))}</li>" for s in snapshot.get("sources") or [])
        lock = (f"<h3>Lock-in data snapshot</h3><p>dated {esc(snapshot.get('date', '—'))}</p>"
                f'<ul class="small">{sources}</ul>')
    return (f'<div class="cols"><div><h3>Host</h3>{_kv((k, fmt_value(v)) for k, v in host_pairs)}</div>'
            f"<div><h3>Packages</h3>{pkg}</div>"
            f'<div style="max-width:560px"><h3>Settings</h3>{_kv(set_pairs)}</div></div>{lock}')


def _latency_section(cells: list[Cell], models: list[str]) -> str:
    panels, options = [], ['<option value="all">all models</option>']
    for i, m in enumerate(models):
        svg = latency_panel(m, [c for c in cells if c["model"] == m])
        if svg is None:
            continue
        options.append(f'<option value="{i}">{esc(m)}</option>')
        panels.append(f'<figure class="panel" data-model="{i}"><figcaption>{esc(m)}</figcaption>{svg}</figure>')
    if not panels:
        return '<p class="muted">No cell ran: no latency to chart.</p>'
    return ('<p class="note">p50 per route [target], fastest first, one panel per model, log scale (each panel its '
            'own); the black whisker reaches p90. Green: passed; red: ran but failed parity; pale: noisy figure '
            f'(<b>~</b>). <label>Show <select id="lat-model">{"".join(options)}</select></label></p>'
            f'<div class="charts" id="latency-panels">{"".join(panels)}</div>')


def render_matrix_html(document: dict[str, Any]) -> str:
    """The run's page: header, matrix, failures, charts, environment. Links to `models/<page>.html`."""
    cells = [c for c in document.get("cells") or [] if isinstance(c, dict)]
    run_id = (document.get("run") or {}).get("id", "—")
    models, rows, _ = _grid(cells)
    pages = {m: model_page_name(m) for m in models}
    counts = _status_counts(cells)
    table, details = _matrix_table(document, cells, pages)
    row_cells: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        row_cells[label(c)].append(c)
    parity = parity_chart(row_cells)
    lockin = lockin_chart(document, cells)
    failures = sum(counts[s] for s in counts if group(s) == "failure")
    body = [
        _run_header(document, f"convcheck matrix — run {run_id}"),
        '<nav class="toc"><a href="#matrix-sec">Matrix</a><a href="#failures-sec">Failures</a>'
        '<a href="#latency-sec">Latency</a><a href="#parity-sec">Parity</a><a href="#lockin-sec">Lock-in</a>'
        '<a href="#models-sec">Models</a><a href="#env-sec">Environment</a></nav>',
        f"<p><b>{_plural(len(cells), 'cell')}</b>: {_plural(len(models), 'model')} × {len(rows)} routes [targets]; "
        f"<b>{counts['pass']}</b> passed, <b>{failures}</b> failed, "
        f"<b>{sum(counts[s] for s in NOT_HERE)}</b> could not run on this machine.</p>",
        _chips(counts),
        '<h2 id="matrix-sec">Matrix</h2>', _legend(), _controls(counts), table,
        f'<h2 id="failures-sec">Failures ({failures})</h2>', _failure_list(cells, models, rows, pages),
        _not_here_list(cells),
        '<h2 id="latency-sec">Latency per route</h2>', _latency_section(cells, models),
        '<h2 id="parity-sec">Parity error per route</h2>',
        ('<p class="note">max |converted − reference| of each model (one mark per model; hover for its name), '
         'log scale. <span style="color:#2da44e">●</span> within tolerance, <span style="color:#cf222e">✘</span> '
         'outside it, ○ exact (0). The black bar is the row\'s atol (elementwise check: |a − r| ≤ atol + rtol·|r|); '
         'rows checked by SNR name their bound on the right.</p>' + parity) if parity
        else '<p class="muted">No cell ran: no parity to chart.</p>',
        '<h2 id="lockin-sec">Lock-in per route</h2>',
        ('<p class="note">Score 0 (open) .. 100 (locked in) = 100 × Σ weight·value / Σ weight; each segment is one '
         "factor's share of it. Hover a segment for its evidence.</p>" + lockin) if lockin
        else '<p class="muted">— no lock-in scores in this document (the run predates lock-in scoring).</p>',
        f'<h2 id="models-sec">Models</h2>{_models_table(cells, pages)}',
        f'<h2 id="env-sec">Environment</h2>{_environment(document)}',
        '<aside id="detail" hidden aria-live="polite"></aside>',
        f'<footer>convcheck HTML report, schema {esc(document.get("schema_version", "—"))}. '
        "Self-contained: this file loads nothing from the network.</footer>",
    ]
    data = {"models": [{"name": m, "page": pages[m]} for m in models], "firstModelColumn": 3, "cells": details}
    return _page(f"convcheck matrix — run {run_id}", "\n".join(body), MATRIX_JS, data)


# --- the model page ----------------------------------------------------------------------------------------------

def ladder(cell: Cell) -> list[dict[str, Any]]:
    """The six user-facing steps, each `ok` / `failed` / `not reached` / `n/a` / `same`, with seconds."""
    stages = [s for s in cell.get("stages") or [] if isinstance(s, dict) and "stage" in s]
    by_name = {s["stage"]: s for s in stages}
    converts = [s for s in stages if str(s["stage"]).startswith("convert:")]
    hops = list(cell.get("steps") or [])
    err_stage = str((cell.get("error") or {}).get("stage") or "")
    first_hop = f"convert:{hops[0]}" if hops else (converts[0]["stage"] if converts else None)

    def state(entries: list[dict[str, Any]], expected: int, failed_here: bool) -> dict[str, Any]:
        secs = sum(_num(e.get("seconds")) or 0.0 for e in entries) if entries else None
        if failed_here or any(e.get("ok") is False for e in entries):
            return {"state": "failed", "seconds": secs}
        if entries and len(entries) >= expected:
            return {"state": "ok", "seconds": secs}
        return {"state": "not reached", "seconds": secs}

    steps: dict[str, dict[str, Any]] = {}
    if not hops and not converts:
        steps["exported"] = steps["converted"] = {"state": "n/a", "seconds": None}
    else:
        first = [s for s in converts if s["stage"] == first_hop]
        steps["exported"] = state(first, 1, err_stage == first_hop)
        later = [s for s in converts if s["stage"] != first_hop]
        if len(hops) <= 1 and not later:
            steps["converted"] = {"state": "same", "seconds": None}
        else:
            late_fail = err_stage.startswith("convert:") and err_stage != first_hop
            steps["converted"] = state(later, max(len(hops) - 1, 1), late_fail)
    for stage, step in _STAGE_STEP.items():
        steps[step] = state([by_name[stage]] if stage in by_name else [], 1, err_stage == stage)
    return [{"step": name, **steps[name]} for name in LADDER]


_LADDER_STYLE = {"ok": ("✔", "s-pass"), "failed": ("✘", "s-fail"), "not reached": ("·", "s-skip"),
                 "n/a": ("n/a", "s-skip"), "same": ("=", "s-skip")}


def _ladder_html(cell: Cell) -> str:
    items = []
    steps = ladder(cell)
    for step in steps:
        sign, css = _LADDER_STYLE[step["state"]]
        name = step["step"]
        if step["state"] == "same":  # a one-hop route: "converted" is the export, shown in its colour
            css = _LADDER_STYLE[steps[0]["state"]][1]
            name = "converted (= exported)"
        note = {"same": "one hop: the same step as exported",
                "n/a": "no conversion: the source runs as is"}.get(step["state"], step["state"])
        secs = f'<span class="secs">{esc(fmt_s(step["seconds"]))}</span>' if step["seconds"] is not None else ""
        items.append(f'<li class="{css}" title="{esc(note)}">{esc(sign)} {esc(name)}'
                     f'<span class="sr"> ({esc(step["state"])})</span>{secs}</li>')
    err = cell.get("error") or {}
    if cell["status"] == "pass":
        stopped = '<p class="stopped s-pass">Went through every stage.</p>'
    else:
        op = f", op <code>{esc(err['op'])}</code>" if err.get("op") else ""
        stopped = (f'<div class="stopped">Stopped at <b>{esc(err.get("stage") or "?")}</b>{op}: '
                   f'{_badge(cell["status"])}<pre>{esc(err.get("message") or "no message")}</pre></div>')
    ref = next((s for s in cell.get("stages") or [] if isinstance(s, dict) and s.get("stage") == "reference"), None)
    ref_note = (f'<p class="muted small">reference outputs from {esc(cell.get("reference") or "the source")}'
                f' in {esc(fmt_s(ref.get("seconds")))}</p>') if ref else ""
    return f'<ol class="ladder">{"".join(items)}</ol>{ref_note}{stopped}'


_PARITY_FIELDS = ("max_abs", "max_rel", "mean_abs", "rms", "cosine", "snr_db", "psnr_db", "top1_agreement",
                  "top5_agreement", "exact_match")


def _parity_html(par: dict[str, Any]) -> str:
    tol = par.get("tolerance") or {}
    head = [("verdict", "within tolerance" if par.get("ok") else "outside tolerance"),
            ("tolerance", _tolerance_text(tol)), ("samples", par.get("samples")),
            ("worst sample", par.get("worst_sample"))]
    mp = par.get("min_passing") or {}
    if mp:
        head.append(("smallest passing bounds", ", ".join(f"{k} {fmt_g(v)}" for k, v in mp.items())))
    nf = par.get("noise_floor") or {}
    if nf:
        head.append(("noise floor", f"{nf.get('reference', 'fp64')}: max_abs {fmt_g(nf.get('max_abs'))}"))
    if tol.get("raised_by_noise_floor"):
        head.append(("atol raised by noise floor", fmt_value(tol["raised_by_noise_floor"])))
    rows = []
    for name, o in (par.get("per_output") or {}).items():
        o = o if isinstance(o, dict) else {}
        rows.append([name, "x".join(map(str, o.get("shape") or [])) or "—", o.get("dtype") or "—",
                     "ok" if o.get("ok") else "FAIL", *[fmt_g(o.get(f), 4) for f in _PARITY_FIELDS[:6]],
                     fmt_g(o.get("min_atol")), o.get("problem") or ""])
    table = _table(["output", "shape", "dtype", "ok", "max_abs", "max_rel", "mean_abs", "rms", "cosine", "SNR dB",
                    "min atol", "problem"], rows, numeric=range(4, 11)) if rows else ""
    overall = ", ".join(f"{f} {fmt_g(par.get(f), 4)}" for f in _PARITY_FIELDS if _num(par.get(f)) is not None)
    return f"{_kv(head)}<p class=\"small\">worst output: {esc(overall or '—')}</p>{table}"


def _latency_html(cell: Cell) -> str:
    lat = cell.get("latency_ms") or {}
    t = cell.get("timings_s") or {}
    pairs = []
    if lat:
        pairs += [(k, fmt_ms(lat.get(k))) for k in ("p50", "p90", "p99", "mean", "min", "max")]
        pairs += [("stdev / cv", f"{fmt_ms(lat.get('stdev'))} / {fmt_pct(lat.get('cv'))}"),
                  ("timed calls", f"{lat.get('n', '—')} (after {lat.get('warmup', '—')} warm-up)"),
                  ("batch", fmt_value(lat.get("batch"))), ("threads", fmt_value(lat.get("threads")))]
        if lat.get("noisy"):
            pairs.append(("noisy", "yes: compare with care"))
    pairs += [(f"{k.replace('_', ' ')} time", fmt_s(t.get(k))) for k in ("reference", "convert", "load",
                                                                         "first_inference") if k in t]
    return _kv(pairs) if pairs else '<p class="muted">—</p>'


def _memory_html(cell: Cell) -> str:
    mem = cell.get("memory_mb") or {}
    pairs = [(k.replace("_", " "), fmt_mib(v)) for k, v in mem.items()]
    pairs.append(("artifact size", fmt_bytes(cell.get("artifact_bytes"))))
    return _kv(pairs)


def _artifacts_html(cell: Cell) -> str:
    rows = []
    for a in cell.get("artifacts") or []:
        if not isinstance(a, dict):
            continue
        meta = a.get("metadata") or {}
        facts = ", ".join(f"{k} {fmt_value(meta[k])}" for k in ("opset", "exporter", "producer", "nodes", "precision",
                                                                  "quantization") if meta.get(k) is not None)
        rows.append([a.get("hop", "—"), a.get("converter", "—"), a.get("format", "—"), "ok" if a.get("ok") else "failed",
                     fmt_bytes(a.get("bytes")), fmt_s(a.get("seconds")), str(a.get("sha256") or "")[:12], facts])
    return _table(["hop", "converter", "format", "ok", "size", "time", "sha256", "metadata"], rows,
                  numeric=(4, 5)) if rows else ""


def _localization_html(loc: Any) -> str:
    if not isinstance(loc, dict):
        return ""
    lead = (f"<p><b>{esc(loc.get('summary') or 'found')}</b></p>" if loc.get("found")
            else f"<p>Not found: {esc(loc.get('reason') or 'no reason given')}</p>")
    keep = [(k, fmt_s(v) if k == "seconds" else fmt_value(v)) for k, v in loc.items()
            if k not in ("summary", "reason", "found", "tolerance")]
    return f"{lead}{_kv(keep)}"


def _precheck_html(pre: Any) -> str:
    if not isinstance(pre, dict):
        return ""
    pairs = [(k, fmt_value(pre[k])) for k in ("verdict", "unsupported", "restricted", "opset") if k in pre]
    checks = [[c.get("name", "—"), "ok" if c.get("ok") else "FAIL", c.get("detail", "")]
              for c in pre.get("checks") or [] if isinstance(c, dict)]
    ops = pre.get("ops")
    if isinstance(ops, dict):
        pairs.append(("ops", ", ".join(f"{k} {v}" for k, v in ops.items())))
    src = pre.get("list")
    if isinstance(src, dict):
        pairs.append(("support list", fmt_value(src)))  # text only: the report links nothing outside itself
    return _kv(pairs) + (_table(["check", "ok", "detail"], checks) if checks else "")


def route_packages(cell: Cell, packages: dict[str, Any]) -> dict[str, Any]:
    """run.packages narrowed to what the cell's route touches, plus numpy; all of them if none match."""
    tokens = [cell.get("source"), *(cell.get("steps") or []), cell.get("runtime"), *str(cell["route"]).split("/")]
    wanted = {"numpy"} | {p for t in tokens if t for p in _TOKEN_PACKAGES.get(str(t), ())}
    if "keras" in tokens and "onnx" in tokens:
        wanted.add("tf2onnx")
    picked = {k: v for k, v in packages.items() if k in wanted}
    return picked if len(picked) > 1 or not packages else dict(packages)


def _lockin_table(lock: dict[str, Any] | None) -> str:
    if not lock:
        return '<p class="muted">— (no lock-in score in this document)</p>'
    rows = [[name, fmt_g(w), fmt_g(v), f"{pts:.1f}", ev] for name, w, v, pts, ev in _contributions(lock)]
    return (f'<p>score <b>{esc(fmt_g(lock.get("score"), 3))}</b> / 100 (0 open, 100 locked in)</p>'
            + _table(["factor", "weight", "value", "points", "evidence"], rows, numeric=(1, 2, 3)))


def _cell_section(document: dict[str, Any], cell: Cell) -> str:
    packages = route_packages(cell, (document.get("run") or {}).get("packages") or {})
    rs = cell.get("runtime_settings") or {}
    parts = [f'<section class="cellsec" id="{esc(cell_anchor(cell))}">'
             f"<h3>{esc(label(cell))} {_badge(cell['status'])}"
             f'<span class="muted small">{esc(" → ".join(map(str, cell.get("converters") or cell.get("steps") or [])) or "no conversion")}'
             f' · runtime {esc(cell.get("runtime", "—"))}</span></h3>', _ladder_html(cell)]
    if cell.get("warnings"):
        parts.append("<h4>Warnings</h4><ul>" + "".join(f"<li>{esc(w)}</li>" for w in cell["warnings"]) + "</ul>")
    if cell.get("localization"):
        parts.append(f"<h4>Localisation</h4>{_localization_html(cell['localization'])}")
    if cell.get("precheck"):
        parts.append(f"<h4>Static pre-check</h4>{_precheck_html(cell['precheck'])}")
    if cell.get("parity"):
        parts.append(f"<h4>Parity</h4>{_parity_html(cell['parity'])}")
    versions = (f"<div><h4>Tool versions</h4>{_kv(sorted(packages.items())) if packages else '—'}"
                + (f"<h4>Runtime settings</h4>{_kv((k, fmt_value(v)) for k, v in rs.items())}" if rs else "")
                + "</div>")
    started = any(v is not None for v in (cell.get("timings_s") or {}).values()) or any(
        cell.get(k) for k in ("latency_ms", "memory_mb", "artifact_bytes", "stages"))
    # A cell stopped at plan has no figures: its page shows the versions, not a column of dashes.
    figures = (f"<div><h4>Latency and timings</h4>{_latency_html(cell)}</div>"
               f"<div><h4>Memory and size</h4>{_memory_html(cell)}</div>") if started else ""
    parts.append(f'<div class="cols">{figures}{versions}</div>')
    if cell.get("variants"):
        rows = [[n, fmt_g((v.get("parity") or {}).get("max_abs")), fmt_ms((v.get("latency_ms") or {}).get("p50"))]
                for n, v in cell["variants"].items() if isinstance(v, dict)]
        parts.append("<h4>Variants</h4>" + _table(["variant", "max_abs", "p50"], rows, numeric=(1, 2)))
    batches = cell.get("batches") or {}
    if batches.get("per_batch"):
        rows = [[b.get("batch"), fmt_ms((b.get("latency_ms") or {}).get("p50")), _rate(b.get("throughput_per_s")),
                 b.get("error") or ""] for b in batches["per_batch"] if isinstance(b, dict)]
        parts.append("<h4>Batches</h4>" + _table(["batch", "p50", "rows/s", "error"], rows, numeric=(0, 1, 2)))
    elif batches.get("skipped"):
        parts.append(f"<h4>Batches</h4><p>skipped: {esc(batches['skipped'])}</p>")
    if cell.get("artifacts"):
        parts.append(f"<h4>Artifacts</h4>{_artifacts_html(cell)}")
    parts.append(f"<h4>Lock-in of the route</h4>{_lockin_table(lockin_of(document, cell))}")
    if cell.get("log"):
        parts.append(f"<details><summary>Converter log ({len(cell['log'])} lines)</summary>"
                     f"<pre>{esc(chr(10).join(map(str, cell['log'])))}</pre></details>")
    parts.append("</section>")
    return "".join(parts)


def _index_note(cell: Cell) -> str:
    """The route index's last column: where and why a cell stopped, or its warnings."""
    err = cell.get("error") or {}
    if cell["status"] == Status.PASS.value:
        return "; ".join(map(str, cell.get("warnings") or []))
    if cell["status"] in NOT_HERE:
        return _reason_key(err.get("message"))
    return _clip(f"{err.get('stage') or '?'}: {_first_line(err.get('message'))}", 120)


def render_model_html(document: dict[str, Any], model: str) -> str:
    """One model's page, written as `models/<model_page_name(model)>`: per route, the stage ladder and
    where it stopped, parity per output, latency, memory, size, localisation, versions, lock-in."""
    cells = [c for c in document.get("cells") or [] if isinstance(c, dict) and c.get("model") == model]
    run_id = (document.get("run") or {}).get("id", "—")
    counts = _status_counts(cells)
    index = "".join(
        f'<tr><td><a href="#{esc(cell_anchor(c))}">{esc(label(c))}</a></td><td>{_badge(c["status"])}</td>'
        f'<td class="num">{esc(fmt_ms((c.get("latency_ms") or {}).get("p50")))}</td>'
        f'<td class="num">{esc(fmt_g((c.get("parity") or {}).get("max_abs"), 2))}</td>'
        f'<td class="num">{esc(fmt_bytes(c.get("artifact_bytes")))}</td>'
        f'<td class="num">{esc(fmt_g((lockin_of(document, c) or {}).get("score"), 3))}</td>'
        f"<td>{esc(_index_note(c))}</td></tr>" for c in cells)
    chart = latency_panel(model, cells)
    body = [
        '<p class="small"><a href="../matrix.html">← the whole matrix</a></p>',
        _run_header(document, f"{model} — convcheck run {run_id}"),
        _chips(counts) if cells else '<p class="muted">No cell of this model in the run.</p>',
        '<h2>Routes</h2><table class="grid"><thead><tr><th>route [target]</th><th>status</th>'
        '<th class="num">p50</th><th class="num">max_abs</th><th class="num">artifact</th>'
        '<th class="num">lock-in</th><th>stopped at, why</th></tr></thead>'
        f"<tbody>{index}</tbody></table>",
        (f'<h2>Latency</h2><figure class="panel wide">{chart}</figure>' if chart else ""),
        "<h2>Cells</h2>", *[_cell_section(document, c) for c in cells],
        f'<footer>convcheck HTML report, run {esc(run_id)}. Self-contained: this file loads nothing from the '
        "network.</footer>",
    ]
    return _page(f"{model} — convcheck run {run_id}", "\n".join(body))


def write_html_reports(document: dict[str, Any], directory: Path | str) -> list[Path]:
    """Write `matrix.html` and `models/<page>.html` for every model under `directory`; returns the paths."""
    out = Path(directory)
    (out / "models").mkdir(parents=True, exist_ok=True)
    written = [out / "matrix.html"]
    # errors="replace": a lone surrogate in a user's string (valid JSON) must not stop the report.
    written[0].write_text(render_matrix_html(document), encoding="utf-8", errors="replace")
    for model in dict.fromkeys(c["model"] for c in document.get("cells") or [] if isinstance(c, dict)):
        path = out / "models" / model_page_name(model)
        path.write_text(render_model_html(document, model), encoding="utf-8", errors="replace")
        written.append(path)
    return written
