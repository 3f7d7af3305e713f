"""torch -> the torch MLIR dialect with iree-turbine (`iree.turbine.aot.export`), IREE's PyTorch path.

The model goes through `torch.export` (the same ExportedProgram the ExportedProgram/AOTInductor hops
use: a `Dim` per axis the model declares dynamic) and iree-turbine imports the program into MLIR's
torch dialect (`model.mlir`, weights inlined). `iree-compile --iree-input-type=torch` lowers it when
the cell loads it (the `iree_torch` runtime); dynamic axes stay dynamic.
"""

from __future__ import annotations

import time

from convcheck.converter import ConvertContext, Converter
from convcheck.environment import package_version
from convcheck.requirements import IREE_TURBINE, TORCH
from convcheck.types import Artifact, Format


class TorchMlirFromTorch(Converter):
    hop = "turbine"
    source = Format.TORCH
    target = Format.TORCH_MLIR
    requires = (TORCH, IREE_TURBINE)
    summary = "torch.export -> iree-turbine aot.export -> torch-dialect MLIR (for iree-compile)"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import iree.turbine.aot as aot

        from convcheck.convert.exported_program_from_torch import export_timed, stdout_to_log

        out_dir = ctx.workdir / "torch_mlir"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.mlir"
        timings: dict[str, float] = {}
        with stdout_to_log(ctx.log):
            program, dynamic = export_timed(source, ctx, timings)
            started = time.perf_counter()
            aot.export(program).save_mlir(str(path))
            timings["import_s"] = round(time.perf_counter() - started, 3)
        text = path.read_text()
        return Artifact(
            format=Format.TORCH_MLIR,
            path=out_dir,
            metadata={"entry": path.name, "function": "main", "input_names": [s.name for s in ctx.input_specs],
                      "output_names": list(ctx.output_names), "dynamic": dynamic,
                      "nodes": text.count(" = torch."), "stage_seconds": timings, "precision": "fp32",
                      "iree-turbine": package_version("iree-turbine")},
        )
