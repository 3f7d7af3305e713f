"""TFLite -> ONNX with `tf2onnx.convert.from_tflite`: for a model that only exists as a .tflite file.

Only a route's first hop (a user's .tflite): after Keras or a SavedModel, their own ONNX hops are the
route to measure. tf2onnx names the graph's inputs/outputs after the flatbuffer's tensors
(`serving_default_x:0`, `StatefulPartitionedCall:0`); the file's SignatureDef maps them back to the
names the model is checked with.
"""

from __future__ import annotations

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.tf2onnx_common import Tf2OnnxOptions, captured_log, check_converted, rename_graph_io
from convcheck.convert.tflite_from_keras import inspect_flatbuffer, map_signature
from convcheck.requirements import ONNX, TENSORFLOW, TF2ONNX
from convcheck.types import Artifact, Format


class OnnxFromTflite(Converter):
    hop = "onnx"
    source = Format.TFLITE
    target = Format.ONNX
    requires = (TENSORFLOW, TF2ONNX, ONNX)
    options_class = Tf2OnnxOptions
    summary = "tf2onnx.convert.from_tflite (a .tflite file you bring)"
    first_hop_only = True

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tf2onnx

        tflite = source.main_file
        info = inspect_flatbuffer(tflite.read_bytes())
        input_map, output_map, _ = map_signature(info, [s.name for s in ctx.input_specs], list(ctx.output_names))
        out_dir = ctx.workdir / "onnx"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.onnx"
        with captured_log() as lines:
            # What tf2onnx logged before raising ("Failed to convert node ...") is the cell's evidence:
            # kept in the log whether the conversion returns or raises.
            try:
                proto, _ = tf2onnx.convert.from_tflite(str(tflite), opset=self.options.opset, output_path=str(path))
            finally:
                ctx.log.extend(lines)
        check_converted(lines, path, "convert:onnx")
        rename_graph_io(proto, {m["tensor"]: n for n, m in input_map.items()},
                        {m["tensor"]: n for n, m in output_map.items()}, path)
        return Artifact(
            format=Format.ONNX,
            path=out_dir,
            metadata={"entry": "model.onnx", "opset": self.options.opset, "exporter": "tf2onnx",
                      "via": "tf2onnx.convert.from_tflite", "tf2onnx": tf2onnx.__version__,
                      "nodes": len(proto.graph.node)},
        )
