"""MetaSchedule-style tuning of a prepared Relax module (`--tvm-tune TRIALS`), for convcheck.convert.tvm_build.

See the "Tuning" section of tvm_build's docstring for what is searched and where the records live.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import tvm
from tvm import s_tir, tirx

from convcheck.convert.tvm_schedule import PIPELINE_VERSION, _cpu_count, _device, default_schedule
from convcheck.types import Artifact

# --------------------------------------------------------------------------------------------
# Tuning
#
# TVM's own driver (`relax.get_pipeline("static_shape_tuning")`, `ms.tune_tasks`) cannot run on
# apache-tvm 0.27.0.post1 with apache-tvm-ffi 0.1.15.post2: serialising any object holding a
# DataType (`tvm.ir.save_json(tvm.ir.PrimType("int32"))`) segfaults in ffi::ToJSONGraph, and the
# JSON database, the task scheduler's task initialisation and the MutateComputeLocation /
# MutateParallel mutators all hit it. Its LocalBuilder/LocalRunner and xgb cost model also need
# psutil, cloudpickle and xgboost, which the `tvm` extra does not install. What does work is
# MetaSchedule's design-space generation (its CPU/GPU schedule rules and postprocessors), trace
# replay and trace JSON. So the search below is MetaSchedule's "replay-trace" strategy written out
# in Python: sample the design spaces' random decisions afresh, post-process, build and time in
# this process, keep the fastest per kernel. The records are a small JSON file of traces keyed on
# each kernel's structural hash.

RECORDS = "records.json"


def tuning_key(source: Artifact, shapes: dict[str, list[int]], target: dict[str, Any]) -> str:
    """What tuning records are valid for: the model, its compiled shapes, the target and TVM."""
    if source.sha256 is None:
        source.seal()
    blob = json.dumps([source.sha256, shapes, target, tvm.__version__, PIPELINE_VERSION], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def tune(prepared: Any, target: Any, db_dir: Path, trials: int, log: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Search schedules for every kernel of `prepared`, or reuse the records of an earlier search.

    Returns the records (structural hash -> best trace) and what to put in the artifact's metadata.
    """
    started = time.perf_counter()
    path = db_dir / RECORDS
    saved = json.loads(path.read_text()) if path.exists() else {"trials": 0, "kernels": {}}
    if saved["trials"] >= trials:
        log.append(f"tvm: reusing tuning records {path} ({saved['trials']} trials)")
        return saved["kernels"], {"tune_seconds": time.perf_counter() - started, "tune_reused": True,
                                  "tune_kernels": len(saved["kernels"])}
    kernels = _unscheduled_kernels(prepared)
    per_kernel = max(1, math.ceil(trials / max(len(kernels), 1)))
    measure = _Measurer(target)
    records = dict(saved["kernels"])
    for n, (key, name, func) in enumerate(kernels):
        best = _search_kernel(func, target, per_kernel, measure, seed=n)
        if best and (key not in records or best["seconds"] < records[key]["seconds"]):
            records[key] = {"kernel": name, **best}
    seconds = time.perf_counter() - started
    db_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # atomic: another run may read it meanwhile
    partial.write_text(json.dumps({"trials": trials, "kernels": records, "tvm": tvm.__version__}))
    os.replace(partial, path)
    won = sum(1 for r in records.values() if r["source"] == "search")
    log.append(f"tvm: tuned {len(kernels)} kernels, {trials} trials in {seconds:.1f}s; "
               f"search beat the default schedule on {won}")
    return records, {"tune_seconds": seconds, "tune_reused": False, "tune_kernels": len(kernels),
                     "tune_search_wins": won}


def _apply_records(prepared: Any, records: dict[str, Any]) -> None:
    """Replace, in place, each kernel that has a record by its recorded schedule."""
    updates = {}
    for gv, func in prepared.functions_items():
        record = records.get(_kernel_key(func)) if isinstance(func, tirx.PrimFunc) else None
        if record and "trace" in record:
            sch = s_tir.Schedule(tvm.IRModule({"main": func}))
            tvm.s_tir.Trace.apply_json_to_schedule(record["trace"], sch)
            updates[gv] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
    for gv, func in updates.items():
        prepared[gv] = func


def _kernel_key(func: Any) -> str:
    """MetaSchedule's workload key: the structural hash, stable across processes."""
    from tvm.s_tir.meta_schedule.utils import shash2hex

    return shash2hex(tvm.IRModule({"main": func}))


def _unscheduled_kernels(prepared: Any) -> list[tuple[str, str, Any]]:
    seen: dict[str, tuple[str, str, Any]] = {}
    for gv, func in prepared.functions_items():
        if isinstance(func, tirx.PrimFunc) and not func.attrs.get("tirx.is_scheduled", False):
            seen.setdefault(_kernel_key(func), (_kernel_key(func), gv.name_hint, func))
    return list(seen.values())


