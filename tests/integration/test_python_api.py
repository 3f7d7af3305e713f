"""`convcheck.check(model, example_inputs)` and `convcheck.matrix(...)` on live torch and Keras models: real
export into the run folder, real conversions and runtimes, results that render as HTML and convert to a
DataFrame, and `raise_for_failures()` that fails exactly when a cell does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convcheck
from convcheck.errors import ConvcheckError

pytestmark = [pytest.mark.framework, pytest.mark.slow]

FAST = {"samples": 3, "bench_seconds": 0.0, "bench_iters": 3}


def _torch_net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def test_a_live_torch_module_checks_renders_and_tabulates(tmp_path):
    import torch

    x = torch.randn(4, 8)
    result = convcheck.check(_torch_net(), (x,), routes=["torch/onnx/ort", "torch/openvino"], precision="fp32",
                             out=tmp_path / "run", **FAST)
    assert [c["status"] for c in result.cells] == ["pass", "pass"], result.table()
    assert result.failures() == [] and result.raise_for_failures() is result
    # the model and its examples were written into the run folder, where a resume finds them again
    assert (tmp_path / "run" / "model" / "Sequential.pt2").is_file()
    saved = np.load(tmp_path / "run" / "model" / "examples.npz")
    np.testing.assert_array_equal(saved[list(saved)[0]], x.numpy())
    cell = result.cells[0]
    assert cell["parity"]["samples"] == 3  # the example batch, then seeded draws like it
    frame = result.to_pandas()
    assert list(frame["route"]) == ["torch/onnx/ort", "torch/openvino"] and list(frame["status"]) == ["pass"] * 2
    assert frame["p50_ms"].notna().all() and (frame["max_abs"] < 1e-4).all()
    page = result._repr_html_()
    assert page.startswith("<div") and "torch/openvino" in page and "<script" not in page
    assert "2 cells: 2 pass" in repr(result)


def test_raise_for_failures_names_the_failing_cell(tmp_path):
    import torch

    # Asking int8 for 1e-7 agreement is a tolerance the quantised model cannot meet: a real mismatch.
    result = convcheck.check(_torch_net(), (torch.randn(4, 8),), routes=["torch/tflite"], precision="int8",
                             atol=1e-7, rtol=1e-7, out=tmp_path / "run", **FAST)
    by_precision = {c["precision"]: c["status"] for c in result.cells}
    assert by_precision["int8"] == "mismatch", result.table()
    with pytest.raises(convcheck.ConversionFailures) as caught:
        result.raise_for_failures()
    assert isinstance(caught.value, AssertionError)
    message = str(caught.value)
    assert "torch/tflite" in message and "int8" in message and "mismatch" in message
    assert [c["precision"] for c in caught.value.cells] == [c["precision"] for c in result.failures()]


def test_a_live_keras_model_and_a_zoo_model_in_one_matrix(tmp_path):
    import keras

    inputs = keras.Input((6,), name="features")
    outputs = keras.layers.Dense(2, name="scores")(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, outputs, name="scorer")
    x = np.random.default_rng(0).normal(size=(2, 6)).astype(np.float32)
    result = convcheck.matrix(["mlp_tabular", (model, {"features": x})], routes=["keras/onnx/ort"],
                              precision="fp32", size="tiny", out=tmp_path / "run", **FAST)
    assert sorted(c["model"] for c in result.cells) == ["mlp_tabular", "scorer"], result.table()
    assert all(c["status"] == "pass" for c in result.cells), result.table()


def test_a_notebook_style_script_without_a_main_guard_runs(tmp_path):
    """Worker processes must not run the caller's script again (multiprocessing's spawn does by default)."""
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent(f"""
        import torch, convcheck
        net = torch.nn.Sequential(torch.nn.Linear(4, 2))
        result = convcheck.check(net, (torch.randn(2, 4),), routes=["torch/onnx/ort"], precision="fp32",
                                 out={str(tmp_path / "run")!r}, samples=2, bench_seconds=0.0, bench_iters=3)
        print("STATUS", [c["status"] for c in result.cells])
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("STATUS") == 1 and "STATUS ['pass']" in proc.stdout


@pytest.mark.parametrize("call, expected", [
    (lambda m, x, out: convcheck.check(m, None, out=out), "give example_inputs"),
    (lambda m, x, out: convcheck.check(m, {"x": x}, out=out), "not a dict"),
    (lambda m, x, out: convcheck.check(m, (x,), out=out, bogus=1), "unknown option 'bogus'"),
    (lambda m, x, out: convcheck.check(object(), (x,), out=out), "is not a model convcheck takes"),
    (lambda m, x, out: convcheck.check(lambda v: v, (x,), out=out), "live JAX function"),
    (lambda m, x, out: convcheck.check(m, (x, x), out=out), "torch.export could not export it"),
])
def test_usage_errors_are_one_line_before_any_work(tmp_path, call, expected):
    import torch

    with pytest.raises(ConvcheckError, match=expected):
        call(_torch_net(), torch.randn(4, 8), tmp_path / "run")


def test_a_file_with_example_inputs_and_a_resume(tmp_path):
    from tests.integration.test_api_run import _onnx_file

    model = _onnx_file(tmp_path / "tiny.onnx")
    x = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    result = convcheck.check(str(model), (x,), routes=["onnx/ort"], out=tmp_path / "run", **FAST)
    assert [c["status"] for c in result.cells] == ["pass"] and result.cells[0]["parity"]["samples"] == 3
    assert set(np.load(tmp_path / "run" / "model" / "examples.npz")) == {"x"}  # named from the file's inputs
    again = convcheck.resume(result.run_id)  # the stored options name the file and its examples
    assert [c["status"] for c in again.cells] == ["pass"] and again.run_id == result.run_id
