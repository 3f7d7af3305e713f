"""results.json as Markdown: `matrix.md` (the models x routes table) and `models/<page>.md` (one model).

Every string that comes from the document (model, output and op names, error messages, versions)
may come from a user's model, so it goes through `md_escape` exactly once, at the point where it
is placed in the page; the figures convcheck formats itself (numbers, marks) do not need it.
Long texts are clipped here; results.json keeps them whole.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Callable, Iterable
from urllib.parse import quote

from convcheck.reports.terminal import STYLE, headline, row_label
from convcheck.types import Status

#: Could not run here: a stated reason, not a failure of the route.
NOT_HERE = (Status.MISSING_DEP.value, Status.NO_DEVICE.value)

#: What each status means, in a line (the legend of matrix.md).
MEANING = {
    "pass": "converted, ran, every output within tolerance",
    "mismatch": "ran, but an output is outside tolerance (or wrong shape, missing, NaN/Inf)",
    "vacuous": "the comparison proves nothing (constant or input-independent reference)",
    "convert_error": "a converter failed",
    "runtime_error": "the runtime failed to load or run the artifact (or the source model failed)",
    "unsupported": "the converter or runtime lacks an operator",
    "crashed": "the worker died",
    "timeout": "the worker hung past its time limit",
    "oom": "the worker ran out of memory",
    "upstream_failed": "a stage this cell depends on failed elsewhere",
    "internal_error": "a bug in convcheck itself, not a finding about the route (traceback in the cell log; please report it)",
    "missing_dep": "could not run here: a package is not installed (not a failure)",
    "no_device": "could not run here: the device is absent (not a failure)",
}

# Lengths at which a document's text is clipped (with an ellipsis): one line in a list, a table cell.
LINE_LIMIT = 220
CELL_LIMIT = 120
MESSAGE_LIMIT = 600
#: Failing cells listed in matrix.md; the rest are counted (every one is on its model page and in junit.xml).
MAX_FAILURE_LINES = 100
#: Converter log lines kept on a model page (the last ones: the error is usually at the end).
LOG_LINES = 12

# ---------------------------------------------------------------------------------------------
# Escaping: the one function every document string goes through.
# ---------------------------------------------------------------------------------------------

# ANSI colour/cursor sequences (a converter's coloured log) are dropped whole, not just their ESC byte,
# so "\x1b[31mERROR" reads "ERROR" instead of "[31mERROR".
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Line breaks of every kind collapse to one space: a table row must stay on one line.
_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")
# Markdown punctuation that can start emphasis, code, links, headings, tables, strike-through, math or
# a hard break; backslash-escaping is the CommonMark/GFM way and keeps the raw file readable.
_MD_PUNCT = re.compile(r"([\\`*_\[\]#|~$])")
# HTML: entities, not backslashes, because `\<` is not an escape in every renderer; `&` first so an
# entity already in the text (`&lt;`) shows as typed instead of being decoded.
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# At the start of a string (a list item, a line of text), these would open a list or a setext heading:
# `- x`, `+ x`, `1. x`, `1) x`, `===`. (`>` and `#` are escaped everywhere already.)
_LEADING_BLOCK = re.compile(r"^(?:([-+=])|(\d{1,9})([.)])(?=\s|$))")


def _plain(text: Any) -> str:
    """One line of printable text: ANSI sequences, control and bidi-override characters removed
    (U+202E can make a name read backwards), every run of line breaks and tabs one space."""
    s = _ANSI.sub("", str(text))
    s = _BREAKS.sub(" ", s).replace("\t", " ")
    return "".join(ch for ch in s if unicodedata.category(ch) not in ("Cc", "Cf", "Cs") or ch == "\u200d")


def clip(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def md_escape(text: Any, limit: int | None = None) -> str:
    """Any document string made safe as a Markdown table cell and as running text.

    Collapses it to one line, clips it to `limit` characters (before escaping, so an escape is never
    cut in half), then escapes HTML as entities (`<script>` shows as text, also in renderers that
    pass raw HTML through) and Markdown punctuation with backslashes (`|` cannot split a table row).
    """
    if text is None:
        return "—"
    s = clip(_plain(text).strip(), limit)
    s = "".join(_HTML.get(ch, ch) for ch in s)
    s = _MD_PUNCT.sub(r"\\\1", s)
    return _LEADING_BLOCK.sub(lambda m: "\\" + m[1] if m[1] else m[2] + "\\" + m[3], s)


def _url(path: str) -> str:
    """A relative link target: percent-encoded, so a space or `)` cannot end the link early."""
    return quote(path, safe="/._-~")


def _page(link: Callable[[str], str], model: str) -> str:
    """The relative link to a model's page: `models/<page>.md`. `link` may name the page with an
    extension (`convcheck.reports.html.model_page_name` gives `name-hash.html`): it is swapped for
    `.md`, so matrix.md, the HTML report and the Markdown pages share one naming rule."""
    name = re.sub(r"\.(html?|md)$", "", link(model))
    return _url(f"models/{name}.md")


def _default_link(model: str) -> str:
    """The page name of a model (`models/<name>.md`) when the caller gives none: lowercase, and
    anything but letters, digits, `_`, `.`, `-` replaced by `_` (no `/`: the page stays in models/)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model.lower())


