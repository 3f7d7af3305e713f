"""mlp_tabular: a fraud-detection style MLP over 30 standardised transaction features.

Shaped like the models trained on card-transaction data (PCA components, time, amount): dense
layers with BatchNorm and ReLU, four output logits (legitimate, card testing, account takeover,
friendly fraud) rather than one fraud score, so that a parity check has more than one unit of
evidence per row.

The Keras and JAX/Flax twins have the same architecture and their own seeded weights (each framework's
default initialisers): the twins are compared each with its own framework, never with each other.

Signal: weights are seeded, BatchNorm statistics are recalibrated on seeded batches drawn like the
inputs (torch: four batches, cumulative average; Keras: one batch of 1024 with momentum 0), and the
model returns logits, not softmax probabilities (softmax saturates). tests/unit/test_zoo_signal.py
asserts the logits vary across rows and inputs in both frameworks.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

N_FEATURES = 30
N_CLASSES = 4
HIDDEN = {"full": (256, 256, 128), "tiny": (32, 16)}
SEED = 20261124

SPEC = ModelSpec(
    name="mlp_tabular",
    description="fraud-detection MLP: 30 float features -> 4 class logits (BatchNorm, ReLU)",
    task="classifier",
    inputs=(
        InputSpec("features", (32, N_FEATURES), "float32", "normal", 0.0, 1.0, {0: "batch"}),
    ),
    outputs=("logits",),
    builders={Format.TORCH: "convcheck.zoo.mlp_tabular:build_torch",
              Format.KERAS: "convcheck.zoo.mlp_tabular:build_keras",
              Format.JAX: "convcheck.zoo.mlp_tabular:build_jax"},
    batch=32,
)


def build_torch(size: str) -> Any:
    import numpy as np
    import torch
    from torch import nn

    from convcheck.zoo.torch_init import recalibrate_batchnorm

    torch.manual_seed(SEED)
    layers: list[nn.Module] = []
    width = N_FEATURES
    for hidden in HIDDEN[size]:
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.1)]
        width = hidden
    layers.append(nn.Linear(width, N_CLASSES))
    model = nn.Sequential(*layers)

    def batch(i: int) -> tuple:
        x = np.random.default_rng(SEED + 1000 + i).normal(size=(256, N_FEATURES)).astype("float32")
        return (torch.from_numpy(x),)

    recalibrate_batchnorm(model, batch)
    return model


def build_keras(size: str) -> Any:
    import numpy as np

    from convcheck.zoo.keras_init import quiet_tensorflow, recalibrate_batchnorm

    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(SEED)
    x = inputs = keras.Input((N_FEATURES,), name="features")
    for hidden in HIDDEN[size]:
        x = keras.layers.Dense(hidden)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Dropout(0.1)(x)
    model = keras.Model(inputs, keras.layers.Dense(N_CLASSES, name="logits")(x), name="mlp_tabular")
    recalibrate_batchnorm(model, np.random.default_rng(SEED + 2000).normal(size=(1024, N_FEATURES)).astype("float32"))
    return model


def build_jax(size: str) -> Any:
    from convcheck.zoo.jax_init import calibrated, recalibrate_batchnorm, seeded_batch

    def build() -> Any:
        from flax import nnx

        class MlpTabular(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                widths = (N_FEATURES, *HIDDEN[size])
                self.depth = len(HIDDEN[size])
                for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
                    setattr(self, f"dense{i}", nnx.Linear(n_in, n_out, rngs=rngs))
                    setattr(self, f"bn{i}", nnx.BatchNorm(n_out, use_running_average=True, rngs=rngs))
                    setattr(self, f"dropout{i}", nnx.Dropout(0.1, rngs=rngs))
                self.logits = nnx.Linear(widths[-1], N_CLASSES, rngs=rngs)

            def __call__(self, features: Any) -> Any:
                x = features
                for i in range(self.depth):
                    x = getattr(self, f"dropout{i}")(nnx.relu(getattr(self, f"bn{i}")(getattr(self, f"dense{i}")(x))))
                return self.logits(x)

        return recalibrate_batchnorm(MlpTabular(nnx.Rngs(SEED)), seeded_batch(SEED + 3000, (1024, N_FEATURES)))

    return calibrated(build)
