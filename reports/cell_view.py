"""How every report names and summarises a cell: its row label, target, headline figure, the matrix
grid it sits in, and the lock-in breakdown of its route.

Tolerant of older or hand-made documents: a cell without a device/precision is the default cpu fp32,
a missing figure falls back to the status word, a lock-in entry is looked up on the cell and then in
the document's per-route table.
"""

from __future__ import annotations

from typing import Any

Cell = dict[str, Any]


def headline(cell: Cell) -> str:
    """The one figure a cell shows: p50 latency when it ran, else the error kind."""
    lat = cell.get("latency_ms")
    if cell["status"] == "pass" and lat:
        return f"{lat['p50']:.3g} ms"
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
