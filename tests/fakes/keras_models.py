"""Small Keras models that meet known converter gaps (built in code, seeded)."""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec


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


def build_lstm_classifier(size: str, unroll: bool = False) -> Any:
    """LSTM(16) over 12 steps of 6 features -> 3 logits. Keras 3's LSTM (unroll=False) is a while loop
    over TensorList ops, which TFLite's builtins cannot express: it needs Select TF ops (Flex)."""
    import keras

    keras.utils.set_random_seed(7)
    inp = keras.Input((12, 6), name="sequence")
    hidden = keras.layers.LSTM(16, unroll=unroll)(inp)
    return keras.Model(inp, keras.layers.Dense(3, name="logits")(hidden), name="lstm_classifier")


def build_lstm_classifier_unrolled(size: str) -> Any:
    """The same LSTM unrolled into 12 steps of plain matmuls: converts to TFLite builtins."""
    return build_lstm_classifier(size, unroll=True)


LSTM_SPEC = ModelSpec(
    name="keras_lstm",
    description="LSTM(16) classifier, 12 steps x 6 features -> 3 logits",
    task="classifier",
    inputs=(InputSpec("sequence", (4, 12, 6), dynamic_axes={0: "batch"}),),
    outputs=("logits",),
    builders={Format.KERAS: "tests.fakes.keras_models:build_lstm_classifier"},
    batch=4,
)

LSTM_UNROLLED_SPEC = ModelSpec(
    name="keras_lstm_unrolled",
    description="LSTM(16, unroll=True) classifier, 12 steps x 6 features -> 3 logits",
    task="classifier",
    inputs=(InputSpec("sequence", (4, 12, 6), dynamic_axes={0: "batch"}),),
    outputs=("logits",),
    builders={Format.KERAS: "tests.fakes.keras_models:build_lstm_classifier_unrolled"},
    batch=4,
)


def build_two_inputs_three_heads(size: str) -> Any:
    """Two inputs, three heads, two of them the same shape. TFLite lists this model's input and output
    tensors in another order than Keras does: a runtime that matched them by position or by shape
    would swap `alpha` and `mid` silently."""
    import keras

    keras.utils.set_random_seed(5)
    a = keras.Input((4,), name="a")
    c = keras.Input((2,), name="c")
    h = keras.layers.Concatenate()([a, c])
    heads = [keras.layers.Dense(n, name=name)(h) for name, n in (("zeta", 5), ("alpha", 3), ("mid", 3))]
    return keras.Model([a, c], heads, name="two_inputs_three_heads")


MULTI_IO_SPEC = ModelSpec(
    name="keras_multi_io",
    description="inputs a (4) and c (2) -> heads zeta (5), alpha (3), mid (3)",
    task="regression",
    inputs=(InputSpec("a", (4, 4), dynamic_axes={0: "batch"}), InputSpec("c", (4, 2), dynamic_axes={0: "batch"})),
    outputs=("zeta", "alpha", "mid"),
    builders={Format.KERAS: "tests.fakes.keras_models:build_two_inputs_three_heads"},
    batch=4,
)
