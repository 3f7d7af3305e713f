"""Keras -> ONNX (tf2onnx): real conversions, and the op it silently cannot convert named as unsupported."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.framework

pytest.importorskip("tf2onnx")

from convcheck.engine import run_cells  # noqa: E402
from convcheck.plan import plan  # noqa: E402
from convcheck.plan import RunSettings  # noqa: E402
from convcheck.registry import models  # noqa: E402
from convcheck.routes import select_routes  # noqa: E402
from convcheck.validate.latency import LatencyConfig  # noqa: E402
from tests.fakes.keras_models import GELU_SPEC  # noqa: E402

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)


def test_exact_gelu_is_unsupported_naming_erfc(tmp_path):
    cells = plan([GELU_SPEC], select_routes("keras/onnx/ort"), ["cpu"], ["fp32"])
    cell = run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "t")["cells"][0]
    assert cell["status"] == "unsupported"
    assert cell["error"]["op"] == "Erfc" and cell["error"]["stage"] == "convert:onnx"
    assert any("Erfc" in line for line in cell["log"])


def test_keras_twin_converts_and_matches(tmp_path):
    cells = plan([models.get("cnn_small")], select_routes("keras/onnx/ort"), ["cpu"], ["fp32"])
    cell = run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "t")["cells"][0]
    assert cell["status"] == "pass", cell["error"]
    assert cell["reference"] == "keras"
    assert cell["parity"]["per_output"]["logits"]["shape"] == [1, 10]
    assert 0 < cell["parity"]["max_abs"] < 1e-4
    assert cell["artifacts"][0]["metadata"]["via"] == "tf2onnx.convert.from_keras"
