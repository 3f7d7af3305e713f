"""The wall-clock figures that the tests no longer assert as absolute bounds.

The tests compare each timing with another measured in the same run (a ratio that holds on any
machine); the absolute figures depend on the machine and belong here, printed, not asserted:

- the HTML report of a full-size matrix (13 models x 105 cells), best of --rounds renders
  (tests/unit/test_html_report.py once asserted under 5 s);
- the failure classifier on three messages of megabytes
  (tests/unit/test_failures.py once asserted under 30 s);
- the p50 latency of the real mlp_tabular x torch/onnx/ort cell, through the CLI
  (tests/integration/test_matrix_cell.py once asserted under 50 ms); needs torch and onnxruntime.

    python benchmarks/timing_figures.py [--rounds 3] [--skip-cell]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the documents and messages are the tests' own builders


def best_seconds(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def html_report(rounds: int) -> None:
    from tests.unit.test_html_report import full_size_matrix, report

    for n_models in (1, 13):
        doc = full_size_matrix(n_models)
        s = best_seconds(lambda: report.render_matrix_html(doc), rounds)
        print(f"html report, {len(doc['cells']):5d} cells: {s:8.3f} s")


def classifier(rounds: int) -> None:
    from tests.unit.test_failures import classify, megabyte_messages

    for shrink in (10, 1):
        texts = megabyte_messages(shrink)
        s = best_seconds(lambda: [classify(RuntimeError(t), "run") for t in texts], rounds)
        print(f"classify 3 messages of {sum(map(len, texts)) / 1e6:4.1f} MB: {s:8.3f} s")


def matrix_cell() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        proc = subprocess.run([sys.executable, "-m", "convcheck", "matrix", "--models", "mlp_tabular", "--routes",
                               "torch/onnx/ort", "--out", str(out), "--bench-seconds", "0.3"],
                              capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            print(f"mlp_tabular x torch/onnx/ort: exit {proc.returncode}\n{proc.stderr[-2000:]}")
            return
        (cell,) = json.loads((out / "results.json").read_text())["cells"]
        lat, t = cell["latency_ms"], cell["timings_s"]
        print(f"mlp_tabular x torch/onnx/ort (batch {lat['batch']}): p50 {lat['p50']:.4f} ms, "
              f"p90 {lat['p90']:.4f} ms (n={lat['n']}); load {t['load']:.3f} s, convert {t['convert']:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-cell", action="store_true", help="skip the real cell (torch, onnxruntime)")
    args = parser.parse_args()
    html_report(args.rounds)
    classifier(args.rounds)
    if not args.skip_cell:
        matrix_cell()


if __name__ == "__main__":
    main()
