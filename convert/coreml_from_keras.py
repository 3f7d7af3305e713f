"""Keras 3 -> Core ML (an iOS16 `mlprogram`) through coremltools' TensorFlow 2 front end.

What coremltools 9 takes for a Keras 3 model (tried with Keras 3.15 / TF 2.21):
- the model object: converts, but through TF's *legacy* Keras tracing (`tensorflow.python.keras`
  `trace_model_call`), which does not know Keras 3 and picks the signature itself;
- a SavedModel from `model.export(dir, format="tf_saved_model")`: refused, "Only a single concrete
  function is supported" (the export holds several), and only with `source="tensorflow"` given;
- a concrete function: converts. This hop uses it: a `tf.function` calling `model(x, training=False)`
  with the declared input names and dynamic axes as its signature, so the graph is the inference
  graph (BatchNorm folds into the convolutions) and the Core ML inputs carry the model's names.
The TF front end names outputs after graph nodes (`Identity`); the shared base renames them.
"""

from __future__ import annotations

from typing import Any

from convcheck.converter import ConvertContext
from convcheck.convert.coreml_from_torch import COREMLTOOLS, CoremlConverter, output_types
from convcheck.requirements import TENSORFLOW
from convcheck.types import Artifact, Format


class CoremlFromKeras(CoremlConverter):
    source = Format.KERAS
    requires = (COREMLTOOLS, TENSORFLOW)
    summary = "coremltools.convert of a tf.function concrete function, mlprogram (iOS16), fp32 or fp16 compute"
    via = "tf.function concrete function (model(x, training=False))"

    def _to_mlmodel(self, ct: Any, source: Artifact, ctx: ConvertContext, common: dict[str, Any]) -> Any:
        from convcheck.model_spec import materialize
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        model = materialize(source)
        names = list(ctx.output_names)
        signature = [
            tf.TensorSpec([None if axis in s.dynamic_axes else d for axis, d in enumerate(s.shape)],
                          tf.as_dtype(s.dtype), name=s.name)
            for s in ctx.input_specs
        ]

        @tf.function(input_signature=signature)
        def serve(*xs: Any) -> Any:
            out = model(list(xs) if len(xs) > 1 else xs[0], training=False)
            # A dict-returning model: its outputs in the declared order, which the rename relies on.
            return tuple(out[n] for n in names) if isinstance(out, dict) else out

        concrete = serve.get_concrete_function()
        # With a concrete function `outputs=` must name graph tensors ("Identity"); typing them is
        # what keeps fp16-compute outputs float32 like the source's.
        graph_names = [t.name.split(":")[0] for t in concrete.outputs]
        outputs = output_types(ct, graph_names, [t.dtype.as_numpy_dtype for t in concrete.outputs])
        return ct.convert([concrete], source="tensorflow", outputs=outputs, **common)