def _search_kernel(func: Any, target: Any, trials: int, measure: "_Measurer", seed: int) -> dict[str, Any] | None:
    """The fastest of the default schedule and `trials` random samples of MetaSchedule's spaces.

    The default schedule competes, so a tuned kernel is never slower than the untuned one (up to
    timing noise).
    """
    from tvm.s_tir import meta_schedule as ms

    mod = tvm.IRModule({"main": func})
    candidates: list[tuple[str, Any]] = []
    for rule in default_schedule(target).rules:
        if (sch := rule.apply(func, target, False)) is not None:
            candidates.append(("default", sch))
            break
    # Only the mutators that do not crash (see above); replay-trace never mutates anyway.
    mutators = {m: float(p) for m, p in ms.Mutator.create(_ms_kind(target)).items()
                if type(m).__name__ in ("MutateTileSize", "MutateUnroll")}
    space_gen = ms.space_generator.PostOrderApply(sch_rules="from-target", postprocs="from-target",
                                                  mutator_probs=mutators)
    context = ms.TuneContext(mod=mod, target=target, space_generator=space_gen, task_name="kernel",
                             num_threads=_cpu_count(), rand_state=seed)
    spaces = context.generate_design_space()
    for trial in range(trials if spaces else 0):
        sch = s_tir.Schedule(mod, seed=seed * 100_003 + trial + 1)
        # Dropping the decisions makes every sampling instruction draw afresh.
        s_tir.Trace(spaces[trial % len(spaces)].trace.insts, {}).apply_to_schedule(sch, remove_postproc=True)
        if all(post.apply(sch) for post in space_gen.postprocs) and _persistable(sch.trace):
            candidates.append(("search", sch))
    best: dict[str, Any] | None = None
    for source, sch in candidates:
        seconds = measure(sch.mod["main"], func)
        if seconds is not None and (best is None or seconds < best["seconds"]):
            best = {"seconds": seconds, "source": source, "schedule": sch}
    if best is None:
        return None
    # The default schedule is not stored: compile_module applies it anyway.
    sch = best.pop("schedule")
    if best["source"] == "search":
        best["trace"] = _plain_json(sch.trace.as_json())
    return best


def _persistable(trace: Any) -> bool:
    """False for traces holding an IndexMap: their JSON form segfaults (see above)."""
    return not any(inst.kind.name in ("TransformLayout", "TransformBlockLayout") for inst in trace.insts)


def _ms_kind(target: Any) -> str:
    return "llvm" if target.kind.name == "llvm" else "cuda"


def _plain_json(value: Any) -> Any:
    """A trace's JSON form (ffi Arrays/Maps, IntImm/FloatImm) as plain Python for `json.dumps`."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tirx.IntImm, tirx.FloatImm)):
        return value.value
    if hasattr(value, "items"):
        return {str(k): _plain_json(v) for k, v in value.items()}
    return [_plain_json(v) for v in value]


class _Measurer:
    """Builds a scheduled kernel and times it, in this process (mean seconds).

    In process, a kernel that reads out of bounds takes convcheck down with it (MetaSchedule's own
    runner forks a worker for that reason). Float arguments get random values, integer ones zeros:
    random integers fed to a gather/take index (TVM's "fast mode" take does not bounds-check)
    segfault, zeros are always in range.
    """

    def __init__(self, target: Any) -> None:
        from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

        self.target = target
        self.device = _device(target)
        self.config = EvaluatorConfig(number=3, repeat=3, min_repeat_ms=10, enable_cpu_cache_flush=False)
        self.rng = np.random.default_rng(0)
        self.args: dict[str, list[Any]] = {}  # kernel key -> its arguments, allocated once

    def __call__(self, scheduled: Any, original: Any) -> float | None:
        from tvm.s_tir.meta_schedule.runner.utils import run_evaluator_common
        from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

        try:
            # What MetaSchedule's default_build does, minus its deprecated tvm.build call.
            mod = tvm.IRModule({"main": scheduled.with_attr("global_symbol", "main")})
            module = tvm.tirx.build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=self.target)
            costs = run_evaluator_common(module, self.device, self.config, [self._arguments(original)])
        except Exception:  # noqa: BLE001 - a candidate that fails to build or run just loses
            return None
        return float(np.mean(costs))

    def _arguments(self, func: Any) -> list[Any]:
        from tvm.s_tir import meta_schedule as ms

        key = _kernel_key(func)
        if key not in self.args:
            arrays = []
            for info in ms.arg_info.ArgInfo.from_prim_func(func):
                shape, dtype = [int(d) for d in info.shape], str(info.dtype)
                value = (self.rng.standard_normal(shape).astype(dtype) if np.issubdtype(np.dtype(dtype), np.floating)
                         else np.zeros(shape, dtype=dtype))
                arrays.append(tvm.runtime.tensor(value, self.device))
            self.args[key] = arrays
        return self.args[key]
