"""TensorFlow calling a SavedModel's signature: the reference of every route from a SavedModel folder.

`tf.saved_model.load` + `signatures[key](**feeds)`: exactly what TF Serving executes, keyed by the
signature's input names, returning its outputs by name. Graph-mode TF kernels, CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.requirements import TENSORFLOW
from convcheck.types import Artifact, Format
from convcheck.runtime import Runtime


class SavedModelRuntime(Runtime):
    name = "savedmodel"
    reference_for = (Format.SAVEDMODEL,)
    format = Format.SAVEDMODEL
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (TENSORFLOW,)
    summary = "TensorFlow, tf.saved_model.load + the signature's concrete function (reference)"
    reference_only = True

    def activate_impl(self, artifact: Artifact) -> None:
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        if self.threads:
            try:  # only possible before TensorFlow's thread pools start
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass
        self.key = artifact.metadata.get("signature") or "serving_default"
        self.loaded = tf.saved_model.load(str(artifact.path))  # keep a reference: the function needs it
        self.function = self.loaded.signatures[self.key]
        self.input_names = list(artifact.metadata["input_names"])
        self.output_names = list(artifact.metadata["output_names"])
        self._dtypes = {name: spec.dtype.as_numpy_dtype
                        for name, spec in self.function.structured_input_signature[1].items()}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        import tensorflow as tf

        out = self.function(**{n: tf.constant(feeds[n], dtype=self._dtypes.get(n)) for n in self.input_names})
        return {n: out[n].numpy() for n in self.output_names}

    def deactivate_impl(self) -> None:
        del self.function, self.loaded

    def describe(self) -> dict[str, Any]:
        import tensorflow as tf

        return {"threads": self.threads, "signature": self.key, "tensorflow": tf.__version__}
