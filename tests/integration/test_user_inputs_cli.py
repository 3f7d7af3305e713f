"""`convcheck check model.onnx` with --input / --inputs, through the real CLI.

Refusals: exit status 2, one line on stderr starting `error:`, no traceback, no --out folder.
Runs: a VAD-shaped model whose sequence axis is settled by --inputs, string and bfloat16 inputs from
--inputs, scalar inputs through TVM, and table-index inputs ranged from the graph.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_user_inputs import bf16_model, embedding_model, scalar_model, string_model, vad_model

FAST = ("--samples", "2", "--bench-seconds", "0.02", "--bench-iters", "3")


def _check(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = folder / f"out-{abs(hash(args))}"
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "convcheck", "check", *args, "--out", str(out)],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=600, stdin=subprocess.DEVNULL)
    return proc, out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("user_inputs")
    vad_model(folder / "vad.onnx")
    embedding_model(folder / "emb.onnx")
    string_model(folder / "text.onnx")
    bf16_model(folder / "bf16.onnx")
    scalar_model(folder / "scalar.onnx")
    rng = np.random.default_rng(3)
    np.savez(folder / "vad.npz", x=rng.normal(size=(2, 1, 512)).astype(np.float32),
             state=rng.normal(size=(2, 2, 1, 16)).astype(np.float32), sr=np.array([16000, 8000]))
    np.savez(folder / "text.npz", s=np.array([[["a", "x", "c"]], [["b", "b", "q"]]]))
    np.savez(folder / "bf16.npz", x=rng.normal(size=(2, 1, 7)).astype(np.float32))
    return folder


@pytest.mark.parametrize("args, expected", [
    (["vad.onnx", "--input", "x:1x512:float32:e..1"], "must be numbers"),
    (["vad.onnx", "--input", "x:1x512:float32:0.."], "give both ends"),
    (["vad.onnx", "--input", "x:1x512:float32:..5"], "give both ends"),
    (["vad.onnx", "--input", "sr::int64:5..1"], "is empty"),
    (["vad.onnx", "--input", "x:1x512:float32:nan..1"], "finite"),
    (["vad.onnx", "--input", "x:1x512:float32", "--input", "state:2x1x17:float32"], "fixes it at 16"),
    (["vad.onnx", "--input", "x:1x512:float32", "--input", "sr::int32"], "declares 'sr' as int64"),
    (["vad.onnx", "--input", "x:1x1x512:float32"], "declares 'x' with 2"),
    (["vad.onnx", "--input", "x:1x2000000000:float32"], "over convcheck's"),
    (["vad.onnx"], r"open dimension 1 \(sequence\)"),
    (["text.onnx"], "pass --inputs data.npz"),
])
def test_bad_input_options_are_one_line_and_write_nothing(models: Path, args: list[str], expected: str) -> None:
    import re

    proc, out = _check(models, *args)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not out.exists()


def _cells(out: Path) -> dict[str, dict]:
    return {c["route"]: c for c in json.loads((out / "results.json").read_text())["cells"]}


@pytest.mark.framework
@pytest.mark.slow
def test_npz_settles_the_sequence_axis_of_a_vad_model(models: Path) -> None:
    proc, out = _check(models, "vad.onnx", "--inputs", "vad.npz", "--routes", "onnx/ort,onnx/tvm", *FAST)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for route, cell in _cells(out).items():
        assert cell["status"] == "pass", (route, cell["error"])
        assert cell["parity"]["samples"] == 2


@pytest.mark.framework
@pytest.mark.slow
def test_scalar_inputs_pass_on_tvm(models: Path) -> None:
    proc, out = _check(models, "scalar.onnx", "--routes", "onnx/tvm", *FAST)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _cells(out)["onnx/tvm"]["status"] == "pass", _cells(out)["onnx/tvm"]["error"]


@pytest.mark.framework
@pytest.mark.slow
def test_table_indices_cover_the_table(models: Path) -> None:
    proc, out = _check(models, "emb.onnx", "--routes", "onnx/ort,onnx/tvm", *FAST)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {c["status"] for c in _cells(out).values()} == {"pass"}


@pytest.mark.framework
@pytest.mark.slow
def test_string_input_from_npz(models: Path) -> None:
    proc, out = _check(models, "text.onnx", "--inputs", "text.npz", "--routes", "onnx/ort,onnx/tvm", *FAST)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    cells = _cells(out)
    assert cells["onnx/ort"]["status"] == "pass", cells["onnx/ort"]["error"]
    assert cells["onnx/tvm"]["status"] == "unsupported" and "string" in cells["onnx/tvm"]["error"]["message"]


@pytest.mark.framework
@pytest.mark.slow
def test_bfloat16_input_from_npz_runs_on_tvm(models: Path) -> None:
    """The bfloat16 samples cross into the worker processes and run on the spec's reference
    evaluator and TVM. (ONNX Runtime's numpy path knows no bfloat16: onnx/ort and the default
    reference need OrtValue feeds in the ORT runtime.)"""
    pytest.importorskip("ml_dtypes")
    proc, out = _check(models, "bf16.onnx", "--inputs", "bf16.npz", "--reference", "onnx-reference",
                       "--routes", "onnx/tvm", *FAST)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cell = _cells(out)["onnx/tvm"]
    assert cell["status"] == "pass", cell["error"]


@pytest.mark.framework
@pytest.mark.slow
def test_bfloat16_runs_on_ort_and_openvino_with_the_default_reference(models: Path) -> None:
    """ORT takes and returns bfloat16 through OrtValues; OpenVINO through a bf16 Tensor (its numpy path
    misread ml_dtypes arrays: values of 1e-12 for x^2, a false mismatch)."""
    pytest.importorskip("ml_dtypes")
    proc, out = _check(models, "bf16.onnx", "--inputs", "bf16.npz", "--routes", "onnx/ort,onnx/openvino", *FAST)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for route, cell in _cells(out).items():
        assert cell["status"] == "pass", (route, cell["error"])
        assert cell["reference"] == "ort_reference"