# ---------------------------------------------------------------------------------------------
# Figures convcheck formats itself.
# ---------------------------------------------------------------------------------------------


def _num(x: Any, spec: str = ".3g") -> str:
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
    return md_escape(x, CELL_LIMIT)


def _ms(x: Any) -> str:
    return "—" if x is None else f"{_num(x)} ms"


def _seconds(x: Any) -> str:
    return "—" if x is None else f"{_num(x)} s"


def _db(x: Any, exact: bool = False) -> str:
    if x is None:
        return "∞ (identical)" if exact else "—"
    return f"{_num(x, '.1f')} dB"


def human_bytes(n: Any) -> str:
    """438502 -> '428.2 KiB' (binary units, as Core ML's package check and most tools print)."""
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - unreachable, keeps the type checker content


def _mark(status: str) -> str:
    return STYLE.get(status, ("?", ""))[0]


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """A GFM table; cells are already escaped (or convcheck's own text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell if cell != "" else " " for cell in row) + " |" for row in rows]
    return lines


def _status_index(status: str) -> int:
    """Status order of the enum (pass, mismatch, vacuous, ...); unknown statuses last."""
    order = [s.value for s in Status]
    return order.index(status) if status in order else len(order)


def _is_failure(status: str) -> bool:
    try:
        return Status(status).is_failure
    except ValueError:
        return True  # a status this convcheck does not know: someone must look at it


def _headline(cell: dict[str, Any]) -> str:
    """The terminal's headline figure; the status itself when a figure is missing from the cell."""
    try:
        return headline(cell)
    except (KeyError, TypeError, ValueError):
        return cell["status"]


def _target(cell: dict[str, Any]) -> str:
    return f"{cell.get('device', '?')} {cell.get('precision', '?')}"


def _label(cell: dict[str, Any]) -> str:
    """row_label from the terminal, tolerant of a cell without device/precision."""
    return row_label({"device": "cpu", "precision": "fp32", **cell})


def _summary_line(document: dict[str, Any]) -> str:
    cells = document.get("cells") or []
    summary = document.get("summary") or {}
    if not summary:
        for c in cells:
            summary[c["status"]] = summary.get(c["status"], 0) + 1
    parts = [f"{n} {md_escape(s)}" for s, n in sorted(summary.items(), key=lambda kv: _status_index(kv[0]))]
    return f"{len(cells)} cells: " + (", ".join(parts) if parts else "none")


# ---------------------------------------------------------------------------------------------
# matrix.md
# ---------------------------------------------------------------------------------------------


def render_matrix_md(document: dict[str, Any], link: Callable[[str], str] | None = None) -> str:
    """matrix.md: the models x routes table, the failing cells, what could not run here, lock-in per
    route, a legend and the environment. `link(model)` names the model's page (`models/<page>.md`)."""
    link = link or _default_link
    run = document.get("run") or {}
    cells = document.get("cells") or []
    out = [f"# convcheck matrix — run {md_escape(run.get('id', '?'))}", ""]
    finished = run.get("finished")
    out.append(f"Started {md_escape(run.get('started', '?'))}, "
               + (f"finished {md_escape(finished)}." if finished else
                  "**not finished** (the run is still going, or was killed: the table holds the cells that finished)."))
    out += ["", _summary_line(document), ""]
    out += _matrix_table(cells, link)
    out += ["", "Each cell: status mark and headline — p50 latency when it passed, max_abs on a mismatch, "
            "else the status; blank: the model has no such route. Model names link to their pages "
            "(stage ladder, parity per output, latency, memory, artifacts).", ""]
    out += _failures_section(cells, link)
    out += _not_here_section(cells)
    out += _lockin_section(document)
    out += _legend()
    out += _environment(run)
    return "\n".join(out).rstrip() + "\n"


def _matrix_table(cells: list[dict[str, Any]], link: Callable[[str], str]) -> list[str]:
    """Routes [target] down, models across, as in the terminal: a zoo has fewer models than routes."""
    if not cells:
        return ["_No cells in this run._"]
    models = list(dict.fromkeys(c["model"] for c in cells))
    rows = list(dict.fromkeys(_label(c) for c in cells))
    grid = {(_label(c), c["model"]): c for c in cells}
    header = ["route [target]"] + [f"[{md_escape(m)}]({_page(link, m)})" for m in models]
    body = []
    for row in rows:
        line = [md_escape(row)]
        for m in models:
            cell = grid.get((row, m))
            line.append("" if cell is None else f"{_mark(cell['status'])} {md_escape(_headline(cell))}")
        body.append(line)
    return _table(header, body)


