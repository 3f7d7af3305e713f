"""TVM against ONNX Runtime and OpenVINO, per zoo model: untuned and MetaSchedule-tuned, as ratios.

One `convcheck matrix` run per model over torch/onnx/tvm, torch/onnx/ort and torch/onnx/openvino (the
same dynamo-exported ONNX file for all three), full size, 2 intra-op threads each, the figures from
convcheck's own latency harness. With --tune N the TVM cell is MetaSchedule-tuned with N trials and
its untuned build is timed beside it (cell.variants.untuned), so both TVM figures come from the same
run as the competitors'. Prints, per model, the p50 of each, and TVM / best-of(ORT, OpenVINO) for the
untuned and tuned builds, against the targets (untuned within 3x, tuned within 1.5x).

    python benchmarks/tvm_vs.py [--models resnet50,mobilenet_v2] [--tune 0] [--timeout S] [--out DIR]

Tuning records live in convcheck's cache (one database per target, shared by models): a second run
with the same budget reuses them and says so ("reused N").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUTES = ("torch/onnx/tvm", "torch/onnx/ort", "torch/onnx/openvino")
#: The zoo's convnets and transformers (the issue's "every zoo convnet and transformer").
DEFAULT_MODELS = ("cnn_small", "resnet50", "mobilenet_v2", "efficientnet_b0", "unet_small", "audio_conv1d",
                  "vit_tiny", "bert_encoder", "gpt2_decoder")
UNTUNED_TARGET, TUNED_TARGET = 3.0, 1.5


def run_model(model: str, tune: int, out: Path, timeout: int) -> dict:
    folder = out / model
    cmd = [sys.executable, "-m", "convcheck", "matrix", "--models", model, "--routes", ",".join(ROUTES),
           "--out", str(folder), "--no-cache", "--jobs", "1", "--timeout", str(timeout)]
    if tune:
        cmd += ["--tvm-tune", str(tune)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    results = folder / "results.json"
    if not results.exists():
        raise SystemExit(f"{model}: convcheck matrix wrote no results (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    cells = {c["route"]: c for c in json.loads(results.read_text())["cells"]}
    return {"cells": cells, "seconds": seconds}


def p50(cell: dict | None) -> float | None:
    lat = (cell or {}).get("latency_ms") or {}
    return lat.get("p50") if (cell or {}).get("status") == "pass" else None


def tvm_figures(cell: dict | None) -> tuple[float | None, float | None, str]:
    """(untuned p50, tuned p50 or None, how the tuned build was scheduled)."""
    if not cell or cell.get("status") != "pass":
        return None, None, (cell or {}).get("status", "missing")
    meta = next((a.get("metadata") or {} for a in reversed(cell.get("artifacts") or []) if a.get("format") == "tvm"),
                {})
    if not meta.get("tuned"):
        return p50(cell), None, "untuned"
    untuned = ((cell.get("variants") or {}).get("untuned") or {}).get("latency_ms") or {}
    state = meta.get("tune_state", "tuned")
    return untuned.get("p50"), p50(cell), f"{state}, {meta.get('tune_trials')} trials, {meta.get('tune_seconds', 0):.0f} s"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--tune", type=int, default=0, help="MetaSchedule trials for the TVM cell (0: untuned only)")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds a cell may take (default: convcheck's 1800, or 1800 + 2 s per trial when tuning)")
    args = parser.parse_args()
    # A search is bounded by trials, not time: a large budget must not end as a timed-out cell.
    timeout = args.timeout or 1800 + 2 * args.tune
    out = args.out or Path(tempfile.mkdtemp(prefix="tvm_vs_"))
    rows = []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        found = run_model(model, args.tune, out, timeout)
        cells = found["cells"]
        ort, ov = p50(cells.get("torch/onnx/ort")), p50(cells.get("torch/onnx/openvino"))
        best = min((v for v in (ort, ov) if v is not None), default=None)
        untuned, tuned, how = tvm_figures(cells.get("torch/onnx/tvm"))
        rows.append((model, ort, ov, untuned, tuned, best, how, found["seconds"]))
        print(f"{model}: done in {found['seconds']:.0f} s", file=sys.stderr, flush=True)

    def ms(v: float | None) -> str:
        return "—" if v is None else (f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.3g} ms")

    print(f"\nTVM vs the faster of ONNX Runtime and OpenVINO (p50, full size; runs in {out})")
    print(f"{'model':16} {'ORT':>10} {'OpenVINO':>10} {'TVM untuned':>12} {'ratio':>7} {'TVM tuned':>10} {'ratio':>7}  tuned build")
    for model, ort, ov, untuned, tuned, best, how, _ in rows:
        u, t = ratio(untuned, best), ratio(tuned, best)
        u += " " if untuned is None or best is None or untuned / best <= UNTUNED_TARGET else "!"
        t += " " if tuned is None or best is None or tuned / best <= TUNED_TARGET else "!"
        print(f"{model:16} {ms(ort):>10} {ms(ov):>10} {ms(untuned):>12} {u:>8} {ms(tuned):>10} {t:>8}  {how}")
    print(f"\n! = over target (untuned {UNTUNED_TARGET:g}x, tuned {TUNED_TARGET:g}x)")


if __name__ == "__main__":
    main()
