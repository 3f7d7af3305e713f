"""AOTInductor packages (`torch/aoti`): the compiled .pt2 loaded with `torch._inductor.aoti_load_package`,
the Python face of libtorch's AOTIModelPackageLoader, on CPU.

Inputs are passed positionally in the model's declared order; outputs come back in the program's
order and are named by the declared output names. Thread count: torch's (the compiled kernels are
OpenMP loops sized by `torch.set_num_threads`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.requirements import TORCH
from convcheck.runtime import Runtime
from convcheck.types import Artifact, Format


class AotiRuntime(Runtime):
    name = "aoti"
    format = Format.AOTI
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (TORCH,)
    summary = "AOTInductor package (aoti_load_package), CPU: the compiled kernels PyTorch deploys without Python"

    def activate_impl(self, artifact: Artifact) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        self.runner = torch._inductor.aoti_load_package(str(artifact.main_file))
        self.input_names = list(artifact.metadata.get("input_names") or [])
        self.output_names = list(artifact.metadata.get("output_names") or [])
        self._torch = torch

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.input_names]
        with torch.no_grad():
            out = self.runner(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.output_names):
            raise RuntimeError(f"the package returned {len(outs)} outputs, the model declares {self.output_names}")
        return {n: o.detach().numpy() for n, o in zip(self.output_names, outs)}

    def deactivate_impl(self) -> None:
        self.runner = None

    def describe(self) -> dict[str, Any]:
        import torch

        return {"threads": torch.get_num_threads(), "torch": torch.__version__}