def _failures_section(cells: list[dict[str, Any]], link: Callable[[str], str]) -> list[str]:
    """Failing cells, worst kinds first (a silent mismatch before a loud convert error), one line each."""
    failed = [c for c in cells if _is_failure(c["status"])]
    order = {m: i for i, m in enumerate(dict.fromkeys(c["model"] for c in cells))}
    failed.sort(key=lambda c: (_status_index(c["status"]), order[c["model"]]))
    out = [f"## Failures ({len(failed)})", ""]
    if not failed:
        return out + ["None: every cell that ran passed.", ""]
    for c in failed[:MAX_FAILURE_LINES]:
        err = c.get("error") or {}
        model = f"[{md_escape(c['model'])}]({_page(link, c['model'])})"
        op = f" (op {md_escape(err['op'], 60)})" if err.get("op") else ""
        out.append(f"- {_mark(c['status'])} **{model}** × {md_escape(_label(c))}: "
                   f"{md_escape(c['status'])} at {md_escape(err.get('stage', '?'))}{op}: "
                   f"{md_escape(err.get('message', ''), LINE_LIMIT)}")
    if len(failed) > MAX_FAILURE_LINES:
        out.append(f"- … and {len(failed) - MAX_FAILURE_LINES} more (each on its model page and in junit.xml)")
    return out + [""]


def _base_reason(cell: dict[str, Any]) -> str:
    """The reason a cell could not run, without the per-cell static-check verdict appended to it, so
    one route's cells share one reason (one line per route, not one per model)."""
    message = (cell.get("error") or {}).get("message") or cell["status"]
    verdict = (cell.get("precheck") or {}).get("verdict")
    if verdict and verdict in message:
        message = message.replace(verdict, "")
    return re.sub(r"\s*Static check:\s*$", "", message.strip()).rstrip(" .;") or cell["status"]


def _precheck_flagged(pre: dict[str, Any]) -> bool:
    """The static check (TensorRT op list, Core ML checks) found a problem the real run would hit."""
    return pre.get("ok") is False or bool(pre.get("unsupported")) or pre.get("opset_supported") is False


def _not_here_section(cells: list[dict[str, Any]]) -> list[str]:
    """Cells that could not run on this machine, grouped by route, status and reason."""
    here = [c for c in cells if c["status"] in NOT_HERE]
    out = [f"## Could not run here ({len(here)})", ""]
    if not here:
        return out + ["None.", ""]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for c in here:
        groups.setdefault((c["route"], c["status"], _base_reason(c)), []).append(c)
    for (route, status, reason), group in groups.items():
        targets = ", ".join(md_escape(t) for t in dict.fromkeys(_target(c) for c in group))
        models = len(dict.fromkeys(c["model"] for c in group))
        line = (f"- {_mark(status)} **{md_escape(route)}** [{targets}] — {len(group)} cell"
                f"{'s' if len(group) != 1 else ''}, {models} model{'s' if models != 1 else ''}: "
                f"{md_escape(status)}: {md_escape(reason, LINE_LIMIT)}")
        checked = [c for c in group if c.get("precheck")]
        if checked:
            flagged = [c for c in checked if _precheck_flagged(c["precheck"])]
            line += f". Static check: {len(checked) - len(flagged)} of {len(checked)} clean"
            if flagged:
                names = ", ".join(md_escape(f"{c['model']} ({_target(c)})", 60) for c in flagged[:6])
                more = f", … {len(flagged) - 6} more" if len(flagged) > 6 else ""
                line += f"; flagged: {names}{more}"
            line += " (details on the model pages)."
        out.append(line)
    return out + [""]


def _top_factors(factors: dict[str, Any], n: int = 3) -> str:
    """The factors that weigh most on the score: weight x value, largest first."""
    def pull(item: tuple[str, Any]) -> float:
        f = item[1] if isinstance(item[1], dict) else {}
        w, v = f.get("weight"), f.get("value")
        return float(w) * float(v) if isinstance(w, (int, float)) and isinstance(v, (int, float)) else 0.0

    ranked = sorted(factors.items(), key=pull, reverse=True)[:n]
    return "; ".join(
        f"{md_escape(name)} {_num((f or {}).get('value'), '.2f')} (w {_num((f or {}).get('weight'), '.3g')})"
        for name, f in ranked) or "—"


def _lockin_section(document: dict[str, Any]) -> list[str]:
    lockin = document.get("lockin")
    out = ["## Lock-in per route", ""]
    routes = (lockin or {}).get("routes") or {}
    if not routes:
        return out + ["— (this run was not scored for lock-in)", ""]
    snap = (lockin or {}).get("data_snapshot") or {}
    if snap.get("date"):
        out += [f"0 = portable, 100 = most locked in; data snapshot {md_escape(snap['date'])}. "
                "Top factors: value (1 = most locked) and weight.", ""]
    rows = []
    def score(entry: Any) -> float:
        value = (entry or {}).get("score") if isinstance(entry, dict) else None
        return float(value) if isinstance(value, (int, float)) else -1.0

    # Most locked-in first: that is the route a reader must think twice about.
    for route, entry in sorted(routes.items(), key=lambda kv: -score(kv[1])):
        entry = entry if isinstance(entry, dict) else {}
        rows.append([md_escape(route), _num(entry.get("score"), ".1f"), _top_factors(entry.get("factors") or {})])
    return out + _table(["route", "score", "top factors"], rows) + [""]


def _legend() -> list[str]:
    out = ["## Legend", ""]
    rows = [[_mark(s.value), md_escape(s.value), MEANING.get(s.value, "")] for s in Status]
    return out + _table(["mark", "status", "meaning"], rows) + [""]


