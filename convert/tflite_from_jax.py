"""JAX/Flax -> TFLite by LiteRT's documented JAX path ("LiteRT: JAX support", ai.google.dev/edge/litert):
`jax.experimental.jax2tf.convert` wraps the model as a TensorFlow function (native serialization: the
StableHLO module rides in an `XlaCallModule` op), `tf.saved_model.save` writes it, and
`tf.lite.TFLiteConverter.from_saved_model` converts it, legalising the embedded StableHLO to TFLite ops.

The SavedModel step is this hop's own intermediate (kept beside the .tflite): TensorFlow's other
converters (tf2onnx, OpenVINO, coremltools) do not read XlaCallModule, so it is not a route's hop.
Precision (fp16 weights, dynamic-range int8) is the SavedModel hop's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convcheck.converter import ConvertContext, Converter, shared_intermediate
from convcheck.convert.exported_program_from_torch import axis_symbol
from convcheck.convert.tflite_from_savedmodel import TfliteFromSavedModel
from convcheck.requirements import JAX, TENSORFLOW
from convcheck.types import Artifact, Format


class TfliteFromJax(Converter):
    hop = "tflite"
    source = Format.JAX
    target = Format.TFLITE
    requires = (JAX, TENSORFLOW)
    summary = ("jax2tf.convert (native serialization) -> SavedModel -> TFLiteConverter.from_saved_model, builtin ops "
               "only (fp16 / dynamic-range int8 by precision)")
    depends_on_target = True  # the precision picks the quantisation

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf
        from jax.experimental import jax2tf

        from convcheck.model_spec import materialize

        def build(saved: Path) -> None:
            model = materialize(source)
            specs = list(ctx.input_specs)
            polymorphic = [_polymorphic_shape(s) for s in specs]
            function = jax2tf.convert(lambda *args: model(*args), polymorphic_shapes=polymorphic)
            signature = [tf.TensorSpec([None if a in s.dynamic_axes else d for a, d in enumerate(s.shape)],
                                       tf.as_dtype(s.dtype), name=s.name) for s in specs]
            module = tf.Module()
            module.serving = tf.function(function, autograph=False, input_signature=signature)
            tf.saved_model.save(module, str(saved),
                                signatures={"serving_default": module.serving.get_concrete_function()})

        # The SavedModel does not depend on the precision: fp32, fp16 and int8 quantise the same one.
        saved = shared_intermediate(ctx, source, "jax2tf_savedmodel", build)
        intermediate = Artifact(format=Format.SAVEDMODEL, path=saved, metadata={"signature": "serving_default"})
        converted = TfliteFromSavedModel().convert_impl(intermediate, ctx)
        converted.metadata["via"] = "jax2tf.convert -> tf.saved_model.save -> " + converted.metadata["via"]
        return converted


def _polymorphic_shape(spec: Any) -> str:
    """jax2tf's shape string: a symbol per dynamic axis (one per axis name), sizes elsewhere."""
    dims = [axis_symbol(spec.dynamic_axes[a]) if a in spec.dynamic_axes else str(d) for a, d in enumerate(spec.shape)]
    return "(" + ", ".join(dims) + ")"
