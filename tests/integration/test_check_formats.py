"""`convcheck check` on a file of each format users have, built here from zoo models, and the
one-line refusals for files it cannot use (a pickle is never unpickled)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.framework

FACTORY = '''
import torch
def make():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    return m, {"x": torch.randn(4, 10)}


class Net(torch.nn.Module):  # the user's own class: it lives in this module, not in torch
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(10, 3)

    def forward(self, x):
        return torch.tanh(self.fc(x))


def make_own():
    torch.manual_seed(0)
    return Net().eval(), (torch.randn(4, 10),)
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    import torch

    from convcheck.zoo.cnn_small import build_keras, build_torch

    folder = tmp_path_factory.mktemp("formats")
    model = build_torch("tiny")
    x = torch.randn(2, 3, 64, 64)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    torch.export.save(program, str(folder / "cnn.pt2"))
    torch.jit.save(torch.jit.trace(model, x), str(folder / "cnn.pt"))
    torch.onnx.export(model, (x,), str(folder / "cnn.onnx"), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}}, dynamo=False)
    keras_model = build_keras("tiny")
    keras_model.save(str(folder / "cnn.keras"))
    keras_model.export(str(folder / "cnn_saved_model"), format="tf_saved_model")
    _write_tflite_files(keras_model, folder)
    _write_coreml_packages(model, x, folder)
    (folder / "userfactory.py").write_text(FACTORY)
    return folder


def _write_coreml_packages(model, x, folder: Path) -> None:
    """cnn.mlpackage (fp32) and cnn16.mlpackage (fp16 compute) as a user would convert them: their own
    input name, coremltools' invented output name; cnn_planted.mlpackage: cnn's first conv weight scaled."""
    import shutil

    import coremltools as ct
    import torch

    from tests.fakes.planted import plant_in_mlpackage

    traced = torch.jit.trace(model, x[:1])
    for name, precision in (("cnn", ct.precision.FLOAT32), ("cnn16", ct.precision.FLOAT16)):
        ct.convert(traced, inputs=[ct.TensorType(name="picture", shape=(1, 3, 64, 64))], convert_to="mlprogram",
                   compute_precision=precision, minimum_deployment_target=ct.target.iOS16
                   ).save(str(folder / f"{name}.mlpackage"))
    shutil.copytree(folder / "cnn.mlpackage", folder / "cnn_planted.mlpackage")
    plant_in_mlpackage(folder / "cnn_planted.mlpackage", "scale")


def _write_tflite_files(keras_model, folder: Path) -> None:
    """cnn.tflite (fp32), cnn_int8.tflite (dynamic-range int8), and other.keras: the same network with
    other weights, a wrong --source that the comparison must catch."""
    import numpy as np
    import tensorflow as tf

    (folder / "cnn.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())
    quantised = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    quantised.optimizations = [tf.lite.Optimize.DEFAULT]
    (folder / "cnn_int8.tflite").write_bytes(quantised.convert())
    rng = np.random.default_rng(1)
    # Kernels only: perturbed normalisation variances could go negative and make the reference NaN.
    keras_model.set_weights([w + rng.normal(0, 0.2, w.shape).astype(w.dtype) if w.ndim > 1 else w
                             for w in keras_model.get_weights()])
    keras_model.save(str(folder / "other.keras"))


def check(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    out = folder / f"out-{abs(hash(args))}"
    env = dict(os.environ, PYTHONPATH=f"{folder}{os.pathsep}{REPO}", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "convcheck", "check", *args, "--out", str(out), "--samples", "2",
                           "--bench-seconds", "0.02", "--bench-iters", "3"], capture_output=True, text=True,
                          cwd=folder, env=env, timeout=600, stdin=subprocess.DEVNULL)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else None
    return proc, results


@pytest.mark.slow
@pytest.mark.parametrize("given, routes", [
    ("cnn.onnx", "onnx/ort,onnx/openvino"),
    ("cnn.pt2", "torch/onnx/ort,torch/exported_program/tvm,torch/turbine/iree"),
    ("cnn.pt --input input:1x3x64x64:float32", "torch/onnx_legacy/ort,torch/openvino"),
    ("cnn.keras", "keras/onnx/ort,keras/tflite"),
    ("cnn_saved_model", "savedmodel/onnx/ort,savedmodel/tflite,savedmodel/openvino,savedmodel/stablehlo/iree"),
    ("cnn.tflite", "tflite/tflite,tflite/onnx/ort"),
    ("cnn.tflite --source cnn.keras", "keras/given-tflite/tflite"),
    ("cnn.tflite --source cnn_saved_model", "savedmodel/given-tflite/tflite"),
    ("cnn.mlpackage --source cnn.pt2 --batch 1", "torch/given-coreml/coreml"),
    ("userfactory:make", "torch/onnx/ort"),
    ("userfactory:make_own", "torch/onnx/ort,torch/coreml"),
])
def test_each_format_runs_its_routes_and_passes(files, given, routes):
    proc, results = check(files, *given.split(), "--routes", routes, "--precision", "fp32")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {c["route"] for c in results["cells"]} == set(routes.split(","))
    for cell in results["cells"]:
        assert cell["status"] == "pass", cell["error"]
        assert cell["parity"]["max_abs"] < 1e-4 and cell["parity"]["samples"] == 2
        floor = cell["parity"]["noise_floor"]
        if cell["source"] in ("onnx", "tflite", "torch"):
            # Measured for these sources (ONNX: the graph in float64; .tflite: optimised vs reference
            # kernels), never a made-up 0.0.
            assert floor and "error" not in floor and floor["per_output"], floor


@pytest.mark.slow
def test_an_int8_tflite_runs_as_given_and_is_judged_at_int8(files):
    proc, results = check(files, "cnn_int8.tflite", "--source", "cnn.keras")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (cell,) = results["cells"]
    assert (cell["route"], cell["precision"], cell["status"]) == ("keras/given-tflite/tflite", "int8", "pass")
    assert cell["parity"]["tolerance"]["profile"] == "int8"
    assert cell["parity"]["max_abs"] > 0  # dynamic-range int8 is not bit-exact: the comparison is real
    # the same file alone: its tf2onnx conversion is judged against it at int8 tolerance too
    proc, results = check(files, "cnn_int8.tflite", "--routes", "tflite/onnx/ort")
    assert proc.returncode == 0 and results["cells"][0]["parity"]["tolerance"]["profile"] == "int8"


@pytest.mark.slow
def test_an_fp16_mlpackage_runs_as_given_at_fp16_with_its_own_feature_names(files):
    proc, results = check(files, "cnn16.mlpackage", "--source", "cnn.pt2", "--batch", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (cell,) = results["cells"]
    assert (cell["route"], cell["precision"], cell["status"]) == ("torch/given-coreml/coreml", "fp16", "pass")
    assert cell["parity"]["tolerance"]["profile"] == "fp16" and cell["parity"]["max_abs"] > 0
    assert "MIL reference executor" in cell["runtime_settings"]["executor"]
    (hop,) = cell["artifacts"]
    # "picture" is the package's input, the source's is "input"; the output is coremltools' var_N.
    assert hop["metadata"]["feature_matching"] == "inputs by position, outputs by position"
    assert hop["metadata"]["input_map"] == {"input": "picture"}


def test_a_planted_fault_in_a_users_mlpackage_is_a_mismatch_localised_to_its_op(files):
    proc, results = check(files, "cnn_planted.mlpackage", "--source", "cnn.pt2", "--batch", "1")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    (cell,) = results["cells"]
    assert cell["status"] == "mismatch"
    found = cell["localization"]
    # The first conv (module "0", its BatchNorm "1" folded in), found through a .pt2 source: a flat
    # graph until the localiser unflattens it into its modules.
    assert found["found"] and found["op_type"] == "conv" and found["torch_module"] in ("0", "1"), found


def test_a_tflite_checked_against_the_wrong_source_mismatches(files):
    proc, results = check(files, "cnn.tflite", "--source", "other.keras")
    assert proc.returncode == 1
    (cell,) = results["cells"]
    assert cell["status"] == "mismatch" and cell["parity"]["max_abs"] > 1e-2


def test_several_samples_of_the_users_own_data(files):
    import numpy as np

    images = np.random.default_rng(5).normal(size=(3, 1, 3, 64, 64)).astype("float32")
    np.savez(files / "three.npz", image=images)
    proc, results = check(files, "cnn.onnx", "--inputs", "three.npz", "--routes", "onnx/ort")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert results["cells"][0]["parity"]["samples"] == 3
    np.savez(files / "wrong.npz", image=images[:, :, :, :32])
    proc, _ = check(files, "cnn.onnx", "--inputs", "wrong.npz")
    assert proc.returncode == 2 and "fixes it at 64" in proc.stderr and "Traceback" not in proc.stderr


def test_torchscript_without_shapes_says_which_input(files):
    proc, results = check(files, "cnn.pt")
    assert proc.returncode == 2 and results is None
    assert "give --input for input" in proc.stderr and "Traceback" not in proc.stderr


def test_a_pickle_is_refused_and_never_unpickled(files):
    marker = files / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (files / "evil.pt").write_bytes(pickle.dumps(Payload()))
    proc, results = check(files, "evil.pt", "--input", "input:1x3:float32")
    assert proc.returncode == 2 and results is None
    assert "never unpickles" in proc.stderr
    assert not marker.exists(), "the pickle's payload ran"


@pytest.mark.parametrize("given, expected", [
    ("model.bin", "no such file"),
    ("cnn.onnx.txt", "no such file"),
    ("nomodule:make", "cannot import the factory"),
    ("cut.onnx", "not a readable ONNX model"),
    ("cut.tflite", "cut.tflite: not a readable .tflite file"),
    ("text.tflite", "not a TFLite flatbuffer"),
    ("cut.keras", "not a .keras archive"),
    ("cut.pt2", "not a torch.export program (.pt2)"),
    ("broken_saved_model", "not a readable TensorFlow SavedModel folder"),
    ("cnn.keras --source cnn.keras", "--source is for a model you already converted (.tflite or .mlpackage)"),
    ("cnn.tflite --source userfactory:make", "does not match --source"),
    ("cnn.mlpackage", "add --source MODEL"),
    ("cnn.mlpackage --source userfactory:make", "cnn.mlpackage does not match --source userfactory:make"),
    ("zipped.mlpackage --source cnn.pt2", "a .mlpackage is a folder"),
    ("empty.mlpackage --source cnn.pt2", "not a Core ML package (no Manifest.json inside)"),
    ("old.mlmodel --source cnn.pt2", "re-convert with convert_to='mlprogram'"),
    ("cnn_saved_model --signature nope", "no signature 'nope'"),
])
def test_unusable_model_is_one_line_exit_2(files, given, expected):
    for name in ("cnn.onnx", "cnn.tflite", "cnn.keras", "cnn.pt2"):  # truncated copies
        blob = (files / name).read_bytes()
        (files / f"cut{Path(name).suffix}").write_bytes(blob[: len(blob) // 3])
    (files / "text.tflite").write_text("not a model")
    (files / "zipped.mlpackage").write_bytes(b"PK\x03\x04")
    (files / "empty.mlpackage").mkdir(exist_ok=True)
    (files / "old.mlmodel").write_bytes(b"\x08\x04")
    (files / "broken_saved_model").mkdir(exist_ok=True)
    (files / "broken_saved_model" / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    proc, results = check(files, *given.split())
    assert proc.returncode == 2 and results is None
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.slow
def test_matrix_takes_a_model_file_beside_the_zoo(files):
    out = files / "mf"
    env = dict(os.environ, PYTHONPATH=f"{files}{os.pathsep}{REPO}", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "convcheck", "matrix", "--model-file", "cnn.pt2", "--models",
                           "mlp_tabular", "--routes", "torch/onnx/ort", "--size", "tiny", "--samples", "2",
                           "--bench-seconds", "0.02", "--out", str(out)], capture_output=True, text=True, cwd=files,
                          env=env, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert sorted(c["model"] for c in cells) == ["cnn", "mlp_tabular"]
    assert all(c["status"] == "pass" for c in cells)
