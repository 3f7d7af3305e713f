"""Keras -> ONNX with tf2onnx (`tf2onnx.convert.from_keras`).

tf2onnx's silent failures (an op it only logs as unsupported) are caught as in tf2onnx_common.
"""

from __future__ import annotations

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.tf2onnx_common import Tf2OnnxOptions, captured_log, check_converted, rename_outputs_in_order
from convcheck.requirements import ONNX, TENSORFLOW, TF2ONNX
from convcheck.types import Artifact, Format


class OnnxFromKeras(Converter):
    hop = "onnx"
    source = Format.KERAS
    target = Format.ONNX
    requires = (TENSORFLOW, TF2ONNX, ONNX)
    options_class = Tf2OnnxOptions
    summary = "tf2onnx.convert.from_keras"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.model_spec import materialize
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf
        import tf2onnx

        model = materialize(source)
        signature = [
            tf.TensorSpec([None if axis in s.dynamic_axes else d for axis, d in enumerate(s.shape)],
                          tf.as_dtype(s.dtype), name=s.name)
            for s in ctx.input_specs
        ]
        out_dir = ctx.workdir / "onnx"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.onnx"
        with captured_log() as lines:
            # What tf2onnx logged before raising ("Failed to convert node ...") is the cell's evidence:
            # kept in the log whether the conversion returns or raises.
            try:
                proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=self.options.opset,
                                                     output_path=str(path))
            finally:
                ctx.log.extend(lines)
        check_converted(lines, path, "convert:onnx")
        rename_outputs_in_order(proto, list(ctx.output_names), path)
        return Artifact(
            format=Format.ONNX,
            path=out_dir,
            metadata={"entry": "model.onnx", "opset": self.options.opset, "exporter": "tf2onnx",
                      "via": "tf2onnx.convert.from_keras", "tf2onnx": tf2onnx.__version__,
                      "nodes": len(proto.graph.node)},
        )
