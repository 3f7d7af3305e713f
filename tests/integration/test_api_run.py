"""The Python API end to end: `convcheck.run_matrix`, `convcheck.check`, `convcheck.resume` run real
cells and write what the CLI writes (results.json, matrix.md/html, junit.xml, models/*)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import convcheck
from convcheck.api import stored_options

pytestmark = [pytest.mark.framework, pytest.mark.slow]

FAST = {"samples": 2, "bench_seconds": 0.0, "bench_iters": 3}


def _onnx_file(path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(3,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"]),
         helper.make_node("Relu", ["z"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_run_matrix_writes_every_output_and_passes(tmp_path):
    started, done, planned = [], [], []
    options = convcheck.MatrixOptions("mlp_tabular", routes="torch/onnx/ort", size="tiny", out=tmp_path / "run",
                                      **FAST)
    result = convcheck.run_matrix(options, on_plan=planned.extend, on_cell_start=started.append,
                                  on_cell_done=done.append)
    assert result.exit_code == 0 and result.ok, result.cells
    assert result.out_dir == tmp_path / "run" and [c["status"] for c in result.cells] == ["pass"]
    for name in ("results.json", "matrix.md", "matrix.html", "junit.xml"):
        assert (result.out_dir / name).is_file(), name
    assert list((result.out_dir / "models").glob("*.html"))
    document = json.loads((result.out_dir / "results.json").read_text())
    assert document["run"]["id"] == result.run_id and document["cells"][0]["status"] == "pass"
    assert "lockin" in json.dumps(document["cells"][0])  # scored
    assert len(planned) == len(started) == len(done) == 1 and done[0]["route"] == "torch/onnx/ort"
    # The run keeps its options: what `--resume` and convcheck.resume replay.
    run_id, command, stored = stored_options(result.run_id)
    assert command == "matrix" and stored == options.resolved()


def test_check_a_small_onnx_file_passes_on_ort(tmp_path):
    model = _onnx_file(tmp_path / "tiny.onnx")
    options = convcheck.CheckOptions(model, routes="onnx/ort", out=tmp_path / "out", **FAST)
    result = convcheck.check(options, convcheck.EngineOptions(executor="inline"))
    assert result.exit_code == 0, result.cells
    assert [(c["route"], c["status"]) for c in result.cells] == [("onnx/ort", "pass")]
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "junit.xml").is_file()
    assert stored_options(result.run_id)[2].model == str(model.resolve())


def test_an_interrupted_run_resumes_from_its_stored_options(tmp_path):
    routes = "torch/onnx/ort,torch/onnx_legacy/ort"
    options = convcheck.MatrixOptions("mlp_tabular", routes=routes, size="tiny", out=tmp_path / "run", **FAST)
    inline = convcheck.EngineOptions(executor="inline")

    def stop(cell: dict) -> None:
        raise KeyboardInterrupt  # Ctrl-C as the first cell finishes

    with pytest.raises(convcheck.RunInterrupted) as caught:
        convcheck.run_matrix(options, inline, on_cell_done=stop)
    interrupted = caught.value
    assert (interrupted.finished, interrupted.total, interrupted.command) == (1, 2, "matrix")
    kept = json.loads((tmp_path / "run" / "results.json").read_text())["cells"]
    assert len(kept) == 1

    result = convcheck.resume(tmp_path / "run", inline)  # the run folder, or its id
    assert result.run_id == interrupted.run_id and result.exit_code == 0
    assert sorted(c["route"] for c in result.cells) == sorted(routes.split(","))
    again = next(c for c in result.cells if c["route"] == kept[0]["route"])
    assert again["latency_ms"] == kept[0]["latency_ms"]  # taken from the store, not computed again


def test_audit_of_a_users_onnx_file_recommends_from_its_own_cells(tmp_path):
    """convcheck.audit: the deployment profile's routes run on the user's file, then the decision."""
    model = _onnx_file(tmp_path / "tiny.onnx")
    done = convcheck.audit(str(model), "cpu-server", out=tmp_path / "audit", latency_budget_ms=1000.0, **FAST)
    routes = {c["route"] for c in done.run.cells}
    assert routes and all(r.startswith("onnx/") for r in routes) and "onnx/ort" in routes
    assert done.exit_code == 0 and done.primary is not None
    assert done.primary["id"].split(" ")[0] in routes or any(r in done.primary["id"] for r in routes)
    for name, path in done.files.items():
        assert path.is_file() and path.parent == tmp_path / "audit", name
    assert json.loads(done.files["audit.json"].read_text())["recommendation"]["primary"] == done.primary
    _, command, _ = stored_options(done.run.run_id)
    assert command == "audit"
