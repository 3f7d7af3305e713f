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
