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
   epilogue); on CPU then `ConvertLayout` to channels-last convolutions (conv2d NHWC/HWIO, conv1d
   NWC/WIO: the innermost output axis becomes the output channels, which the vector width divides,
   instead of the output width, 7..56, which it mostly does not) and `PadMatmulColumns` (a constant
   matmul weight whose column count the vector width does not divide, GPT-2's 50257-word head, is
   padded with zero columns and the result sliced back); `DecomposeOpsForInference`,
   `CanonicalizeBindings`;
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
TVM's own MetaSchedule tuner (convcheck.convert.tvm_tuning): `ms.tune_tasks` over the prepared
module's kernels (gradient task scheduler, evolutionary search, XGBoost cost model), candidates built
and timed by MetaSchedule's LocalBuilder/LocalRunner in worker processes. Kernels MetaSchedule has
no record for keep the default schedule above, so a tuned library is never worse-scheduled than the
untuned one where the search found nothing. Records: one MetaSchedule JSON database per target, TVM
version and pre-tuning pipeline under `cache_dir/tvm-tuning/`, shared by every model (kernels are
keyed by structural hash); a build whose kernels were all searched before at >= TRIALS pays only
the compile ("records reused"). It ran as a hand-written random search before: MetaSchedule's
driver segfaulted in `tvm.ir.save_json`, which turned out to be apache-tvm-ffi 0.1.15 under
apache-tvm 0.27 (built against 0.1.14); the ffi is pinned now (see tvm_tuning's docstring).
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
from convcheck.convert.tvm_tuning import database_key, faster_of_tuned_and_default, tune
from convcheck.converter import ConvertContext
from convcheck.types import Artifact, Format


def schedule_module(prepared: Any, target: Any) -> Any:
    """Every kernel of `prepared` scheduled by convcheck's default (tuning-free) rules."""
    # dlight's pass edits the module in place (it assigns mod[gv]); the untuned and tuned builds
    # start from the same `prepared`, so work on a copy.
    with target:
        return default_schedule(target)(prepared.clone())


def compile_module(prepared: Any, target: Any) -> Any:
    """The untuned build: default schedules, lowered to a VM executable."""
    return lower_module(schedule_module(prepared, target), target)


def lower_module(scheduled: Any, target: Any) -> Any:
    """A VM executable from a module whose kernels are scheduled."""
    backend = _backend(target)
    lower = tvm.transform.Sequential([*backend.dataflow_lower_passes(target), *backend.finalize_passes(target)])
    return tvm.compile(scheduled, target=target, relax_pipeline=lower)


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
    layout = "channels-last" if target.kind.name == "llvm" else "as imported"
    try:
        prepared = prepare(mod, target)
        scheduled = schedule_module(prepared, target)
        untuned = lower_module(scheduled, target)
    except Exception as exc:  # noqa: BLE001 - retried below; a second failure is the cell's
        if target.kind.name != "llvm":
            raise
        # TVM's ConvertLayout/legalisation can fail on a converted graph the original compiles
        # (a strided Conv1d stack: std::bad_alloc): build the model's own layout, slower, and say so.
        layout = f"as imported (channels-last failed: {str(exc).splitlines()[0][:200]})"
        ctx.log.append(f"tvm: channels-last build failed ({str(exc).splitlines()[0][:200]}); "
                       "built with the model's own convolution layout")
        prepared = prepare(mod, target, channels_last=False)
        scheduled = schedule_module(prepared, target)
        untuned = lower_module(scheduled, target)
    compile_seconds = time.perf_counter() - started
    metadata: dict[str, Any] = {
        "entry": "model.so",
        "input_names": list(input_names),
        "output_names": list(output_names or ctx.output_names),
        "target": target_dict,
        "pipeline": CPU_PIPELINE if target.kind.name == "llvm" else GPU_PIPELINE,
        "conv_layout": layout,
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
        from convcheck.quiet_cores import machine_cores

        # The search times its candidates and the comparison its kernels: both with the cores alone.
        cores = machine_cores()
        with cores.exclusive():
            if not cores.held_alone:
                ctx.log.append("tvm: tuning times candidates without the cores to itself (other convcheck work "
                               "held them past the bound, or no lock files here)")
            database, report = tune(prepared, target, db_dir, trials, ctx.log, logs_dir=ctx.workdir / "tvm-tuning-logs")
            chosen, compared = faster_of_tuned_and_default(prepared, scheduled, target, database, ctx.log)
        report.update(compared)
        tuned = lower_module(chosen, target)
        tuned.export_library(str(out_dir / "model.so"))
        untuned.export_library(str(out_dir / "model_untuned.so"))
        metadata.update(tuned=True, tune_trials=trials, variants={"untuned": "model_untuned.so"},
                        tuning_records=str(db_dir), **report)
    else:
        untuned.export_library(str(out_dir / "model.so"))
    return Artifact(Format.TVM, out_dir, metadata=metadata)
