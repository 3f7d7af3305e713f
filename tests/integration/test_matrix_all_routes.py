"""`convcheck matrix --models mlp_tabular --routes all --device all` through the CLI: every route that runs
here passes; every other cell (TensorRT, CUDA, Core ML) says why it cannot run here.

One model: with cnn_small as well this was CI's largest item (473 s of a run over its 40-minute budget);
convolutions go down the ONNX Runtime and OpenVINO routes in test_reports_cli.py and through every
source format in test_check_formats.py."""

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
    proc = run_cli("matrix", "--models", "mlp_tabular", "--routes", "all", "--device", "all",
                   "--size", "tiny", "--samples", "2", "--bench-seconds", "0.05", "--bench-iters", "5",
                   "--out", str(out))
    return proc, json.loads((out / "results.json").read_text())


def test_every_runnable_route_passes_and_the_rest_say_why(all_routes_run):
    proc, results = all_routes_run
    jsonschema.Draft202012Validator(schema()).validate(results)
    routes = {r.id: r for r in enumerate_routes() if r.source.value in ("torch", "keras", "jax")}
    seen = set()
    found_by_precheck = []
    for cell in results["cells"]:
        route = routes[cell["route"]]
        avail = availability(route, cell["device"])
        seen.add(cell["route"])
        if avail.available:
            assert cell["status"] == "pass", f"{cell['model']} {cell['route']} {cell['device']}: {cell['error']}"
        elif cell["status"] in ("convert_error", "unsupported"):
            # The precheck converted for real (every package here, no device): the converter's failure
            # is the cell's status (TVM could not schedule jax2onnx's cnn_small graph for cuda).
            assert str(cell["error"]["stage"]).startswith("convert:"), cell["error"]
            found_by_precheck.append(f"{cell['model']} {cell['route']} {cell['device']}")
        else:
            assert cell["status"] in ("missing_dep", "no_device")
            assert cell["error"]["message"].startswith(avail.reason)
    assert seen == set(routes), "every torch, keras and jax route has a cell"
    # Exit 1 exactly when a conversion failed (a finding), else 0.
    assert proc.returncode == (1 if found_by_precheck else 0), (found_by_precheck, proc.stderr[-2000:])
    assert all(f.endswith("cuda") for f in found_by_precheck), found_by_precheck
    for name in ("torch/onnx/ort", "torch/onnx_legacy/ort", "torch/onnx/openvino", "torch/openvino", "torch/onnx/tvm",
                 "torch/exported_program/tvm", "keras/tflite", "keras/onnx/ort"):
        assert name in proc.stdout
