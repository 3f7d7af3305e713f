"""Conversions are cached by content: a second run converts nothing it already has, a changed input
misses, and a half-written entry is never trusted. Real exports."""

from __future__ import annotations

import json

import pytest

from convcheck.engine import run_cells
from convcheck.plan import plan
from convcheck.plan import RunSettings
from convcheck.registry import models
from convcheck.routes import select_routes
from convcheck.validate.latency import LatencyConfig

pytestmark = pytest.mark.framework

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)


def _run(tmp_path, name, cache_dir, routes="torch/onnx/ort,torch/onnx/openvino"):
    cells = plan([models.get("mlp_tabular")], select_routes(routes), ["cpu"], ["fp32"])
    settings = RunSettings(tmp_path / name, size="tiny", samples=2, latency=FAST, artifact_cache_dir=cache_dir)
    return run_cells(cells, settings, tmp_path / name, name)


@pytest.mark.slow
def test_a_second_run_reuses_every_conversion(tmp_path):
    cache = tmp_path / "cache"
    first = _run(tmp_path, "first", cache)
    assert all(c["status"] == "pass" for c in first["cells"])
    assert not any(a.get("cached") for c in first["cells"] for a in c["artifacts"])
    # a new route that shares the ONNX prefix: the export is reused, only the new hop converts
    second = _run(tmp_path, "second", cache, "torch/onnx/ort,torch/onnx/openvino,torch/onnx/tvm")
    hops = {(c["route"], a["hop"]): a for c in second["cells"] for a in c["artifacts"]}
    assert hops[("torch/onnx/ort", "onnx")]["cached"] and hops[("torch/onnx/openvino", "openvino")]["cached"]
    assert not hops[("torch/onnx/tvm", "tvm")].get("cached")
    assert all(c["status"] == "pass" for c in second["cells"]), [c["error"] for c in second["cells"]]
    # the cached artifact is the same content
    first_onnx = next(a for a in first["cells"][0]["artifacts"] if a["hop"] == "onnx")
    assert hops[("torch/onnx/ort", "onnx")]["sha256"] == first_onnx["sha256"]


def test_a_half_written_entry_is_never_used(tmp_path):
    cache = tmp_path / "cache"
    _run(tmp_path, "first", cache, "torch/onnx/ort")
    (entry,) = [p for p in (cache / "artifacts").glob("*/*") if not p.name.startswith(".tmp-")]
    (entry / "artifact.json").write_text("{ half")  # as if the writer died mid-file
    again = _run(tmp_path, "again", cache, "torch/onnx/ort")
    (onnx,) = [a for a in again["cells"][0]["artifacts"] if a["hop"] == "onnx"]
    assert not onnx.get("cached") and again["cells"][0]["status"] == "pass"
    json.dumps(again)


def test_editing_a_converter_changes_its_hop_key(monkeypatch):
    """Regression: keras/stablehlo/iree's converter imported every weight as zero; fixed in place, the
    pipeline kept reusing the artifact the broken code had cached (the key held convcheck's version only)."""
    import inspect

    from convcheck.artifact_cache import hop_key
    from convcheck.cache import code_digest
    from convcheck.convert.openvino_from_onnx import OpenvinoFromOnnx

    def key() -> str | None:
        code_digest.cache_clear()
        return hop_key("0" * 64, OpenvinoFromOnnx, None, None, [], ["y"])

    before = key()
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: real(obj) + (
        "\n# edited\n" if getattr(obj, "__name__", "") == OpenvinoFromOnnx.__module__ else ""))
    try:
        assert key() != before
    finally:
        code_digest.cache_clear()
