"""A shared stage that kills its worker fails once: the cells downstream of it in the plan's DAG are
`upstream_failed` (naming the task and the cell it killed) instead of paying for the same crash or hang
again; cells of other branches still pass. Real workers, real export and runtimes; only the defects
are planted."""

from __future__ import annotations

import pytest

from convcheck.dag import build_dag, convert_task
from convcheck.executors import Limits
from convcheck.executors.local import LocalExecutor
from convcheck.engine import run_cells
from convcheck.plan import plan
from convcheck.plan import RunSettings
from convcheck.registry import converters, models
from convcheck.routes import select_routes
from convcheck.validate.latency import LatencyConfig
from tests.fakes import planted

pytestmark = pytest.mark.fault

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)


@pytest.fixture
def planted_routes(fresh_routes):
    converters.register_object("_planted_segv", planted.SegfaultingExporter)
    converters.register_object("_planted_hang", planted.HangingExporter)
    yield
    converters.unregister("_planted_segv")
    converters.unregister("_planted_hang")


@pytest.mark.slow
@pytest.mark.framework
def test_a_conversion_that_kills_its_worker_fails_its_downstream_cells_once(planted_routes, tmp_path, monkeypatch):
    routes = ("torch/onnx_segv/ort,torch/onnx_segv/openvino,torch/onnx_hang/ort,torch/onnx_hang/openvino,"
              "torch/onnx/ort")
    cells = plan([models.get("mlp_tabular")], select_routes(routes), ["cpu"], ["fp32"])
    settings = RunSettings(tmp_path, size="tiny", samples=2, latency=FAST)
    executor = LocalExecutor(settings, jobs=1, limits=Limits(timeout_s=15, memory_mb=4096))
    hang_starts = tmp_path / "hang_starts.txt"
    monkeypatch.setenv("CONVCHECK_TEST_HANG_STARTS", str(hang_starts))
    results = run_cells(cells, settings, tmp_path, "upstream", executor=executor)
    by_route = {c["route"]: c for c in results["cells"]}

    assert by_route["torch/onnx_segv/ort"]["status"] == "crashed"
    assert "convert:onnx_segv" in by_route["torch/onnx_segv/ort"]["error"]["stage"]
    # The worker's own output (faulthandler's traceback) is kept with the cell it died on.
    assert any("Segmentation fault" in line for line in by_route["torch/onnx_segv/ort"]["log"])
    downstream = by_route["torch/onnx_segv/openvino"]
    assert downstream["status"] == "upstream_failed"
    assert "crashed" in downstream["error"]["message"] and "torch/onnx_segv/ort" in downstream["error"]["message"]
    assert by_route["torch/onnx_hang/ort"]["status"] == "timeout"
    assert by_route["torch/onnx_hang/openvino"]["status"] == "upstream_failed"
    assert by_route["torch/onnx/ort"]["status"] == "pass", by_route["torch/onnx/ort"]["error"]
    # The hanging export was started once, not once per cell it feeds. Counted, not timed: a
    # wall-clock bound failed on a loaded CI machine (31 s against 30) with one start.
    starts = hang_starts.read_text().split()
    assert len(starts) == 1, f"the hanging conversion was started {len(starts)} times"
    assert not executor.workers


def test_the_plan_dag_shares_references_and_conversion_prefixes():
    routes = select_routes("torch/onnx/ort,torch/onnx/openvino,torch/onnx/tvm,torch/openvino,torch/onnx/tensorrt")
    cells = plan([models.get("mlp_tabular"), models.get("cnn_small")], routes, ["cpu", "cuda"], ["fp32", "fp16"])
    dag = build_dag(cells)
    counts = dag.counts()
    assert counts["reference"] == 2  # one per (model, source), however many routes
    export = convert_task("mlp_tabular", "torch", ["onnx_from_torch"], None)
    assert export in dag.tasks, sorted(dag.tasks)[:10]
    fed = {cells[i].route.id for i in dag.downstream_cells(export)}
    assert {"torch/onnx/ort", "torch/onnx/openvino", "torch/onnx/tvm", "torch/onnx/tensorrt"} <= fed
    assert "torch/openvino" not in fed
    # TensorRT engines depend on the target: one build task per (device, precision), fed by the one export.
    engines = [t for t in dag.tasks.values() if t.kind == "convert" and "@" in t.id and "mlp_tabular" in t.id]
    assert engines and all(t.upstream == export for t in engines)
    assert len(dag.chains) == len(cells) and all(chain[-1].startswith("cell:") for chain in dag.chains)
