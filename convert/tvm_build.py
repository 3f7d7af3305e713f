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
3. `dlight.ApplyDefaultSchedule` with, in order, `ParallelVectorize` (convcheck.convert.tvm_schedule), dlight's CPU
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
because TVM's own tuning driver segfaults in this build (see convcheck.convert.tvm_tuning). Each
kernel's default (`ParallelVectorize`) schedule competes with the sampled ones and the fastest is
kept, so the tuned library is never slower than the untuned one (up to timing noise). The records
(one trace per kernel, keyed by the kernel's structural hash) live in
`cache_dir/tvm-tuning/<sha256(model artifact, shapes, target, tvm version)>/records.json`: a
second build with the same inputs and no more trials reuses them and skips the search. The first
search in a process also pays about 4 s for TVM to import its tensor-intrinsic library (TVMScript
parsing; minutes before convcheck.convert.tvm_frames, the more modules loaded the slower).

Measured through `TvmRuntime.infer` (ms, median), ONNX route:

    model   trials  kernels  search won  tune s   tuned   untuned   reuse: tune s / convert s
    MLP       64       3         3        29.7    0.048    0.061        0.0007 / 0.44
    CNN       96       6         3        39.0    0.98     0.99         0.0014 / 0.91
    encoder  160      16         4        44.2    0.143    0.152        0.0018 / 1.77
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import tvm

from convcheck.convert.tvm_schedule import (CPU_PIPELINE, GPU_PIPELINE, _backend, _device, default_schedule,
                                            make_target, prepare)
from convcheck.convert.tvm_frames import cheap_script_frames
from convcheck.convert.tvm_tuning import apply_database, database_key, tune
from convcheck.converter import ConvertContext
from convcheck.types import Artifact, Format


def compile_module(prepared: Any, target: Any, database: Any = None) -> Any:
    """Schedule (a MetaSchedule database's records first, then the default rules) and build a VM executable."""
    # dlight's pass edits the module in place (it assigns mod[gv]); the untuned and tuned builds
    # start from the same `prepared`, so work on a copy.
    prepared = prepared.clone()
    if database is not None:
        prepared = apply_database(prepared, target, database)
    with target:
        prepared = default_schedule(target)(prepared)
    backend = _backend(target)
    lower = tvm.transform.Sequential([*backend.dataflow_lower_passes(target), *backend.finalize_passes(target)])
    return tvm.compile(prepared, target=target, relax_pipeline=lower)


@cheap_script_frames()  # TVMScript parsing on the way (tensor intrinsics) is minutes slower without
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
        cache_dir = ctx.settings.get("cache_dir")
        db_dir = (Path(cache_dir) if cache_dir else ctx.workdir) / "tvm-tuning" / database_key(target_dict)
        if not cache_dir:
            ctx.log.append("tvm: no cache_dir, the tuning records live with this run only")
        database, report = tune(prepared, target, db_dir, trials, ctx.log, logs_dir=ctx.workdir / "tvm-tuning-logs")
        tuned = compile_module(prepared, target, database)
        tuned.export_library(str(out_dir / "model.so"))
        untuned.export_library(str(out_dir / "model_untuned.so"))
        metadata.update(tuned=True, tune_trials=trials, variants={"untuned": "model_untuned.so"},
                        tuning_records=str(db_dir), **report)
    else:
        untuned.export_library(str(out_dir / "model.so"))
    return Artifact(Format.TVM, out_dir, metadata=metadata)
