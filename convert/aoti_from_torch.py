"""torch -> AOTInductor package: `torch.export`, then `torch._inductor.aoti_compile_and_package`.

AOTInductor compiles the exported program ahead of time into C++/OpenMP kernels and packs them, with
the weights, into a `.pt2` package that `torch._inductor.aoti_load_package` (or libtorch's
AOTIModelPackageLoader, without Python) runs: PyTorch 2's deployment artifact for servers. The entry
points live in `torch._inductor` but are the documented AOTInductor API (docs.pytorch.org,
"AOTInductor: Ahead-Of-Time Compilation for Torch.Export-ed Models").

Compilation is timed apart from latency (the convert stage, and `stage_seconds` here) and always cold:
Inductor's on-disk cache is pointed at a folder of this conversion, so a compile time is never a
cache hit left by an earlier run. Axes the model declares dynamic are exported as `torch.export.Dim`s
and stay dynamic in the compiled package.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Iterator

from convcheck.converter import ConvertContext, Converter
from convcheck.requirements import TORCH
from convcheck.types import Artifact, Format


class AotiFromTorch(Converter):
    hop = "aoti"
    source = Format.TORCH
    target = Format.AOTI
    requires = (TORCH,)
    summary = "torch.export -> AOTInductor (aoti_compile_and_package) -> .pt2 package of compiled CPU kernels"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import torch

        from convcheck.convert.exported_program_from_torch import export_timed, stdout_to_log

        out_dir = ctx.workdir / "aoti"
        out_dir.mkdir(parents=True, exist_ok=True)
        package = out_dir / "model.pt2"
        timings: dict[str, float] = {}
        with stdout_to_log(ctx.log):
            program, dynamic = export_timed(source, ctx, timings)
            started = time.perf_counter()
            with cold_inductor_cache(ctx.workdir / "inductor-cache"):
                torch._inductor.aoti_compile_and_package(program, package_path=str(package))
            timings["compile_s"] = round(time.perf_counter() - started, 3)
        return Artifact(
            format=Format.AOTI,
            path=out_dir,
            metadata={
                "entry": package.name, "precision": "fp32", "dynamic": dynamic,
                "input_names": [s.name for s in ctx.input_specs], "output_names": list(ctx.output_names),
                "nodes": len(program.graph.nodes), "stage_seconds": timings, "torch": torch.__version__,
            },
        )


@contextlib.contextmanager
def cold_inductor_cache(folder: Any) -> Iterator[None]:
    """Inductor's cache in `folder` for the length of the block: a compile that starts empty."""
    saved = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved

