"""How every report names and summarises a cell: its row label, target, headline figure, the matrix
grid it sits in, and the lock-in breakdown of its route.

Tolerant of older or hand-made documents: a cell without a device/precision is the default cpu fp32,
a missing figure falls back to the status word, a lock-in entry is looked up on the cell and then in
the document's per-route table.
"""

from __future__ import annotations

from typing import Any

from convcheck.reports.numbers import fmt_ms

Cell = dict[str, Any]


def headline(cell: Cell) -> str:
    """The one figure a cell shows: p50 latency when it ran (with how a TVM library was scheduled),
    else the error kind."""
    lat = cell.get("latency_ms")
    if cell["status"] == "pass" and lat:
        tag = tvm_build_tag(cell)
        return fmt_ms(lat["p50"]) + (f" {tag}" if tag else "")
    if cell["status"] == "mismatch" and cell.get("parity") and cell["parity"].get("max_abs") is not None:
        return f"max_abs {cell['parity']['max_abs']:.2g}"
    return cell["status"]


def headline_or_status(cell: Cell) -> str:
    """`headline`, or the status itself when the cell's figure is missing or malformed."""
    try:
        return headline(cell)
    except (KeyError, TypeError, ValueError):
        return cell["status"]


def row_label(cell: Cell) -> str:
    """A matrix row: the route, plus its target when that is not the default cpu fp32."""
    if cell["device"] == "cpu" and cell["precision"] == "fp32":
        return cell["route"]
    return f"{cell['route']} [{cell['device']} {cell['precision']}]"


def label(cell: Cell) -> str:
    """row_label, tolerant of a cell without a target (older or hand-made documents)."""
    return row_label({"device": "cpu", "precision": "fp32", **cell})


def target(cell: Cell) -> str:
    """`cpu fp32`; `?` for a part the cell does not state."""
    return f"{cell.get('device', '?')} {cell.get('precision', '?')}"


def grid(cells: list[Cell]) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    """(models in order, row labels in order, (row label, model) -> cell): routes down, models across."""
    models = list(dict.fromkeys(c["model"] for c in cells))
    rows = list(dict.fromkeys(label(c) for c in cells))
    return models, rows, {(label(c), c["model"]): c for c in cells}


def by_row(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Row label -> its cells, rows in order of first appearance."""
    rows: dict[str, list[Cell]] = {}
    for c in cells:
        rows.setdefault(label(c), []).append(c)
    return rows


def lockin_of(document: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """The route's lock-in breakdown: on the cell, else in the document's per-route table; None when
    neither holds one."""
    if isinstance(cell.get("lockin"), dict) and cell["lockin"]:
        return cell["lockin"]
    routes = (document.get("lockin") or {}).get("routes") or {}
    found = routes.get(cell.get("route")) if isinstance(routes, dict) else None
    return found if isinstance(found, dict) and found else None


def verified_by(cell: Cell) -> str | None:
    """What executed a cell when it was not the deployed runtime itself: a Core ML cell off macOS ran on
    convcheck's MIL reference executor (the program's semantics; parity only, no latency). None otherwise."""
    executor = str((cell.get("runtime_settings") or {}).get("executor") or "")
    return executor if "MIL reference executor" in executor else None


def cross_check_text(cell: Cell) -> str | None:
    """The second executor's verdict on the same artifact (Core ML on macOS: the MIL executor too)."""
    found = cell.get("cross_check")
    if not isinstance(found, dict):
        return None
    who = found.get("executor") or "a second executor"
    if found.get("ok") is None:
        return f"{who}: did not run ({found.get('error') or 'no reason given'})"
    verdict = "within tolerance" if found["ok"] else "outside tolerance"
    figures = ", ".join(f"{k} {v:.3g}" for k, v in (("max_abs", found.get("max_abs")), ("SNR dB", found.get("snr_db")))
                        if isinstance(v, (int, float)))
    agrees = "agrees with" if found["ok"] == (cell.get("parity") or {}).get("ok") else "DISAGREES with"
    return f"{who}: {verdict} ({figures}); {agrees} the cell's runtime"


#: The metadata facts a model report shows for each hop: those that identify how it was built, and how
#: a user's own file was matched to its source (feature/output matching).
HOP_FACTS = ("opset", "exporter", "producer", "nodes", "precision", "quantization", "via", "target", "tensorflow",
             "delegated", "feature_matching", "output_matching")


