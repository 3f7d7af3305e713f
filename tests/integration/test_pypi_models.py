"""Trained models nobody here wrote, taken from public PyPI packages at test time (never committed).

silero-vad ships its voice-activity detector as ONNX files: a recurrent network with a dynamic
`sequence` axis, a rank-0 int64 sample-rate input, a state tensor and (in some variants) control
flow. Skipped cleanly when the package registry cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.framework

pytest.importorskip("onnxruntime")

SILERO = "silero-vad==6.2.3"


@pytest.fixture(scope="module")
def silero_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("silero")
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder),
                               SILERO], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download {SILERO} timed out: registry unreachable")
    wheels = list(folder.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"pip download {SILERO} failed (registry unreachable?): {proc.stderr.strip()[-200:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.endswith(".onnx"):
                wheel.extract(name, folder)
    return folder / "silero_vad" / "data"


def _speech_like(samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    voiced = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (voiced + 0.02 * rng.normal(size=samples)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["silero_vad_op18_ifless.onnx", "silero_vad.onnx"])
def test_silero_vad_with_the_user_s_data_settles_open_dimensions(silero_files, variant, tmp_path, cli):
    model = silero_files / variant
    npz = tmp_path / "audio.npz"
    # Two samples stacked on a first axis: 512 samples of 16 kHz audio each, a zero state, sr 16000.
    np.savez(npz, input=np.stack([_speech_like(512, s)[None, :] for s in (0, 1)]),
             state=np.zeros((2, 2, 1, 128), np.float32), sr=np.array([16000, 16000], np.int64))
    out = tmp_path / "out"
    proc = cli("check", str(model), "--inputs", str(npz), "--routes", "onnx/ort,onnx/openvino", "--out", str(out),
               "--bench-seconds", "0.05", "--bench-iters", "5")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    cells = {c["route"]: c for c in json.loads((out / "results.json").read_text())["cells"]}
    assert cells["onnx/ort"]["status"] == "pass", cells["onnx/ort"]["error"]
    assert cells["onnx/ort"]["parity"]["samples"] == 2
    # OpenVINO must compute the same function, or say exactly why it cannot: never a convcheck bug.
    ov = cells["onnx/openvino"]
    assert ov["status"] != "internal_error", ov["error"]
    if ov["status"] != "pass":
        assert ov["status"] in ("unsupported", "convert_error", "runtime_error", "mismatch"), ov["error"]
        assert ov["error"]["message"]
