"""The LoadGen harness (convcheck.validate.loadgen) driven by the real MLPerf LoadGen over small numpy
"runtimes" whose behaviour is known: a fixed service time, a batch-dependent bug, a call that raises.
These are the harness's own logic (SUT, calibration, reruns, capacity search, log parsing); real runtimes
under load are tested in tests/integration/test_load_cli.py."""

from __future__ import annotations

import time

import numpy as np
import pytest

from convcheck.errors import ConvcheckError
from convcheck.validate.loadgen import (EARLY_STOPPING_P99_QUERIES, LoadSettings, _recalibrated, read_detail_log,
                                        serve)

pytest.importorskip("mlperf_loadgen")

SAMPLES = [{"x": np.full((2, 4), float(i), dtype=np.float32)} for i in range(3)]


class SleepyRuntime:
    """Computes x * 2 in `service_ms` per call (per row when `per_row`), like a runtime whose cost is known."""

    def __init__(self, service_ms: float = 0.0, batch_bug: bool = False, fail_after: int | None = None) -> None:
        self.service_s, self.batch_bug, self.fail_after, self.calls = service_ms / 1000, batch_bug, fail_after, 0

    def infer_impl(self, feeds):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("device lost")
        if self.service_s:
            end = time.perf_counter() + self.service_s
            while time.perf_counter() < end:  # busy: sleeping would let calls overlap as a real runtime cannot
                pass
        x = feeds["x"]
        out = x * 2 + (0.5 if self.batch_bug and x.shape[0] > 2 else 0.0)
        return {"y": out}

    def infer(self, feeds):
        return self.infer_impl(feeds)

    def timed_call(self, feeds):
        return lambda: self.infer_impl(feeds)

    def describe(self):
        return {"threads": 1}


def judge(outputs):
    worst = max(float(np.max(np.abs(o["y"] - s["x"] * 2))) for o, s in zip(outputs, SAMPLES))
    return {"ok": worst <= 1e-6, "max_abs": worst}


def test_all_four_scenarios_run_and_are_judged_by_loadgen_itself(tmp_path):
    settings = LoadSettings(duration_s=0.2, samples_per_query=4)
    load = serve(SleepyRuntime(0.05), SAMPLES, settings, 0.05, None, judge, tmp_path / "logs")
    runs = {r["scenario"]: r for r in load["runs"]}
    assert list(runs) == ["single-stream", "multi-stream", "server", "offline"]  # the order asked
    for name, run in runs.items():
        assert run["valid"], (name, run.get("invalid_reason"))
        assert run["min_duration_ok"] and run["achieved_qps"] and run["achieved_qps"] > 0
        assert run["settings"]["min_duration_ms"] == 200 and run["settings"]["qsl_rng_seed"] == 0
        detail = tmp_path / "logs" / run["log"] / "mlperf_log_detail.txt"
        assert read_detail_log(detail)["result_validity"] == "VALID"  # the figures are LoadGen's own
        assert (tmp_path / "logs" / run["log"] / "mlperf_log_summary.txt").is_file()
        assert not (tmp_path / "logs" / run["log"] / "mlperf_log_trace.json").exists()
    assert runs["single-stream"]["p50"] >= 0.05 and runs["single-stream"]["p99"] >= runs["single-stream"]["p50"]
    assert runs["multi-stream"]["samples_per_query"] == 4 and runs["multi-stream"]["latency_of"] == "query"
    assert runs["multi-stream"]["p50"] >= 4 * 0.05  # one query is four calls, one after another
    assert runs["offline"]["p99"] is None  # one query: no latency percentiles to speak of
    assert runs["server"]["queries"] >= EARLY_STOPPING_P99_QUERIES  # enough to hold p99 at LoadGen's confidence
    assert load["mlperf_duration"] is False and "not MLPerf-valid" in load["note"]
    assert load["error"] is None and load["capacity"] is None


