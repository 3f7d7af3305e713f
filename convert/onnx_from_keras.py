"""Keras -> ONNX with tf2onnx (`tf2onnx.convert.from_keras`).

tf2onnx does not always fail loudly: on an op it cannot convert (Keras' exact GELU lowers to `Erfc`)
it only LOGS "op [...Erfc] is not supported" and writes a model that ONNX Runtime later rejects. So
the hop captures tf2onnx's log, runs `onnx.checker`, and reports `unsupported` naming the op itself.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from convcheck.convert.base import ConvertContext, ConvertOptions, Converter
from convcheck.errors import CellFailure
from convcheck.requirements import ONNX, TENSORFLOW, TF2ONNX
from convcheck.types import Artifact, Format, Status



@dataclass
class Tf2OnnxOptions(ConvertOptions):
    opset: int | None = 17  # tf2onnx 1.17's most tested opset


class OnnxFromKeras(Converter):
    hop = "onnx"
    source = Format.KERAS
    target = Format.ONNX
    requires = (TENSORFLOW, TF2ONNX, ONNX)
    options_class = Tf2OnnxOptions
    summary = "tf2onnx.convert.from_keras"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.zoo.base import materialize
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import onnx
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
        with _captured_log("tf2onnx") as lines:
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=self.options.opset,
                                                 output_path=str(path))
        ctx.log.extend(lines)
        # e.g. "Tensorflow op [functional_1/y_1/Gelu/Erfc: Erfc] is not supported"
        not_supported = sorted({m.group(1) for ln in lines
                                if (m := re.search(r"op \[[^\]]*?: (\w+)\] is not supported", ln))})
        if not_supported:
            raise CellFailure(Status.UNSUPPORTED.value,
                              f"tf2onnx cannot convert op(s) {', '.join(not_supported)} and wrote an invalid model",
                              "convert:onnx", not_supported[0])
        onnx.checker.check_model(str(path))
        _rename_outputs(proto, list(ctx.output_names), path)
        return Artifact(
            format=Format.ONNX,
            path=out_dir,
            metadata={"entry": "model.onnx", "opset": self.options.opset, "exporter": "tf2onnx",
                      "via": "tf2onnx.convert.from_keras", "tf2onnx": tf2onnx.__version__,
                      "nodes": len(proto.graph.node)},
        )


def _rename_outputs(proto: object, names: list[str], path: object) -> None:
    """Give the graph outputs the model's declared names (tf2onnx may name them after TF tensors)."""
    import onnx

    graph = proto.graph  # type: ignore[attr-defined]
    current = [o.name for o in graph.output]
    if current == names or len(current) != len(names):
        return
    mapping = dict(zip(current, names))
    for node in graph.node:
        node.output[:] = [mapping.get(o, o) for o in node.output]
        node.input[:] = [mapping.get(i, i) for i in node.input]
    for out in graph.output:
        out.name = mapping[out.name]
    onnx.save(proto, str(path))


class _captured_log:
    """Collect a library's log records (tf2onnx reports unsupported ops only there)."""

    def __init__(self, logger: str) -> None:
        self.logger = logging.getLogger(logger)
        self.lines: list[str] = []

    def __enter__(self) -> list[str]:
        outer = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                outer.lines.append(f"{record.levelname}: {record.getMessage()}")

        self.handler = _Handler(level=logging.INFO)
        self.logger.addHandler(self.handler)
        return self.lines

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
