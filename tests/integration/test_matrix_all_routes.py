"""`convcheck matrix --models mlp_tabular,cnn_small --routes all --device all` through the CLI: every
route that runs here passes; every other cell (TensorRT, CUDA, Core ML) says why it cannot run here."""

from __future__ import annotations

import json

import jsonschema
import pytest

from convcheck.results import schema
from convcheck.routes import availability, enumerate_routes
from tests.conftest import run_cli

pytestmark = [pytest.mark.framework, pytest.mark.slow]


@pytest.fixture(scope="module")
def all_routes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("all")
    proc = run_cli("matrix", "--models", "mlp_tabular,cnn_small", "--routes", "all", "--device", "all",
                   "--size", "tiny", "--samples", "2", "--bench-seconds", "0.05", "--bench-iters", "5",
                   "--out", str(out))
    return proc, json.loads((out / "results.json").read_text())


def test_every_runnable_route_passes_and_the_rest_say_why(all_routes_run):
    proc, results = all_routes_run
    jsonschema.Draft202012Validator(schema()).validate(results)
    routes = {r.id: r for r in enumerate_routes() if r.source.value in ("torch", "keras")}
    seen = set()
    for cell in results["cells"]:
        route = routes[cell["route"]]
        avail = availability(route, cell["device"])
        seen.add(cell["route"])
        if avail.available:
            assert cell["status"] == "pass", f"{cell['model']} {cell['route']} {cell['device']}: {cell['error']}"
        else:
            assert cell["status"] in ("missing_dep", "no_device")
            assert cell["error"]["message"].startswith(avail.reason)
    assert seen == set(routes), "every torch and keras route has a cell"
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("torch/onnx/ort", "torch/onnx_legacy/ort", "torch/onnx/openvino", "torch/openvino", "torch/onnx/tvm",
                 "torch/exported_program/tvm", "keras/tflite", "keras/onnx/ort"):
        assert name in proc.stdout
