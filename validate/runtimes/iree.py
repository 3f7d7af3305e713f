"""IREE on CPU for StableHLO modules (`jax/stablehlo/iree`): the module is compiled with
`iree.compiler` for the `llvm-cpu` backend (this machine's CPU: `--iree-llvmcpu-target-cpu=host`) when
the cell loads it, and run with `iree.runtime` on the `local-task` driver (IREE's multi-threaded CPU
runtime). Compilation is the load stage (and `runtime_settings.compile_s`), never latency.

Inputs are passed positionally in the model's declared order, outputs come back in the module's
order and are named by the declared output names.
"""

from __future__ import annotations

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

    def activate_impl(self, artifact: Artifact) -> None:
        import iree.compiler as compiler
        import iree.runtime as runtime

        _threads(self.threads)
        started = time.perf_counter()
        try:
            self.vmfb = compiler.compile_file(str(artifact.main_file), target_backends=["llvm-cpu"],
                                              input_type="stablehlo", extra_args=list(self.TARGET_FLAGS))
        except compiler.CompilerToolError as exc:
            # Its first line is only "Error invoking IREE compiler tool iree-compile"; the diagnostic says why.
            raise RuntimeError(f"iree-compile: {compile_diagnostic(str(exc))}") from exc
        self.compile_s = time.perf_counter() - started
        config = runtime.Config("local-task")
        self.context = runtime.SystemContext(config=config)
        module = runtime.VmModule.copy_buffer(self.context.instance, self.vmfb)
        self.context.add_vm_module(module)
        self.function = self.context.modules[module.name]["main"]
        self.input_names = list(artifact.metadata.get("input_names") or [])
        self.output_names = list(artifact.metadata.get("output_names") or [])
        self.versions = {"iree-base-compiler": package_version("iree-base-compiler"),
                         "iree-base-runtime": package_version("iree-base-runtime")}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        out = self.function(*[np.ascontiguousarray(feeds[n]) for n in self.input_names])
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.output_names):
            raise RuntimeError(f"the module returned {len(outs)} outputs, the model declares {self.output_names}")
        return {n: np.asarray(o.to_host() if hasattr(o, "to_host") else o) for n, o in zip(self.output_names, outs)}

    def deactivate_impl(self) -> None:
        self.function = self.context = self.vmfb = None

    def describe(self) -> dict[str, Any]:
        return {"threads": self.threads, "backend": "llvm-cpu", "driver": "local-task",
                "target_flags": list(self.TARGET_FLAGS), "compile_s": round(self.compile_s, 3), **self.versions}


def compile_diagnostic(message: str) -> str:
    """The first `error:` diagnostic of an iree-compile failure, without its location prefix."""
    for line in message.splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return message.splitlines()[0] if message else "failed"


def _threads(threads: int | None) -> None:
    """IREE's task system reads its thread count from process flags, once, before the first device."""
    global _FLAGS_SET
    if threads and not _FLAGS_SET:
        import iree.runtime as runtime

        runtime.flags.parse_flags(f"--task_topology_max_group_count={threads}")
        _FLAGS_SET = True