def test_capacity_is_the_highest_valid_server_qps_and_sits_below_the_service_rate(tmp_path):
    """2 ms a call, one worker: at most 500 QPS; with a 20 ms p99 bound the capacity is well above 100."""
    settings = LoadSettings(scenarios=(), latency_bound_ms=20.0, duration_s=0.3, capacity_trials=5)
    load = serve(SleepyRuntime(2.0), SAMPLES, settings, 2.0, None, judge, tmp_path / "logs")
    cap = load["capacity"]
    valid = [t["target_qps"] for t in cap["trials"] if t["valid"]]
    invalid = [t["target_qps"] for t in cap["trials"] if not t["valid"]]
    assert cap["qps"] == max(valid) and 100 < cap["qps"] < 500
    assert invalid and min(invalid) > cap["qps"] and cap["lowest_invalid_qps"] == min(invalid)
    assert len(cap["trials"]) <= 5
    assert [p["target_qps"] for p in load["curve"]] == sorted(t["target_qps"] for t in cap["trials"])


def test_a_bound_nothing_can_meet_gives_no_capacity_and_says_why(tmp_path):
    settings = LoadSettings(scenarios=(), latency_bound_ms=0.5, duration_s=0.2, capacity_trials=2)
    load = serve(SleepyRuntime(2.0), SAMPLES, settings, 2.0, None, judge, tmp_path / "logs")
    assert load["capacity"]["qps"] is None and "0.5 ms" in load["capacity"]["why_none"]


def test_batching_is_compared_before_use_and_gathers_samples(tmp_path):
    settings = LoadSettings(scenarios=("offline",), duration_s=0.2, max_batch=3, batch_window_ms=2.0)
    load = serve(SleepyRuntime(0.02), SAMPLES, settings, 0.02, None, judge, tmp_path / "ok")
    batching = load["sut"]["batching"]
    assert batching["enabled"] and batching["checked_at_batch"] == 3 and batching["max_abs"] == 0.0
    assert load["sut"]["max_batch"] == 3 and "3" in load["sut"]["calls_by_samples"]  # full batches happened

    buggy = serve(SleepyRuntime(0.02, batch_bug=True), SAMPLES, settings, 0.02, None, judge, tmp_path / "bad")
    assert not buggy["sut"]["batching"]["enabled"] and "batching off" in buggy["sut"]["batching"]["why"]
    assert buggy["sut"]["max_batch"] == 1 and set(buggy["sut"]["calls_by_samples"]) == {"1"}

    fixed = serve(SleepyRuntime(0.02), SAMPLES, settings, 0.02, "the model's batch axis is not dynamic: x:2x4",
                  judge, tmp_path / "fixed")
    assert fixed["sut"]["batching"] == {"enabled": False, "why": "the model's batch axis is not dynamic: x:2x4"}


def test_a_runtime_that_raises_under_load_is_recorded_not_hidden(tmp_path):
    settings = LoadSettings(scenarios=("single-stream",), duration_s=0.2)
    load = serve(SleepyRuntime(fail_after=50), SAMPLES, settings, 0.01, None, judge, tmp_path / "logs")
    run = load["runs"][0]
    assert not run["valid"] and "device lost" in run["error"] and load["error"] == run["error"]


def test_a_runtime_failing_before_the_load_is_a_finding_and_a_refused_batch_turns_batching_off(tmp_path):
    from convcheck.validate.loadgen import RuntimeFailed

    class Broken(SleepyRuntime):
        def timed_call(self, feeds):
            raise RuntimeError("session lost")

    with pytest.raises(RuntimeFailed, match="session lost"):
        serve(Broken(), SAMPLES, LoadSettings(scenarios=("offline",), duration_s=0.1), 0.01, None, judge, tmp_path)

    class FixedShape(SleepyRuntime):  # an artifact compiled for one batch (TVM, a static IREE module)
        def infer(self, feeds):
            if feeds["x"].shape[0] != 2:
                raise ValueError("input x: expected shape (2, 4)")
            return super().infer(feeds)

    load = serve(FixedShape(), SAMPLES, LoadSettings(scenarios=("offline",), duration_s=0.1, max_batch=2), 0.01,
                 None, judge, tmp_path / "fixed")
    assert not load["sut"]["batching"]["enabled"] and "expected shape (2, 4)" in load["sut"]["batching"]["why"]
    assert load["runs"][0]["valid"]  # served unbatched


