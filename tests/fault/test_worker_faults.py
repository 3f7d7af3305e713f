"""A converter that segfaults, one that hangs and one that eats memory: the matrix completes, those
cells carry crashed / timeout / oom, and the cells around them pass (real workers, real export and
ONNX Runtime; only the defects are planted)."""

from __future__ import annotations

import pytest

from convcheck.executors import Limits
from convcheck.executors.local import LocalExecutor
from convcheck.engine import exit_code, run_cells
from convcheck.plan import plan
from convcheck.plan import RunSettings
from convcheck.registry import converters, models
from convcheck.routes import select_routes
from convcheck.validate.latency import LatencyConfig
from tests.fakes import planted

pytestmark = [pytest.mark.fault, pytest.mark.framework, pytest.mark.slow]

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)
PLANTED = {"segv": planted.SegfaultingExporter, "hang": planted.HangingExporter, "hog": planted.MemoryHogExporter,
           "thirsty": planted.ThirstyOnnxFromTorch}


@pytest.fixture
def faulty_routes(fresh_routes):
    for name, cls in PLANTED.items():
        converters.register_object(f"_planted_{name}", cls)
    yield
    for name in PLANTED:
        converters.unregister(f"_planted_{name}")


def test_segfault_hang_and_runaway_memory_cost_one_cell_each(faulty_routes, tmp_path):
    routes = "torch/onnx/ort,torch/onnx_segv/ort,torch/onnx_hang/ort,torch/onnx_hog/ort,torch/openvino"
    cells = plan([models.get("mlp_tabular")], select_routes(routes), ["cpu"], ["fp32"])
    settings = RunSettings(tmp_path, size="tiny", samples=2, latency=FAST)
    # Generous for a real cell (a few seconds here), short for a hang; 1.5 GiB is 5x a worker's need.
    executor = LocalExecutor(settings, jobs=1, limits=Limits(timeout_s=20, memory_mb=1536))
    results = run_cells(cells, settings, tmp_path, "faults", executor=executor)
    by_route = {c["route"]: c for c in results["cells"]}
    assert [c["route"] for c in results["cells"]] == routes.split(",")  # plan order, each once
    assert by_route["torch/onnx_segv/ort"]["status"] == "crashed"
    assert "SIGSEGV" in by_route["torch/onnx_segv/ort"]["error"]["message"]
    assert by_route["torch/onnx_hang/ort"]["status"] == "timeout"
    assert by_route["torch/onnx_hog/ort"]["status"] == "oom"
    assert "1536 MiB" in by_route["torch/onnx_hog/ort"]["error"]["message"]
    for route in ("torch/onnx/ort", "torch/openvino"):  # before and after the faults, in fresh workers
        assert by_route[route]["status"] == "pass", by_route[route]["error"]
    assert exit_code(results) == 1
    assert not executor.workers  # every worker was stopped at the end


def test_a_cell_over_the_memory_two_workers_share_is_computed_again_alone(faulty_routes, tmp_path, monkeypatch):
    """Two workers split the machine's memory; a conversion with a bounded need above its half is not
    called `oom`: it runs again at the end with the whole limit and passes (and says so). A runaway one
    is `oom` after that second try, against the whole limit."""
    # A 2.5 GiB machine (in the executor's eyes): 1280 MiB each for two workers, 2560 MiB alone.
    monkeypatch.setattr(Limits, "memory_for", lambda self, jobs: 2560.0 / max(jobs, 1))
    routes = "torch/onnx/ort,torch/onnx_thirsty/ort,torch/onnx_hog/ort,torch/openvino"
    cells = plan([models.get("mlp_tabular")], select_routes(routes), ["cpu"], ["fp32"])
    settings = RunSettings(tmp_path, size="tiny", samples=2, latency=FAST)
    executor = LocalExecutor(settings, jobs=2, limits=Limits(timeout_s=60))
    results = run_cells(cells, settings, tmp_path, "thirsty", executor=executor)
    by_route = {c["route"]: c for c in results["cells"]}
    assert [c["route"] for c in results["cells"]] == routes.split(",")
    thirsty = by_route["torch/onnx_thirsty/ort"]
    assert thirsty["status"] == "pass", thirsty["error"]
    assert any("computed again alone" in w and "1280 MiB" in w for w in thirsty["warnings"]), thirsty["warnings"]
    hog = by_route["torch/onnx_hog/ort"]
    assert hog["status"] == "oom" and "2560 MiB" in hog["error"]["message"]
    for route in ("torch/onnx/ort", "torch/openvino"):
        assert by_route[route]["status"] == "pass", by_route[route]["error"]
        assert not any("computed again" in w for w in by_route[route]["warnings"])
