"""The reference for JAX sources: the Flax NNX module called eagerly by JAX on CPU.

fp64 (the noise floor) is the same module with its float parameters cast to float64 and called inside
`jax.enable_x64()`, so JAX really computes in float64; fp16 (the fp16 floor) the same in float16.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from convcheck.requirements import JAX
from convcheck.runtime import Runtime
from convcheck.types import Artifact, Format


class JaxRuntime(Runtime):
    name = "jax"
    reference_for = (Format.JAX,)
    format = Format.JAX
    devices = ("cpu",)
    precisions = ("fp32", "fp64", "fp16")
    requires = (JAX,)
    summary = "JAX on CPU, the Flax module called eagerly (reference)"
    noise_floor_label = "jax float64 (jax_enable_x64, parameters cast)"
    reference_only = True

    def activate_impl(self, artifact: Artifact) -> None:
        from convcheck.model_spec import materialize
        from convcheck.zoo.jax_init import quiet_jax

        quiet_jax()
        import jax

        self.float_dtype = {"fp64": np.float64, "fp16": np.float16}.get(self.target.precision)
        model = materialize(artifact)
        with self._precision():
            self.model = model if self.float_dtype is None else dtype_twin(model, self.float_dtype)
        self.input_names = list(artifact.metadata["input_names"])
        self.output_names = list(artifact.metadata["output_names"])
        self._jax = jax

    def _precision(self) -> Any:
        import jax

        return jax.enable_x64(True) if self.float_dtype is np.float64 else contextlib.nullcontext()

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        args = [feeds[n] for n in self.input_names]
        if self.float_dtype is not None:
            args = [a.astype(self.float_dtype) if a.dtype == np.float32 else a for a in args]
        with self._precision():
            out = self.model(*args)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            if len(outs) != len(self.output_names):
                raise ValueError(f"model returned {len(outs)} outputs, spec declares {self.output_names}")
            return {n: np.asarray(o) for n, o in zip(self.output_names, outs)}

    def describe(self) -> dict[str, Any]:
        import jax

        return {"threads": self.threads, "jax": jax.__version__, "backend": jax.default_backend()}


def dtype_twin(model: Any, dtype: Any) -> Any:
    """The NNX module with every floating-point state (parameters, BatchNorm statistics) cast to `dtype`."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    graphdef, state = nnx.split(model)
    cast = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, state)
    twin = nnx.merge(graphdef, cast)
    twin.eval()
    return twin
