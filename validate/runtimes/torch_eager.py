"""PyTorch eager: the reference for every route that starts from a torch model."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.types import Artifact, Format, Requirement
from convcheck.validate.runtimes.base import Runtime

TORCH = Requirement("torch", "torch", "torch")


class TorchRuntime(Runtime):
    name = "torch"
    format = Format.TORCH
    devices = ("cpu",)
    precisions = ("fp32", "fp64")
    requires = (TORCH,)
    summary = "PyTorch eager (reference)"

    def activate_impl(self, artifact: Artifact) -> None:
        import torch

        from convcheck.zoo.base import materialize

        if self.threads:
            torch.set_num_threads(self.threads)
        model = materialize(artifact)
        self.dtype = torch.float64 if self.target.precision == "fp64" else torch.float32
        # A float64 copy measures the fp32 reference's own rounding error (the noise floor).
        self.model = copy_to(model, self.dtype).eval()
        self.input_names = list(artifact.metadata["input_names"])
        self.output_names = list(artifact.metadata["output_names"])

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        args = []
        for name in self.input_names:
            t = torch.from_numpy(np.ascontiguousarray(feeds[name]))
            args.append(t.to(self.dtype) if t.is_floating_point() else t)
        with torch.no_grad():
            out = self.model(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.output_names):
            raise ValueError(f"model returned {len(outs)} outputs, spec declares {self.output_names}")
        return {n: o.detach().cpu().numpy() for n, o in zip(self.output_names, outs)}


def copy_to(model: Any, dtype: Any) -> Any:
    import copy

    import torch

    return model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