def no_latency_reason(cell: Cell) -> str | None:
    """Why a cell that ran has no latency figure, where its runtime said so (`no latency: ...` warning)."""
    prefix = "no latency: "
    return next((str(w)[len(prefix):] for w in cell.get("warnings") or [] if str(w).startswith(prefix)), None)


def tvm_build(cell: Cell) -> dict[str, Any] | None:
    """How a TVM cell's library was scheduled, from its TVM artifact's metadata; None for other cells.

    `state`: untuned (convcheck's tuning-free schedules), tuned (MetaSchedule searched this build's
    kernels), reused (every kernel's records came from an earlier search with at least this budget),
    partly reused."""
    record = next((r for r in reversed(cell.get("artifacts") or [])
                   if isinstance(r, dict) and r.get("format") == "tvm"), None)
    if record is None:
        return None
    meta = record.get("metadata") or {}
    if not meta.get("tuned"):
        return {"state": "untuned", "pipeline": meta.get("pipeline"), "skipped": meta.get("tune_skipped")}
    state = meta.get("tune_state") or ("reused" if meta.get("tune_reused") else "tuned")
    return {"state": state, "trials": meta.get("tune_trials"), "kernels": meta.get("tune_kernels"),
            "kernels_reused": meta.get("tune_kernels_reused"), "seconds": meta.get("tune_seconds"),
            "measured": meta.get("tune_trials_run"), "kept_default": len(meta.get("tune_kept_default") or ()),
            "compared": meta.get("tune_compared_kernels")}


def tvm_build_tag(cell: Cell) -> str:
    """The word a matrix cell carries beside a TVM latency: 'untuned', 'tuned 2000', 'reused 2000'; ''
    for other cells."""
    build = tvm_build(cell)
    if build is None:
        return ""
    if build["state"] == "untuned":
        return "untuned"
    word = "reused" if build["state"] == "reused" else "tuned"
    return f"{word} {build['trials']}" if build.get("trials") else word


def tvm_build_text(cell: Cell) -> str | None:
    """The sentence a report gives a TVM cell's build; None for other cells."""
    build = tvm_build(cell)
    if build is None:
        return None
    if build["state"] == "untuned":
        why = f"; tuning skipped: {build['skipped']}" if build.get("skipped") else ""
        return (f"untuned: convcheck's tuning-free {build.get('pipeline') or 'default'} schedules{why}. A "
                "MetaSchedule-tuned build (--tvm-tune TRIALS) may be faster (docs/engine.md, TVM figures).")
    trials = build.get("trials")
    kept = (f"; {build['kept_default']} of {build['compared']} kernels kept the default schedule, which "
            "timed faster than their tuned one") if build.get("kept_default") else ""
    if build["state"] == "reused":
        return (f"tuned with MetaSchedule, records reused: all {build.get('kernels')} kernels were tuned "
                f"earlier with at least {trials} trials (no search in this run){kept}")
    text = f"tuned with MetaSchedule, {trials} trials"
    if build.get("measured") is not None:
        text += f" ({build['measured']} candidates measured"
        if build.get("seconds") is not None:
            text += f" in {build['seconds']:.0f} s"
        text += ")"
    if build["state"] == "partly reused":
        text += f"; {build.get('kernels_reused')} of {build.get('kernels')} kernels' records reused"
    return text + kept


#: The legend line of every matrix that holds a TVM cell.
TVM_LEGEND = ("TVM cells say how their library was scheduled: untuned = convcheck's tuning-free schedules "
              "(a tuned build may be faster); tuned N = MetaSchedule with N trials (--tvm-tune N), a kernel "
              "keeping the default schedule where that timed faster; reused N = every kernel's records came "
              "from an earlier search of N trials.")


def has_tvm(cells: list[Cell]) -> bool:
    return any(tvm_build(c) is not None for c in cells)


#: What ended a latency measurement (latency_ms.stopped_by), in words.
STOP_REASONS = {
    "count": "the minimum count and duration were reached",
    "ci": "the p50's 95% confidence interval was tight (adaptive stop, before the minimum count)",
    "max_seconds": "the time cap (a slow call: fewer calls than the minimum count)",
}