def _environment(run: dict[str, Any]) -> list[str]:
    host = run.get("host") or {}
    out = ["## Environment", ""]
    gpus = host.get("gpus") or []
    mem = host.get("memory_bytes")
    facts = [
        ("host", host.get("hostname")), ("cpu", host.get("cpu")), ("cores", host.get("cores")),
        ("memory", human_bytes(mem) if mem is not None else None),
        ("gpus", ", ".join(map(str, gpus)) if gpus else "none"), ("os", host.get("os")),
        ("python", host.get("python")), ("convcheck", run.get("convcheck_version")),
    ]
    out += [f"- {name}: {v if name == 'memory' else md_escape(v, LINE_LIMIT)}" for name, v in facts if v is not None]
    packages = run.get("packages") or {}
    if packages:
        out += ["", "Packages:", ""]
        out += _table(["package", "version"], [[md_escape(k), md_escape(v)] for k, v in sorted(packages.items())])
    settings = run.get("settings") or {}
    if settings:
        out += ["", "Settings:", ""]
        out += [f"- {md_escape(k)}: {_setting(v)}" for k, v in settings.items()]
    return out + [""]


def _setting(value: Any) -> str:
    """A run setting on one line: lists joined, objects as key=value."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return md_escape(", ".join(map(str, value)) if value else "none", 2 * LINE_LIMIT)
    if isinstance(value, dict):
        return md_escape(", ".join(f"{k}={v}" for k, v in value.items()) or "none", 2 * LINE_LIMIT)
    return md_escape(value, LINE_LIMIT)


# ---------------------------------------------------------------------------------------------
# models/<page>.md
# ---------------------------------------------------------------------------------------------

#: Which installed packages matter to a route: a token of the route (source, hop, runtime, converter)
#: -> distribution names (prefixes) from run.packages. numpy matters to every route.
_ROUTE_PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "eager": ("torch",),
    "exported_program": ("torch",),
    "onnx": ("onnx", "onnxscript"),
    "onnx_legacy": ("onnx",),
    "ort": ("onnxruntime",),
    "openvino": ("openvino",),
    "tvm": ("apache-tvm", "tvm"),
    "tensorrt": ("tensorrt", "polygraphy"),
    "tflite": ("ai-edge-litert", "litert-torch", "tensorflow"),
    "keras": ("tensorflow", "keras", "tf-keras"),
    "savedmodel": ("tensorflow",),
    "coreml": ("coremltools",),
    "tf2onnx": ("tf2onnx",),
}

LADDER = ("exported", "converted", "loaded", "ran", "compared", "benchmarked")
_RUNG_OF_STAGE = {"load": "loaded", "run": "ran", "compare": "compared", "benchmark": "benchmarked"}


def render_model_md(document: dict[str, Any], model: str) -> str:
    """models/<page>.md: every cell of `model`, one section per route [target]."""
    run = document.get("run") or {}
    cells = [c for c in document.get("cells") or [] if c.get("model") == model]
    out = [f"# {md_escape(model)} — convcheck run {md_escape(run.get('id', '?'))}", "",
           "[← matrix](../matrix.md)", ""]
    if not cells:
        return "\n".join(out + ["_No cells for this model in this run._"]) + "\n"
    failed = sum(_is_failure(c["status"]) for c in cells)
    out += [_summary_line({"cells": cells}) + (f" — {failed} failing." if failed else "."), ""]
    anchors = _anchors(cells)
    rows = []
    for c, anchor in zip(cells, anchors):
        err = c.get("error") or {}
        rows.append([f"[{md_escape(_label(c))}](#{anchor})", f"{_mark(c['status'])} {md_escape(c['status'])}",
                     md_escape(_headline(c)), human_bytes(c.get("artifact_bytes")),
                     _lockin_score(document, c),
                     md_escape(err.get("message"), 90) if err else ""])
    out += _table(["route [target]", "status", "headline", "artifact", "lock-in", "reason"], rows) + [""]
    lockin_shown: dict[str, str] = {}  # route -> anchor of the section that has its breakdown
    for c, anchor in zip(cells, anchors):
        out += _cell_section(document, c, anchor, lockin_shown)
    return "\n".join(out).rstrip() + "\n"


def _anchors(cells: list[dict[str, Any]]) -> list[str]:
    """Explicit ids for the sections (`<a id>`): renderers disagree on how headings get theirs."""
    seen: dict[str, int] = {}
    out = []
    for c in cells:
        base = re.sub(r"[^a-z0-9]+", "-", f"{c['route']} {_target(c)}".lower()).strip("-") or "cell"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def _lockin_score(document: dict[str, Any], cell: dict[str, Any]) -> str:
    entry = cell.get("lockin") or ((document.get("lockin") or {}).get("routes") or {}).get(cell["route"]) or {}
    return _num(entry.get("score"), ".1f") if entry.get("score") is not None else "—"


def _cell_section(document: dict[str, Any], c: dict[str, Any], anchor: str,
                  lockin_shown: dict[str, str]) -> list[str]:
    out = [f'<a id="{anchor}"></a>', "",
           f"## {_mark(c['status'])} {md_escape(_label(c))} — {md_escape(c['status'])}", ""]
    hops = " → ".join(md_escape(s) for s in [c.get("source") or "?", *(c.get("steps") or [])])
    converters = ", ".join(md_escape(x) for x in c.get("converters") or []) or "none"
    reference = f"; reference outputs from {md_escape(c['reference'])}" if c.get("reference") else ""
    out += [f"Route: {hops}, run by {md_escape(c.get('runtime', '?'))} on {md_escape(_target(c))}; "
            f"converters: {converters}{reference}.", ""]
    out += _ladder(c)
    if c.get("parity") or c.get("latency_ms") or c.get("memory_mb"):
        out += _parity_block(c.get("parity"))
        out += _localization_block(c.get("localization"))
        out += _latency_block(c)
        out += _memory_block(c.get("memory_mb"))
    else:
        # Nothing was measured: one line instead of three empty sections.
        out += ["Parity, latency, memory: — (the converted model did not run).", ""]
        out += _localization_block(c.get("localization"))
        out += _one_off_times(c)
    out += _artifacts_block(c)
    out += _precheck_block(c.get("precheck"))
    out += _warnings_block(c.get("warnings"))
    out += _lockin_block(document, c, anchor, lockin_shown)
    out += _versions_block(document, c)
    out += _log_block(c.get("log"))
    return out


def ladder_states(cell: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """(rung, mark, seconds) for the six rungs: ✔ done, ✘ failed there, · not reached, – does not
    apply (no conversion on an eager route). "exported" is the first convert hop; "converted" the
    later hops, or the same hop as exported on a one-hop route (seconds None: counted once)."""
    stages = [s for s in cell.get("stages") or [] if isinstance(s, dict)]
    converts = [s for s in stages if str(s.get("stage", "")).startswith("convert:")]
    err_stage = str((cell.get("error") or {}).get("stage") or "")
    n_hops = len(cell.get("steps") or [])
    first_hop = f"convert:{(cell.get('steps') or [''])[0]}"

    def state(entries: list[dict[str, Any]], failed_here: bool) -> tuple[str, float | None]:
        if entries:
            secs = sum(s.get("seconds") or 0.0 for s in entries)
            return ("✔" if all(s.get("ok") for s in entries) else "✘"), secs
        return ("✘" if failed_here else "·"), None

    rungs: list[tuple[str, str, float | None]] = []
    if n_hops == 0 and not converts:
        rungs += [("exported", "–", None), ("converted", "–", None)]
    else:
        one_hop = n_hops <= 1 and len(converts) <= 1
        exported = state(converts[:1], err_stage == first_hop or (one_hop and err_stage.startswith("convert:")))
        rungs.append(("exported", *exported))
        if one_hop:
            rungs.append(("converted", exported[0], None))
        else:
            rungs.append(("converted", *state(converts[1:], err_stage.startswith("convert:")
                                              and err_stage != first_hop)))
    for stage, rung in _RUNG_OF_STAGE.items():
        rungs.append((rung, *state([s for s in stages if s.get("stage") == stage], err_stage == stage)))
    return rungs


def _ladder(c: dict[str, Any]) -> list[str]:
    rungs = ladder_states(c)
    one_hop = len(c.get("steps") or []) == 1
    parts = []
    for rung, mark, secs in rungs:
        if secs is not None:
            note = f" ({_seconds(secs)})"
        else:
            note = " (same hop)" if rung == "converted" and one_hop and mark != "·" else ""
        parts.append(f"{mark} {rung}{note}")
    out = ["**Stages:** " + " → ".join(parts), ""]
    err = c.get("error") or {}
    if c["status"] == "pass":
        return out + ["Completed every stage.", ""]
    stage = md_escape(err.get("stage") or "?")
    op = f" (op {md_escape(err['op'], 80)})" if err.get("op") else ""
    message = md_escape(err.get("message") or c["status"], MESSAGE_LIMIT)
    if c["status"] in NOT_HERE:
        # error.stage is `plan` even when a hop was converted for the static check: not a stop.
        out.append(f"Not run on this machine ({md_escape(c['status'])}){op}: {message}")
    else:
        failed_at = next((i for i, (_, mark, _s) in enumerate(rungs) if mark == "✘"), None)
        went_on = failed_at is not None and any(m == "✔" for _, m, _s in rungs[failed_at + 1:])
        verb, tail = ("Failed at", " (the later stages still ran)") if went_on else ("Stopped at", "")
        out.append(f"{verb} **{stage}**{tail}{op}: {message}")
    return out + [""]


def _tolerance_text(tol: dict[str, Any]) -> str:
    if not tol:
        return "—"
    parts = []
    if tol.get("profile"):
        parts.append(f"profile {md_escape(tol['profile'])}")
    if tol.get("check") == "snr" or tol.get("min_snr_db") is not None:
        parts.append(f"SNR ≥ {_num(tol.get('min_snr_db'))} dB")
    if tol.get("check") != "snr":
        parts.append(f"\\|a − r\\| ≤ atol {_num(tol.get('atol'))} + rtol {_num(tol.get('rtol'))} × \\|r\\|")
    if tol.get("per_output"):
        per = "; ".join(f"{md_escape(k, 60)}: {md_escape(_inline(v), 120)}" for k, v in tol["per_output"].items())
        parts.append(f"per output: {per}")
    if tol.get("raised_by_noise_floor"):
        raised = "; ".join(f"{md_escape(k, 60)} → atol {_num(v)}" for k, v in tol["raised_by_noise_floor"].items())
        parts.append(f"raised by the noise floor: {raised}")
    return ", ".join(parts)


def _inline(value: Any) -> str:
    """A settings object as plain words (escaped by the caller): `threads 2, providers CPU, ...`."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return "—" if value is None else str(value)


