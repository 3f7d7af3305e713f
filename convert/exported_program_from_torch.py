"""torch -> ExportedProgram (`torch.export`), saved as a `.pt2` file.

The ExportedProgram is the hub that PyTorch 2 compilers read (TVM Relax's `from_exported_program`,
OpenVINO, ExecuTorch). Axes the model declares dynamic are exported as `torch.export.Dim`s.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

from convcheck.converter import ConvertContext, Converter
from convcheck.requirements import TORCH
from convcheck.types import Artifact, Format


class ExportedProgramFromTorch(Converter):
    hop = "exported_program"
    source = Format.TORCH
    target = Format.EXPORTED_PROGRAM
    requires = (TORCH,)
    summary = "torch.export.export -> .pt2"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import torch

        names = [spec.name for spec in ctx.input_specs]
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            program, dynamic = export_program(source, ctx)
        ctx.log.extend(line for line in captured.getvalue().splitlines() if line.strip())
        out_dir = ctx.workdir / "exported_program"
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.export.save(program, str(out_dir / "model.pt2"))
        return Artifact(
            format=Format.EXPORTED_PROGRAM,
            path=out_dir,
            metadata={
                "entry": "model.pt2",
                "input_names": names,
                "output_names": list(ctx.output_names),
                "nodes": len(program.graph.nodes),
                "dynamic": dynamic,
            },
        )


def export_program(source: Artifact, ctx: ConvertContext) -> tuple[Any, bool]:
    """(the model's ExportedProgram, whether it has dynamic axes): a user's .pt2 as given, else
    `torch.export.export` with a `Dim` per axis the model declares dynamic."""
    import torch

    from convcheck.model_spec import materialize

    model = materialize(source).eval()
    dynamic_shapes = _dynamic_shapes(ctx) if any(s.dynamic_axes for s in ctx.input_specs) else None
    program = getattr(model, "exported_program", None)  # a user's .pt2: keep it as given
    if program is None:
        args = tuple(torch.from_numpy(_widen(ctx.example_feeds[s.name], s.dynamic_axes)) for s in ctx.input_specs)
        program = torch.export.export(model, args, dynamic_shapes=dynamic_shapes)
    return program, dynamic_shapes is not None


def _dynamic_shapes(ctx: ConvertContext) -> tuple[Any, ...]:
    """One `Dim` per distinct axis name (so `batch` is the same symbol across inputs)."""
    import torch

    dims: dict[str, Any] = {}
    shapes = []
    for spec in ctx.input_specs:
        shapes.append({axis: dims.setdefault(name, torch.export.Dim(axis_symbol(name), min=1))
                       for axis, name in spec.dynamic_axes.items()} or None)
    return tuple(shapes)


def _widen(example: Any, dynamic_axes: dict[int, str]) -> Any:
    """torch.export specialises any dimension whose example size is 0 or 1 ("0/1 specialisation")
    and then refuses to call it dynamic: trace a dynamic axis of size 1 with the example repeated."""
    import numpy as np

    for axis in dynamic_axes:
        if example.shape[axis] == 1:
            example = np.repeat(example, 2, axis=axis)
    return example


def axis_symbol(name: str) -> str:
    """An axis name as an identifier (`batch size` -> `batch_size`): what torch.export Dims, jax.export
    symbolic shapes and jax2tf polymorphic shapes take."""
    return "".join(c if c.isalnum() else "_" for c in name) or "dim"


def export_timed(source: Artifact, ctx: ConvertContext, timings: dict[str, float]) -> tuple[Any, bool]:
    """export_program, its seconds recorded as `timings["export_s"]` (compile hops report stages apart)."""
    import time

    started = time.perf_counter()
    program, dynamic = export_program(source, ctx)
    timings["export_s"] = round(time.perf_counter() - started, 3)
    return program, dynamic


@contextlib.contextmanager
def stdout_to_log(log: list[str]) -> Iterator[None]:
    """What the block prints (Inductor's and iree-turbine's chatter) goes to the cell log, not the terminal."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        log.extend(line for line in captured.getvalue().splitlines() if line.strip())
