"""`--mlflow [URI]`: a finished run's cells as MLflow runs, so a team compares conversions in the tracking UI
it already uses.

One MLflow experiment per convcheck run (`convcheck <run id>`), one MLflow run per cell:
- params: model, route, source, runtime, device, precision, size, convcheck's version and the version of
  every package the cell's route touches (`pkg.<name>`);
- metrics: parity (max_abs, max_rel, mean_abs, snr_db, cosine, top1/top5 agreement), latency (p50, p90,
  p99, mean in ms), memory (peak RSS MiB), artifact MiB, convert seconds, lock-in score; only the figures
  the cell measured (a failed cell logs none, never a 0);
- tags: status, the error's kind/stage/message, the convcheck run id and host;
- artifacts: the cell as JSON (`cell.json`) and its model's report page (`models/<model>.md|.html`).

Without a URI the store is MLFLOW_TRACKING_URI when set, else MLflow's own default since 3.7: a SQLite
file `mlflow.db` in the current folder (with its artifacts in `mlruns/` beside it), which `mlflow ui`
started in the same folder shows. mlflow is imported only here, and only when asked for.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convcheck.errors import ConvcheckError

#: The value `--mlflow` takes when given without a URI.
DEFAULT = "default"

#: MLflow's metric key -> where it is in a results.json cell.
METRICS: dict[str, tuple[str, ...]] = {
    "parity.max_abs": ("parity", "max_abs"), "parity.max_rel": ("parity", "max_rel"),
    "parity.mean_abs": ("parity", "mean_abs"), "parity.snr_db": ("parity", "snr_db"),
    "parity.cosine": ("parity", "cosine"), "parity.top1_agreement": ("parity", "top1_agreement"),
    "parity.top5_agreement": ("parity", "top5_agreement"),
    "latency.p50_ms": ("latency_ms", "p50"), "latency.p90_ms": ("latency_ms", "p90"),
    "latency.p99_ms": ("latency_ms", "p99"), "latency.mean_ms": ("latency_ms", "mean"),
    "memory.peak_rss_mb": ("memory_mb", "process_peak_rss"), "memory.gpu_peak_mb": ("memory_mb", "gpu_peak"),
    "convert_s": ("timings_s", "convert"), "lockin.score": ("lockin", "score"),
}


@dataclass(frozen=True)
class Logged:
    """Where a run went: the tracking URI, the experiment and one MLflow run id per cell (plan order)."""

    uri: str
    experiment_id: str
    experiment_name: str
    run_ids: list[str]


def resolve_uri(given: str | None) -> str:
    """The tracking URI for `--mlflow [URI]`: the one given, else MLFLOW_TRACKING_URI, else ./mlflow.db."""
    if given and given != DEFAULT:
        if "://" not in given and not given.startswith("file:"):
            # A bare path: a .db file is SQLite, a folder MLflow's (legacy) file store.
            path = Path(given).resolve()
            return f"sqlite:///{path}" if path.suffix == ".db" else path.as_uri()
        return given
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env or f"sqlite:///{Path('mlflow.db').resolve()}"


def _client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise ConvcheckError("--mlflow needs MLflow: pip install 'convcheck[mlflow]' (mlflow-skinny, sqlalchemy, "
                             "alembic)") from None
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its "creating tables" notes are not findings
    try:
        return MlflowClient(tracking_uri=uri)
    except Exception as exc:  # noqa: BLE001 - the store is made here: an unwritable path, a bad scheme
        raise _unusable(uri, exc) from None


def _artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite file (`mlruns/` next to mlflow.db), not in whatever folder convcheck ran in."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlruns").resolve().as_uri()
    return None


def check_store(given: str | None) -> str:
    """Open the store before a run starts (a typo in the URI must not wait for the last cell); its URI."""
    uri = resolve_uri(given)
    client = _client(uri)
    try:
        client.search_experiments(max_results=1)
    except ConvcheckError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's setting
        raise _unusable(uri, exc) from None
    return uri


def _unusable(uri: str, exc: Exception) -> ConvcheckError:
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return ConvcheckError(f"--mlflow {uri}: cannot open the tracking store ({type(exc).__name__}: {first}); give a "
                          "sqlite:///path.db in a folder you can write, a folder, or a tracking server's URI")


def log_run(document: dict[str, Any], out_dir: Path, uri: str | None = None) -> Logged:
    """Log every cell of a (scored) results document; `out_dir` holds its reports (models/*)."""
    uri = resolve_uri(uri)
    client = _client(uri)
    run = document["run"]
    name = f"convcheck {run['id']}"
    try:
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(
            name, artifact_location=_artifact_root(uri),
            tags={"convcheck.run": run["id"], "convcheck.version": str(run.get("convcheck_version"))})
    except Exception as exc:  # noqa: BLE001 - an unreachable or unreadable store: the user's setting
        raise _unusable(uri, exc) from None
    if found is not None:  # a resumed or re-rendered run: its cells replace the earlier ones
        for old in client.search_runs([experiment_id], max_results=5000):
            client.delete_run(old.info.run_id)
    versions = run.get("packages") or {}
    run_ids = []
    for cell in document["cells"]:
        run_ids.append(_log_cell(client, experiment_id, cell, run, versions, out_dir))
    return Logged(uri, experiment_id, name, run_ids)


def _log_cell(client: Any, experiment_id: str, cell: dict[str, Any], run: dict[str, Any],
              versions: dict[str, Any], out_dir: Path) -> str:
    from mlflow.entities import Metric, Param

    from convcheck.types import Status

    target = f"{cell['device']} {cell['precision']}"
    error = cell.get("error") or {}
    tags = {"status": cell["status"], "convcheck.run": run["id"], "mlflow.runName": f"{cell['model']} {cell['route']} "
            f"[{target}]", "host": str((run.get("host") or {}).get("hostname", ""))}
    if error:
        tags.update({"error.kind": str(error.get("kind")), "error.stage": str(error.get("stage")),
                     "error.message": str(error.get("message"))[:5000]})
    created = client.create_run(experiment_id, tags=tags)
    run_id = created.info.run_id
    params = {"model": cell["model"], "route": cell["route"], "source": cell.get("source"),
              "runtime": cell.get("runtime"), "device": cell["device"], "precision": cell["precision"],
              "size": cell.get("size"), "convcheck": run.get("convcheck_version")}
    for package in cell.get("packages") or ():
        if versions.get(package):
            params[f"pkg.{package}"] = versions[package]
    metrics = {key: _number(cell, path) for key, path in METRICS.items()}
    if cell.get("artifact_bytes") is not None:
        metrics["artifact_mb"] = cell["artifact_bytes"] / 2**20
    import time

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items() if v is not None],
                     params=[Param(k, str(v)[:6000]) for k, v in params.items() if v is not None])
    with tempfile.TemporaryDirectory(prefix="convcheck-mlflow-") as scratch:
        cell_json = Path(scratch) / "cell.json"
        cell_json.write_text(json.dumps(cell, indent=1, default=str, allow_nan=True), encoding="utf-8")
        client.log_artifact(run_id, str(cell_json))
    from convcheck.reports.html import model_page_name

    page = model_page_name(cell["model"])
    stem = page[:-5] if page.endswith(".html") else page
    for suffix in (".md", ".html"):
        report = out_dir / "models" / f"{stem}{suffix}"
        if report.is_file():
            client.log_artifact(run_id, str(report), artifact_path="models")
    # FAILED where the cell's status is a failure (a mismatch, a crash); a cell that could not run here
    # (missing_dep, no_device) finished: its reason is in the tags.
    client.set_terminated(run_id, status="FAILED" if Status(cell["status"]).is_failure else "FINISHED")
    return run_id


def _number(cell: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = cell
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def log_files(logged: Logged, name: str, files: list[Path], tags: dict[str, str] | None = None) -> str:
    """One more MLflow run in the run's experiment holding `files` (the audit's decision beside its cells)."""
    client = _client(logged.uri)
    created = client.create_run(logged.experiment_id, tags={"mlflow.runName": name, **(tags or {})})
    for path in files:
        if path.is_file():
            client.log_artifact(created.info.run_id, str(path))
    client.set_terminated(created.info.run_id)
    return created.info.run_id