def _share(x: Any) -> str:
    return f"{x * 100:.1f}%" if isinstance(x, (int, float)) and not isinstance(x, bool) else _num(x)


def _parity_block(p: dict[str, Any] | None) -> list[str]:
    out = ["### Parity", ""]
    if not p:
        return out + ["— (the converted model did not run)", ""]
    exact = bool(p.get("exact")) or p.get("max_abs") == 0
    out.append(f"- verdict: {'✔ within tolerance' if p.get('ok') else '✘ outside tolerance'} on "
               f"{_num(p.get('samples'))} samples (worst: sample {_num(p.get('worst_sample'))})")
    out.append(f"- tolerance applied: {_tolerance_text(p.get('tolerance') or {})}")
    psnr = f", PSNR {_db(p.get('psnr_db'), exact)}" if "psnr_db" in p else ""
    out.append(f"- overall (worst output): max_abs {_num(p.get('max_abs'))}, max_rel {_num(p.get('max_rel'))}, "
               f"mean_abs {_num(p.get('mean_abs'))}, cosine {_num(p.get('cosine'), '.6g')}, "
               f"SNR {_db(p.get('snr_db'), exact)}{psnr}")
    names = {"top1_agreement": "top-1 agreement", "top5_agreement": "top-5 agreement", "exact_match": "exact match"}
    agree = [f"{label} {_share(p[k])}" for k, label in names.items() if p.get(k) is not None]
    if agree:
        out.append("- agreement: " + ", ".join(agree))
    mp = p.get("min_passing") or {}
    if mp:
        out.append(f"- smallest bounds that would pass: atol {_num(mp.get('atol'))} at rtol {_num(mp.get('rtol'))}"
                   + (f", SNR {_db(mp.get('snr_db'))}" if "snr_db" in mp else ""))
    nf = p.get("noise_floor")
    if "noise_floor" not in p:
        pass  # an older results.json: nothing to say
    elif nf:
        text = (f"source fp32 vs {md_escape(nf.get('reference') or 'float64')}: max_abs {_num(nf.get('max_abs'))}"
                if nf.get("max_abs") is not None else md_escape(nf.get("error") or "not measured", LINE_LIMIT))
        out.append(f"- noise floor: {text}")
    else:
        out.append("- noise floor: — (the source framework does not run in float64 here)")
    if p.get("reference_nonfinite"):
        out.append(f"- reference non-finite positions: {_num(p['reference_nonfinite'])} (compared as NaN/Inf)")
    per = p.get("per_output") or {}
    if per:
        floor = ((nf or {}).get("per_output") or {})
        rows = []
        for name, s in per.items():
            s = s if isinstance(s, dict) else {}
            exact_o = s.get("max_abs") == 0
            rows.append([md_escape(name, 80), md_escape("×".join(map(str, s.get("shape") or [])) or "—"),
                         md_escape(s.get("dtype") or "—"), _num(s.get("max_abs")), _num(s.get("max_rel")),
                         _num(s.get("cosine"), ".6g"), _db(s.get("snr_db"), exact_o),
                         _num((floor.get(name) or {}).get("max_abs")),
                         "✔" if s.get("ok") else "✘", md_escape(s.get("problem") or "", CELL_LIMIT)])
        out += ["", *_table(["output", "shape", "dtype", "max_abs", "max_rel", "cosine", "snr_db",
                              "noise floor", "ok", "problem"], rows)]
    return out + [""]


