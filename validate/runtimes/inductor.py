"""`torch/inductor`: the source model under `torch.compile` (TorchInductor) on CPU, the figure a PyTorch
user compares every other route with.

torch.compile compiles on the first call (and again for a shape it has not seen, e.g. a batch sweep),
so the first call's time is the compile time: recorded apart (`runtime_settings.compile_s`), never in
the latency, which the pipeline measures after warm-up. Compilation is cold: dynamo's in-process caches
are reset and Inductor's on-disk cache is a fresh folder per cell, so a compile time is never a cache
hit left by an earlier cell or run.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from convcheck.convert.aoti_from_torch import cold_inductor_cache
from convcheck.types import Artifact
from convcheck.validate.runtimes.torch_eager import TorchRuntime


class InductorRuntime(TorchRuntime):
    name = "inductor"
    reference_for = ()  # a route, not the reference
    precisions = ("fp32",)
    summary = "torch.compile (TorchInductor, C++/OpenMP kernels) on CPU; compile time reported apart"
    reference_only = False

    def activate_impl(self, artifact: Artifact) -> None:
        import torch

        super().activate_impl(artifact)
        torch._dynamo.reset()
        self._cache = tempfile.mkdtemp(prefix="convcheck-inductor-")
        # Until deactivation: compiles happen on calls (the first, and any new shape), not here.
        self._cold = contextlib.ExitStack()
        self._cold.enter_context(cold_inductor_cache(self._cache))
        self.model = torch.compile(self.model, backend="inductor")
        self.compile_s: float | None = None

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        if self.compile_s is not None:
            return super().infer_impl(feeds)
        started = time.perf_counter()
        outputs = super().infer_impl(feeds)
        self.compile_s = time.perf_counter() - started  # the first call compiles
        return outputs

    def deactivate_impl(self) -> None:
        self.model = None
        self._cold.close()
        shutil.rmtree(self._cache, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": "inductor", "mode": "default",
                # The first call, which compiles (cold: a fresh Inductor cache); latency is measured after it.
                "compile_s": None if self.compile_s is None else round(self.compile_s, 3)}
