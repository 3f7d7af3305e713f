"""cnn_small: a small image classifier (3 conv blocks, BatchNorm, ReLU, global pooling, 10 logits).

The smallest model with the ops every vision network has (Conv, BatchNorm folded by exporters,
strided downsampling, global average pooling, Gemm), so that every route gets a convolutional
case that converts in seconds.

The Keras twin is the same network in Keras' own layout: its input is NHWC (1x64x64x3), as Keras
models are shipped, so its routes meet the layout transposes a real Keras model brings. The JAX/Flax
twin is NHWC too (Flax's convolution layout).

Signal: seeded weights, BatchNorm statistics recalibrated on seeded batches drawn like the inputs,
logits (no softmax). tests/unit/test_zoo_signal.py checks the logits vary in both frameworks.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

SEED = 11
CHANNELS = {"full": (16, 32, 64), "tiny": (8, 16, 32)}
N_CLASSES = 10

SPEC = ModelSpec(
    name="cnn_small",
    description="small CNN: 3x64x64 image -> 10 class logits (Conv, BatchNorm, ReLU, global pool)",
    task="classifier",
    inputs=(InputSpec("image", (1, 3, 64, 64), "float32", "normal", 0.0, 1.0, {0: "batch"}),),
    outputs=("logits",),
    builders={Format.TORCH: "convcheck.zoo.cnn_small:build_torch",
              Format.KERAS: "convcheck.zoo.cnn_small:build_keras",
              Format.JAX: "convcheck.zoo.cnn_small:build_jax"},
    source_inputs={fmt: (InputSpec("image", (1, 64, 64, 3), "float32", "normal", 0.0, 1.0, {0: "batch"}),)
                   for fmt in (Format.KERAS, Format.JAX)},
    batch=1,
)


def build_torch(size: str) -> Any:
    import numpy as np
    import torch
    from torch import nn

    from convcheck.zoo.torch_init import recalibrate_batchnorm

    torch.manual_seed(SEED)
    layers: list[nn.Module] = []
    width = 3
    for i, channels in enumerate(CHANNELS[size]):
        layers += [nn.Conv2d(width, channels, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                   nn.BatchNorm2d(channels), nn.ReLU()]
        width = channels
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, N_CLASSES))

    def batch(i: int) -> tuple:
        x = np.random.default_rng(SEED + 100 + i).normal(size=(16, 3, 64, 64)).astype("float32")
        return (torch.from_numpy(x),)

    recalibrate_batchnorm(model, batch)
    return model


def build_keras(size: str) -> Any:
    import numpy as np

    from convcheck.zoo.keras_init import quiet_tensorflow, recalibrate_batchnorm

    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(SEED)
    x = inputs = keras.Input((64, 64, 3), name="image")
    for i, channels in enumerate(CHANNELS[size]):
        x = keras.layers.Conv2D(channels, 3, strides=1 if i == 0 else 2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(N_CLASSES, name="logits")(x), name="cnn_small")
    recalibrate_batchnorm(model, np.random.default_rng(SEED + 200).normal(size=(64, 64, 64, 3)).astype("float32"))
    return model


def build_jax(size: str) -> Any:
    from convcheck.zoo.jax_init import calibrated, recalibrate_batchnorm, seeded_batch

    def build() -> Any:
        from flax import nnx

        class CnnSmall(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                widths = (3, *CHANNELS[size])
                self.depth = len(CHANNELS[size])
                for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
                    setattr(self, f"conv{i}", nnx.Conv(n_in, n_out, (3, 3), strides=1 if i == 0 else 2,
                                                      padding="SAME", use_bias=False, rngs=rngs))
                    setattr(self, f"bn{i}", nnx.BatchNorm(n_out, use_running_average=True, rngs=rngs))
                self.logits = nnx.Linear(widths[-1], N_CLASSES, rngs=rngs)

            def __call__(self, image: Any) -> Any:
                x = image
                for i in range(self.depth):
                    x = nnx.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
                return self.logits(x.mean(axis=(1, 2)))

        return recalibrate_batchnorm(CnnSmall(nnx.Rngs(SEED)), seeded_batch(SEED + 300, (64, 64, 64, 3)))

    return calibrated(build)
