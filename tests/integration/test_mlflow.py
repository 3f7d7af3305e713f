"""`--mlflow [URI]`: one MLflow run per cell in a real local SQLite store, read back with MLflow's client;
params, metrics only where measured, status tags, the cell's report as artifacts; a re-rendered run
replaces its cells instead of adding copies; a bare `--mlflow` writes ./mlflow.db."""

from __future__ import annotations

import pytest

from tests.integration.test_api_run import _onnx_file

pytestmark = [pytest.mark.framework, pytest.mark.slow]

FAST = ["--samples", "2", "--bench-seconds", "0", "--bench-iters", "3", "--precision", "fp32"]


def _runs(uri: str, run_id: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(f"convcheck {run_id}")
    assert experiment is not None
    return client, client.search_runs([experiment.experiment_id])


def _run_id(out_dir) -> str:
    import json

    return json.loads((out_dir / "results.json").read_text())["run"]["id"]


def test_every_cell_is_an_mlflow_run(cli, tmp_path):
    model = _onnx_file(tmp_path / "tiny.onnx")
    db = tmp_path / "track" / "mlflow.db"
    db.parent.mkdir()
    # ort passes; onnx-reference... a route that cannot run here (TensorRT: no GPU) is logged as finished
    proc = cli("check", str(model), "--routes", "onnx/ort,onnx/openvino,onnx/tensorrt", "--out", str(tmp_path / "run"),
               "--mlflow", f"sqlite:///{db}", *FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mlflow: 3 runs in experiment" in proc.stdout
    run_id = _run_id(tmp_path / "run")
    client, runs = _runs(f"sqlite:///{db}", run_id)
    by_route = {r.data.params["route"]: r for r in runs}
    assert set(by_route) == {"onnx/ort", "onnx/openvino", "onnx/tensorrt"}
    ort = by_route["onnx/ort"]
    assert ort.data.tags["status"] == "pass" and ort.info.status == "FINISHED"
    assert ort.data.params["model"] == "tiny" and ort.data.params["device"] == "cpu"
    assert ort.data.params["pkg.onnxruntime"]
    assert ort.data.metrics["latency.p50_ms"] > 0 and ort.data.metrics["parity.max_abs"] < 1e-4
    assert "lockin.score" in ort.data.metrics
    artifacts = {a.path for a in client.list_artifacts(ort.info.run_id)}
    assert "cell.json" in artifacts and "models" in artifacts
    assert any(a.path.endswith(".html") for a in client.list_artifacts(ort.info.run_id, "models"))
    trt = by_route["onnx/tensorrt"]
    assert trt.data.tags["status"] in ("missing_dep", "no_device") and trt.info.status == "FINISHED"
    assert not any(k.startswith(("latency.", "parity.")) for k in trt.data.metrics)  # nothing measured, nothing logged
    # the experiment's artifacts live beside the database, not in the folder convcheck ran in
    assert (db.parent / "mlruns").is_dir()

    again = cli("report", run_id, "--mlflow", f"sqlite:///{db}")
    assert again.returncode == 0, again.stderr[-2000:]
    _, runs_after = _runs(f"sqlite:///{db}", run_id)
    assert len(runs_after) == 3  # replaced, not duplicated

    # an audit's decision goes in as one more run beside the cells (what finish_audit does with --mlflow)
    from convcheck.tracking import Logged, log_files

    experiment = client.get_experiment_by_name(f"convcheck {run_id}")
    audit_md = tmp_path / "audit.md"
    audit_md.write_text("# audit\n")
    logged = Logged(f"sqlite:///{db}", experiment.experiment_id, experiment.name, [r.info.run_id for r in runs_after])
    audit_run = log_files(logged, "audit tiny for cpu-server", [audit_md], {"recommended": "onnx/ort"})
    assert [a.path for a in client.list_artifacts(audit_run)] == ["audit.md"]
    assert client.get_run(audit_run).data.tags["recommended"] == "onnx/ort"


def test_a_bare_flag_writes_mlflow_db_here(cli, tmp_path):
    model = _onnx_file(tmp_path / "tiny.onnx")
    work = tmp_path / "work"
    work.mkdir()
    proc = cli("check", str(model), "--routes", "onnx/ort", "--mlflow", "--out", str(tmp_path / "run"), *FAST,
               cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (work / "mlflow.db").is_file()
    _, runs = _runs(f"sqlite:///{work / 'mlflow.db'}", _run_id(tmp_path / "run"))
    assert [r.data.tags["status"] for r in runs] == ["pass"]


def test_an_unusable_store_is_one_line(cli, tmp_path):
    model = _onnx_file(tmp_path / "tiny.onnx")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli("check", str(model), "--routes", "onnx/ort", "--out", str(tmp_path / "run"), *FAST,
               "--mlflow", f"sqlite:///{blocker}/x.db")
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "cannot open the tracking store" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before the run, not after its last cell