def _localization_block(loc: dict[str, Any] | None) -> list[str]:
    if not loc:
        return []
    out = ["### Localisation", ""]
    if not loc.get("found"):
        return out + [f"Not found: {md_escape(loc.get('reason') or 'no reason given', MESSAGE_LIMIT)}"
                      + (f" ({_seconds(loc.get('seconds'))})" if loc.get("seconds") is not None else ""), ""]
    if loc.get("summary"):
        out.append(f"**{md_escape(loc['summary'], LINE_LIMIT)}**")
        out.append("")
    facts = [
        ("method", loc.get("method")), ("node", loc.get("node")), ("op_type", loc.get("op_type")),
        ("output", loc.get("output")), ("layer", loc.get("layer")), ("keras class", loc.get("keras_class")),
        ("tflite tensor", loc.get("tflite_tensor")), ("torch module", loc.get("torch_module")),
        ("torch class", loc.get("torch_class")),
    ]
    out += [f"- {name}: {md_escape(v, CELL_LIMIT)}" for name, v in facts if v not in (None, "")]
    for name in ("span", "parameter_modules", "inputs_from"):
        if loc.get(name):
            values = loc[name] if isinstance(loc[name], list) else [loc[name]]
            shown = ", ".join(md_escape(v, 60) for v in values[:8]) + (", …" if len(values) > 8 else "")
            out.append(f"- {name.replace('_', ' ')}: {shown}")
    out.append(f"- error in → out: max_abs {_num(loc.get('max_abs_in'))} → {_num(loc.get('max_abs_out'))}"
               + (f"; {md_escape(loc['problem'], CELL_LIMIT)}" if loc.get("problem") else ""))
    tail = [f"{_num(loc['compared'])} tensors compared" if loc.get("compared") is not None else "",
            f"took {_seconds(loc['seconds'])}" if loc.get("seconds") is not None else ""]
    if any(tail):
        out.append("- " + ", ".join(t for t in tail if t))
    return out + [""]


