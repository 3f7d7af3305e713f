"""ExportedProgram (.pt2) -> TVM (Relax): `relax.frontend.torch.from_exported_program`.

The program may carry dynamic dimensions (`torch.export.Dim`); they are bound to the benchmark
batch's sizes so the compiled code is as static as the ONNX hop's. Compiling and exporting are
shared with that hop in `tvm_build`.

Known: an `nn.LSTM` imports and compiles without error but computes wrong numbers (NaN or huge
values); nothing here can tell, the route's parity check reports it as a mismatch.
"""

from __future__ import annotations

from typing import Any

from convcheck.converter import ConvertContext, Converter
from convcheck.requirements import TORCH, TVM
from convcheck.types import Artifact, Format


class TvmFromExportedProgram(Converter):
    hop = "tvm"
    source = Format.EXPORTED_PROGRAM
    target = Format.TVM
    requires = (TVM, TORCH)
    summary = "TVM Relax from_exported_program, static shapes, compiled for the cell's device"
    depends_on_target = True

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import torch
        from tvm.relax.frontend.torch import from_exported_program

        from convcheck.convert.tvm_build import build_artifact

        program = torch.export.load(str(source.main_file))
        names = list(source.metadata.get("input_names") or [s.name for s in ctx.input_specs])
        # Params become constants (folded, like the ONNX hop's initializers); a single output comes
        # back bare rather than as a 1-tuple; decomposing to core ATen is what the frontend covers best.
        mod = from_exported_program(
            program, keep_params_as_input=False, unwrap_unit_return_tuple=True, run_ep_decomposition=True
        )
        mod = _bind_static_shapes(mod, names, ctx.example_feeds)
        return build_artifact(mod, ctx, source, names, frontend="exported_program")


def _bind_static_shapes(mod: Any, names: list[str], feeds: dict[str, Any]) -> Any:
    """Replace each symbolic dimension of main's inputs by the example batch's size."""
    import tvm
    from tvm import relax

    params = list(mod["main"].params)[: len(names)]
    binding: dict[str, int] = {}
    for name, param in zip(names, params):
        shape = feeds[name].shape
        dims = list(param.ty.shape.values)  # `ty` is 0.27's name for struct_info
        if len(dims) != len(shape):
            raise ValueError(f"input {name!r}: program has rank {len(dims)}, example feed has shape {shape}")
        for dim, size in zip(dims, shape):
            if isinstance(dim, tvm.tirx.Var):
                if binding.setdefault(dim.name, int(size)) != int(size):
                    raise ValueError(f"dimension {dim.name} is {binding[dim.name]} and {size} in the feeds")
    return relax.transform.BindSymbolicVars(binding, "main")(mod) if binding else mod
