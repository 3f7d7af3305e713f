"""Compile, tune and export a Relax module: the shared back half of both TVM hops.

The hops (`tvm_from_onnx`, `tvm_from_exported_program`) only import a model into a Relax
`IRModule` with static shapes; everything after that lives here, once.

Default (tuning-free) CPU pipeline, `parallel-vectorize`
---------------------------------------------------------
`tvm.compile(mod, target)` on CPU lowers every operator to a naive, single-threaded loop nest
(LegalizeOps) and does not even fuse: it is 30-130x slower than ONNX Runtime. Fusion alone
(`relax.get_pipeline("zero")` / the cpu_generic pipeline) changes nothing, and the dlight CPU rules
(`GEMV`, `Reduction`) only schedule softmax/norm-like kernels; given first pick they also grab
matmul+epilogue and conv+epilogue kernels and schedule them badly (15-60 ms on the CNN). So the
default pipeline here is:

1. `FoldBatchnormToConv2D` + `FoldConstant` (torch.export keeps BatchNorm, the dynamo ONNX
   exporter has folded it already; the pass matches bias-free convs only, the ResNet/MobileNet
   pattern: after a conv with bias the BatchNorm arithmetic stays, fused into the conv's
   epilogue), `DecomposeOpsForInference`, `CanonicalizeBindings`;
2. the stock legalize + `FuseOps` + `FuseTIR` passes;
3. `dlight.ApplyDefaultSchedule` with, in order, `ParallelVectorize` (below), dlight's CPU
   `GEMV` and `Reduction` rules (for reductions along the contiguous axis: mean, softmax,
   layer norm), and a loose `ParallelVectorize` that only parallelises what is left;
4. the stock dataflow-lowering and finalisation passes.

`ParallelVectorize` is a fixed, tuning-free schedule: the innermost spatial axis is split into
2 x (vector width) lanes and vectorised, the reduction loops move outside it, the innermost other
spatial axis that the vector loads do not depend on is tiled by 8 and unrolled (each vector load is
reused 8 times from registers: an 8x32 register tile with AVX-512), and the remaining outer
spatial loops are fused and parallelised. Schedule primitives preserve semantics and refuse
invalid transforms, and the reduction order is unchanged, so numerics match the naive loops.

Measured (2-core Xeon VM, LLVM mcpu=rocketlake, AVX-512, 2 TVM threads / 2 ORT intra-op threads;
median ms of interleaved rounds, VM call only; same dynamo-exported ONNX for TVM and ORT, .pt2 for
the ExportedProgram column):

    model                            tvm.compile  fused(zero)  fused+dlight  parallel-vectorize    ORT
    MLP 30-256-256-4, batch 32   onnx    2.17        2.11          1.09           0.039           0.040
                                 pt2     2.16        2.12          1.07           0.038
    CNN 3x(conv3x3+BN+ReLU),     onnx    71.1        70.5          59.9           0.95            0.54
      GAP, Linear; 1x3x64x64     pt2     70.5        70.0          58.6           1.04
    TransformerEncoderLayer      onnx    7.19        7.23          3.65           0.106           0.150
      d=64, 4 heads; 1x32x64     pt2     7.50        7.20          3.63           0.136

Outputs match torch to <= 1e-6 in every column. dlight's rules ahead of `ParallelVectorize`
instead of after: CNN 59 ms, encoder 4.0 ms. Register tiles tried on the same models: 8 rows x 2
vectors beat 4x1, 4x2, 4x4, 8x4 and 16x1. Timing noise on this VM is up to 2x between runs (a
stolen vCPU stalls every parallel kernel), hence interleaved rounds.

Tuning (`--tvm-tune TRIALS`)
----------------------------
Random search over MetaSchedule's design spaces (its "replay-trace" strategy), run by code here
because TVM's own tuning driver segfaults in this build (see the Tuning section below). Each
kernel's default (`ParallelVectorize`) schedule competes with the sampled ones and the fastest is
kept, so the tuned library is never slower than the untuned one (up to timing noise). The records
(one trace per kernel, keyed by the kernel's structural hash) live in
`cache_dir/tvm-tuning/<sha256(model artifact, shapes, target, tvm version)>/records.json`: a
second build with the same inputs and no more trials reuses them and skips the search. The first
search in a process also pays 20-40 s for TVM to import its tensor-intrinsic library (TVMScript
parsing, slower the more modules are loaded).

Measured through `TvmRuntime.infer` (ms, median), ONNX route:

    model   trials  kernels  search won  tune s   tuned   untuned   reuse: tune s / convert s
    MLP       64       3         3        29.7    0.048    0.061        0.0007 / 0.44
    CNN       96       6         3        39.0    0.98     0.99         0.0014 / 0.91
    encoder  160      16         4        44.2    0.143    0.152        0.0018 / 1.77
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
from tvm import relax, s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import ScheduleRule

from convcheck.converter import ConvertContext
from convcheck.types import Artifact, Format

CPU_PIPELINE = "parallel-vectorize"
GPU_PIPELINE = "dlight-gpu"
#: Bumped whenever the pre-tuning passes change: tuning records are keyed on the kernels they produce.
PIPELINE_VERSION = "1"
DEFAULT_CUDA_ARCH = "sm_80"  # when no GPU is visible (cross-compiling): Ampere, runs on newer GPUs too
#: Kernels with fewer iterations than this stay single-threaded: a thread-pool launch costs more.
PARALLEL_MIN_ITERATIONS = 1 << 12


# --------------------------------------------------------------------------------------------
# Target


def make_target(device: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The target in TVM's dict form (the `"llvm -mcpu=..."` string form raises in 0.27)."""
    cpu = tvm.target.codegen.llvm_get_system_cpu()
    host = {"kind": "llvm", "mcpu": cpu, "num-cores": _cpu_count()}
    if device == "cpu":
        return host
    if device == "cuda":
        arch = settings.get("tvm_cuda_arch")
        if not arch and tvm.cuda(0).exist:
            arch = "sm_" + tvm.cuda(0).compute_version.replace(".", "")
        return {"kind": "cuda", "arch": arch or DEFAULT_CUDA_ARCH, "host": host}
    raise ValueError(f"no TVM target for device {device!r}")