def _latency_block(c: dict[str, Any]) -> list[str]:
    lat = c.get("latency_ms")
    out = ["### Latency", ""]
    if lat:
        noisy = " ⚠ noisy" if lat.get("noisy") else ""
        out += _table(["p50", "p90", "p99", "mean", "min", "n", "cv", "batch", "threads"],
                      [[_ms(lat.get("p50")), _ms(lat.get("p90")), _ms(lat.get("p99")), _ms(lat.get("mean")),
                        _ms(lat.get("min")), _num(lat.get("n")),
                        (f"{lat['cv'] * 100:.1f}%" if isinstance(lat.get("cv"), (int, float)) else "—") + noisy,
                        _num(lat.get("batch")), _num(lat.get("threads"))]])
        if lat.get("timer_overhead_ms") is not None:
            out += ["", f"Timer overhead {_ms(lat['timer_overhead_ms'])} a call; "
                    f"{_num(lat.get('warmup'))} warm-up calls."]
    else:
        out.append("— (no steady-state figure: the converted model did not run)")
    out += ["", *_one_off_times(c)]
    out += _batches(c.get("batches"))
    out += _variants(c.get("variants"))
    return out if out[-1] == "" else out + [""]


def _one_off_times(c: dict[str, Any]) -> list[str]:
    """Times paid once (kept apart from the steady-state figures): reference, convert, load, first call."""
    t = c.get("timings_s") or {}
    times = [f"{name} {_seconds(t.get(key))}" for key, name in
             (("reference", "reference"), ("convert", "convert"), ("load", "load/compile"),
              ("first_inference", "first inference")) if isinstance(t.get(key), (int, float))]
    return ["One-off times: " + ", ".join(times) + ".", ""] if times else []


def _batches(batches: Any) -> list[str]:
    if not isinstance(batches, dict) or not batches:
        return []
    if batches.get("skipped"):
        return ["", f"Batch sweep skipped: {md_escape(batches['skipped'], LINE_LIMIT)}"]
    rows = []
    for b in batches.get("per_batch") or []:
        lat = b.get("latency_ms") or {}
        rows.append([_num(b.get("batch")), _ms(lat.get("p50")) if lat else "—",
                     _num(b.get("throughput_per_s"), ".4g"), md_escape(b.get("error") or "", CELL_LIMIT)])
    return ["", "Batch sweep:", "", *_table(["batch", "p50", "rows/s", "error"], rows)] if rows else []


def _variants(variants: Any) -> list[str]:
    if not isinstance(variants, dict) or not variants:
        return []
    rows = []
    for name, v in variants.items():
        v = v if isinstance(v, dict) else {}
        p, lat = v.get("parity") or {}, v.get("latency_ms") or {}
        rows.append([md_escape(name, 60), _ms(lat.get("p50")) if lat else "—",
                     _num(p.get("max_abs")), ("✔" if p.get("ok") else "✘") if p else "—"])
    return ["", "Other builds of the same artifact:", "", *_table(["variant", "p50", "max_abs", "parity ok"], rows)]


def _memory_block(mem: dict[str, Any] | None) -> list[str]:
    out = ["### Memory", ""]
    if not mem:
        return out + ["— (not measured)", ""]
    names = (("rss_before_load", "RSS before load"), ("rss_after_load", "RSS after load"),
             ("rss_after_run", "RSS after run"), ("process_peak_rss", "process peak RSS"),
             ("gpu_peak", "GPU peak"))
    out += _table([n for _, n in names], [[("—" if mem.get(k) is None else f"{_num(mem[k], '.1f')} MiB")
                                          for k, _ in names]])
    return out + ["", "The process peak is an upper bound while cells share a process.", ""]


def _hop_details(meta: dict[str, Any]) -> str:
    """The few metadata facts that identify how a hop was built."""
    keys = ("opset", "exporter", "producer", "nodes", "precision", "quantization", "via", "target", "tensorflow")
    return md_escape(", ".join(f"{k} {_inline(meta[k])}" for k in keys if meta.get(k) not in (None, "")) or "—", 200)


def _artifacts_block(c: dict[str, Any]) -> list[str]:
    arts = [a for a in c.get("artifacts") or [] if isinstance(a, dict)]
    if not arts and c.get("artifact_bytes") is None:
        return []
    out = ["### Artifacts", "", f"Final artifact: {human_bytes(c.get('artifact_bytes'))}."]
    if arts:
        rows = [[md_escape(a.get("hop")), md_escape(a.get("converter")), "✔" if a.get("ok") else "✘",
                 md_escape(a.get("format") or "—"), _seconds(a.get("seconds")), human_bytes(a.get("bytes")),
                 md_escape((a.get("sha256") or "")[:12] or "—"), _hop_details(a.get("metadata") or {})]
                for a in arts]
        out += ["", *_table(["hop", "converter", "ok", "format", "time", "size", "sha256", "details"], rows)]
    return out + [""]


