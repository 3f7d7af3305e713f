"""TensorFlow SavedModel -> Core ML (an iOS16 `mlprogram`) through coremltools' TensorFlow 2 front end.

coremltools refuses the SavedModel folder Keras writes ("Only a single concrete function is
supported": it holds several), so, as for Keras, this hop hands it one concrete function: a
`tf.function` over the loaded signature, taking the inputs positionally under their signature names
and returning the outputs in the declared order (which the shared base's renaming relies on).
"""

from __future__ import annotations

from typing import Any

from convcheck.converter import ConvertContext
from convcheck.convert.coreml_from_torch import COREMLTOOLS, CoremlConverter, output_types
from convcheck.requirements import TENSORFLOW
from convcheck.types import Artifact, Format


class CoremlFromSavedModel(CoremlConverter):
    source = Format.SAVEDMODEL
    requires = (COREMLTOOLS, TENSORFLOW)
    summary = "coremltools.convert of the SavedModel signature as one concrete function, mlprogram (iOS16)"
    via = "tf.function over the loaded SavedModel signature"

    def _to_mlmodel(self, ct: Any, source: Artifact, ctx: ConvertContext, common: dict[str, Any]) -> Any:
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        loaded = tf.saved_model.load(str(source.path))
        function = loaded.signatures[source.metadata.get("signature") or "serving_default"]
        declared = function.structured_input_signature[1]
        in_names = [s.name for s in ctx.input_specs]
        out_names = list(ctx.output_names)
        signature = [tf.TensorSpec(declared[n].shape, declared[n].dtype, name=n) for n in in_names]

        @tf.function(input_signature=signature)
        def serve(*xs: Any) -> Any:
            out = function(**dict(zip(in_names, xs)))
            return tuple(out[n] for n in out_names)

        concrete = serve.get_concrete_function()
        graph_names = [t.name.split(":")[0] for t in concrete.outputs]
        outputs = output_types(ct, graph_names, [t.dtype.as_numpy_dtype for t in concrete.outputs])
        return ct.convert([concrete], source="tensorflow", outputs=outputs, **common)
