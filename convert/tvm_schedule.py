"""The tuning-free schedules and compile pipeline of convcheck.convert.tvm_build (see its docstring for
what `parallel-vectorize` does and what it measured): targets, the `ParallelVectorize` rule, `prepare`."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import tvm
from tvm import relax, s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import ScheduleRule

from convcheck.convert.tvm_fast_math import CpuFastMath

CPU_PIPELINE = "parallel-vectorize"
GPU_PIPELINE = "dlight-gpu"
#: Bumped whenever the pre-tuning passes change: tuning records are keyed on the kernels they produce.
#: 2: channels-last convolutions, padded wide matmuls on CPU; 3: Relax-level ONNX Clip; 4: fast math on CPU;
#: 5: computed matmul operands padded too; 6: fast GELU (tanh form).
PIPELINE_VERSION = "6"
DEFAULT_CUDA_ARCH = "sm_80"  # when no GPU is visible (cross-compiling): Ampere, runs on newer GPUs too
#: ConvertLayout's target layouts for CPU convolutions (data, weights): see `prepare`.
CPU_CONV_LAYOUTS = {"relax.nn.conv2d": ["NHWC", "HWIO"], "relax.nn.conv1d": ["NWC", "WIO"]}
#: Matmuls with at least this many output columns get theirs padded to the vector width (PadMatmulColumns).
LONG_AXIS = 256
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
        lanes = _lanes(target)
        try:
            infos = _inline_elementwise(sch, infos)
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
        # The widest vector the axis divides: with AVX-512 (16 lanes) the 24- and 40-channel layers of
        # MobileNet/EfficientNet divide 8, not 16, and were left scalar (EfficientNet-B0's 56x56x24
        # projection took 7-13 ms of its 60).
        lanes = next((w for w in (lanes, lanes // 2, lanes // 4) if w >= 4 and inner_ext % w == 0), lanes)
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
                    # The largest tile up to self.tile the axis divides: the 7- and 14-wide maps of
                    # ResNet/EfficientNet's last stages took 2 (14) or none (7), so each weight vector
                    # loaded fed one or two FMAs.
                    factor = next((t for t in range(self.tile, 1, -1) if extents[i] % t == 0), None)
                    if (factor or 0) < 4 and extents[i] > self.tile:
                        # No divisor worth a tile (ViT's 197 tokens is prime): a full tile with a
                        # predicate on the last one beats no reuse at all.
                        factor = self.tile
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


def _inline_elementwise(sch: s_tir.Schedule, infos: list[Any]) -> list[Any]:
    """Inline the elementwise blocks that only feed elementwise blocks, and pure copies; returns the rest.

    Legalised fused kernels compute each op as its own pass over memory: a convolution's bias, SiLU
    (sigmoid, multiply) and residual add were four full-tensor passes after it (EfficientNet-B0's
    112x112x96 expansion: 2.7 ms, most of it those passes), and an unpadded convolution first copied
    its input (`pad_temp`). Inlined, the epilogue is one vectorised pass. A padded input stays a block
    of its own: inlined, its bounds test would sit in the convolution's innermost loop.
    """
    injective = {sch.get(info.block_rv).name_hint for info in infos if info.is_injective()}
    remaining = []
    for info in infos:
        block = sch.get(info.block_rv)
        consumers = [sch.get(c).name_hint for c in sch.get_consumers(info.block_rv)]
        copy = isinstance(block.body, tirx.stmt.BufferStore) and isinstance(block.body.value, tvm.ir.TensorLoad)
        if block.name_hint in injective and consumers and (copy or all(c in injective for c in consumers)):
            try:
                sch.compute_inline(info.block_rv)
                continue
            except s_tir.ScheduleError:
                pass
        remaining.append(info)
    return remaining


def _lanes(target: Any) -> int:
    """float32 lanes of the target's vectors (8 with AVX2, 16 with AVX-512)."""
    bits = tvm.target.codegen.llvm_get_vector_width(target)
    return max(bits // 32, 4) if bits > 0 else 4


@tvm.transform.module_pass(opt_level=0, name="PadMatmulColumns")
class PadMatmulColumns:
    """matmul(x, W) with a constant W whose column count the vector width does not divide (GPT-2's
    50257-word vocabulary) becomes matmul(x, W padded with zero columns)[..., :N]; a computed W
    (attention's K^T) is padded at run time, to one vector width.

    ParallelVectorize vectorises a matmul along its output columns; with 50257 it cannot, and the
    unvectorised LM head took 968 ms of GPT-2's 971. The padded columns are zeros and are sliced
    off, so the result is the same (each kept column is the same dot product, in the same order).
    """

    def __init__(self, lanes: int) -> None:
        self.lanes = lanes

    def transform_module(self, mod: Any, ctx: Any) -> Any:
        return _PadColumns(mod, self.lanes).run()


@relax.expr_functor.mutator
class _PadColumns(relax.PyExprMutator):
    def __init__(self, mod: Any, lanes: int) -> None:
        super().__init__(mod)
        # A constant weight is padded to two vectors (the register tile's width), a computed operand to one.
        self.mod_, self.lanes, self.weight_multiple = mod, lanes, 2 * lanes
        self.matmul = tvm.ir.Op.get("relax.matmul")

    def run(self) -> Any:
        for gv, func in self.mod_.functions_items():
            if isinstance(func, relax.Function):
                self.builder_.update_func(gv, self.visit_expr(func))
        return self.builder_.get()

    def visit_call_(self, call: Any) -> Any:
        call = super().visit_call_(call)
        if not (isinstance(call, relax.Call) and call.op.same_as(self.matmul) and len(call.args) == 2):
            return call
        weight = call.args[1]
        if not isinstance(weight, tvm.ir.expr.Constant):
            return self._pad_activation(call)
        if len(weight.value.shape) != 2:
            return call
        columns = int(weight.value.shape[1])
        if columns % self.weight_multiple == 0 or columns < LONG_AXIS:
            return call
        data = weight.value.numpy()
        padded = np.pad(data, ((0, 0), (0, (-columns) % self.weight_multiple)))
        wide = self.builder_.emit(relax.op.matmul(call.args[0], relax.const(padded), out_dtype=call.attrs.out_dtype))
        ndim = call.args[0].ty.ndim  # x @ (K, N) keeps x's rank (0.27 calls struct_info `ty`)
        return relax.op.strided_slice(wide, axes=[ndim - 1], begin=[0], end=[columns])

    def _pad_activation(self, call: Any) -> Any:
        """A computed right operand (attention's K^T: ViT's 197 tokens) padded with zero columns to the
        vector width: the scores matmul ran scalar, 2.7 ms of ViT-Tiny's 29 per layer. The pad and
        the slice copy the operand and the result once; the kept columns are the same dot products."""
        ty = call.args[1].ty
        shape = getattr(ty, "shape", None)
        if getattr(ty, "ndim", -1) < 2 or not isinstance(shape, relax.ShapeExpr) or \
                not all(isinstance(v, tirx.IntImm) for v in shape.values):
            return call
        columns, lanes = int(shape.values[-1]), self.lanes
        if columns % lanes == 0 or columns < 4 * lanes:
            return call
        width = [0] * (2 * ty.ndim)
        width[-1] = (-columns) % lanes
        padded = self.builder_.emit(relax.op.nn.pad(call.args[1], width))
        wide = self.builder_.emit(relax.op.matmul(call.args[0], padded, out_dtype=call.attrs.out_dtype))
        return relax.op.strided_slice(wide, axes=[call.ty.ndim - 1], begin=[0], end=[columns])


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


def prepare(mod: Any, target: Any, channels_last: bool = True) -> Any:
    """Relax-level passes, then lowering to fused, still unscheduled TIR kernels.

    `channels_last=False` keeps the convolutions in the layout the model came in (the fallback when
    TVM fails on the converted graph: a strided, padded Conv1d stack raised std::bad_alloc)."""
    t = relax.transform
    # CPU: convolutions in channels-last layout with HWIO weights, so that the innermost output axis is
    # the output channels (8-lane divisible in every zoo layer) and each weight load is a contiguous
    # vector; in NCHW it is the output width (7, 14, 28: not vectorisable) - ParallelVectorize then
    # left ResNet-50 at 2.3 s. After the BatchNorm fold, whose pattern is NCHW; FoldConstant then
    # transposes the weights at compile time.
    cpu = target.kind.name == "llvm"
    layout = ([t.ConvertLayout(CPU_CONV_LAYOUTS), t.FoldConstant()] if cpu and channels_last else []) + (
        [PadMatmulColumns(_lanes(target))] if cpu else [])
    passes = [
        t.FoldBatchnormToConv2D(), t.FoldConstant(), *layout, t.DecomposeOpsForInference(), t.CanonicalizeBindings(),
        *([CpuFastMath()] if cpu else []),  # vector exp/sigmoid/erf/softmax: see convert/tvm_fast_math.py
        *_backend(target).library_dispatch_passes(target),
        # The stock legalize passes of the cpu and cuda pipelines, minus cuda's trailing dlight
        # step: scheduling happens in tvm_build.schedule_module and, tuned, faster_of_tuned_and_default.
        t.LegalizeOps(), t.AnnotateTIROpPattern(), t.FoldConstant(), t.FuseOps(), t.FuseTIR(),
    ]
    with target:
        return tvm.transform.Sequential(passes)(mod)
