"""ExecuTorch's runtime from Python (`executorch.runtime`): the same C++ runtime and kernels an app links,
loading the .pte program and executing its `forward` method on CPU.

What runs where was fixed by the lowering (convcheck.convert.executorch_from_torch): XNNPACK-delegated
subgraphs on XNNPACK, the rest on the portable kernels. Inputs are passed positionally in the model's
declared order, outputs come back as a list in the program's output order and are named by the
declared output names; the program has the example batch's fixed shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.requirements import EXECUTORCH, EXECUTORCH_ENV, TORCH
from convcheck.runtime import Runtime
from convcheck.types import Artifact, Format


class ExecutorchRuntime(Runtime):
    name = "executorch"
    format = Format.PTE
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (TORCH, EXECUTORCH)
    toolchain = EXECUTORCH_ENV
    summary = "ExecuTorch runtime (executorch.runtime), CPU: XNNPACK where the program delegates, portable kernels elsewhere"

    def activate_impl(self, artifact: Artifact) -> None:
        import torch
        from executorch.runtime import Runtime as EtRuntime

        meta = artifact.metadata
        if self.threads:
            torch.set_num_threads(self.threads)  # the portable kernels' threadpool follows torch's setting
        self.program = EtRuntime.get().load_program(str(artifact.main_file))
        self.method = self.program.load_method(meta.get("method", "forward"))
        self.input_names = list(meta.get("input_names") or [])
        self.output_names = list(meta.get("output_names") or [])
        self.shapes = {n: tuple(s) for n, s in (meta.get("input_shapes") or {}).items()}
        self.delegate = meta.get("delegate")
        self._torch = torch

    def _args(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        args = []
        for name in self.input_names:
            value = np.ascontiguousarray(feeds[name])
            want = self.shapes.get(name)
            if want is not None and tuple(value.shape) != want:
                raise ValueError(f"input {name!r} has shape {list(value.shape)}; the ExecuTorch program was "
                                 f"exported for {list(want)} (fixed shapes)")
            args.append(self._torch.from_numpy(value))
        return args

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        outputs = self.method.execute(self._args(feeds))
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"the program returned {len(outputs)} outputs, the model declares "
                               f"{self.output_names}")
        return {n: o.detach().numpy().copy() for n, o in zip(self.output_names, outputs)}

    def fast_call(self, feeds: dict[str, np.ndarray]) -> Any:
        args = self._args(feeds)
        execute = self.method.execute
        return lambda: execute(args)

    def deactivate_impl(self) -> None:
        self.method = None
        self.program = None

    def describe(self) -> dict[str, Any]:
        from convcheck.environment import package_version

        return {"threads": self.threads, "delegate": self.delegate or "portable",
                "executorch": package_version("executorch")}
