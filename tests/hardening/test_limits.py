"""Per-cell limits hold for a runtime too, not only for converters: an ONNX graph that materialises
6 GiB from a 1-element input is stopped at the memory limit (oom), and the machine and the run go on."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


@pytest.mark.fault
@pytest.mark.framework
@pytest.mark.slow
def test_a_graph_that_allocates_gigabytes_is_stopped_at_the_memory_limit(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [6 * 2**30 // 4])  # 6 GiB of float32
    nodes = [helper.make_node("Expand", ["x", "shape"], ["big"]),
             helper.make_node("ReduceMax", ["big"], ["y"], keepdims=1)]
    graph = helper.make_graph(nodes, "hog", [x], [y], initializer=[shape])
    model = tmp_path / "hog" / "model.onnx"
    model.parent.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))

    done = run_cli("check", str(model), "--routes", "onnx/ort", "--samples", "1", "--memory-limit", "1500",
                   "--timeout", "120", "--out", str(tmp_path / "out"))
    assert done.returncode == 1, done.stderr[-2000:]
    cell, = json.loads((tmp_path / "out" / "results.json").read_text())["cells"]
    assert cell["status"] == "oom", cell["error"]
    assert "1500 MiB" in cell["error"]["message"]
