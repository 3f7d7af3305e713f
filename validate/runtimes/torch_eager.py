"""PyTorch eager: the CPU reference of every torch route, and `torch/eager` on CUDA."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.errors import CellFailure
from convcheck.requirements import TORCH
from convcheck.types import Artifact, Format, Status
from convcheck.runtime import Runtime


class TorchRuntime(Runtime):
    """Reference: fp32 eager on CPU; fp64 measures the fp32 reference's own rounding (noise floor), fp16
    (CPU half) what computing in fp16 costs the source itself on these inputs (the fp16 floor)."""

    name = "torch"
    reference_for = (Format.TORCH,)
    format = Format.TORCH
    devices = ("cpu",)
    precisions = ("fp32", "fp64", "fp16")
    requires = (TORCH,)
    summary = "PyTorch eager on CPU (reference)"
    reference_only = True

    def activate_impl(self, artifact: Artifact) -> None:
        import torch

        from convcheck.model_spec import materialize

        if self.threads:
            torch.set_num_threads(self.threads)
        self.device = self._torch_device()
        self.dtype = {"fp64": torch.float64, "fp16": torch.float16}.get(self.target.precision, torch.float32)
        self.model = _prepare(materialize(artifact), self.dtype, self.device)
        self.input_names = list(artifact.metadata["input_names"])
        self.output_names = list(artifact.metadata["output_names"])

    def _torch_device(self) -> Any:
        import torch

        return torch.device("cpu")

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        args = []
        for name in self.input_names:
            t = torch.from_numpy(np.ascontiguousarray(feeds[name])).to(self.device)
            args.append(t.to(self.dtype) if t.is_floating_point() else t)
        with torch.no_grad():
            out = self.model(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.output_names):
            raise ValueError(f"model returned {len(outs)} outputs, spec declares {self.output_names}")
        return {n: _to_numpy(o) for n, o in zip(self.output_names, outs)}

    def describe(self) -> dict[str, Any]:
        import torch

        return {"threads": torch.get_num_threads(), "device": str(self.device), "torch": torch.__version__}


class TorchCudaRuntime(TorchRuntime):
    """`torch/eager`: the same model in eager mode on a CUDA GPU (cuDNN kernels, TF32 off)."""

    name = "eager"
    reference_for = ()  # a route on CUDA, not the reference
    devices = ("cuda",)
    precisions = ("fp32", "fp16")
    summary = "PyTorch eager on CUDA"
    reference_only = False

    def _torch_device(self) -> Any:
        import torch

        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise CellFailure(Status.NO_DEVICE.value, f"torch {torch.__version__} ({build}) sees no CUDA device",
                              "load")
        # TF32 would make "fp32" matmuls ~1e-3 relative: an fp32 cell means real fp32.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch.device("cuda")

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        outputs = super().infer_impl(feeds)
        torch.cuda.synchronize()  # latency must include the kernels, not just their launch
        return outputs

    def describe(self) -> dict[str, Any]:
        import torch

        return {**super().describe(), "gpu": torch.cuda.get_device_name(0), "tf32": False}


def _prepare(model: Any, dtype: Any, device: Any) -> Any:
    import copy

    import torch

    if dtype == torch.float32 and device.type == "cpu":
        return model.eval()
    # A copy: the cached source model stays fp32 on CPU for every other cell.
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval()


def _to_numpy(t: Any) -> np.ndarray:
    import torch

    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):  # numpy has no bfloat16; compare fp16 in fp32
        t = t.float()
    return t.cpu().numpy()
