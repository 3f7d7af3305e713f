"""A runtime's second opinion (`Runtime.second_opinion`, `cell["cross_check"]`): on macOS the Core ML
cell runs Apple's runtime and convcheck's MIL executor on the same package, and the report says whether
they agree. It informs and never decides: a disagreeing or failing second executor leaves the cell's
verdict as its own runtime gave it.

The pipeline side uses ONNX Runtime cells whose second executor is planted (perturbed outputs, a
failure): that is the pipeline's own logic. The Core ML side converts a real package and runs the macOS
path's second opinion here (only `predict` needs a Mac)."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.plan import RunSettings, plan
from convcheck.registry import models
from convcheck.routes import select_routes
from convcheck.engine import run_cells
from convcheck.validate.latency import LatencyConfig
from convcheck.validate.runtimes.ort import OrtRuntime

pytestmark = pytest.mark.framework
FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)


class _SecondOpinionOrt(OrtRuntime):
    name = "ort_second"
    drift = 0.0
    fails = False

    def second_opinion(self, feeds):
        if self.fails:
            raise RuntimeError("the second executor broke")
        outputs = [self.infer(f) for f in feeds]
        return "planted second executor", [{k: v + self.drift for k, v in out.items()} for out in outputs]


class OrtAgree(_SecondOpinionOrt):
    name = "ort_agree"


class OrtDrift(_SecondOpinionOrt):
    name = "ort_drift"
    drift = 1.0


class OrtFail(_SecondOpinionOrt):
    name = "ort_fail"
    fails = True


@pytest.fixture
def second_opinion_routes(fresh_routes):
    from convcheck.registry import runtimes

    planted = (OrtAgree, OrtDrift, OrtFail)
    for runtime in planted:
        runtimes.register_object(runtime.name, runtime)
    yield
    for runtime in planted:
        runtimes.unregister(runtime.name)


def test_a_second_executor_is_judged_beside_the_cell_and_never_decides_it(second_opinion_routes, tmp_path):
    cells = plan([models.get("mlp_tabular")], select_routes("torch/onnx/ort_agree,torch/onnx/ort_drift,torch/onnx/ort_fail"),
                 ["cpu"], ["fp32"])
    done = {c["route"]: c for c in run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST),
                                              tmp_path, "t")["cells"]}
    agree, drift, fail = (done[f"torch/onnx/ort_{k}"] for k in ("agree", "drift", "fail"))
    assert [c["status"] for c in (agree, drift, fail)] == ["pass"] * 3
    assert agree["cross_check"]["ok"] is True and agree["cross_check"]["executor"] == "planted second executor"
    assert not any("disagree" in w for w in agree["warnings"])
    assert drift["cross_check"]["ok"] is False and drift["cross_check"]["max_abs"] == pytest.approx(1.0, abs=1e-3)
    assert any("the two executors disagree" in w for w in drift["warnings"])
    assert fail["cross_check"]["ok"] is None and "the second executor broke" in fail["cross_check"]["error"]

    from convcheck.reports.markdown_model import render_model_md

    md = render_model_md({"cells": list(done.values()), "run_id": "t"}, "mlp_tabular")
    assert "Cross-check: planted second executor: outside tolerance (max\\_abs 1" in md
    assert "DISAGREES with the cell's runtime" in md
    assert "Cross-check: a second executor: did not run (RuntimeError: the second executor broke)" in md


def test_coreml_on_macos_also_runs_the_mil_executor_on_its_package(tmp_path):
    """The macOS path's second opinion, run here on a real package (Core ML's own predict needs a Mac)."""
    import torch

    from convcheck.types import Artifact, Format, Target
    from convcheck.validate.runtimes.coreml import CoremlRuntime, quiet_coremltools

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).eval()
    x = torch.randn(3, 6)
    with quiet_coremltools([]) as ct:
        package = tmp_path / "coreml" / "model.mlpackage"
        ct.convert(torch.jit.trace(model, x), inputs=[ct.TensorType(name="features", shape=x.shape)],
                   convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                   minimum_deployment_target=ct.target.iOS16).save(str(package))
    runtime = CoremlRuntime(Target("coreml", "cpu", "fp32"))
    # What the macOS activation binds: the package, and the source's names for its features.
    artifact = Artifact(format=Format.COREML, path=package.parent, metadata={"entry": package.name,
                        "input_map": {"x": "features"}})
    runtime._package = artifact.main_file
    spec = ct.utils.load_spec(str(package))
    runtime._bind_features(artifact, ["features"], [o.name for o in spec.description.output])
    runtime.output_map = {"y": spec.description.output[0].name}
    executor, outputs = runtime.second_opinion([{"x": x.numpy()}])
    assert "MIL reference executor" in executor
    with torch.no_grad():
        np.testing.assert_allclose(outputs[0]["y"], model(x).numpy(), atol=1e-5)
    # Off macOS the executor is the cell's own runtime: no second opinion of itself.
    runtime.program = object()
    assert runtime.second_opinion([{"x": x.numpy()}]) is None
