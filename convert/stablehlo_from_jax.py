"""JAX/Flax -> StableHLO: `jax.export.export(jax.jit(model))` lowered for the CPU, saved as the MLIR
module's text (`model.mlir`) beside the serialized `jax.export.Exported` (`model.jax_exported`, which
`jax.export.deserialize` reads back with its calling convention).

StableHLO is the portable op set OpenXLA compilers (XLA, IREE) take. Axes the model declares dynamic
are exported as symbolic dimensions (`jax.export.symbolic_shape`), so the module stays shape-generic.
"""

from __future__ import annotations

from typing import Any

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.exported_program_from_torch import axis_symbol
from convcheck.requirements import JAX
from convcheck.types import Artifact, Format


class StablehloFromJax(Converter):
    hop = "stablehlo"
    source = Format.JAX
    target = Format.STABLEHLO
    requires = (JAX,)
    summary = "jax.export.export(jax.jit(model)) -> StableHLO MLIR (CPU)"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import jax

        from convcheck.model_spec import materialize

        model = materialize(source)
        structs = arg_structs(ctx)
        exported = jax.export.export(jax.jit(lambda *args: model(*args)), platforms=("cpu",))(*structs)
        out_dir = ctx.workdir / "stablehlo"
        out_dir.mkdir(parents=True, exist_ok=True)
        mlir = exported.mlir_module()
        (out_dir / "model.mlir").write_text(mlir)
        (out_dir / "model.jax_exported").write_bytes(exported.serialize())
        return Artifact(
            format=Format.STABLEHLO,
            path=out_dir,
            metadata={"entry": "model.mlir", "input_names": [s.name for s in ctx.input_specs],
                      "output_names": list(ctx.output_names), "jax": jax.__version__,
                      "dynamic": any(s.dynamic_axes for s in ctx.input_specs),
                      "input_shapes": [str(a.shape) for a in exported.in_avals],
                      "nodes": mlir.count(" = stablehlo."), "precision": "fp32"},
        )


def arg_structs(ctx: ConvertContext) -> list[Any]:
    """One ShapeDtypeStruct per input; dynamic axes share one symbol per axis name (`batch`)."""
    import jax

    names = sorted({n for s in ctx.input_specs for n in s.dynamic_axes.values()})
    symbols = dict(zip(names, jax.export.symbolic_shape(", ".join(axis_symbol(n) for n in names)))) if names else {}
    return [jax.ShapeDtypeStruct(tuple(symbols[s.dynamic_axes[a]] if a in s.dynamic_axes else d
                                       for a, d in enumerate(s.shape)), s.dtype) for s in ctx.input_specs]
