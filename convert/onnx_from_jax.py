"""JAX/Flax -> ONNX with jax2onnx (`jax2onnx.to_onnx`), which converts the traced jaxpr primitive by
primitive. Axes the model declares dynamic become symbolic ONNX dimensions; inputs and outputs carry the
model's declared names.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from convcheck.converter import ConvertContext, ConvertOptions, Converter
from convcheck.environment import package_version
from convcheck.convert.stablehlo_from_jax import arg_structs
from convcheck.requirements import JAX, JAX2ONNX, ONNX
from convcheck.types import Artifact, Format


@dataclass
class Jax2OnnxOptions(ConvertOptions):
    #: 18, not jax2onnx's default 23: OpenVINO and TVM's ONNX front ends lag the newest opsets.
    opset: int = 18


class OnnxFromJax(Converter):
    hop = "onnx"
    source = Format.JAX
    target = Format.ONNX
    requires = (JAX, JAX2ONNX, ONNX)
    options_class = Jax2OnnxOptions
    summary = "jax2onnx.to_onnx (the jaxpr, primitive by primitive)"
    options: Jax2OnnxOptions

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import jax2onnx
        import onnx

        from convcheck.model_spec import materialize

        model = materialize(source)
        # Typed structs (int32 token ids, not jax2onnx's default float32); a dynamic axis is a symbolic
        # dimension named after its axis (`batch`), shared across inputs.
        shapes = arg_structs(ctx)
        out_dir = ctx.workdir / "onnx"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.onnx"
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            proto = jax2onnx.to_onnx(model, shapes, model_name="model", opset=self.options.opset, input_names=[s.name for s in ctx.input_specs],
                                     output_names=list(ctx.output_names))
        ctx.log.extend(line for line in captured.getvalue().splitlines() if line.strip())
        onnx.save(proto, str(path))
        return Artifact(
            format=Format.ONNX,
            path=out_dir,
            metadata={"entry": "model.onnx", "opset": self.options.opset, "exporter": "jax2onnx",
                      "via": "jax2onnx.to_onnx", "jax2onnx": package_version("jax2onnx"), "nodes": len(proto.graph.node)},
        )
