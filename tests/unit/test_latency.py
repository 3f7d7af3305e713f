from __future__ import annotations

import time

import pytest

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


@pytest.mark.timeout(20)  # a hang guard, not a timing test: the old sum took 28 s for n = 20,000 alone
def test_median_rank_is_exact_and_cheap_at_the_counts_fast_runtimes_reach():
    """The rank is the exact binomial one (checked in rationals), and a fast runtime's 20,000 calls cost
    milliseconds: summed as integer binomials over 2**n it took 28 s per figure (5.6 min of a cold matrix)."""
    import math
    from fractions import Fraction

    from convcheck.validate.latency import _median_ci_rank, median_ci_rel

    def exact(n: int) -> int | None:
        best, cumulative = None, Fraction(0)
        for j in range((n - 1) // 2):
            cumulative += Fraction(math.comb(n, j), 2**n)
            if 1 - 2 * cumulative < Fraction(95, 100):
                break
            best = j
        return best

    for n in list(range(1, 120)) + [999, 1000, 2001]:
        assert _median_ci_rank(n) == exact(n), n
    _median_ci_rank.cache_clear()
    j = _median_ci_rank(20_000)
    assert abs(j - (20_000 / 2 - 1.96 * math.sqrt(20_000) / 2)) < 3  # the normal approximation, to a rank or two
    assert median_ci_rel(list(range(1000, 21000))) == pytest.approx((20_000 - 1 - 2 * j) / 2 / 10_999.5, rel=1e-3)
