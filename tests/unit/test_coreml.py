"""Core ML: real conversions of the zoo twins, executed off macOS by the MIL reference executor, and the
static check recorded beside every run.

Off macOS every Core ML cell runs the package's ML program op by op (convcheck.validate.mil): these tests
hold the verdicts to the figures the program should give (fp32 near-exact, fp16 within its bound), catch
and localise faults planted in a converted program, and hold the static check to what it claims (every
check ok on the zoo, fp16 exactly where asked, failures where the package disagrees with the source).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convcheck.environment import module_present

# Checked without importing: coremltools imports TensorFlow, seconds at collection time.
if not all(module_present(m) for m in ("coremltools", "torch", "tensorflow")):
    pytest.skip("needs coremltools, torch and tensorflow", allow_module_level=True)

from convcheck.engine import run_cells  # noqa: E402
from convcheck.plan import plan  # noqa: E402
from convcheck.reference import Reference  # noqa: E402
from convcheck.plan import RunSettings  # noqa: E402
from convcheck.registry import models  # noqa: E402
from convcheck.routes import enumerate_routes, select_routes  # noqa: E402
from convcheck.types import Artifact, Format  # noqa: E402
from convcheck.validate.latency import LatencyConfig  # noqa: E402
from convcheck.model_spec import InputSpec, ModelSpec  # noqa: E402

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)
ON_MACOS = platform.system() == "Darwin"
def build_token_mean(size: str) -> Any:
    """Embedding + mean over tokens: an int64 input, which Core ML can only take as int32."""
    import torch

    torch.manual_seed(5)

    class TokenMean(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(50, 6)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.emb(ids).mean(dim=1)

    return TokenMean().eval()


TOKEN_SPEC = ModelSpec(
    name="token_mean",
    description="Embedding + mean: int64 token ids",
    task="embedding",
    inputs=(InputSpec("ids", (2, 7), "int64", "int", 0, 50, {0: "batch"}),),
    outputs=("vec",),
    builders={Format.TORCH: "tests.unit.test_coreml:build_token_mean"},
    batch=2,
)


def build_erfcx(size: str) -> Any:
    """torch.special.erfcx: an op coremltools 9's torch front end has no conversion for."""
    import torch

    class Erfcx(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.special.erfcx(x)

    return Erfcx().eval()


ERFCX_SPEC = ModelSpec(
    name="erfcx",
    description="torch.special.erfcx",
    task="regression",
    inputs=(InputSpec("x", (2, 8), dynamic_axes={0: "batch"}),),
    outputs=("y",),
    builders={Format.TORCH: "tests.unit.test_coreml:build_erfcx"},
    batch=2,
)


def _run(specs: list[ModelSpec], routes: str, out: Path) -> list[dict[str, Any]]:
    cells = plan(specs, select_routes(routes), ["cpu"], ["fp32", "fp16"])
    return run_cells(cells, RunSettings(out, size="tiny", samples=2, latency=FAST), out, "t")["cells"]


@pytest.fixture(scope="module")
def zoo_cells(tmp_path_factory) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(model, route, precision) -> cell, for both zoo twins on both Core ML routes at fp32 and fp16."""
    out = tmp_path_factory.mktemp("coreml")
    cells = _run([models.get("mlp_tabular"), models.get("cnn_small")], "torch/coreml,keras/coreml", out)
    return {(c["model"], c["route"], c["precision"]): c for c in cells}


# -- off macOS: executed by the MIL reference executor, every static check ok -----------------------
@pytest.mark.slow
@pytest.mark.framework
@pytest.mark.skipif(ON_MACOS, reason="off macOS only: on macOS the route runs Apple's runtime")
def test_zoo_cells_pass_on_the_mil_executor_with_a_clean_static_check(zoo_cells):
    assert len(zoo_cells) == 8
    for key, cell in zoo_cells.items():
        assert cell["status"] == "pass", (key, cell["error"])
        settings = cell["runtime_settings"]
        assert "MIL reference executor" in settings["executor"] and "not Apple's runtime" in settings["executor"]
        # Every op ran through a kernel or coremltools' own value_inference: nothing skipped.
        assert set(settings["mil_ops"].values()) <= {"kernel", "value_inference"}, settings["mil_ops"]
        # Its speed is not Core ML's: no latency, and the cell says why.
        assert cell["latency_ms"] is None and any(w.startswith("no latency:") for w in cell["warnings"]), key
        parity = cell["parity"]
        assert parity["ok"], (key, parity)
        if cell["precision"] == "fp32":
            assert parity["max_abs"] < 1e-5, (key, parity["max_abs"])
        else:  # fp16 compute: well above fp32 error, well inside the fp16 bound
            assert 1e-5 < parity["max_abs"] < 0.05 and parity["snr_db"] > 40, (key, parity)
        pre = cell["precheck"]
        failed = [c for c in pre["checks"] if not c["ok"]]
        assert not failed, (key, failed)
        assert {c["name"] for c in pre["checks"]} >= {"loads", "program", "deployment_target", "inputs", "outputs",
                                                       "ops", "precision", "package"}
        assert pre["deployment_target"] == "iOS16" and pre["specification_version"] == 7
        assert cell["artifact_bytes"] > 0, key
        meta = cell["artifacts"][-1]["metadata"]
        assert meta["precision"] == cell["precision"] and meta["minimum_deployment_target"] == "iOS16"
        assert meta["input_names"] == [("image" if cell["model"] == "cnn_small" else "features")]
        assert meta["output_names"] == ["logits"]
        assert meta["via"] == ("torch.jit.trace" if cell["source"] == "torch" else
                               "tf.function concrete function (model(x, training=False))")


@pytest.mark.framework
@pytest.mark.skipif(ON_MACOS, reason="off macOS only: the MIL executor runs the cell")
def test_lockin_and_the_audit_say_the_mil_executor_verified_these_cells(zoo_cells):
    from convcheck.reports.audit_evidence import build_candidate
    from convcheck.reports.lockin import load_lockin_data, score_route

    cells = [c for (m, r, p), c in zoo_cells.items() if r == "torch/coreml"]
    fidelity = score_route("torch/coreml", "torch", ["coreml"], "coreml", cells, load_lockin_data())["factors"]["fidelity"]
    assert fidelity["measured"] and "4/4 cells passed" in fidelity["evidence"], fidelity
    assert "4 of the 4 run by convcheck's MIL reference executor" in fidelity["evidence"], fidelity
    candidate = build_candidate(cells[0], {"cells": cells}, None, None, None)
    assert candidate["verified"] and candidate["passes"] and "MIL reference executor" in candidate["verified_by"]
    assert candidate["latency"] is None  # no Core ML figure was measured, so none is shown


@pytest.mark.framework
@pytest.mark.skipif(ON_MACOS, reason="off macOS only: the MIL executor runs the cell")
def test_model_reports_say_why_a_cell_that_ran_has_no_latency(zoo_cells):
    from convcheck.reports.html_model import render_model_html
    from convcheck.reports.markdown_model import render_model_md

    document = {"cells": [c for (m, _, _), c in zoo_cells.items() if m == "cnn_small"]}
    md = render_model_md(document, "cnn_small")
    assert "did not run" not in md and "(this machine cannot run the route)" not in md
    assert md.count("— (not measured: the cell ran on convcheck's MIL reference executor") == 4
    assert "not measured: the cell ran on convcheck&#x27;s MIL reference executor" in render_model_html(document, "cnn_small")


@pytest.fixture
def planted_coreml_routes(fresh_routes):
    from convcheck.registry import converters
    from tests.fakes.planted import planted_coreml

    for fault in ("scale", "swap"):
        converters.register_object(f"_planted_coreml_{fault}", planted_coreml(fault))
    yield
    for fault in ("scale", "swap"):
        converters.unregister(f"_planted_coreml_{fault}")


@pytest.mark.framework
@pytest.mark.skipif(ON_MACOS, reason="off macOS only: the MIL executor runs the cell")
def test_a_fault_planted_in_the_program_is_a_mismatch_localised_to_its_op(planted_coreml_routes, tmp_path):
    cells = plan([models.get("mlp_tabular")], select_routes("torch/coreml_scale/coreml,torch/coreml_swap/coreml"),
                 ["cpu"], ["fp32", "fp16"])
    done = run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "t")["cells"]
    assert len(done) == 4
    for cell in done:
        planted_var = cell["artifacts"][-1]["metadata"]["planted"]
        assert cell["status"] == "mismatch", (cell["route"], cell["error"])
        found = cell["localization"]
        assert found["found"], found
        assert found["output"] == planted_var, (cell["route"], found)
        assert found["op_type"] == ("sigmoid" if "swap" in cell["route"] else "linear"), found
        # mlp_tabular is Sequential(Linear "0", BatchNorm1d "1", ReLU "2", ...): the module each op stands for.
        assert found["torch_module"] == ("2" if "swap" in cell["route"] else "0"), found
        assert found["output"] in cell["error"]["message"] or found["node"] in cell["error"]["message"]
        assert "error starts at" in cell["error"]["message"]


@pytest.mark.framework
@pytest.mark.skipif(ON_MACOS, reason="off macOS only: on macOS the route executes")
def test_fp16_applied_only_where_asked_and_shrinks_the_package(zoo_cells):
    for (model, route, precision), cell in zoo_cells.items():
        ops = cell["precheck"]["ops"]
        detail = next(c["detail"] for c in cell["precheck"]["checks"] if c["name"] == "precision")
        if precision == "fp16":
            assert ops.get("cast", 0) >= 2, (model, route, ops)  # in to fp16, back to fp32 at the output
            assert "fp32 0," in detail and "casts to fp16 0" not in detail, detail
            fp32 = zoo_cells[(model, route, "fp32")]
            assert cell["artifact_bytes"] < fp32["artifact_bytes"], (model, route)
        else:
            assert "cast" not in ops, (model, route, ops)
            assert detail.endswith("casts to fp16 0") and "weights fp16 0" in detail, detail


@pytest.mark.framework
@pytest.mark.skipif(ON_MACOS, reason="off macOS only: on macOS the route executes")
def test_keras_cnn_keeps_its_nhwc_input(zoo_cells):
    cell = zoo_cells[("cnn_small", "keras/coreml", "fp32")]
    inputs = next(c for c in cell["precheck"]["checks"] if c["name"] == "inputs")
    assert "image float32 [1..1024, 64, 64, 3]" in inputs["detail"]
    assert cell["precheck"]["ops"]["conv"] == 3  # BatchNorm folded: the graph is the inference graph


# -- the static check must fail where the package disagrees with the source ------------------------
def _artifact(cell: dict[str, Any]) -> Artifact:
    rec = cell["artifacts"][-1]
    return Artifact(Format.COREML, Path(rec["path"]), dict(rec["metadata"]))


@pytest.mark.framework
def test_static_check_fails_when_the_output_shape_disagrees(zoo_cells):
    from convcheck.validate.runtimes.coreml import CoremlRuntime

    cell = zoo_cells[("mlp_tabular", "torch/coreml", "fp32")]
    spec = models.get("mlp_tabular")
    feeds = spec.feeds(0, fmt=Format.TORCH)
    ok_ref = Reference("torch", [feeds], [{"logits": np.zeros((32, 4), np.float32)}], 0.0, {})
    assert CoremlRuntime.static_check(_artifact(cell), spec, ok_ref)["ok"]

    # The source returns 5 logits per row where the package declares 4.
    bad_ref = Reference("torch", [feeds], [{"logits": np.zeros((32, 5), np.float32)}], 0.0, {})
    found = CoremlRuntime.static_check(_artifact(cell), spec, bad_ref)
    outputs = next(c for c in found["checks"] if c["name"] == "outputs")
    assert not outputs["ok"] and not found["ok"]
    assert "[?, 4]" in outputs["detail"] and "[32, 5]" in outputs["detail"]
    assert "outputs check failed" in found["verdict"]
    assert all(c["ok"] for c in found["checks"] if c["name"] != "outputs")


@pytest.mark.framework
def test_static_check_fails_when_a_dynamic_axis_is_fixed(zoo_cells):
    from convcheck.validate.runtimes.coreml import CoremlRuntime

    cell = zoo_cells[("cnn_small", "torch/coreml", "fp32")]
    spec = models.get("cnn_small")
    ref = Reference("torch", [spec.feeds(0, fmt=Format.TORCH)], [{"logits": np.zeros((1, 10), np.float32)}], 0.0, {})
    # A source that declares the image size dynamic too: the package has 64 fixed.
    dynamic = ModelSpec(spec.name, spec.description, spec.task,
                        (InputSpec("image", (1, 3, 64, 64), dynamic_axes={0: "batch", 2: "height"}),),
                        spec.outputs, spec.builders)
    inputs = next(c for c in CoremlRuntime.static_check(_artifact(cell), dynamic, ref)["checks"]
                  if c["name"] == "inputs")
    assert not inputs["ok"] and "axis 2" in inputs["detail"] and "dynamic (height" in inputs["detail"]


@pytest.mark.framework
@pytest.mark.skipif(ON_MACOS, reason="off macOS only: the MIL executor runs the cell")
def test_int64_input_becomes_int32_and_is_reported(tmp_path):
    cells = _run([TOKEN_SPEC], "torch/coreml", tmp_path)
    # The ids are cast to int32 as Core ML would take them: the numbers agree, the interface does not.
    assert [c["status"] for c in cells] == ["pass", "pass"], [c["error"] for c in cells]
    for cell in cells:
        checks = {c["name"]: c for c in cell["precheck"]["checks"]}
        assert not checks["inputs"]["ok"]
        assert "ids is int32 where the source takes int64" in checks["inputs"]["detail"]
        assert checks["outputs"]["ok"] and checks["precision"]["ok"], checks
        assert any("static check inputs" in w and "int32" in w for w in cell["warnings"]), cell["warnings"]


@pytest.mark.framework
def test_an_op_coremltools_lacks_is_unsupported_naming_it(tmp_path):
    # Off macOS the pipeline converts for real, so the converter's verdict is the cell's status there too.
    cell = _run([ERFCX_SPEC], "torch/coreml", tmp_path)[0]
    assert cell["status"] == "unsupported", cell["error"]
    assert cell["error"]["op"] == "special_erfcx" and cell["error"]["stage"] == "convert:coreml"
    assert "precheck" not in cell


# -- cheap contract checks ---------------------------------------------------------------------------
def test_classes_declare_the_route_without_importing_frameworks():
    code = (
        "import sys\n"
        "from convcheck.convert.coreml_from_torch import CoremlFromTorch\n"
        "from convcheck.convert.coreml_from_keras import CoremlFromKeras\n"
        "from convcheck.validate.runtimes.coreml import CoremlRuntime\n"
        "assert CoremlFromTorch.hop == CoremlFromKeras.hop == CoremlRuntime.name == 'coreml'\n"
        "assert CoremlFromTorch.depends_on_target and CoremlFromKeras.depends_on_target\n"
        "print(CoremlRuntime.host_unsupported())\n"
        "print(sorted(m for m in ('coremltools', 'torch', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reason, heavy = proc.stdout.splitlines()
    assert heavy == "[]"
    assert reason == "None"  # off macOS the MIL executor runs the cells


def test_route_ids():
    ids = {r.id for r in enumerate_routes()}
    assert {"torch/coreml", "keras/coreml"} <= ids


# -- macOS: the route executes -----------------------------------------------------------------------
@pytest.mark.framework
@pytest.mark.skipif(not ON_MACOS, reason="Core ML executes only on macOS")
def test_routes_pass_on_macos(zoo_cells):
    for key, cell in zoo_cells.items():
        assert cell["status"] == "pass", (key, cell["error"])
        assert cell["runtime_settings"]["compute_units"] == "CPU_ONLY"
