"""Keras 3 (TensorFlow backend): the reference of every route that starts from a Keras model."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.requirements import TENSORFLOW
from convcheck.types import Artifact, Format
from convcheck.runtime import Runtime


class KerasRuntime(Runtime):
    name = "keras"
    reference_for = (Format.KERAS,)
    format = Format.KERAS
    devices = ("cpu",)
    #: fp64 / fp16: the same model rebuilt from its config in float64 / float16 with its weights cast (the
    #: noise floor; the fp16 floor: what computing in fp16 costs the source itself).
    precisions = ("fp32", "fp64", "fp16")
    requires = (TENSORFLOW,)
    summary = "Keras 3 on TensorFlow, inference mode (reference)"
    noise_floor_label = "keras float64 (the model rebuilt from its config, weights cast)"
    reference_only = True

    def activate_impl(self, artifact: Artifact) -> None:
        from convcheck.model_spec import materialize
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        if self.threads:
            try:  # only possible before TensorFlow's thread pools start; later calls raise
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass
        self.model = materialize(artifact)
        self.float_dtype = {"fp64": np.float64, "fp16": np.float16}.get(self.target.precision)
        if self.float_dtype is not None:
            self.model = dtype_twin(self.model, np.dtype(self.float_dtype).name)
        self.input_names = list(artifact.metadata["input_names"])
        self.output_names = list(artifact.metadata["output_names"])

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        args = [feeds[n] for n in self.input_names]
        if self.float_dtype is not None:
            args = [a.astype(self.float_dtype) if a.dtype == np.float32 else a for a in args]
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


def dtype_twin(model: Any, dtype: str) -> Any:
    """The model rebuilt from its config with every float32 dtype (layers' policies, inputs) set to
    `dtype` (float64, float16), and its weights copied in it. Raises where a model cannot be rebuilt
    from its config (subclassed models without get_config): then it has no measured floor, which is
    said, not faked."""
    import keras

    def widen(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("class_name") == "DTypePolicy" or value.get("class_name") == "FloatDTypePolicy":
                cfg = dict(value.get("config") or {})
                if cfg.get("name") in ("float32", "mixed_float16", "mixed_bfloat16"):
                    cfg["name"] = dtype
                return {**value, "config": cfg}
            return {k: (dtype if k in ("dtype", "compute_dtype") and v == "float32" else widen(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [widen(v) for v in value]
        return value

    config = widen(model.get_config())
    # The model's own custom layer classes (a zoo block, a user's registered layer) resolve by name.
    custom = {type(layer).__name__: type(layer) for layer in model._flatten_layers(include_self=False)}
    with keras.saving.custom_object_scope(custom):
        twin = model.__class__.from_config(config)
    weights = model.get_weights()
    twin.set_weights([w.astype(dtype) if w.dtype == np.float32 else w for w in weights])
    if len(twin.weights) and all(str(w.dtype) != dtype for w in twin.weights if "float" in str(w.dtype)):
        raise TypeError("the rebuilt model still computes in float32 (its layers ignore the dtype in their config)")
    return twin
