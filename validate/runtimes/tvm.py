"""Apache TVM: a library compiled by a `tvm` hop, run by the Relax virtual machine.

Threads: TVM's thread pool is sized from `TVM_NUM_THREADS` when it starts (lazily, per calling
thread); `runtime.config_threadpool` can shrink a running pool but never grow it. Without the
variable TVM takes hardware_concurrency / 2 on x86 (it assumes hyper-threading), i.e. ONE thread
on a 2-core VM without SMT, while ONNX Runtime uses both. So activate sets the variable before the
pool exists (to `threads`, or to the number of physical cores when none is asked for) and calls
config_threadpool for a pool an earlier cell already started.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from convcheck.requirements import TVM
from convcheck.environment import physical_cores  # noqa: F401 - re-exported for the TVM hop
from convcheck.types import Artifact, Format
from convcheck.runtime import Runtime

#: The user's own setting, read before any activate() overwrites the variable for its cell.
_USER_THREADS = os.environ.get("TVM_NUM_THREADS")


class TvmRuntime(Runtime):
    name = "tvm"
    format = Format.TVM
    devices = ("cpu", "cuda")
    precisions = ("fp32",)
    requires = (TVM,)
    summary = "Apache TVM Relax VM (library compiled for the cell's device)"

    def activate_impl(self, artifact: Artifact) -> None:
        threads = self.threads or int(_USER_THREADS or physical_cores())
        os.environ["TVM_NUM_THREADS"] = str(threads)
        import tvm
        from tvm import relax

        # mode 1 = "big cores" (all cores on a homogeneous CPU), the pool's own default
        tvm.get_global_func("runtime.config_threadpool")(1, threads)
        self.device = tvm.cpu() if self.target.device == "cpu" else tvm.cuda()
        if not self.device.exist:
            raise RuntimeError(f"no {self.target.device} device visible to TVM")
        self.library = tvm.runtime.load_module(str(artifact.main_file))
        self.vm = relax.VirtualMachine(self.library, self.device)
        self.main = self.vm["main"]
        self.input_names = list(artifact.metadata["input_names"])
        self.output_names = list(artifact.metadata["output_names"])
        self.compiled_target = artifact.metadata.get("target")
        self.static_shapes = {n: tuple(s) for n, s in artifact.metadata.get("static_shapes", {}).items()}
        # Input tensors are allocated once and refilled: half the per-call overhead of a small model.
        self.inputs: dict[str, Any] = {}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        import tvm

        args = []
        for name in self.input_names:
            # np.asarray, not np.ascontiguousarray: that returns at least one dimension, so a
            # rank-0 (scalar) input became shape (1,) and missed the library's static shape ().
            value = np.asarray(feeds[name])
            if not value.flags.c_contiguous:
                value = np.ascontiguousarray(value).reshape(value.shape)
            expected = self.static_shapes.get(name)
            if expected is not None and value.shape != expected:
                raise ValueError(f"input {name!r} has shape {value.shape}; this TVM library was compiled "
                                 f"for the static shape {expected}")
            held = self.inputs.get(name)
            if held is None or tuple(held.shape) != value.shape or str(held.dtype) != str(value.dtype):
                held = self.inputs[name] = tvm.runtime.empty(value.shape, str(value.dtype), self.device)
            held.copyfrom(value)
            args.append(held)
        outputs = _flatten(self.main(*args))
        if len(outputs) != len(self.output_names):
            raise ValueError(f"library returned {len(outputs)} outputs, artifact declares {self.output_names}")
        return dict(zip(self.output_names, outputs))

    def deactivate_impl(self) -> None:
        del self.main, self.vm, self.library, self.inputs

    def describe(self) -> dict[str, Any]:
        import tvm

        return {
            "threads": tvm.runtime.num_threads(),
            "target": getattr(self, "compiled_target", None),
            "tvm": tvm.__version__,
        }


def _flatten(value: Any) -> list[np.ndarray]:
    """A tensor, or a (nested) tuple of tensors as the VM returns them, as a flat list of arrays."""
    if hasattr(value, "numpy"):
        return [value.numpy()]
    return [array for item in value for array in _flatten(item)]
