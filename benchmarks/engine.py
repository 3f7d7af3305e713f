"""The engine's figures for the default matrix on this machine.

Runs `convcheck matrix` (full size, every model, every route available here — what `make matrix`
runs) three times against a fresh CONVCHECK_HOME:
1. cold, `--jobs 1`;
2. cold again (cache cleared), `--jobs 2`;
3. warm: the same command once more, everything served from the cell cache (target: seconds).
For each it prints the wall time, the cells, and the orchestrator's peak resident memory (the
`convcheck` process itself, not its workers: what a long run costs the machine on top of the
frameworks).

    python benchmarks/engine.py [--models all] [--skip-jobs2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(home: Path, out: Path, models: str, *extra: str) -> tuple[float, int, float, dict]:
    env = dict(os.environ, CONVCHECK_HOME=str(home), COLUMNS="200")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "convcheck", "matrix", "--models", models, "--out", str(out),
                             *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    peak_kb = 0
    while proc.poll() is None:
        # VmHWM: the orchestrator's own high-water mark (its workers are other processes, not counted).
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                peak_kb = max(peak_kb, next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM")))
        except (OSError, StopIteration):
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - started
    results = json.loads((out / "results.json").read_text())
    return wall, proc.returncode, peak_kb / 1024, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all")
    parser.add_argument("--skip-jobs2", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="convcheck-bench-"))
    print(f"default matrix, --models {args.models}, CONVCHECK_HOME={home}")
    print(f"{'run':<18}{'wall':>10}{'cells':>8}{'exit':>6}{'orchestrator peak RSS':>24}")
    plans = [("cold --jobs 1", ["--jobs", "1"], True)]
    if not args.skip_jobs2:
        plans.append(("cold --jobs 2", ["--jobs", "2"], True))
    plans.append(("warm (cached)", ["--jobs", "1"], False))
    try:
        for label, extra, clear in plans:
            if clear:
                shutil.rmtree(home / "cache", ignore_errors=True)
            wall, code, peak_mb, results = run(home, home / label.replace(" ", "_"), args.models, *extra)
            cached = sum(1 for c in results["cells"] if c.get("cached"))
            print(f"{label:<18}{wall:>9.1f}s{len(results['cells']):>8}{code:>6}{peak_mb:>20.0f} MiB"
                  + (f"   ({cached} from the cache)" if cached else ""), flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
