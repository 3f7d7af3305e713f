"""Serving under load: MLPerf LoadGen's scenarios over a cell's runtime, and the capacity search.

One call's p99 on an idle machine does not say what a service carries. LoadGen (mlcommons-loadgen, the
harness MLPerf Inference is measured with) issues the queries and times them; convcheck supplies the
system under test (SUT): worker threads that call the cell's runtime on the cell's own input samples,
optionally gathering queued samples into one call (dynamic batching, up to `max_batch`, waiting at most
`batch_window_ms` after the first). LoadGen decides validity (latency constraint, minimum duration and
query count, early stopping); its summary and detail logs are kept and parsed into the cell.

Only computations whose outputs were compared run under load: the unbatched call is the cell's own
(compared in its parity stage); a batched call is compared against the reference, slice by slice,
before the first scenario, and batching is turned off (with the reason) where it changes the verdict.

The scenarios' expected latency / QPS (which LoadGen uses to pre-generate queries) are calibrated from
the cell's measured p50; a run LoadGen rejects for a mis-set expectation ("decrease the expected
latency", "increase expected QPS") is rerun once or twice with the rate it measured, as MLPerf users do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import queue
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from convcheck.errors import ConvcheckError

#: CLI name -> LoadGen's TestScenario member.
SCENARIOS = {"single-stream": "SingleStream", "multi-stream": "MultiStream", "server": "Server",
             "offline": "Offline"}
#: Run in this order whatever the order asked (Offline's throughput seeds the Server target and the
#: capacity search's first trial); reported in the order asked.
_EXECUTION_ORDER = ("single-stream", "multi-stream", "offline", "server")
#: MLPerf Inference's minimum run length: shorter runs apply LoadGen's rules, not MLPerf's.
MLPERF_MIN_DURATION_S = 600.0
#: LoadGen's own default Server latency target, used (and said) when no --latency-bound-ms is given.
LOADGEN_DEFAULT_SERVER_LATENCY_MS = 100.0
#: Reruns of a scenario LoadGen rejected for a mis-set expected latency/QPS.
_RECALIBRATIONS = 2
#: Server runs ask for at least this many queries: LoadGen's early stopping needs 459 queries, every one
#: within the bound, before it holds a p99 at its confidence (measured: a 100-query run within the
#: bound is INVALID, "would need to run at least 359 more queries"). At low QPS the run lasts longer.
EARLY_STOPPING_P99_QUERIES = 459
#: The capacity search stops early once the valid and invalid QPS are this close (relative).
_CAPACITY_RESOLUTION = 0.05


@dataclass(frozen=True)
class LoadSettings:
    """What `convcheck load` (and the audit's capacity check) asks LoadGen for; part of the cell key."""

    scenarios: tuple[str, ...] = tuple(SCENARIOS)
    #: Server scenario's target QPS; None: half the rate the runtime sustains back to back (Offline's
    #: measured throughput where Offline ran first, else workers x 1000 / p50).
    target_qps: float | None = None
    #: The Server target as rows (inferences) per second instead, as `convcheck audit --traffic` counts them:
    #: the target QPS is this over the rows one sample carries (the cell's batch).
    target_rows_per_s: float | None = None
    #: Server latency bound (its p99 must stay within it) and, with `capacity_trials`, the capacity search's.
    latency_bound_ms: float | None = None
    #: LoadGen's minimum duration per run, seconds (MLPerf: 600).
    duration_s: float = 5.0
    workers: int = 1  # SUT threads calling the runtime at once (each call uses the runtime's own threads)
    max_batch: int = 1  # dynamic batching: samples gathered into one call, where the batch axis is dynamic
    batch_window_ms: float = 1.0  # how long a worker waits for more samples after the first
    samples_per_query: int = 8  # MultiStream
    capacity_trials: int = 6  # Server runs of the capacity search (0: no search)
    min_query_count: int = 100  # LoadGen's default; MLPerf's Server minimum is 270336
    seed: int = 0  # LoadGen's qsl, sample-index and schedule RNG seeds

    def __post_init__(self) -> None:
        scen = tuple(dict.fromkeys(self.scenarios))
        unknown = [s for s in scen if s not in SCENARIOS]
        if unknown:
            raise ConvcheckError(f"unknown --scenario {unknown[0]!r}: use any of {', '.join(SCENARIOS)}, or all")
        object.__setattr__(self, "scenarios", scen)
        for name, low, whole in (("duration_s", 0.05, False), ("workers", 1, True), ("max_batch", 1, True),
                                 ("batch_window_ms", 0.0, False), ("samples_per_query", 1, True),
                                 ("capacity_trials", 0, True), ("min_query_count", 1, True), ("seed", 0, True)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or \
                    not math.isfinite(value) or value < low:
                flag = {"duration_s": "duration"}.get(name, name).replace("_", "-")
                raise ConvcheckError(f"--{flag} {value!r}: give a {'whole ' if whole else ''}number, {low:g} or more")
        if self.target_qps is not None and self.target_rows_per_s is not None:
            raise ConvcheckError("give the Server target as queries per second (--qps) or as inferences per second "
                                 "(--traffic), not both")
        for name in ("target_qps", "target_rows_per_s", "latency_bound_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ConvcheckError(f"--{name.replace('_', '-').replace('target-', '')} {value!r}: give a "
                                     "positive number")
        if not scen and not self.searches_capacity:
            raise ConvcheckError("no load to run: name a --scenario, or give --latency-bound-ms for the capacity "
                                 "search")

    @property
    def searches_capacity(self) -> bool:
        return self.latency_bound_ms is not None and self.capacity_trials > 0

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoadSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConvcheckError(f"unknown load setting {unknown[0]!r}: use any of {', '.join(sorted(names))}")
        return cls(**{k: tuple(v) if k == "scenarios" else v for k, v in data.items()})


class LoadgenMissing(RuntimeError):
    """mlcommons-loadgen is not importable in the cell's interpreter."""


class RuntimeFailed(RuntimeError):
    """The cell's runtime raised while the load test prepared its calls: a finding about the route, recorded
    in the cell's `load`; anything else raised here is convcheck's own bug (an internal error)."""


def _said(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _loadgen() -> Any:
    try:
        import mlperf_loadgen
    except ImportError as exc:
        raise LoadgenMissing("MLPerf LoadGen is not installed in this cell's environment: "
                             "pip install 'convcheck[load]' (mlcommons-loadgen)") from exc
    return mlperf_loadgen


# -- the system under test ---------------------------------------------------------------------------
class Sut:
    """LoadGen's issue/flush callbacks over `calls` (one zero-argument call per QSL sample) and, with
    `max_batch` > 1, `batch_call(indices)`. Workers take samples from one queue; LoadGen's thread only
    enqueues, so a slow call delays no query's issue (LoadGen times from the scheduled issue anyway)."""

    def __init__(self, lg: Any, calls: list[Callable[[], Any]], batch_call: Callable[[list[int]], Any] | None,
                 workers: int, max_batch: int, window_ms: float) -> None:
        self.lg, self.calls, self.batch_call = lg, calls, batch_call
        self.max_batch = max_batch if batch_call is not None else 1
        self.window_s = window_ms / 1000.0
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.batches: dict[int, int] = {}  # calls by the number of samples they carried
        self.inline = workers == 1 and self.max_batch == 1
        self.mode = "inline: LoadGen's issue thread calls the runtime" if self.inline else \
            f"queue + {workers} worker thread(s)" + (f", batches up to {self.max_batch}" if self.max_batch > 1 else "")
        self.threads = [] if self.inline else [
            threading.Thread(target=self._work, name=f"convcheck-sut-{i}", daemon=True) for i in range(workers)]
        for t in self.threads:
            t.start()
        self.handle = lg.ConstructSUT(self.issue, self.flush)

    def issue(self, samples: list[Any]) -> None:
        if self.inline:
            self._inline(samples)
            return
        for s in samples:
            self.queue.put((s.id, s.index))

    def _inline(self, samples: list[Any]) -> None:
        """One worker, no batching: the call runs on LoadGen's issue thread, as a bare SUT would. A thread
        hop would add its wake-up (tens of µs) to every sample; LoadGen times each sample from its
        scheduled issue, so a query waiting behind a busy call still counts its wait."""
        for s in samples:
            try:
                self.calls[s.index]()
            except BaseException as exc:  # noqa: BLE001 - recorded; the query must still complete
                self.error = self.error or exc
            self.lg.QuerySamplesComplete([self.lg.QuerySampleResponse(s.id, 0, 0)])
        self.batches[1] = self.batches.get(1, 0) + len(samples)

    def flush(self) -> None:
        """Nothing is held back: a partial batch leaves when its window closes."""

    def _gather(self, first: tuple[int, int]) -> list[tuple[int, int]]:
        group = [first]
        deadline = time.perf_counter() + self.window_s
        while len(group) < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = self.queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:  # shutting down: leave the sentinel for the next worker
                self.queue.put(None)
                break
            group.append(item)
        return group

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            group = self._gather(item) if self.max_batch > 1 else [item]
            try:
                if len(group) == 1:
                    self.calls[group[0][1]]()
                else:
                    self.batch_call([index for _, index in group])  # type: ignore[misc]
            except BaseException as exc:  # noqa: BLE001 - recorded; the query must still complete
                with self.lock:
                    self.error = self.error or exc
            with self.lock:
                self.batches[len(group)] = self.batches.get(len(group), 0) + 1
            self.lg.QuerySamplesComplete([self.lg.QuerySampleResponse(qid, 0, 0) for qid, _ in group])

    def close(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for t in self.threads:
            t.join(timeout=60)
        self.lg.DestroySUT(self.handle)


# -- one LoadGen run ----------------------------------------------------------------------------------
def read_detail_log(path: Path) -> dict[str, Any]:
    """LoadGen's mlperf_log_detail.txt: every `:::MLLOG {json}` line's key -> value (the last one wins)."""
    found: dict[str, Any] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            try:
                entry = json.loads(line[len(":::MLLOG "):])
            except ValueError:
                continue
            found[entry.get("key")] = entry.get("value")
    return found


def _ms(log: dict[str, Any], key: str) -> float | None:
    value = log.get(key)
    return float(value) / 1e6 if isinstance(value, (int, float)) else None


def summarize(log: dict[str, Any], scenario: str) -> dict[str, Any]:
    """The cell's record of one run from LoadGen's own log: its figures and its verdict."""
    per_query = scenario == "multi-stream"  # MultiStream's latency is the whole query's
    pct = "percentile_per_query_latency_ns" if per_query else "percentile_latency_ns"
    achieved = {"single-stream": log.get("result_qps_with_loadgen_overhead"),
                "server": log.get("result_completed_samples_per_sec"),
                "offline": log.get("result_samples_per_second")}.get(scenario)
    mean_query = log.get("result_mean_query_latency_ns")
    if scenario == "multi-stream" and isinstance(mean_query, (int, float)) and mean_query > 0:
        # Queries go one after another: samples a second is samples per query over the mean query latency.
        achieved = (log.get("effective_samples_per_query") or 1) * 1e9 / mean_query
    out: dict[str, Any] = {
        "scenario": scenario,
        "valid": log.get("result_validity") == "VALID",
        "min_duration_ok": bool(log.get("result_min_duration_met")),
        "min_queries_ok": bool(log.get("result_min_queries_met")),
        "achieved_qps": float(achieved) if isinstance(achieved, (int, float)) else None,
        "latency_of": "query" if per_query else ("the whole query (Offline issues one)" if scenario == "offline"
                                                 else "sample"),
        "queries": log.get("result_query_count"),
        "samples_per_query": log.get("effective_samples_per_query"),
    }
    for name, key in (("p50", "50.00"), ("p90", "90.00"), ("p99", "99.00"), ("p99_9", "99.90")):
        out[name] = _ms(log, f"result_{key}_{pct}")
    out["mean"] = _ms(log, "result_mean_query_latency_ns" if per_query else "result_mean_latency_ns")
    out["max"] = _ms(log, "result_max_query_latency_ns" if per_query else "result_max_latency_ns")
    if scenario == "server":
        out["perf_constraints_ok"] = bool(log.get("result_perf_constraints_met"))
        out["scheduled_qps"] = log.get("result_scheduled_samples_per_sec")
        out["overlatency_queries"] = log.get("result_overlatency_query_count")
    out["early_stopping_ok"] = log.get("early_stopping_met")
    if log.get("early_stopping_met") is False:
        out["early_stopping"] = " ".join(str(log.get("early_stopping_result") or "").replace("*", " ").split())
    if log.get("result_invalid_reason"):
        out["invalid_reason"] = str(log["result_invalid_reason"]).strip()
    elif not out["valid"] and out.get("early_stopping"):
        out["invalid_reason"] = f"early stopping: {out['early_stopping']}"
    if scenario == "offline":  # one query: its "percentiles" are the run's length, not a latency figure
        for name in ("p50", "p90", "p99", "p99_9", "mean", "max"):
            out[name] = None
        out["duration_ms"] = _ms(log, "result_max_latency_ns")
    out["settings"] = {k[len("effective_"):]: v for k, v in sorted(log.items()) if k.startswith("effective_")}
    out["loadgen_version"] = log.get("loadgen_version")
    return out


def _test_settings(lg: Any, scenario: str, settings: LoadSettings, expect: dict[str, float]) -> Any:
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, SCENARIOS[scenario])
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = int(round(settings.duration_s * 1000))
    ts.min_query_count = max(settings.min_query_count, int(expect.get("min_queries", 0)))
    # A runtime far slower than expected must still end: LoadGen stops issuing here (and says which
    # minimum was then not met). The minimum query count at the expected pace may need longer than the
    # minimum duration (459 Server queries at 15 QPS: 30 s), and gets twice that.
    per_query_s = {"single-stream": expect.get("latency_ms", 0.0) / 1000.0,
                   "multi-stream": expect.get("query_latency_ms", 0.0) / 1000.0,
                   "server": 1.0 / expect["target_qps"] if expect.get("target_qps") else 0.0}.get(scenario, 0.0)
    ts.max_duration_ms = int(round((max(settings.duration_s * 4, 2 * ts.min_query_count * per_query_s) + 20) * 1000))
    ts.qsl_rng_seed = ts.sample_index_rng_seed = ts.schedule_rng_seed = settings.seed
    if scenario == "single-stream":
        ts.single_stream_expected_latency_ns = max(1000, int(expect["latency_ms"] * 1e6))
    elif scenario == "multi-stream":
        ts.multi_stream_samples_per_query = settings.samples_per_query
        ts.multi_stream_expected_latency_ns = max(1000, int(expect["query_latency_ms"] * 1e6))
    elif scenario == "offline":
        ts.offline_expected_qps = max(1.0, expect["qps"])
    else:
        ts.server_target_qps = expect["target_qps"]
        ts.server_target_latency_ns = int(expect["latency_bound_ms"] * 1e6)
    return ts


def _run_once(lg: Any, sut: Sut, qsl: Any, scenario: str, settings: LoadSettings, expect: dict[str, float],
              log_dir: Path) -> dict[str, Any]:
    log_dir.mkdir(parents=True, exist_ok=True)
    out = lg.LogOutputSettings()
    out.outdir = str(log_dir)
    out.copy_summary_to_stdout = False
    logs = lg.LogSettings()
    logs.log_output = out
    logs.enable_trace = False
    sut.error = None
    started = time.perf_counter()
    lg.StartTestWithLogSettings(sut.handle, qsl, _test_settings(lg, scenario, settings, expect), logs)
    wall = time.perf_counter() - started
    for empty in ("mlperf_log_trace.json", "mlperf_log_accuracy.json"):  # PerformanceOnly: nothing in them
        (log_dir / empty).unlink(missing_ok=True)
    result = summarize(read_detail_log(log_dir / "mlperf_log_detail.txt"), scenario)
    result["wall_s"] = wall
    if sut.error is not None:
        result["valid"] = False
        result["error"] = f"the runtime raised under load: {type(sut.error).__name__}: " \
                          f"{str(sut.error).splitlines()[0] if str(sut.error) else ''}"
    return result


def _recalibrated(scenario: str, result: dict[str, Any], expect: dict[str, float]) -> dict[str, float] | None:
    """LoadGen pre-generates queries from the expected latency/QPS; rejected for that alone, the run is
    repeated with what it measured. Rejected by early stopping alone (too few queries to hold the
    percentile at LoadGen's confidence), it is repeated with the query count LoadGen asked for. None:
    nothing to recalibrate (a latency constraint missed is a result, not a setting)."""
    reason = (result.get("invalid_reason") or "").lower()
    if result["valid"] or result.get("error"):
        return None
    # LoadGen words it two ways: "would need to run at least N more queries" (Server, SingleStream) and
    # "need to process at least N queries" (MultiStream).
    stopping = result.get("early_stopping") or ""
    more, total = re.search(r"at least (\d+) more queries", stopping), re.search(r"at least (\d+) queries", stopping)
    if (more or total) and result.get("min_duration_ok") and result.get("min_queries_ok") and \
            result.get("perf_constraints_ok", True) and result.get("queries"):
        wanted = int(result["queries"]) + int(more.group(1)) if more else int(total.group(1))  # type: ignore[union-attr]
        return {**expect, "min_queries": wanted}
    if "expected" not in reason:
        return None
    if scenario == "single-stream" and result.get("achieved_qps"):
        return {**expect, "latency_ms": 1000.0 / result["achieved_qps"] * 0.9}
    if scenario == "multi-stream" and result.get("mean"):
        return {**expect, "query_latency_ms": result["mean"] * 0.9}
    if scenario == "offline" and result.get("achieved_qps"):
        return {**expect, "qps": result["achieved_qps"] * 1.1}
    return None


# -- the cell's load test -----------------------------------------------------------------------------
def _stack(samples: list[dict[str, np.ndarray]], indices: list[int]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([samples[i][name] for i in indices], axis=0) for name in samples[0]}


def _rows(sample: dict[str, np.ndarray]) -> int:
    first = next(iter(sample.values()))
    return int(first.shape[0]) if np.ndim(first) else 1


def check_batching(infer: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                   samples: list[dict[str, np.ndarray]], max_batch: int,
                   judge: Callable[[list[dict[str, np.ndarray]]], dict[str, Any]]) -> dict[str, Any]:
    """Run every sample inside batched calls of `max_batch` samples (padded by repeating samples, so each
    call has the shape batching produces at its fullest), slice each sample's rows back out and judge
    them as the cell's outputs were judged. Also times one full batched call."""
    n = len(samples)
    sliced: list[dict[str, np.ndarray] | None] = [None] * n
    seconds = []
    for start in range(0, n, max_batch):
        indices = [(start + k) % n for k in range(max_batch)]
        t0 = time.perf_counter()
        out = infer(_stack(samples, indices))
        seconds.append(time.perf_counter() - t0)
        row = 0
        for pos, index in enumerate(indices):
            rows = _rows(samples[index])
            if start + pos < n and sliced[index] is None:
                sliced[index] = {k: np.asarray(v)[row:row + rows] for k, v in out.items()}
            row += rows
    verdict = judge([s for s in sliced if s is not None])
    return {"ok": bool(verdict.get("ok")), "max_abs": verdict.get("max_abs"), "checked_at_batch": max_batch,
            "batched_call_ms": float(np.median(seconds)) * 1000.0}


def serve(runtime: Any, samples: list[dict[str, np.ndarray]], settings: LoadSettings, unloaded_p50_ms: float | None,
          batchable: str | None, judge: Callable[[list[dict[str, np.ndarray]]], dict[str, Any]],
          log_dir: Path) -> dict[str, Any]:
    """The cell's `load` record: each scenario asked (LoadGen's verdict and figures), the capacity search,
    the latency-vs-QPS points, and how the SUT was built.

    `batchable`: None when every input's first axis is dynamic, else why batching cannot apply."""
    lg = _loadgen()
    began = time.perf_counter()
    if log_dir.exists():
        shutil.rmtree(log_dir)
    try:
        calls = [runtime.timed_call(s) for s in samples]
        if unloaded_p50_ms is None:  # no latency stage ran: time a few calls to calibrate
            t0 = time.perf_counter()
            for _ in range(10):
                calls[0]()
            unloaded_p50_ms = (time.perf_counter() - t0) / 10 * 1000.0
    except Exception as exc:  # noqa: BLE001 - the runtime's own failure, said as such
        raise RuntimeFailed(f"the runtime failed on the load test's samples: {_said(exc)}") from exc
    sut_info: dict[str, Any] = {"workers": settings.workers, "threads": runtime.describe().get("threads"),
                                "max_batch": 1, "batch_window_ms": None, "rows_per_sample": _rows(samples[0]),
                                "qsl_samples": len(samples), "unloaded_p50_ms": unloaded_p50_ms}
    batch_call = None
    per_sample_ms = unloaded_p50_ms
    if settings.max_batch > 1:
        if batchable is not None:
            sut_info["batching"] = {"enabled": False, "why": batchable}
        else:
            try:
                check = check_batching(runtime.infer, samples, settings.max_batch, judge)
            except Exception as exc:  # noqa: BLE001 - an artifact built for one shape refuses the batch
                check = {"ok": False, "error": f"the batched call failed: {_said(exc)}",
                         "checked_at_batch": settings.max_batch}
            sut_info["batching"] = {"enabled": check["ok"], **check}
            if check.get("error"):
                sut_info["batching"]["why"] = f"{check['error']}: batching off"
            elif check["ok"]:
                sut_info.update(max_batch=settings.max_batch, batch_window_ms=settings.batch_window_ms)
                per_sample_ms = min(per_sample_ms, check["batched_call_ms"] / settings.max_batch)
                batch_call = lambda indices: runtime.infer_impl(_stack(samples, indices))  # noqa: E731
            else:
                worst = check.get("max_abs")
                sut_info["batching"]["why"] = ("batched outputs are outside the cell's tolerance"
                                               + (f" (max_abs {worst:.3g})" if worst is not None else "")
                                               + ": batching off")
    rate = settings.workers * 1000.0 / max(per_sample_ms, 1e-6)  # samples/s back to back
    sut = Sut(lg, calls, batch_call, settings.workers, sut_info["max_batch"], settings.batch_window_ms)
    qsl = lg.ConstructQSL(len(samples), len(samples), lambda indices: None, lambda indices: None)
    runs: dict[str, dict[str, Any]] = {}
    curve: list[dict[str, Any]] = []
    bound = settings.latency_bound_ms or LOADGEN_DEFAULT_SERVER_LATENCY_MS
    try:
        def attempt(scenario: str, expect: dict[str, float], tag: str) -> dict[str, Any]:
            """One scenario, rerun (at most _RECALIBRATIONS times) where LoadGen rejects it for a setting."""
            attempts = []
            for k in range(_RECALIBRATIONS + 1):
                found = _run_once(lg, sut, qsl, scenario, settings, expect, log_dir / tag)
                attempts.append({"expected": dict(expect), "valid": found["valid"],
                                 "invalid_reason": found.get("invalid_reason")})
                again = _recalibrated(scenario, found, expect) if k < _RECALIBRATIONS else None
                if again is None:
                    break
                expect = again
            found.update(log=tag, attempts=attempts)
            return found

        def server(qps: float, tag: str) -> dict[str, Any]:
            found = attempt("server", {"target_qps": qps, "latency_bound_ms": bound,
                                       "min_queries": EARLY_STOPPING_P99_QUERIES}, tag)
            found.update(target_qps=qps, latency_bound_ms=bound)
            curve.append({k: found.get(k) for k in ("target_qps", "achieved_qps", "p50", "p90", "p99", "valid")})
            return found

        for scenario in [s for s in _EXECUTION_ORDER if s in settings.scenarios]:
            if scenario == "server":
                rows = sut_info["rows_per_sample"]
                target = settings.target_qps or (settings.target_rows_per_s / rows if settings.target_rows_per_s
                                                 else round(0.5 * _sustained(runs, rate), 3))
                runs[scenario] = server(target, "server")
                runs[scenario]["target_rows_per_s"] = settings.target_rows_per_s
                runs[scenario]["target_from"] = (
                    "--qps" if settings.target_qps else
                    f"{settings.target_rows_per_s:g} inferences/s over {rows} row(s) per query"
                    if settings.target_rows_per_s else
                    "half the back-to-back rate (Offline's, else workers x 1000 / p50)")
                continue
            expect = {"latency_ms": unloaded_p50_ms,
                      "query_latency_ms": settings.samples_per_query * per_sample_ms / settings.workers,
                      "qps": rate * 0.9}
            runs[scenario] = attempt(scenario, expect, scenario)
            runs[scenario]["target_qps"] = None
        capacity = _capacity(server, runs, rate, settings) if settings.searches_capacity else None
    finally:
        sut.close()
        lg.DestroyQSL(qsl)
    sut_info["calls_by_samples"] = {str(k): v for k, v in sorted(sut.batches.items())}
    sut_info["mode"] = sut.mode
    curve.sort(key=lambda p: p["target_qps"])
    errors = [r["error"] for r in [*runs.values(), *((capacity or {}).get("trials") or [])] if r.get("error")]
    return {
        "error": errors[0] if errors else None,
        "runs": [runs[s] for s in settings.scenarios if s in runs],
        "capacity": capacity,
        "curve": curve,
        "sut": sut_info,
        "settings": settings.to_dict(),
        "mlperf_duration": settings.duration_s >= MLPERF_MIN_DURATION_S,
        "note": None if settings.duration_s >= MLPERF_MIN_DURATION_S else
        (f"minimum duration {settings.duration_s:g} s per run: LoadGen's validity rules are applied to a short "
         f"run; MLPerf Inference needs at least {MLPERF_MIN_DURATION_S:g} s (and its own query counts), so these "
         "are not MLPerf-valid durations"),
        "logs": str(log_dir),  # LoadGen's summary and detail log of each run, in a folder per run (`log`)
        "seconds": time.perf_counter() - began,
    }


def _sustained(runs: dict[str, dict[str, Any]], rate: float) -> float:
    """Samples a second the runtime sustains back to back: Offline's measured throughput where Offline ran,
    else the rate from the unloaded p50."""
    return (runs.get("offline") or {}).get("achieved_qps") or rate


def _capacity(server: Callable[[float, str], dict[str, Any]], runs: dict[str, dict[str, Any]], rate: float,
              settings: LoadSettings) -> dict[str, Any]:
    """The highest Server QPS LoadGen calls VALID with the p99 bound, in at most `capacity_trials` runs:
    the first trial at 80% of the back-to-back rate, then doubling / halving until one valid and one invalid
    QPS bracket the answer, then bisection. The answer is the highest VALID QPS tried (a lower bound on the
    capacity, within `resolution` of the lowest invalid one)."""
    qps = 0.8 * _sustained(runs, rate)
    valid_at: float | None = None
    invalid_at: float | None = None
    trials = []
    for k in range(settings.capacity_trials):
        qps = float(f"{qps:.4g}")
        found = server(qps, f"capacity-{k + 1}")
        trials.append({k2: found.get(k2) for k2 in ("target_qps", "achieved_qps", "p50", "p99", "valid",
                                                    "invalid_reason", "error", "log")})
        if found["valid"]:
            valid_at = max(valid_at or 0.0, qps)
        else:
            invalid_at = qps if invalid_at is None else min(invalid_at, qps)
        if valid_at is not None and invalid_at is not None:
            if (invalid_at - valid_at) / invalid_at <= _CAPACITY_RESOLUTION:
                break
            qps = (valid_at + invalid_at) / 2
        elif valid_at is not None:
            qps = valid_at * 2
        else:
            qps = (invalid_at or qps) / 2
    bracket = None if valid_at is None or invalid_at is None else (invalid_at - valid_at) / invalid_at
    return {"qps": valid_at, "latency_bound_ms": settings.latency_bound_ms, "trials": trials,
            "lowest_invalid_qps": invalid_at, "resolution": bracket,
            "why_none": None if valid_at is not None else
            f"no QPS tried kept p99 within {settings.latency_bound_ms:g} ms (lowest tried: {min(t['target_qps'] for t in trials):.4g}/s)"}
