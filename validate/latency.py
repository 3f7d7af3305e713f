"""Latency harness: warm-up, then iterate until a minimum count AND a minimum duration are reached.

In the spirit of MLPerf LoadGen and optimum-benchmark: one figure from five iterations is noise.
Each iteration is timed alone with perf_counter_ns; the harness overhead (a bare call of the same
timer pair) is measured and reported so it can be checked against the figures.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class LatencyConfig:
    warmup_iters: int = 5
    warmup_seconds: float = 0.2
    #: A slow call (untuned TVM: seconds) ends its warm-up here, after at least 2 calls: the first call
    #: pays the one-off costs, the second shows the steady state.
    warmup_max_seconds: float = 2.0
    min_iters: int = 30
    min_seconds: float = 1.0
    # A slow runtime (untuned TVM: seconds per call) stops here even before min_iters.
    max_seconds: float = 30.0
    #: Adaptive stop: once min_seconds have passed and at least ci_min_iters calls were timed, stop
    #: when the 95% confidence interval of the p50 is within +-ci_rel of it, even before min_iters.
    #: Fast calls reach min_iters within min_seconds anyway; this is what keeps a 200 ms call from
    #: taking 30 calls to state a figure 8 calls already pin down.
    ci_rel: float = 0.025
    ci_min_iters: int = 8


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
        spent = time.perf_counter() - started
        if spent > config.max_seconds / 4 or (warm >= 2 and spent >= config.warmup_max_seconds):
            break
    samples_ns: list[int] = []
    begin = time.perf_counter()
    stopped_by = "count"
    while True:
        t0 = time.perf_counter_ns()
        call()
        samples_ns.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - begin
        n = len(samples_ns)
        if n >= config.min_iters and elapsed >= config.min_seconds:
            break
        if n >= config.ci_min_iters and elapsed >= config.min_seconds and median_ci_rel(samples_ns) <= config.ci_rel:
            stopped_by = "ci"
            break
        if elapsed >= config.max_seconds and n >= 3:
            stopped_by = "max_seconds"
            break
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    overhead_ns = _timer_overhead_ns()
    stdev = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    cv = stdev / float(ms.mean()) if ms.mean() > 0 else 0.0
    ci = median_ci_rel(samples_ns)
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "stdev": stdev,
        "cv": cv,
        # Noisy: the spread is large enough that p50 may move by more than a tenth between runs. A
        # run the adaptive rule stopped early is not noisy for being short: its p50 is pinned down.
        "noisy": bool(cv > NOISY_CV or (len(ms) < config.min_iters and stopped_by != "ci")),
        "min": float(ms.min()),
        "max": float(ms.max()),
        "n": int(len(ms)),
        "warmup": warm,
        "stopped_by": stopped_by,
        "p50_ci95_rel": None if math.isinf(ci) else ci,
        "timer_overhead_ms": overhead_ns / 1e6,
        "config": asdict(config),
    }


def median_ci_rel(samples: list[int] | np.ndarray) -> float:
    """Half-width of a distribution-free 95% confidence interval of the median, relative to the median.

    The interval is [x(j), x(n-1-j)] of the sorted samples, j the largest rank whose binomial coverage is
    at least 95% (_median_ci_rank); inf when n is too small for one (n < 6).
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    if n < 6:
        return math.inf
    lo = _median_ci_rank(n)
    if lo is None:
        return math.inf
    median = float(np.median(x))
    if median <= 0:
        return math.inf
    return float(x[n - 1 - lo] - x[lo]) / 2 / median


@functools.lru_cache(maxsize=4096)
def _median_ci_rank(n: int) -> int | None:
    """The largest 0-based rank j such that [x(j), x(n-1-j)] covers the median with >= 95%; None if none.

    The interval's lower end x(j) is the (j+1)-th smallest sample: it lies above the true median when at
    most j samples fall below it, B <= j with B ~ Bin(n, 1/2); likewise above. Coverage = 1 - 2 P(B <= j).

    The binomial terms are summed in floats from their logarithms (lgamma): exact binomial coefficients
    over 2**n are integers of thousands of digits at the n a fast runtime reaches in a second (20,000
    calls), and summing those cost 28 s per figure.
    """
    best = None
    cumulative = 0.0
    log_half_n = n * math.log(0.5)
    log_n_fact = math.lgamma(n + 1)
    for j in range((n - 1) // 2):
        cumulative += math.exp(log_n_fact - math.lgamma(j + 1) - math.lgamma(n - j + 1) + log_half_n)
        if 1 - 2 * cumulative < 0.95:
            break
        best = j
    return best


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
