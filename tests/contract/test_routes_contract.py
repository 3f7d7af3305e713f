"""Every registered route, on a real tiny model: where it runs here it must pass with real parity;
where it cannot, its cell must carry the honest status and the reason.

Parametrized over the route graph itself, so a new hop or runtime is covered the moment it is
registered (one registry line, one contract entry: this one).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from convcheck.matrix import plan, run_matrix
from convcheck.pipeline import RunSettings
from convcheck.registry import models
from convcheck.routes import availability, enumerate_routes
from convcheck.types import Format
from convcheck.validate.latency import LatencyConfig

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)
ROUTES = enumerate_routes()


@pytest.fixture(scope="module")
def user_onnx(tmp_path_factory) -> Path:
    """A user's ONNX file: cnn_small (tiny) exported by the dynamo exporter, weights as external data."""
    from convcheck.convert.base import ConvertContext
    from convcheck.convert.onnx_from_torch import OnnxFromTorch

    spec = models.get("cnn_small")
    folder = tmp_path_factory.mktemp("user")
    art = OnnxFromTorch().convert(spec.source_artifact(Format.TORCH, "tiny"),
                                  ConvertContext(folder, list(spec.inputs), list(spec.outputs), spec.feeds(0)))
    assert (art.path / "model.onnx.data").exists()
    return art.main_file


def _spec_for(route, user_onnx):
    if route.source is Format.ONNX:
        from convcheck.zoo.user_model import spec_from_onnx

        return spec_from_onnx(user_onnx)
    return models.get("cnn_small")


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_route_passes_here_or_says_why_not(route, user_onnx, tmp_path):
    spec = _spec_for(route, user_onnx)
    cells = plan([spec], [route], list(route.devices), ["fp32"])
    results = run_matrix(cells, RunSettings(tmp_path, size="tiny", samples=2, latency=FAST), tmp_path, "contract")
    assert len(results["cells"]) == len(route.devices)
    for cell in results["cells"]:
        avail = availability(route, cell["device"])
        where = f"{route.id} on {cell['device']}"
        if not avail.available:
            assert cell["status"] == avail.status.value, where
            assert avail.reason in cell["error"]["message"], where
            continue
        assert cell["status"] == "pass", f"{where}: {cell['error']}"
        parity = cell["parity"]
        # Real parity, not "it ran": every sample compared, within fp32 tolerance, same top-1.
        assert parity["samples"] == 2 and parity["per_output"]["logits"]["shape"] == [1, 10]
        assert parity["max_abs"] < 1e-4 and parity["cosine"] > 0.99999, where
        if spec.task == "classifier":  # a user's ONNX file does not say what its outputs mean
            assert parity["top1_agreement"] == 1.0
        assert cell["latency_ms"]["n"] >= 3 and cell["latency_ms"]["p50"] > 0
        assert cell["timings_s"]["load"] > 0 and cell["timings_s"]["first_inference"] > 0
        if route.converters:
            assert cell["artifact_bytes"] > 0 and cell["timings_s"]["convert"] > 0