def _precheck_block(pre: dict[str, Any] | None) -> list[str]:
    if not pre:
        return []
    out = ["### Static check (this machine cannot run the route)", ""]
    if pre.get("verdict"):
        out += [md_escape(pre["verdict"], MESSAGE_LIMIT), ""]
    if pre.get("unsupported"):
        out.append("- unsupported ops: " + ", ".join(md_escape(o, 60) for o in pre["unsupported"]))
    if pre.get("restricted"):
        out.append("- restricted ops: " + md_escape(_inline(pre["restricted"]), LINE_LIMIT))
    checks = [x for x in pre.get("checks") or [] if isinstance(x, dict)]
    if checks:
        out += _table(["check", "ok", "detail"], [[md_escape(x.get("name")), "✔" if x.get("ok") else "✘",
                                                  md_escape(x.get("detail") or "", 160)] for x in checks])
    return out + [""]


def _warnings_block(warnings: list[str] | None) -> list[str]:
    if not warnings:
        return []
    return ["### Warnings", "", *[f"- {md_escape(w, LINE_LIMIT)}" for w in warnings], ""]


def _lockin_block(document: dict[str, Any], c: dict[str, Any], anchor: str,
                  shown: dict[str, str]) -> list[str]:
    """The score and its breakdown; the score is per route, so a route's later targets on the same page
    point to the first breakdown instead of repeating it."""
    entry = c.get("lockin") or ((document.get("lockin") or {}).get("routes") or {}).get(c["route"])
    if not isinstance(entry, dict) or not entry:
        return ["Lock-in: — (not scored in this run).", ""]
    first = shown.get(c["route"])
    if first is not None:
        return [f"Lock-in: score {_num(entry.get('score'), '.1f')} / 100 — the route's breakdown is "
                f"[above](#{first}).", ""]
    shown[c["route"]] = anchor
    out = ["### Lock-in", ""]
    out.append(f"Score {_num(entry.get('score'), '.1f')} / 100 (0 = portable); "
               "score = 100 × Σ(weight × value) / Σ weight.")
    factors = entry.get("factors") or {}
    if factors:
        rows = [[md_escape(name), _num((f or {}).get("weight"), ".3g"), _num((f or {}).get("value"), ".2f"),
                 md_escape((f or {}).get("evidence") or "", 200)] for name, f in factors.items()]
        out += ["", *_table(["factor", "weight", "value", "evidence"], rows)]
    return out + [""]


def _route_tokens(c: dict[str, Any]) -> set[str]:
    tokens = {c.get("source") or "", c.get("runtime") or "", *(c.get("steps") or []),
              *str(c.get("route", "")).split("/")}
    if "keras" in tokens and "onnx" in tokens:
        tokens.add("tf2onnx")  # keras -> ONNX goes through tf2onnx
    return {t for t in tokens if t}


def relevant_packages(document: dict[str, Any], c: dict[str, Any]) -> dict[str, str]:
    """The run's package versions this route touches (numpy always)."""
    packages = (document.get("run") or {}).get("packages") or {}
    wanted = {p for t in _route_tokens(c) for p in _ROUTE_PACKAGES.get(t, ())} | {"numpy"}
    return {name: v for name, v in packages.items()
            if any(name == w or name.startswith(w + "-") or name.startswith(w + "+") for w in wanted)}


def _versions_block(document: dict[str, Any], c: dict[str, Any]) -> list[str]:
    out = ["### Tool versions", ""]
    pkgs = relevant_packages(document, c)
    if pkgs:
        out.append("- packages: " + ", ".join(f"{md_escape(k)} {md_escape(v)}" for k, v in sorted(pkgs.items())))
    rs = c.get("runtime_settings")
    if rs:
        out.append("- runtime settings: " + md_escape(_inline(rs), LINE_LIMIT))
    producers = [f"{a.get('hop')}: {(a.get('metadata') or {}).get('producer')}" for a in c.get("artifacts") or []
                 if isinstance(a, dict) and (a.get("metadata") or {}).get("producer")]
    if producers:
        out.append("- producers: " + md_escape("; ".join(producers), LINE_LIMIT))
    if len(out) == 2:
        out.append("—")
    return out + [""]


def _log_block(log: list[str] | None) -> list[str]:
    if not log:
        return []
    tail = log[-LOG_LINES:]
    more = (f"last {len(tail)} of {len(log)} lines" if len(log) > len(tail)
            else f"{len(log)} line{'s' if len(log) != 1 else ''}")
    # Converters repeat themselves (one warning per layer): consecutive repeats are shown once, counted.
    runs: list[list[Any]] = []
    for line in tail:
        if runs and runs[-1][0] == line:
            runs[-1][1] += 1
        else:
            runs.append([line, 1])
    items = [f"- {md_escape(line, LINE_LIMIT)}" + (f" (×{n})" if n > 1 else "") for line, n in runs]
    return [f"### Converter log ({more})", "", *items, ""]
