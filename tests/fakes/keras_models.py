"""Small Keras models that meet known converter gaps (built in code, seeded)."""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.zoo.base import InputSpec, ModelSpec


def build_exact_gelu(size: str) -> Any:
    """Dense + exact GELU: tf2onnx 1.17 lowers its Erfc to an op ONNX has no kernel for."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8,), name="x")
    return keras.Model(inp, keras.layers.Dense(6, activation=keras.activations.gelu, name="y")(inp))


GELU_SPEC = ModelSpec(
    name="keras_exact_gelu",
    description="Dense + exact GELU",
    task="regression",
    inputs=(InputSpec("x", (4, 8), dynamic_axes={0: "batch"}),),
    outputs=("y",),
    builders={Format.KERAS: "tests.fakes.keras_models:build_exact_gelu"},
    batch=4,
)
