"""Vectorisable exp, sigmoid, tanh, erf and softmax for TVM's CPU build (TVM's own fast-math kernels).

LLVM has no vector `exp`: without a vector math library, TVM's vectorised `exp` (and `sigmoid`, which
lowers to it) becomes one scalar `expf` call per element. Measured here on 1.2M float32 elements
(AVX-512, 2 threads): `x + 1` 0.09 ms, `sigmoid(x)` 2.5 ms, `exp(x)` 2.7 ms: EfficientNet-B0's SiLUs
and the transformers' softmax and GELU ran at libm speed. TVM ships polynomial versions
(`topi.fast_exp`, `fast_tanh`, `fast_erf`, `nn.fast_softmax`) and a Relax pass that swaps them in
(`relax.transform.FastMathTransform`); ONNX Runtime's MLAS computes these functions with polynomial
approximations too. This is that pass for float32 tensors, with sigmoid (1 / (1 + fast_exp(-x)))
and GELU (erf and tanh forms) added. The cell's parity check judges the approximation like any other difference.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax, topi

#: Relax ops whose float32 form is replaced (softmax too, by topi.nn.fast_softmax along its axis).
SOFTMAX = "relax.nn.softmax"


def _fast_sigmoid(x: Any) -> Any:
    one = tvm.tirx.const(1.0, x.dtype)
    return topi.divide(one, topi.add(one, topi.fast_exp(topi.negative(x))))


def _fast_gelu(x: Any) -> Any:
    """x/2 (1 + erf(x/sqrt 2)): relax.nn.gelu's legalisation, with fast_erf."""
    half, root_half = tvm.tirx.const(0.5, x.dtype), tvm.tirx.const(0.7071067811865476, x.dtype)
    return topi.multiply(topi.multiply(x, half), topi.add(tvm.tirx.const(1.0, x.dtype),
                                                          topi.fast_erf(topi.multiply(x, root_half))))


def _fast_gelu_tanh(x: Any) -> Any:
    """x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): GPT-2's GELU, with fast_tanh."""
    c = lambda v: tvm.tirx.const(v, x.dtype)  # noqa: E731 - a float32 literal
    inner = topi.multiply(c(0.7978845608028654), topi.add(x, topi.multiply(c(0.044715), topi.multiply(x, topi.multiply(x, x)))))
    return topi.multiply(topi.multiply(x, c(0.5)), topi.add(c(1.0), topi.fast_tanh(inner)))


#: op -> the TE function that computes it with TVM's fast kernels.
FAST_KERNELS = {"relax.exp": topi.fast_exp, "relax.sigmoid": _fast_sigmoid, "relax.tanh": topi.fast_tanh,
                "relax.erf": topi.fast_erf, "relax.nn.gelu": _fast_gelu, "relax.nn.gelu_tanh": _fast_gelu_tanh}


@relax.expr_functor.mutator
class _FastMath(relax.PyExprMutator):
    def visit_call_(self, call: Any) -> Any:
        call = super().visit_call_(call)
        name = getattr(call.op, "name", None)
        if (name not in FAST_KERNELS and name != SOFTMAX) or len(call.args) != 1 or \
                getattr(call.args[0].ty, "dtype", None) != "float32":
            return call
        x = call.args[0]
        if name == SOFTMAX:
            return self.builder_.call_te(topi.nn.fast_softmax, x, int(call.attrs.axis))
        return self.builder_.call_te(FAST_KERNELS[name], x)


@tvm.transform.module_pass(opt_level=0, name="CpuFastMath")
class CpuFastMath:
    """The pass: float32 exp/sigmoid/tanh/erf/GELU/softmax in every Relax function become TVM's fast kernels."""

    def transform_module(self, mod: Any, ctx: Any) -> Any:
        mutator = _FastMath(mod)
        for gv, func in mod.functions_items():
            if isinstance(func, relax.Function):
                mutator.builder_.update_func(gv, mutator.visit_expr(func))
        return mutator.builder_.get()
