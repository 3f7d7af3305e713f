"""IREE on CPU: an MLIR module is compiled with `iree.compiler` for the `llvm-cpu` backend (this
machine's CPU: `--iree-llvmcpu-target-cpu=host`) when the cell loads it, and run with `iree.runtime` on
the `local-task` driver (IREE's multi-threaded CPU runtime). Compilation is the load stage (and
`runtime_settings.compile_s`), never latency.

Two input dialects, one runtime each (a runtime executes one format):
- `iree`: StableHLO (`jax/stablehlo/iree` from jax.export, `keras/stablehlo/iree` and
  `savedmodel/stablehlo/iree` from iree-import-tf);
- `iree_torch`: the torch dialect iree-turbine exports (`torch/turbine/iree`).

Inputs are passed positionally in the model's declared order to the module's entry function (`main`,
or the artifact's `function`: iree-import-tf names it after the SavedModel signature); outputs come
back in the module's order and are named by the declared output names. A module compiled for static
shapes (`static_shapes` in the artifact) refuses other shapes with an error that says so, not IREE's
buffer-shape message.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np

from convcheck.environment import package_version
from convcheck.requirements import IREE_COMPILER, IREE_RUNTIME
from convcheck.runtime import Runtime
from convcheck.types import Artifact, Format

_FLAGS_SET = False


class IreeRuntime(Runtime):
    name = "iree"
    format = Format.STABLEHLO
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (IREE_COMPILER, IREE_RUNTIME)
    summary = "IREE llvm-cpu (compiled at load) on the local-task runtime"
    TARGET_FLAGS = ("--iree-llvmcpu-target-cpu=host",)
    #: `iree-compile --iree-input-type`: the dialect the module comes in.
    INPUT_TYPE = "stablehlo"

    def activate_impl(self, artifact: Artifact) -> None:
        import iree.compiler as compiler
        import iree.runtime as runtime

        _threads(self.threads)
        started = time.perf_counter()
        try:
            self.vmfb = compiler.compile_file(str(artifact.main_file), target_backends=["llvm-cpu"],
                                              input_type=self.INPUT_TYPE, extra_args=list(self.TARGET_FLAGS))
        except compiler.CompilerToolError as exc:
            # Its first line is only "Error invoking IREE compiler tool iree-compile"; the diagnostic says why.
            raise RuntimeError(f"iree-compile: {compile_diagnostic(str(exc))}") from exc
        self.compile_s = time.perf_counter() - started
        config = runtime.Config("local-task")
        self.context = runtime.SystemContext(config=config)
        module = runtime.VmModule.copy_buffer(self.context.instance, self.vmfb)
        self.context.add_vm_module(module)
        self.function = self.context.modules[module.name][artifact.metadata.get("function") or "main"]
        self.input_names = list(artifact.metadata.get("input_names") or [])
        self.output_names = list(artifact.metadata.get("output_names") or [])
        self.static_shapes = {n: tuple(s) for n, s in (artifact.metadata.get("static_shapes") or {}).items()}
        self.versions = {"iree-base-compiler": package_version("iree-base-compiler"),
                         "iree-base-runtime": package_version("iree-base-runtime")}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        for name, expected in self.static_shapes.items():
            if feeds[name].shape != expected:
                raise ValueError(f"input {name!r} has shape {feeds[name].shape}; this IREE module was compiled "
                                 f"for the static shape {expected}")
        out = self.function(*[np.ascontiguousarray(feeds[n]).reshape(feeds[n].shape) for n in self.input_names])
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.output_names):
            raise RuntimeError(f"the module returned {len(outs)} outputs, the model declares {self.output_names}")
        return {n: np.asarray(o.to_host() if hasattr(o, "to_host") else o) for n, o in zip(self.output_names, outs)}

    def deactivate_impl(self) -> None:
        self.function = self.context = self.vmfb = None

    def describe(self) -> dict[str, Any]:
        return {"threads": self.threads, "backend": "llvm-cpu", "driver": "local-task", "input_type": self.INPUT_TYPE,
                "target_flags": list(self.TARGET_FLAGS), "compile_s": round(self.compile_s, 3), **self.versions}


class IreeTorchRuntime(IreeRuntime):
    """The same compiler and runtime for torch-dialect modules (iree-turbine's export)."""

    format = Format.TORCH_MLIR
    INPUT_TYPE = "torch"
    summary = "IREE llvm-cpu (compiled at load, torch input dialect) on the local-task runtime"


def compile_diagnostic(message: str) -> str:
    """The first `error:` diagnostic of an iree-compile failure, without its location prefix; for a crash
    (no diagnostic, a stack trace), the signal and the first compiler frame past LLVM's signal handlers."""
    lines = message.splitlines()
    for line in lines:
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    code = re.search(r"Error code: (-?\d+)", message)
    if code and int(code.group(1)) < 0:
        frames = [m.group(1) for m in (re.match(r"\s*#\d+ 0x[0-9a-f]+ (.+?)(?:\(| \S+:\d)", ln) for ln in lines) if m]
        where = next((f for f in frames if not f.startswith(("llvm::sys", "SignalHandler", "/lib", "(/lib"))), "")
        return f"the compiler crashed (signal {-int(code.group(1))})" + (f" in {where}" if where else "")
    return lines[0] if lines else "failed"


def _threads(threads: int | None) -> None:
    """IREE's task system reads its thread count from process flags, once, before the first device."""
    global _FLAGS_SET
    if threads and not _FLAGS_SET:
        import iree.runtime as runtime

        runtime.flags.parse_flags(f"--task_topology_max_group_count={threads}")
        _FLAGS_SET = True
