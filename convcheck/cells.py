"""Cell records: the results.json object of one cell, made the same way by every stage and executor.

A cell is created with every field present (`new_cell`) and filled as its stages complete; a cell
that cannot run here (`skipped_cell`), whose worker died on it (`failed_cell`) or that needed a task
a dead worker was running (`upstream_failed_cell`) is made here too, so the pipeline, the local and
the Ray executor write one shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convcheck.dag import describe
from convcheck.errors import REPORT_BUGS, CellFailure
from convcheck.failures import first_line
from convcheck.registry import converters
from convcheck.types import Status, Target

if TYPE_CHECKING:
    from convcheck.plan import PlannedCell
    from convcheck.routes import Route


def detail_lines(failure: CellFailure) -> list[str]:
    """The tool's whole message behind a failure's one line (an OpenVINO unconverted-ops report, a TVM
    backtrace), for the cell's log: the one line names the op, the log keeps the rest."""
    detail = getattr(failure, "detail", "") or ""
    if not detail.strip() or detail.strip() == failure.message.strip():
        return []
    return [f"{failure.stage} failed; the tool said:"] + [f"  {ln}" for ln in detail.splitlines() if ln.strip()][:200]


def internal_error_fields(exc: BaseException, stages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """status/error of a cell that convcheck's own code failed (the traceback goes in its log)."""
    where = next((s["stage"] for s in reversed(stages or []) if s.get("stage")), "internal")
    return {"status": Status.INTERNAL_ERROR.value,
            "error": {"kind": Status.INTERNAL_ERROR.value, "stage": f"internal:{where}", "op": None,
                      "message": f"internal error in convcheck ({first_line(exc)}); {REPORT_BUGS}"}}


def new_cell(model: str, route: "Route", target: Target, size: str) -> dict[str, Any]:
    """A results.json cell with every field present (filled as stages complete)."""
    return {
        "model": model,
        "size": size,
        "route": route.id,
        "source": route.source.value,
        "steps": list(route.hops),
        "converters": [converters.get(c).__name__ for c in route.converters],  # type: ignore[attr-defined]
        "runtime": target.runtime,
        #: The distributions the route touches (its hops' and runtimes' declared requirements): the
        #: reports show their versions beside the cell's figures.
        "packages": list(route.packages),
        "device": target.device,
        "precision": target.precision,
        "status": Status.UPSTREAM_FAILED.value,
        "error": None,
        "parity": None,
        "latency_ms": None,
        "timings_s": {"reference": None, "convert": None, "load": None, "first_inference": None},
        "artifact_bytes": None,
        "artifacts": [],
        "stages": [],
        "runtime_settings": None,
        "memory_mb": None,
        "warnings": [],
        "localization": None,
        "log": [],
    }


def skipped_cell(model: str, route: "Route", target: Target, size: str, status: Status, reason: str,
                 hint: str = "") -> dict[str, Any]:
    """A cell that cannot run here (missing_dep, no_device): recorded with its stated reason."""
    cell = new_cell(model, route, target, size)
    cell["status"] = status.value
    message = f"{reason}; {hint}" if hint else reason
    cell["error"] = {"kind": status.value, "message": message, "stage": "plan", "op": None}
    return cell


def failed_cell(planned: "PlannedCell", size: str, status: Status, message: str, stage: str = "worker",
                log: list[str] | None = None) -> dict[str, Any]:
    """The cell of a worker that died on it (or that depended on a task a dead worker was running)."""
    cell = new_cell(planned.spec.name, planned.route, planned.target, size)
    cell["status"] = status.value
    cell["error"] = {"kind": status.value, "message": message, "stage": stage, "op": None}
    cell["log"] = list(log or [])
    return cell


def upstream_failed_cell(planned: "PlannedCell", size: str, task: str, stage: str, victim: "PlannedCell",
                         status: Status, message: str) -> dict[str, Any]:
    t = victim.target
    why = (f"{describe(task)} {status.value} in the cell {victim.spec.name} × {victim.route.id} "
           f"({t.device} {t.precision}): {message}; not run again for this cell")
    return failed_cell(planned, size, Status.UPSTREAM_FAILED, why, stage)
