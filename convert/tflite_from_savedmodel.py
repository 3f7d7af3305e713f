"""TensorFlow SavedModel -> TFLite with `tf.lite.TFLiteConverter.from_saved_model`.

The SavedModel path of TensorFlow's own deployment guide. Precision, builtin-ops-only policy and
Flex diagnosis are the Keras hop's (tflite_from_keras); here the converter reads the folder itself,
through the signature the model is checked with, so the signature's input keys are the names.
"""

from __future__ import annotations

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.tflite_from_keras import (QUANTISATION, _convert, _first_line, _flex_ops, inspect_flatbuffer,
                                                 map_signature)
from convcheck.errors import CellFailure
from convcheck.requirements import TENSORFLOW
from convcheck.types import Artifact, Format, Status


class TfliteFromSavedModel(Converter):
    hop = "tflite"
    source = Format.SAVEDMODEL
    target = Format.TFLITE
    requires = (TENSORFLOW,)
    summary = "tf.lite.TFLiteConverter.from_saved_model, builtin ops only (fp16 / dynamic-range int8 by precision)"
    depends_on_target = True  # the precision picks the quantisation

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        precision = ctx.target.precision
        if precision not in QUANTISATION:
            raise CellFailure(Status.UNSUPPORTED.value, f"no TFLite conversion for precision {precision}",
                              "convert:tflite")
        key = source.metadata.get("signature") or "serving_default"
        ways = [("from_saved_model", lambda: tf.lite.TFLiteConverter.from_saved_model(
            str(source.path), signature_keys=[key]))]
        try:
            blob = _convert(tf, ways[0][1], precision, ctx.log, flex=False)
        except Exception as exc:  # noqa: BLE001 - diagnose Flex ops before giving the error back
            ctx.log.append(f"tflite via from_saved_model (builtins only) failed: {_first_line(exc)}")
            flex = _flex_ops(tf, ways, precision, ctx.log)
            if flex:
                raise CellFailure(
                    Status.UNSUPPORTED.value,
                    f"needs Select TF ops (Flex) for: {', '.join(flex)}; the LiteRT interpreter cannot run them "
                    "(ai-edge-litert ships no Flex delegate)", "convert:tflite", op=flex[0]) from None
            raise
        out_dir = ctx.workdir / "tflite"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "model.tflite").write_bytes(blob)
        info = inspect_flatbuffer(blob)
        input_map, output_map, matched = map_signature(info, [s.name for s in ctx.input_specs],
                                                       list(ctx.output_names))
        return Artifact(
            format=Format.TFLITE,
            path=out_dir,
            metadata={
                "entry": "model.tflite", "precision": precision, "quantization": QUANTISATION[precision],
                "via": f"tf.lite.TFLiteConverter.from_saved_model(signature_keys=[{key!r}])",
                "signature": info["signature"], "input_map": input_map, "output_map": output_map,
                "output_matching": matched, "ops": info["ops"], "weights": info["weights"],
                "tensorflow": tf.__version__,
            },
        )
