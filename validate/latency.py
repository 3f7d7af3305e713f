"""Latency harness: warm-up, then iterate until a minimum count AND a minimum duration are reached.

In the spirit of MLPerf LoadGen and optimum-benchmark: one figure from five iterations is noise.
Each iteration is timed alone with perf_counter_ns; the harness overhead (a bare call of the same
timer pair) is measured and reported so it can be checked against the figures.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class LatencyConfig:
    warmup_iters: int = 5
    warmup_seconds: float = 0.2
    min_iters: int = 30
    min_seconds: float = 1.0
    # A slow runtime (untuned TVM: seconds per call) stops here even before min_iters.
    max_seconds: float = 30.0


#: Coefficient of variation above which a figure is flagged noisy. On a quiet machine ORT's CV is
#: 1-5%; above 10% the machine is busy (another process, thermal throttling) or the runtime's own
#: latency varies (allocation, thread wake-ups): the p50 is then not a figure to compare runs with.
NOISY_CV = 0.10


def measure(call: Callable[[], Any], config: LatencyConfig) -> dict[str, Any]:
    """Time `call()`; returns the results.json `latency_ms` object."""
    started = time.perf_counter()
    warm = 0
    while warm < config.warmup_iters or time.perf_counter() - started < config.warmup_seconds:
        call()
        warm += 1
        if time.perf_counter() - started > config.max_seconds / 4:
            break
    samples_ns: list[int] = []
    begin = time.perf_counter()
    while True:
        t0 = time.perf_counter_ns()
        call()
        samples_ns.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - begin
        if len(samples_ns) >= config.min_iters and elapsed >= config.min_seconds:
            break
        if elapsed >= config.max_seconds and len(samples_ns) >= 3:
            break
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    overhead_ns = _timer_overhead_ns()
    stdev = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    cv = stdev / float(ms.mean()) if ms.mean() > 0 else 0.0
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "stdev": stdev,
        "cv": cv,
        # Noisy: the spread is large enough that p50 may move by more than a tenth between runs.
        "noisy": bool(cv > NOISY_CV or len(ms) < config.min_iters),
        "min": float(ms.min()),
        "max": float(ms.max()),
        "n": int(len(ms)),
        "warmup": warm,
        "timer_overhead_ms": overhead_ns / 1e6,
        "config": asdict(config),
    }


def _timer_overhead_ns(repeats: int = 1000) -> float:
    """Median cost of the timing itself around an empty call."""
    def noop() -> None:
        return None

    costs = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        noop()
        costs.append(time.perf_counter_ns() - t0)
    return float(statistics.median(costs))
