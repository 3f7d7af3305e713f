"""The Ray executor on a real local Ray instance gives the local executor's results (less timings),
and a segfaulting converter costs one cell there too."""

from __future__ import annotations

import pytest

from convcheck.environment import physical_cores
from convcheck.executors import Limits
from convcheck.executors.local import LocalExecutor
from convcheck.engine import run_cells
from convcheck.plan import plan
from convcheck.plan import RunSettings
from convcheck.registry import converters, models
from convcheck.routes import select_routes
from convcheck.validate.latency import LatencyConfig
from tests.fakes import planted

pytestmark = [pytest.mark.fault, pytest.mark.framework, pytest.mark.slow]

ray = pytest.importorskip("ray", reason="Ray is part of convcheck[all]; without it the ray executor is missing_dep")

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)
ROUTES = "torch/onnx/ort,torch/onnx_segv/ort,torch/openvino,keras/onnx/ort,keras/tflite"
#: What may differ between two runs of the same cells: time, memory, where files went.
VOLATILE = {"latency_ms", "timings_s", "stages", "memory_mb", "artifacts", "log", "runtime_settings", "warnings",
            "batches", "variants", "localization"}


@pytest.fixture
def segv_route(fresh_routes):
    converters.register_object("_planted_segv", planted.SegfaultingExporter)
    yield
    converters.unregister("_planted_segv")


def _comparable(results: dict) -> list[dict]:
    found = []
    for cell in results["cells"]:
        kept = {k: v for k, v in cell.items() if k not in VOLATILE}
        if cell["status"] == "crashed":  # Ray does not say which signal killed its worker
            kept["error"] = {k: v for k, v in cell["error"].items() if k != "message"}
        if (kept.get("parity") or {}).get("noise_floor"):
            kept["parity"] = {**kept["parity"], "noise_floor": {k: v for k, v in kept["parity"]["noise_floor"].items()
                                                                if k != "seconds"}}
        found.append(kept)
    return found


def test_ray_gives_the_local_results_and_isolates_a_crash(segv_route, tmp_path):
    from convcheck.executors.ray_cluster import RayExecutor

    specs = [models.get("mlp_tabular"), models.get("cnn_small")]
    cells = plan(specs, select_routes(ROUTES), ["cpu"], ["fp32"])
    threads = physical_cores()  # as the CLI sets it: figures must not depend on where a cell ran
    local_settings = RunSettings(tmp_path / "local", size="tiny", samples=2, latency=FAST, threads=threads)
    local = run_cells(cells, local_settings, tmp_path / "local", "local",
                       executor=LocalExecutor(local_settings, jobs=2, limits=Limits(timeout_s=300)))
    ray_settings = RunSettings(tmp_path / "ray", size="tiny", samples=2, latency=FAST, threads=threads)
    on_ray = run_cells(cells, ray_settings, tmp_path / "ray", "ray",
                        executor=RayExecutor(ray_settings, limits=Limits(timeout_s=300)))
    assert not ray.is_initialized()  # the instance started for the run is stopped after it
    for ours, theirs in zip(_comparable(on_ray), _comparable(local), strict=True):
        # OpenVINO numbers IR node names with a process-wide counter: a warm worker that converted another
        # model first writes longer names (37427 vs 37414 bytes seen). Same graph, so within 1%.
        a_bytes, b_bytes = ours.pop("artifact_bytes", None), theirs.pop("artifact_bytes", None)
        assert (a_bytes is None) == (b_bytes is None) and (a_bytes is None or abs(a_bytes - b_bytes) <= 0.01 * b_bytes)
        differ = {k: (ours.get(k), theirs.get(k)) for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
        if "parity" in differ:
            a, b = differ["parity"]
            differ = {f"parity.{k}": (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        assert not differ, (ours["model"], ours["route"], differ)
    statuses = {(c["model"], c["route"]): c["status"] for c in on_ray["cells"]}
    assert statuses[("mlp_tabular", "torch/onnx_segv/ort")] == "crashed"
    assert statuses[("mlp_tabular", "torch/openvino")] == "pass"  # the group goes on after the crash
    assert sum(s == "pass" for s in statuses.values()) == len(statuses) - 2
