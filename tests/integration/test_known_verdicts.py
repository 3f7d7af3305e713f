"""Hand-built ONNX files whose right verdict is known, through the real pipeline and real runtimes.

Each case failed before the verdicts fixes (wrong status, or a figure that was never measured).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.framework

pytest.importorskip("onnxruntime")

from convcheck.engine import run_cells  # noqa: E402
from convcheck.plan import plan  # noqa: E402
from convcheck.plan import RunSettings  # noqa: E402
from convcheck.routes import select_routes  # noqa: E402
from convcheck.types import Format  # noqa: E402
from convcheck.validate.latency import LatencyConfig  # noqa: E402
from convcheck.zoo.user_model import spec_from_onnx  # noqa: E402
from tests.fakes import onnx_cases  # noqa: E402

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)


def check(path: Path, routes: str, tmp_path: Path, samples: int = 3, inputs: list[str] = (),
          npz: Path | None = None, reference: str | None = None) -> dict[str, dict]:
    spec = spec_from_onnx(path, list(inputs), npz)
    settings = RunSettings(tmp_path / "run", samples=samples, latency=FAST,
                           references={Format.ONNX: reference} if reference else {})
    cells = plan([spec], select_routes(routes), ["cpu"], ["fp32"])
    results = run_cells(cells, settings, tmp_path / "run", "t")
    return {c["route"]: c for c in results["cells"]}


def _status(cell: dict) -> str:
    return f"{cell['status']}: {(cell.get('error') or {}).get('message')}"


def test_dropped_casts_around_tiny_values_are_a_mismatch(tmp_path):
    pytest.importorskip("openvino")
    cells = check(onnx_cases.tiny_cast_roundtrip(tmp_path / "cast.onnx"), "onnx/ort,onnx/openvino", tmp_path)
    assert cells["onnx/ort"]["status"] == "pass", _status(cells["onnx/ort"])
    ov = cells["onnx/openvino"]
    if ov["status"] == "pass":
        # Only a pass if OpenVINO really kept the casts: then its error is fp32 rounding.
        assert ov["parity"]["max_rel"] < 1e-5, ov["parity"]
    else:
        assert ov["status"] == "mismatch", _status(ov)
        assert ov["parity"]["snr_db"] < 60
        # Localised on the user's own file (it said "no localiser" for onnx/openvino before).
        assert ov["localization"]["found"], ov["localization"]
        assert ov["localization"]["op_type"] == "Cast" and "writing y" in ov["error"]["message"]


def test_correct_results_at_large_magnitude_pass(tmp_path):
    pytest.importorskip("openvino")
    cells = check(onnx_cases.large_matmul(tmp_path / "mm.onnx"), "onnx/ort,onnx/openvino", tmp_path, samples=2)
    for route, cell in cells.items():
        assert cell["status"] == "pass", (route, _status(cell))
    assert cells["onnx/ort"]["parity"]["tolerance"]["per_output"]["y"]["scale"] > 100


def test_cancellation_passes_because_the_noise_floor_is_measured(tmp_path):
    pytest.importorskip("openvino")
    cells = check(onnx_cases.offset_layernorm(tmp_path / "ln.onnx"), "onnx/ort,onnx/openvino", tmp_path, samples=2)
    for route, cell in cells.items():
        assert cell["status"] == "pass", (route, _status(cell))
        floor = cell["parity"]["noise_floor"]
        assert floor and floor.get("max_abs", 0) > 1e-6, floor  # the fp32 graph really errs against fp64
        assert "float64" in floor["reference"]


def test_boolean_output_constant_in_one_sample_is_not_vacuous(tmp_path):
    cells = check(onnx_cases.greater_than_zero(tmp_path / "gt.onnx"), "onnx/ort", tmp_path, samples=4)
    assert cells["onnx/ort"]["status"] == "pass", _status(cells["onnx/ort"])


def test_tiny_but_varying_output_is_not_constant(tmp_path):
    cells = check(onnx_cases.tiny_scale(tmp_path / "tiny.onnx"), "onnx/ort", tmp_path)
    assert cells["onnx/ort"]["status"] == "pass", _status(cells["onnx/ort"])


def test_nan_reproduced_exactly_passes(tmp_path):
    cells = check(onnx_cases.log_with_nans(tmp_path / "log.onnx"), "onnx/ort", tmp_path)
    cell = cells["onnx/ort"]
    assert cell["status"] == "pass", _status(cell)
    assert cell["parity"]["per_output"]["y"].get("reference_nonfinite", 0) > 0


def test_an_output_that_ignores_its_input_is_vacuous_even_with_one_sample(tmp_path):
    path = onnx_cases.ignores_input(tmp_path / "const.onnx")
    cells = check(path, "onnx/ort", tmp_path, samples=1)
    assert cells["onnx/ort"]["status"] == "vacuous", _status(cells["onnx/ort"])
    npz = tmp_path / "one.npz"
    np.savez(npz, x=np.array([[1.0, 2.0, 3.0, 4.0]], np.float32))
    cells = check(path, "onnx/ort", tmp_path / "given", npz=npz)
    assert cells["onnx/ort"]["status"] == "vacuous", _status(cells["onnx/ort"])


def test_openvino_binds_inputs_by_the_model_s_names(tmp_path):
    pytest.importorskip("openvino")
    cells = check(onnx_cases.merged_input_names(tmp_path / "merge.onnx"), "onnx/openvino", tmp_path)
    assert cells["onnx/openvino"]["status"] == "pass", _status(cells["onnx/openvino"])


def test_old_opset_falls_back_to_the_onnx_evaluator_and_says_why(tmp_path):
    cells = check(onnx_cases.opset1_add(tmp_path / "old.onnx"), "onnx/ort", tmp_path)
    cell = cells["onnx/ort"]
    assert cell["reference"] == "onnx_reference"
    assert any("could not load" in w for w in cell["warnings"]), cell["warnings"]
    assert cell["status"] == "unsupported", _status(cell)
    assert "opset 1" in cell["error"]["message"] and "opset 7" in cell["error"]["message"]


def test_onnx_reference_records_a_measured_float64_floor(tmp_path):
    """`--reference onnx-reference` used to record a float64 floor of 0.0 that was never computed."""
    cells = check(onnx_cases.offset_layernorm(tmp_path / "ln.onnx"), "onnx/ort", tmp_path, samples=2,
                  reference="onnx_reference")
    floor = cells["onnx/ort"]["parity"]["noise_floor"]
    assert floor["max_abs"] > 1e-6, floor


def test_a_model_neither_reference_can_load_names_the_op_and_the_real_errors(tmp_path):
    """ORT refuses the custom op, so the ONNX evaluator is tried and refuses it too: the cell names the
    op and both tools' own errors, never convcheck's internal wrapper (`_ReferenceUnavailable: ...`)."""
    cell = check(onnx_cases.unknown_custom_op(tmp_path / "custom.onnx"), "onnx/ort", tmp_path)["onnx/ort"]
    assert cell["status"] == "unsupported" and cell["error"]["stage"] == "reference", _status(cell)
    assert cell["error"]["op"] == "com.example:Frobnicate"
    message = cell["error"]["message"]
    assert "_ReferenceUnavailable" not in message, message
    assert "from domain 'com.example' is unknown" in message and "not a registered function/op" in message
