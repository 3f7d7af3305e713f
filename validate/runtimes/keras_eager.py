"""Keras 3 (TensorFlow backend): the reference of every route that starts from a Keras model."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.requirements import TENSORFLOW
from convcheck.types import Artifact, Format
from convcheck.validate.runtimes.base import Runtime


class KerasRuntime(Runtime):
    name = "keras"
    format = Format.KERAS
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (TENSORFLOW,)
    summary = "Keras 3 on TensorFlow, inference mode (reference)"
    reference_only = True

    def activate_impl(self, artifact: Artifact) -> None:
        from convcheck.zoo.base import materialize
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        if self.threads:
            try:  # only possible before TensorFlow's thread pools start; later calls raise
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass
        self.model = materialize(artifact)
        self.input_names = list(artifact.metadata["input_names"])
        self.output_names = list(artifact.metadata["output_names"])

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        args = [feeds[n] for n in self.input_names]
        out = self.model(args if len(args) > 1 else args[0], training=False)
        if isinstance(out, dict):
            return {n: np.asarray(out[n]) for n in self.output_names}
        outs = out if isinstance(out, (list, tuple)) else (out,)
        if len(outs) != len(self.output_names):
            raise ValueError(f"model returned {len(outs)} outputs, spec declares {self.output_names}")
        return {n: np.asarray(o) for n, o in zip(self.output_names, outs)}

    def describe(self) -> dict[str, Any]:
        import keras
        import tensorflow as tf

        return {"threads": self.threads, "keras": keras.__version__, "tensorflow": tf.__version__}
