"""Relax-level ONNX Clip for TVM's ONNX frontend, so channels-last layouts survive ReLU6.

TVM 0.27's `from_onnx` lowers Clip to pre-scheduled TIR (`bb.emit_te(topi.maximum, ...)` then
`topi.minimum`): a `call_tir` that `relax.transform.ConvertLayout` cannot see into, so it converts
the activation back to NCHW before every Clip and to NHWC after it. On MobileNetV2 (ReLU6 after 35
convolutions) each ReLU6 became a kernel of two full-tensor transposes around the clip
(`fused_transpose_maximum_minimum_transpose`). Emitted as `relax.op.maximum` / `relax.op.minimum`,
which legalise to the same `topi` functions, the clip computes the same values and ConvertLayout
carries the channels-last layout through it.

`relax_clip()` swaps the converter in for one `from_onnx` call and puts upstream's back after.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any


def _emit_clip(bb: Any, x: Any, lo: Any, hi: Any) -> Any:
    from tvm import relax

    if lo is not None:
        x = bb.emit(relax.op.maximum(x, lo))
    if hi is not None:
        x = bb.emit(relax.op.minimum(x, hi))
    return x


def _clip_v1(cls: Any, bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """Opset 1-10: the bounds are attributes. An absent bound is infinite, and a max/min with an
    infinite bound is the identity: emitted as nothing (upstream emits it, and for an integer input
    the infinite float bound is not representable)."""
    from tvm import relax

    x = inputs[0]
    dtype = x.ty.dtype  # TVM 0.27 calls struct_info `ty`
    bounds = [float(attr[k]) if k in attr else None for k in ("min", "max")]
    lo, hi = (relax.const(b, dtype) if b is not None and math.isfinite(b) else None for b in bounds)
    return _emit_clip(bb, x, lo, hi)


def _clip_v13(cls: Any, bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """Opset 11+: the bounds are optional inputs, NaN meaning unbounded (upstream's sanitising kept)."""
    lo = hi = None
    if inputs[1] is not None:
        lo = cls._sanitize_nan_clip_bound(bb, inputs[1], for_min=True)
    if inputs[2] is not None:
        hi = cls._sanitize_nan_clip_bound(bb, inputs[2], for_min=False)
    return _emit_clip(bb, inputs[0], lo, hi)


@contextlib.contextmanager
def relax_clip() -> Iterator[None]:
    from tvm.relax.frontend.onnx import onnx_frontend

    clip = onnx_frontend.Clip
    saved = {name: clip.__dict__[name] for name in ("_impl_v1", "_impl_v11", "_impl_v13")}
    clip._impl_v1 = classmethod(_clip_v1)
    clip._impl_v11 = classmethod(_clip_v13)
    clip._impl_v13 = classmethod(_clip_v13)
    try:
        yield
    finally:
        for name, impl in saved.items():
            setattr(clip, name, impl)
