"""results.json as Markdown: `matrix.md` (the models x routes table) and `models/<page>.md` (one model,
rendered by `markdown_model`).

Every string that comes from the document (model, output and op names, error messages, versions)
may come from a user's model, so it goes through `md_escape` (reports/escaping.py) exactly once, at
the point where it is placed in the page; the figures convcheck formats itself (numbers, marks) do not
need it. Long texts are clipped here; results.json keeps them whole.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from convcheck.reports.cell_view import TVM_LEGEND, grid, has_tvm, headline_or_status, label, target
from convcheck.reports.escaping import clip, md_escape, md_table, md_url
from convcheck.reports.ladder import LADDER, ladder_states
from convcheck.reports.markdown_common import CELL_LIMIT, LINE_LIMIT, MESSAGE_LIMIT, num, summary_line
from convcheck.reports.markdown_model import LOG_LINES, render_model_md
from convcheck.reports.numbers import human_bytes
from convcheck.reports.route_packages import relevant_packages
from convcheck.reports.status_groups import NOT_HERE, failures, mark, not_here, status_index
from convcheck.types import Status

__all__ = ["CELL_LIMIT", "LADDER", "LINE_LIMIT", "LOG_LINES", "MAX_FAILURE_LINES", "MEANING", "MESSAGE_LIMIT",
           "NOT_HERE", "clip", "human_bytes", "ladder_states", "md_escape", "relevant_packages", "render_matrix_md",
           "render_model_md"]

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

#: Failing cells listed in matrix.md; the rest are counted (every one is on its model page and in junit.xml).
MAX_FAILURE_LINES = 100


def _page(link: Callable[[str], str], model: str) -> str:
    """The relative link to a model's page: `models/<page>.md`. `link` may name the page with an
    extension (`convcheck.reports.html.model_page_name` gives `name-hash.html`): it is swapped for
    `.md`, so matrix.md, the HTML report and the Markdown pages share one naming rule."""
    name = re.sub(r"\.(html?|md)$", "", link(model))
    return md_url(f"models/{name}.md")


def _default_link(model: str) -> str:
    """The page name of a model (`models/<name>.md`) when the caller gives none: lowercase, and
    anything but letters, digits, `_`, `.`, `-` replaced by `_` (no `/`: the page stays in models/)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model.lower())


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
    out += ["", summary_line(document), ""]
    out += _matrix_table(cells, link)
    out += ["", "Each cell: status mark and headline — p50 latency when it passed, max_abs on a mismatch, "
            "else the status; blank: the model has no such route. Model names link to their pages "
            "(stage ladder, parity per output, latency, memory, artifacts).", ""]
    if has_tvm(cells):
        out += [md_escape(TVM_LEGEND), ""]
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
    models, rows, cell_at = grid(cells)
    header = ["route [target]"] + [f"[{md_escape(m)}]({_page(link, m)})" for m in models]
    body = []
    for row in rows:
        line = [md_escape(row)]
        for m in models:
            cell = cell_at.get((row, m))
            line.append("" if cell is None else f"{mark(cell['status'])} {md_escape(headline_or_status(cell))}")
        body.append(line)
    return md_table(header, body)


def _failures_section(cells: list[dict[str, Any]], link: Callable[[str], str]) -> list[str]:
    """Failing cells, worst kinds first (a silent mismatch before a loud convert error), one line each."""
    failed = failures(cells)
    order = {m: i for i, m in enumerate(dict.fromkeys(c["model"] for c in cells))}
    failed.sort(key=lambda c: (status_index(c["status"]), order[c["model"]]))
    out = [f"## Failures ({len(failed)})", ""]
    if not failed:
        return out + ["None: every cell that ran passed.", ""]
    for c in failed[:MAX_FAILURE_LINES]:
        err = c.get("error") or {}
        model = f"[{md_escape(c['model'])}]({_page(link, c['model'])})"
        op = f" (op {md_escape(err['op'], 60)})" if err.get("op") else ""
        out.append(f"- {mark(c['status'])} **{model}** × {md_escape(label(c))}: "
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
    here = not_here(cells)
    out = [f"## Could not run here ({len(here)})", ""]
    if not here:
        return out + ["None.", ""]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for c in here:
        groups.setdefault((c["route"], c["status"], _base_reason(c)), []).append(c)
    for (route, status, reason), group in groups.items():
        targets = ", ".join(md_escape(t) for t in dict.fromkeys(target(c) for c in group))
        models = len(dict.fromkeys(c["model"] for c in group))
        line = (f"- {mark(status)} **{md_escape(route)}** [{targets}] — {len(group)} cell"
                f"{'s' if len(group) != 1 else ''}, {models} model{'s' if models != 1 else ''}: "
                f"{md_escape(status)}: {md_escape(reason, LINE_LIMIT)}")
        checked = [c for c in group if c.get("precheck")]
        if checked:
            flagged = [c for c in checked if _precheck_flagged(c["precheck"])]
            line += f". Static check: {len(checked) - len(flagged)} of {len(checked)} clean"
            if flagged:
                names = ", ".join(md_escape(f"{c['model']} ({target(c)})", 60) for c in flagged[:6])
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
        f"{md_escape(name)} {num((f or {}).get('value'), '.2f')} (w {num((f or {}).get('weight'), '.3g')})"
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
        rows.append([md_escape(route), num(entry.get("score"), ".1f"), _top_factors(entry.get("factors") or {})])
    return out + md_table(["route", "score", "top factors"], rows) + [""]


def _legend() -> list[str]:
    out = ["## Legend", ""]
    rows = [[mark(s.value), md_escape(s.value), MEANING.get(s.value, "")] for s in Status]
    return out + md_table(["mark", "status", "meaning"], rows) + [""]


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
        out += md_table(["package", "version"], [[md_escape(k), md_escape(v)] for k, v in sorted(packages.items())])
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
