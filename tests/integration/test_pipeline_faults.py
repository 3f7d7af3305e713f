"""The pipeline turns every kind of failure into a cell status and goes on with the other cells.

Real export and real ONNX Runtime throughout; only the defect is planted (tests/fakes/planted.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcheck.engine import exit_code, run_cells
from convcheck.plan import plan
from convcheck.plan import RunSettings
from convcheck.registry import converters, models
from convcheck.routes import select_routes
from convcheck.validate.latency import LatencyConfig
from tests.fakes import planted

pytestmark = pytest.mark.framework

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)


@pytest.fixture
def planted_routes(fresh_routes):
    names = {"scaled": planted.ScaledWeightOnnxFromTorch, "crash": planted.CrashingExporter,
             "erfc": planted.ErfcOnnxFromTorch}
    for name, cls in names.items():
        converters.register_object(f"_planted_{name}", cls)
    models.register_object("constant_model", planted.CONSTANT_SPEC)
    yield
    for name in names:
        converters.unregister(f"_planted_{name}")
    models.unregister("constant_model")


def _run(tmp_path, model_names, route_ids):
    specs = [models.get(n) for n in model_names]
    cells = plan(specs, select_routes(route_ids), ["cpu"], ["fp32"])
    return run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "t")


@pytest.mark.slow
def test_each_failure_kind_becomes_its_status(planted_routes, tmp_path):
    results = _run(tmp_path, ["mlp_tabular"],
                   "torch/onnx/ort,torch/onnx_scaled/ort,torch/onnx_broken/ort,torch/onnx_erfc/ort")
    by_route = {c["route"]: c for c in results["cells"]}
    assert by_route["torch/onnx/ort"]["status"] == "pass"

    scaled = by_route["torch/onnx_scaled/ort"]
    assert scaled["status"] == "mismatch"
    assert scaled["error"]["stage"] == "compare" and "logits" in scaled["error"]["message"]
    assert scaled["parity"]["max_abs"] > 1e-3 and scaled["latency_ms"]["n"] >= 3

    # Localisation names the node that reads the scaled weight, and the module that weight belongs to.
    loc = scaled["localization"]
    assert loc["found"], loc
    import onnx

    onnx_rec = next(r for r in scaled["artifacts"] if r["hop"] == "onnx_scaled")
    graph = onnx.load(str(Path(onnx_rec["path"]) / onnx_rec["metadata"]["entry"])).graph
    biggest = max(graph.initializer, key=lambda t: int(np.prod(t.dims))).name
    assert biggest in next(n for n in graph.node if n.name == loc["node"]).input
    assert loc["torch_module"] and loc["max_abs_in"] < 1e-4
    assert loc["summary"] in scaled["error"]["message"]

    broken = by_route["torch/onnx_broken/ort"]
    assert broken["status"] == "convert_error"
    assert broken["error"]["stage"] == "convert:onnx_broken"
    assert broken["error"]["message"] == "RuntimeError: Unsupported: ONNX export of operator aten::frobnicate, opset 17."
    assert broken["error"]["op"] == "aten::frobnicate"

    erfc = by_route["torch/onnx_erfc/ort"]
    assert erfc["status"] == "unsupported" and erfc["error"]["op"] == "Erfc"
    assert erfc["error"]["stage"] == "load"
    assert exit_code(results) == 1
    assert results["summary"] == {"pass": 1, "mismatch": 1, "convert_error": 1, "unsupported": 1}


def test_constant_reference_is_vacuous_not_pass(planted_routes, tmp_path):
    results = _run(tmp_path, ["constant_model"], "torch/onnx/ort")
    cell = results["cells"][0]
    assert cell["status"] == "vacuous"
    assert "constant" in cell["error"]["message"]
    assert cell["parity"]["ok"] is True  # it matched, and that proves nothing
    assert exit_code(results) == 1


def test_routes_sharing_a_prefix_share_the_export(tmp_path):
    results = _run(tmp_path, ["mlp_tabular"], "torch/onnx/ort")
    assert results["cells"][0]["status"] == "pass"
    from convcheck.pipeline import CellRunner

    runner = CellRunner(RunSettings(tmp_path / "b", size="tiny", samples=2, latency=FAST))
    route = select_routes("torch/onnx/ort")[0]
    spec = models.get("mlp_tabular")
    first = runner.run(spec, route, plan([spec], [route], ["cpu"], ["fp32"])[0].target)
    second = runner.run(spec, route, plan([spec], [route], ["cpu"], ["fp32"])[0].target)
    assert first["artifacts"][0]["sha256"] == second["artifacts"][0]["sha256"]
    assert len(runner._converted) == 1 and len(runner._references) == 1


def test_route_that_cannot_run_here_is_recorded_with_its_reason_and_exit_0(fresh_routes, tmp_path):
    from convcheck.registry import runtimes
    from convcheck.types import Format, Requirement
    from convcheck.runtime import Runtime

    class _NeedsTensorrt(Runtime):
        name = "trt_test"
        format = Format.ONNX
        devices = ("cpu", "cuda")
        requires = (Requirement("convcheck_no_such_tensorrt", "tensorrt", "tensorrt"),)

    class _CudaOnly(Runtime):
        name = "cuda_test"
        format = Format.ONNX
        devices = ("cuda",)

    runtimes.register_object("trt_test", _NeedsTensorrt)
    runtimes.register_object("cuda_test", _CudaOnly)
    try:
        results = _run(tmp_path, ["mlp_tabular"], "torch/onnx/trt_test,torch/onnx/cuda_test")
    finally:
        runtimes.unregister("trt_test")
        runtimes.unregister("cuda_test")
    by_route = {c["route"]: c for c in results["cells"]}
    trt = by_route["torch/onnx/trt_test"]
    assert trt["status"] == "missing_dep"
    assert "tensorrt not installed" in trt["error"]["message"]
    assert "pip install 'convcheck[tensorrt]'" in trt["error"]["message"]
    assert by_route["torch/onnx/cuda_test"]["status"] == "no_device"
    assert exit_code(results) == 0


def test_twins_never_share_an_artifact_folder(tmp_path):
    """torch/onnx/... and keras/onnx/... convert different models: their artifacts must not collide."""
    results = _run(tmp_path, ["mlp_tabular"], "torch/onnx/ort,keras/onnx/ort")
    paths = {c["route"]: c["artifacts"][0]["path"] for c in results["cells"]}
    assert all(c["status"] == "pass" for c in results["cells"])
    assert paths["torch/onnx/ort"] != paths["keras/onnx/ort"]
