"""MetaSchedule tuning of a prepared Relax module (`--tvm-tune TRIALS`), for convcheck.convert.tvm_build.

TVM's own tuner runs here as upstream ships it: `ms.tune_tasks` with the gradient task scheduler,
evolutionary search over MetaSchedule's CPU/GPU design spaces, the XGBoost cost model, and its
LocalBuilder/LocalRunner, which build and time every candidate in worker processes (a candidate that
crashes takes a worker down, not convcheck). See the "Tuning" section of tvm_build's docstring for
what it measured.

Why it did not run before: apache-tvm 0.27.0.post1 is built against apache-tvm-ffi 0.1.14, and
pip resolved `apache-tvm-ffi>=0.1.14.post0` to 0.1.15.post2, whose JSON-graph serialiser
(`ffi::ToJSONGraph`) crashes on objects holding a DataType (`tvm.ir.save_json(tvm.ir.PrimType
("int32"))` segfaults with 0.1.15 and 0.1.15.post2, works with 0.1.14 and 0.1.14.post0). Every
MetaSchedule database, the task scheduler and two mutators serialise such objects. The `tvm` extra
pins the ffi to 0.1.14.x and `convcheck doctor` runs that exact serialisation (tvm_probe).

Records: one MetaSchedule JSON database per target, TVM version and pre-tuning pipeline
(`cache_dir/tvm-tuning/<key>/`), keyed inside by each kernel's structural hash, so a second model
with the same layers (ResNet's repeated blocks, the same encoder in two models) reuses them. A
ledger beside it (`tuned.json`) records, per kernel, the largest trial budget a search for it ran
with: a kernel whose ledger entry covers the requested budget is not searched again, and a build
whose kernels are all covered pays nothing but the compile. A file lock serialises tuning and
reading of one database across cells running in parallel.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tvm

from convcheck.convert.tvm_schedule import PIPELINE_VERSION, _cpu_count

WORKLOADS = "database_workload.json"
RECORDS = "database_tuning_record.json"
LEDGER = "tuned.json"
#: MetaSchedule's own default batch; smaller when the budget spread over the kernels is smaller, so
#: every kernel gets a round (with 64 a 128-trial budget would tune 2 of ResNet-50's 20 kernels).
MAX_TRIALS_PER_ITER = 64
MIN_TRIALS_PER_ITER = 8
BUILD_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 30.0


def database_key(target: dict[str, Any]) -> str:
    """What tuning records are valid for: the target, TVM and the passes that shape the kernels.

    The model is not in the key: a record belongs to a kernel (its structural hash), wherever it came from.
    """
    blob = json.dumps([target, tvm.__version__, PIPELINE_VERSION], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def tune(prepared: Any, target: Any, db_dir: Path, trials: int, log: list[str],
         logs_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Tune the kernels of `prepared` the ledger does not cover at `trials`; returns the database
    (to apply with `apply_database`) and what to put in the artifact's metadata."""
    from tvm.s_tir import meta_schedule as ms

    started = time.perf_counter()
    db_dir.mkdir(parents=True, exist_ok=True)
    with _locked(db_dir):
        tasks = [t for t in ms.relax_integration.extract_tasks(prepared, target)
                 if not t.dispatched[0].attrs.get("tirx.is_scheduled", False)]
        ledger = _read_ledger(db_dir)
        keys = [_kernel_key(t.dispatched[0]) for t in tasks]
        todo = [(t, k) for t, k in zip(tasks, keys) if ledger.get(k, 0) < trials]
        report: dict[str, Any] = {"tune_kernels": len(tasks), "tune_kernels_reused": len(tasks) - len(todo)}
        database = _database(db_dir)
        if todo:
            # The requested budget is the model's; kernels covered by earlier searches keep their share.
            budget = max(math.ceil(trials * len(todo) / max(len(tasks), 1)), len(todo))
            per_iter = max(MIN_TRIALS_PER_ITER, min(MAX_TRIALS_PER_ITER, budget // len(todo)))
            before = _record_count(db_dir)
            _run_search([t for t, _ in todo], database, logs_dir, budget, per_iter)
            database = _database(db_dir)  # re-read: the search appended to the files
            for _, key in todo:
                ledger[key] = max(ledger.get(key, 0), trials)
            _write_ledger(db_dir, ledger)
            report.update(tune_trials_run=_record_count(db_dir) - before, tune_budget=budget)
    seconds = time.perf_counter() - started
    report["tune_seconds"] = seconds
    report["tune_state"] = "reused" if not todo else "tuned" if len(todo) == len(tasks) else "partly reused"
    report["tune_reused"] = not todo
    if todo:
        log.append(f"tvm: MetaSchedule tuned {len(todo)} of {len(tasks)} kernels, {report['tune_trials_run']} "
                   f"candidates measured in {seconds:.1f}s (records: {db_dir})")
    else:
        log.append(f"tvm: all {len(tasks)} kernels already tuned at >= {trials} trials, records reused ({db_dir})")
    return database, report


def faster_of_tuned_and_default(prepared: Any, scheduled: Any, target: Any, database: Any,
                                log: list[str]) -> tuple[Any, dict[str, Any]]:
    """`prepared` with each kernel given the faster of its tuned schedule (the database's best record) and
    its default one (`scheduled`, the untuned build's module), timed in this process; kernels without a
    record keep the default.

    A search with a few dozen trials per kernel does not always beat the default rules (measured:
    ResNet-50 with 1000 trials, 34.8 ms tuned against 32.5 ms untuned), and a "tuned" build slower
    than the untuned one is a figure nobody should be shown. Both schedules of every tuned kernel are
    compiled alone and timed the same way (TVM's time evaluator, MetaSchedule runner's settings).
    """
    started = time.perf_counter()
    tuned = apply_database(prepared, target, database)
    chosen = scheduled.clone()
    kept_default: set[str] = set()
    timed = 0
    for gv, func in tuned.functions_items():
        if not isinstance(func, tvm.tirx.PrimFunc) or not _is_scheduled(func):
            continue  # no record: the default schedule stays
        if _is_scheduled(prepared[gv.name_hint]):
            continue  # scheduled before tuning (a library kernel): the database did not touch it
        default = scheduled[gv.name_hint]
        try:
            default_faster = _kernel_seconds(default, target) < _kernel_seconds(func, target)
            timed += 1
        except Exception:  # noqa: BLE001 - a kernel that cannot be timed alone keeps its tuned schedule
            default_faster = False
        if default_faster:
            kept_default.add(gv.name_hint)
        else:
            chosen[gv.name_hint] = func
    seconds = time.perf_counter() - started
    if kept_default:
        log.append(f"tvm: {len(kept_default)} of {timed} tuned kernels timed slower than the default schedule and "
                   f"keep it ({seconds:.1f}s)")
    return chosen, {"tune_kept_default": sorted(kept_default), "tune_compared_kernels": timed}


def _is_scheduled(func: Any) -> bool:
    return bool(func.attrs and func.attrs.get("tirx.is_scheduled", False))


def _kernel_seconds(func: Any, target: Any) -> float:
    import numpy as np

    lib = tvm.compile(func.with_attr("global_symbol", "kernel"), target=target).jit()
    dev = tvm.cpu() if target.kind.name == "llvm" else tvm.cuda()
    rng = np.random.default_rng(0)
    args = []
    for param in func.params:
        shape = [int(d) for d in param.shape]  # TVM 0.27: a PrimFunc's parameters are its buffers
        # Integer inputs are indices (gathers): zeros stay in bounds.
        data = rng.random(shape) if "float" in str(param.dtype) else np.zeros(shape)
        args.append(tvm.runtime.tensor(np.asarray(data).astype(str(param.dtype)), device=dev))
    # The runner's evaluator settings (_run_search), repeated three times for a median.
    timer = lib.time_evaluator("kernel", dev, number=3, repeat=3, min_repeat_ms=20)
    return float(timer(*args).median)


def apply_database(prepared: Any, target: Any, database: Any) -> Any:
    """The module with every kernel the database holds a record for replaced by its best schedule."""
    from tvm import relax

    with target, database:
        return relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(prepared)


def _run_search(tasks: list[Any], database: Any, logs_dir: Path, budget: int, per_iter: int) -> None:
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

    from convcheck.convert.tvm_frames import cheap_script_frames, init_tuning_worker

    cores = _cpu_count()
    logs_dir.mkdir(parents=True, exist_ok=True)
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        tasks, str(logs_dir), num_threads=cores, seed=0)
    builder = ms.builder.LocalBuilder(max_workers=cores, timeout_sec=BUILD_TIMEOUT_S, initializer=init_tuning_worker)
    # One runner worker: candidates are timed one at a time, each with every core, as the model will run.
    runner = ms.runner.LocalRunner(
        timeout_sec=RUN_TIMEOUT_S, initializer=init_tuning_worker,
        evaluator_config=EvaluatorConfig(number=3, repeat=1, min_repeat_ms=20, enable_cpu_cache_flush=False))
    with cheap_script_frames():  # TuneContext imports the tensor intrinsics in this process too
        ms.tune_tasks(tasks=contexts, task_weights=weights, work_dir=str(logs_dir), max_trials_global=budget,
                      max_trials_per_task=math.ceil(budget / len(tasks)) * 2, num_trials_per_iter=per_iter,
                      builder=builder, runner=runner, database=database, cost_model=_cost_model(cores))


def _cost_model(cores: int) -> Any:
    from tvm.s_tir import meta_schedule as ms

    try:
        import xgboost  # noqa: F401 - the `tvm` extra installs xgboost-cpu
    except ImportError:  # a hand-made environment: search without the model rather than fail
        return ms.CostModel.create("random")
    return ms.CostModel.create("xgb", num_tuning_cores=cores)


def _database(db_dir: Path) -> Any:
    from tvm.s_tir import meta_schedule as ms

    return ms.database.JSONDatabase(str(db_dir / WORKLOADS), str(db_dir / RECORDS), allow_missing=True)


def _record_count(db_dir: Path) -> int:
    path = db_dir / RECORDS
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _read_ledger(db_dir: Path) -> dict[str, int]:
    path = db_dir / LEDGER
    return json.loads(path.read_text()) if path.exists() else {}


def _write_ledger(db_dir: Path, ledger: dict[str, int]) -> None:
    partial = db_dir / f"{LEDGER}.{os.getpid()}.tmp"
    partial.write_text(json.dumps(ledger, indent=1, sort_keys=True))
    os.replace(partial, db_dir / LEDGER)


@contextlib.contextmanager
def _locked(db_dir: Path) -> Iterator[None]:
    """One process at a time tunes or reads a database: JSONDatabase appends lines and numbers
    workloads by line, so two writers would corrupt it."""
    with (db_dir / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _kernel_key(func: Any) -> str:
    """MetaSchedule's workload key: the structural hash, stable across processes."""
    from tvm.s_tir.meta_schedule.utils import shash2hex

    mod = func if isinstance(func, tvm.IRModule) else tvm.IRModule({"main": func})
    return shash2hex(mod)
