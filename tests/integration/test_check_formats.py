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

FACTORY = '''
import torch
def make():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    return m, {"x": torch.randn(4, 10)}
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
    build_keras("tiny").save(str(folder / "cnn.keras"))
    (folder / "userfactory.py").write_text(FACTORY)
    return folder


def check(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    out = folder / f"out-{abs(hash(args))}"
    env = dict(os.environ, PYTHONPATH=f"{folder}{os.pathsep}{REPO}", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "convcheck", "check", *args, "--out", str(out), "--samples", "2",
                           "--bench-seconds", "0.02", "--bench-iters", "3"], capture_output=True, text=True,
                          cwd=folder, env=env, timeout=600, stdin=subprocess.DEVNULL)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else None
    return proc, results


@pytest.mark.parametrize("given, routes", [
    ("cnn.onnx", "onnx/ort,onnx/openvino"),
    ("cnn.pt2", "torch/onnx/ort,torch/exported_program/tvm"),
    ("cnn.pt --input input:1x3x64x64:float32", "torch/onnx_legacy/ort,torch/openvino"),
    ("cnn.keras", "keras/onnx/ort,keras/tflite"),
    ("userfactory:make", "torch/onnx/ort"),
])
def test_each_format_runs_its_routes_and_passes(files, given, routes):
    proc, results = check(files, *given.split(), "--routes", routes, "--precision", "fp32")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {c["route"] for c in results["cells"]} == set(routes.split(","))
    for cell in results["cells"]:
        assert cell["status"] == "pass", cell["error"]
        assert cell["parity"]["max_abs"] < 1e-4 and cell["parity"]["samples"] == 2


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
])
def test_unusable_model_is_one_line_exit_2(files, given, expected):
    proc, _ = check(files, given)
    assert proc.returncode == 2
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


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
