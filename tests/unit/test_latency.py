from __future__ import annotations

import time

from convcheck.validate.latency import LatencyConfig, measure


def test_iterates_until_both_minimum_count_and_duration():
    calls = []
    lat = measure(lambda: calls.append(time.sleep(0.002)), LatencyConfig(warmup_iters=2, warmup_seconds=0.0,
                                                                          min_iters=10, min_seconds=0.1))
    assert lat["n"] >= 10
    assert lat["n"] * lat["mean"] >= 100 * 0.95  # at least min_seconds of timed calls
    assert 2.0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["warmup"] >= 2 and len(calls) == lat["n"] + lat["warmup"]
    assert lat["timer_overhead_ms"] < 0.01 * lat["p50"]  # the harness costs under 1% of the figure


def test_slow_calls_stop_at_max_seconds():
    lat = measure(lambda: time.sleep(0.05), LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=1000,
                                                          min_seconds=0.0, max_seconds=0.3))
    assert 3 <= lat["n"] < 1000


def test_a_steady_slow_call_stops_once_its_p50_is_pinned_down():
    """Adaptive stop: 30 ms calls that barely vary need 8 calls, not the minimum count of 1000."""
    lat = measure(lambda: time.sleep(0.03), LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=1000,
                                                          min_seconds=0.0, max_seconds=20.0, ci_rel=0.05))
    assert lat["stopped_by"] == "ci"
    assert 8 <= lat["n"] < 100
    assert lat["p50_ci95_rel"] <= 0.05 and not lat["noisy"]


def test_a_noisy_call_is_not_stopped_early():
    """Calls that alternate between 5 and 25 ms never give a tight interval: the minimum count decides."""
    import itertools

    pattern = itertools.cycle([0.005, 0.025, 0.025, 0.005, 0.015])
    lat = measure(lambda: time.sleep(next(pattern)), LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=20,
                                                                   min_seconds=0.0, max_seconds=20.0, ci_rel=0.025))
    assert lat["stopped_by"] == "count" and lat["n"] == 20
    assert lat["p50_ci95_rel"] > 0.025


def test_slow_warm_up_ends_after_two_calls():
    lat = measure(lambda: time.sleep(0.06), LatencyConfig(warmup_iters=5, warmup_seconds=0.0, warmup_max_seconds=0.1,
                                                          min_iters=3, min_seconds=0.0))
    assert lat["warmup"] == 2


def test_median_interval_covers_the_median_95_percent_of_the_time():
    import numpy as np

    from convcheck.validate.latency import _median_ci_rank, median_ci_rel

    rng = np.random.default_rng(0)
    for n in (6, 8, 10, 30, 100):
        j = _median_ci_rank(n)
        draws = np.sort(rng.exponential(size=(4000, n)), axis=1)  # skewed, as latencies are; median ln 2
        covered = np.mean((draws[:, j] <= np.log(2)) & (np.log(2) <= draws[:, n - 1 - j]))
        assert covered >= 0.94, (n, j, covered)
        if j + 1 <= (n - 1) // 2:  # and the next rank in would not cover: the interval is the tightest
            assert np.mean((draws[:, j + 1] <= np.log(2)) & (np.log(2) <= draws[:, n - 2 - j])) < 0.955
    assert median_ci_rel([5, 5, 5]) == float("inf")
    assert median_ci_rel([100] * 10) == 0.0
