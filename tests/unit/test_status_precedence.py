"""A cell is judged by the first thing that blocks it, and convcheck's own bugs are never findings.

Regressions:
- Keras exact GELU -> tf2onnx (Erfc) -> TensorRT was `missing_dep`, as if installing TensorRT
  would help; it is `unsupported` naming Erfc, with TensorRT's absence noted as a warning.
- An exception inside convcheck's own code became a `runtime_error` cell, cached and counted against
  the route's lock-in fidelity; it is `internal_error`, never cached, never scored.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.framework

pytest.importorskip("tensorflow")

from convcheck.cache import CellCache  # noqa: E402
from convcheck.engine import run_cells  # noqa: E402
from convcheck.plan import plan  # noqa: E402
from convcheck.pipeline import CellRunner  # noqa: E402
from convcheck.plan import RunSettings  # noqa: E402
from convcheck.registry import models  # noqa: E402
from convcheck.routes import availability, select_routes  # noqa: E402
from convcheck.types import Status  # noqa: E402
from convcheck.validate.latency import LatencyConfig  # noqa: E402
from tests.fakes.keras_models import GELU_SPEC  # noqa: E402

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)


def test_a_failing_hop_before_the_missing_one_decides(tmp_path):
    (route,) = select_routes("keras/onnx/tensorrt")
    if availability(route).available:
        pytest.skip("TensorRT is installed here: the route is not blocked by a missing package")
    cells = plan([GELU_SPEC], [route], ["cpu", "cuda"], ["fp32"])
    cell = run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "t")["cells"][0]
    assert cell["status"] == "unsupported", cell["error"]
    assert cell["error"]["op"] == "Erfc" and cell["error"]["stage"] == "convert:onnx"
    assert any("tensorrt" in w.lower() for w in cell["warnings"]), cell["warnings"]


def test_a_missing_piece_after_a_good_conversion_stays_missing_dep(tmp_path):
    (route,) = select_routes("keras/onnx/tensorrt")
    if availability(route).available:
        pytest.skip("TensorRT is installed here")
    cells = plan([models.get("mlp_tabular")], [route], ["cpu", "cuda"], ["fp32"])
    cell = run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "t")["cells"][0]
    assert cell["status"] in ("missing_dep", "no_device"), cell["error"]


def test_a_bug_in_convcheck_is_internal_error_not_cached_not_scored(tmp_path, monkeypatch):
    from convcheck.reports.lockin import _fidelity

    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted bug in compare_outputs")

    monkeypatch.setattr("convcheck.pipeline.compare_outputs", broken)
    cells = plan([models.get("mlp_tabular")], select_routes("torch/onnx/ort"), ["cpu"], ["fp32"])
    cache = CellCache(tmp_path / "cache")
    results = run_cells(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "t",
                         cache=cache)
    cell = results["cells"][0]
    assert cell["status"] == Status.INTERNAL_ERROR.value
    assert "planted bug" in cell["error"]["message"] and "please report" in cell["error"]["message"]
    assert any("Traceback" in line for line in cell["log"])
    assert cache.get(cell["cache_key"]) is None, "an internal error was cached"
    fidelity = _fidelity(results["cells"], ["onnx"])
    assert not fidelity["measured"], fidelity


def test_a_runtime_failing_in_the_timing_loop_is_classified(tmp_path, monkeypatch):
    """Framework calls outside the compare (the latency loop) are the route's status, not ours."""
    from convcheck.validate.runtimes.ort import OrtRuntime

    def fails(self, feeds):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : planted failure under load")

    monkeypatch.setattr(OrtRuntime, "fast_call", lambda self, feeds: lambda: fails(self, feeds))
    runner = CellRunner(RunSettings(tmp_path, size="tiny", samples=2, latency=FAST))
    (route,) = select_routes("torch/onnx/ort")
    (planned,) = plan([models.get("mlp_tabular")], [route], ["cpu"], ["fp32"])
    cell = runner.run(planned.spec, planned.route, planned.target)
    assert cell["status"] == "runtime_error" and cell["error"]["stage"] == "benchmark", cell["error"]