def _device(target: Any) -> Any:
    """The device a target's code runs on (`tvm.device("llvm")` raises in 0.27)."""
    return tvm.cpu() if target.kind.name == "llvm" else tvm.cuda()


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# Tuning-free CPU schedule


def _extent(sch: s_tir.Schedule, loop: Any) -> int | None:
    ext = sch.get(loop).extent
    return int(ext) if isinstance(ext, tirx.IntImm) else None


def _region_vars(region: Any) -> list[Any]:
    return [v for r in region.region for v in tirx.analysis.undefined_vars(r.min)]


class ParallelVectorize(ScheduleRule):
    """Vectorise the innermost spatial axis, register-tile, parallelise the rest (see module doc).

    `strict`: decline functions with a reduction along the contiguous axis (mean, softmax, norms),
    so that dlight's Reduction rule gets them; the loose instance after it takes what is left.
    """

    def __init__(self, tile: int = 8, vectors: int = 2, strict: bool = True) -> None:
        self.tile = tile
        self.vectors = vectors
        self.strict = strict

    def apply(self, func: Any, target: Any, tunable: bool) -> Any:
        if not isinstance(func, tirx.PrimFunc) or target.kind.name != "llvm":
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if not infos:
            return None
        for info in infos:  # spatial iterators first, then reductions, nothing opaque
            kinds = "".join(it.kind for it in info.iters)
            if "O" in kinds or "RS" in kinds:
                return None
        bits = tvm.target.codegen.llvm_get_vector_width(target)
        lanes = max(bits // 32, 4) if bits > 0 else 4
        try:
            for info in infos:
                if not self._schedule_block(sch, info, lanes):
                    return None
        except s_tir.ScheduleError:  # a primitive refused: not a kernel this rule fits (TVM 0.27 has no
            # tvm.TVMError: naming it here raised AttributeError over the real error)
            return None
        return sch

    def _schedule_block(self, sch: s_tir.Schedule, info: Any, lanes: int) -> bool:
        block = info.block_rv
        loops = sch.get_loops(block)
        n_s = sum(1 for it in info.iters if it.kind == "S")
        spatial, reduction = list(loops[:n_s]), list(loops[n_s:])
        extents = [_extent(sch, lp) for lp in loops]
        if not spatial or any(e is None for e in extents):
            return not self.strict
        vec_var = info.iters[n_s - 1].var
        # The reads that move with the innermost spatial axis: vectorising it gives vector loads.
        moving = [r for r in sch.get(block).reads if any(v.same_as(vec_var) for v in _region_vars(r))]
        if reduction and not moving and self.strict:
            return False
        inner_ext = extents[n_s - 1]
        vec = unrolled = tile = None
        if inner_ext % lanes == 0 and (not reduction or moving):
            if reduction and self.vectors > 1 and inner_ext % (lanes * self.vectors) == 0:
                outer, unrolled, vec = sch.split(spatial[-1], [None, self.vectors, lanes])
            else:
                outer, vec = sch.split(spatial[-1], [None, lanes])
            spatial[-1] = outer
            if reduction and self.tile > 1:
                used = [v for r in moving for v in _region_vars(r)]
                for i in range(n_s - 2, -1, -1):
                    if any(info.iters[i].var.same_as(v) for v in used):
                        continue  # the vector loads move with this axis: tiling it reuses nothing
                    factor = next((t for t in (self.tile, 4, 2) if extents[i] % t == 0), None)
                    if factor:
                        spatial[i], tile = sch.split(spatial[i], [None, factor])
                    break
        if reduction:
            sch.reorder(*spatial, *reduction, *[lp for lp in (tile, unrolled, vec) if lp is not None])
        if math.prod(extents) >= PARALLEL_MIN_ITERATIONS:
            sch.parallel(sch.fuse(*spatial) if len(spatial) > 1 else spatial[0])
        if vec is not None:
            sch.vectorize(vec)
            if reduction:  # the init block gets its own copy of the vector loop
                init = sch.decompose_reduction(block, reduction[0])
                sch.vectorize(sch.get_loops(init)[-1])
        for loop in (tile, unrolled):
            if loop is not None:
                sch.unroll(loop)
        return True


def default_schedule(target: Any) -> Any:
    """The tuning-free schedule pass for the target's kind."""
    if target.kind.name == "llvm":
        return dl.ApplyDefaultSchedule(
            ParallelVectorize(), dl.cpu.GEMV(), dl.cpu.Reduction(), ParallelVectorize(strict=False)
        )
    # What TVM's own CUDA pipeline applies; without it kernels have no thread bindings at all.
    return dl.ApplyDefaultSchedule(
        dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()
    )


# --------------------------------------------------------------------------------------------
# Pipeline


def _backend(target: Any) -> Any:
    """The backend's pass lists. Imported from the pipeline modules themselves: in 0.27
    `relax.pipeline.dataflow_lower_passes(llvm)` raises AttributeError (cpu_generic's __init__
    does not re-export it)."""
    if target.kind.name == "llvm":
        from tvm.relax.backend.cpu_generic import pipeline
    elif target.kind.name == "cuda":
        from tvm.relax.backend.cuda import pipeline
    else:
        raise ValueError(f"no TVM pipeline for target kind {target.kind.name!r}")
    return pipeline


def prepare(mod: Any, target: Any) -> Any:
    """Relax-level passes, then lowering to fused, still unscheduled TIR kernels."""
    t = relax.transform
    passes = [
        t.FoldBatchnormToConv2D(), t.FoldConstant(), t.DecomposeOpsForInference(), t.CanonicalizeBindings(),
        *_backend(target).library_dispatch_passes(target),
        # The stock legalize passes of the cpu and cuda pipelines, minus cuda's trailing dlight
        # step: scheduling happens in compile_module, after any tuning.
        t.LegalizeOps(), t.AnnotateTIROpPattern(), t.FoldConstant(), t.FuseOps(), t.FuseTIR(),
    ]
    with target:
        return tvm.transform.Sequential(passes)(mod)


def compile_module(prepared: Any, target: Any, records: dict[str, Any] | None = None) -> Any:
    """Schedule (tuning records first, then the default rules) and build a VM executable."""
    # Both steps edit the module in place (dlight's pass assigns mod[gv]); the untuned and tuned
    # builds start from the same `prepared`, so work on a copy.
    prepared = prepared.clone()
    with target:
        if records:
            _apply_records(prepared, records)
        prepared = default_schedule(target)(prepared)
    backend = _backend(target)
    lower = tvm.transform.Sequential([*backend.dataflow_lower_passes(target), *backend.finalize_passes(target)])
    return tvm.compile(prepared, target=target, relax_pipeline=lower)


def build_artifact(mod: Any, ctx: ConvertContext, source: Artifact, input_names: list[str],
                   frontend: str, output_names: list[str] | None = None) -> Artifact:
    """Compile `mod` (imported with static shapes) for ctx.target and write the TVM artifact."""
    from convcheck.validate.runtimes.tvm import physical_cores

    started = time.perf_counter()
    # FoldConstant runs kernels and tuning times them, in this process: size TVM's thread pool as
    # the runtime will (TVM's own default is half the cores) before its first use starts it.
    os.environ.setdefault("TVM_NUM_THREADS", str(physical_cores()))
    target_dict = make_target(ctx.target.device, ctx.settings)
    target = tvm.target.Target(target_dict)
    static_shapes = {n: list(np.shape(ctx.example_feeds[n])) for n in input_names}
    out_dir = ctx.workdir / "tvm"
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare(mod, target)

    untuned = compile_module(prepared, target)
    compile_seconds = time.perf_counter() - started
    metadata: dict[str, Any] = {
        "entry": "model.so",
        "input_names": list(input_names),
        "output_names": list(output_names or ctx.output_names),
        "target": target_dict,
        "pipeline": CPU_PIPELINE if target.kind.name == "llvm" else GPU_PIPELINE,
        "frontend": frontend,
        "tuned": False,
        "compile_seconds": compile_seconds,
        # Shapes are compiled in: this library runs the benchmarked batch and nothing else.
        "static_shapes": static_shapes,
        "tvm": tvm.__version__,
    }
    trials = int(ctx.settings.get("tvm_tune_trials", 0) or 0)
    if trials > 0 and not _device(target).exist:
        # Candidates are timed on the device: without one, a search would measure nothing.
        ctx.log.append(f"tvm: no {ctx.target.device} device here, tuning skipped")
        metadata["tune_skipped"] = f"no {ctx.target.device} device to time candidates on"
        trials = 0
    if trials > 0:
        key = tuning_key(source, static_shapes, target_dict)
        cache_dir = ctx.settings.get("cache_dir")
        db_dir = (Path(cache_dir) if cache_dir else ctx.workdir) / "tvm-tuning" / key
        if not cache_dir:
            ctx.log.append("tvm: no cache_dir, the tuning records live with this run only")
        records, report = tune(prepared, target, db_dir, trials, ctx.log)
        tuned = compile_module(prepared, target, records)
        tuned.export_library(str(out_dir / "model.so"))
        untuned.export_library(str(out_dir / "model_untuned.so"))
        metadata.update(tuned=True, tune_trials=trials, variants={"untuned": "model_untuned.so"},
                        tuning_records=str(db_dir / RECORDS), **report)
    else:
        untuned.export_library(str(out_dir / "model.so"))
    return Artifact(Format.TVM, out_dir, metadata=metadata)


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