@pytest.mark.parametrize("found, expect, wanted", [
    # Rejected for its pre-generated query count alone: rerun with what it measured.
    ({"valid": False, "invalid_reason": "Decrease the expected latency so the loadgen pre-generates more queries.",
      "achieved_qps": 2000.0}, {"latency_ms": 5.0}, {"latency_ms": 0.45}),
    ({"valid": False, "invalid_reason": "Increase expected QPS so the loadgen pre-generates a larger (coalesced) "
      "query.", "achieved_qps": 1000.0}, {"qps": 10.0}, {"qps": 1100.0}),
    # Early stopping alone: rerun with the query count LoadGen asked for.
    ({"valid": False, "invalid_reason": "early stopping: ...", "min_duration_ok": True, "min_queries_ok": True,
      "perf_constraints_ok": True, "queries": 100,
      "early_stopping": "Run unsuccessful. Processed 100 queries. Would need to run at least 359 more queries"},
     {"target_qps": 10.0}, {"target_qps": 10.0, "min_queries": 459}),
    ({"valid": False, "invalid_reason": "early stopping: ...", "min_duration_ok": True, "min_queries_ok": True,
      "queries": 648, "early_stopping": "Only processed 648 queries. Need to process at least 662 queries for early "
      "stopping."}, {"query_latency_ms": 7.0}, {"query_latency_ms": 7.0, "min_queries": 662}),
    # A missed latency constraint is a result, never recalibrated away.
    ({"valid": False, "invalid_reason": "Reduce target QPS to improve latency.", "perf_constraints_ok": False,
      "min_duration_ok": True, "min_queries_ok": True, "queries": 500,
      "early_stopping": "Would need to run at least 10 more queries"}, {"target_qps": 10.0}, None),
    ({"valid": True}, {"latency_ms": 1.0}, None),
])
def test_reruns_only_for_settings_loadgen_rejects(found, expect, wanted):
    scenario = "server" if "target_qps" in expect else "offline" if "qps" in expect else \
        "multi-stream" if "query_latency_ms" in expect else "single-stream"
    got = _recalibrated(scenario, found, expect)
    if wanted is None:
        assert got is None
    else:
        assert got == pytest.approx(wanted)


@pytest.mark.parametrize("kwargs, needle", [
    ({"scenarios": ("server", "burst")}, "--scenario 'burst'"),
    ({"duration_s": 0}, "--duration 0"),
    ({"workers": 0}, "--workers 0"),
    ({"max_batch": 1.5}, "--max-batch 1.5"),
    ({"target_qps": -3}, "--qps -3"),
    ({"latency_bound_ms": float("nan")}, "--latency-bound-ms nan"),
    ({"target_qps": 10, "target_rows_per_s": 10}, "not both"),
    ({"scenarios": ()}, "no load to run"),
])
def test_bad_load_settings_are_refused_with_the_flag_to_fix(kwargs, needle):
    with pytest.raises(ConvcheckError, match=None) as err:
        LoadSettings(**kwargs)
    assert needle in str(err.value)


def test_load_settings_round_trip_through_the_stored_plan():
    settings = LoadSettings(scenarios=("server", "offline"), target_qps=50.0, latency_bound_ms=10.0, max_batch=4)
    assert LoadSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ConvcheckError, match="unknown load setting 'qps'"):
        LoadSettings.from_dict({"qps": 3})
