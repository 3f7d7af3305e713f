"""audio_conv1d: a keyword-spotting 1-D CNN over 1 s of raw 16 kHz audio -> 12 keyword logits.

M5-style (Dai et al. 2017): a wide strided first convolution (80 taps, stride 4) as a learned
filterbank, then Conv1d / BatchNorm / ReLU / MaxPool(4) blocks, then (unlike M5's global average)
the remaining ~15 time steps flattened into a linear head over 12 classes (ten Speech Commands
keywords, silence, unknown). Full: 4 blocks of (32, 32, 64, 64) channels, 14 steps left; tiny: 2
blocks of (8, 16) and an average pool of 16, 15 steps left. The Keras twin is the same network in
Keras' layout (it reshapes [batch, 16000] to [batch, 16000, 1], channels last).

Input `audio` [batch, 16000] float32 drawn N(0, 0.1), a waveform's typical level.

Signal: the seeded inputs are stationary noise, and a global average over a second of noise is
nearly the same for every draw: the tiny model with global pooling had input sensitivity 0.03-0.04
(the test wants 0.05). Keeping the time axis (flatten) fixes it. Also seeded weights, BatchNorm statistics recalibrated on seeded waveforms drawn like the
inputs (torch: four batches, cumulative average; Keras: one batch, momentum 0), logits (no softmax).
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

SEED = 16000
SAMPLES = 16000
N_CLASSES = 12
CHANNELS = {"full": (32, 32, 64, 64), "tiny": (8, 16)}
FINAL_POOL = {"full": 1, "tiny": 16}  # leaves 14 (full) / 15 (tiny) time steps for the head

SPEC = ModelSpec(
    name="audio_conv1d",
    description="keyword-spotting 1-D CNN: 16000-sample waveform -> 12 keyword logits (M5-style)",
    task="classifier",
    inputs=(InputSpec("audio", (1, SAMPLES), "float32", "normal", 0.0, 0.1, {0: "batch"}),),
    outputs=("logits",),
    builders={Format.TORCH: "convcheck.zoo.audio_conv1d:build_torch",
              Format.KERAS: "convcheck.zoo.audio_conv1d:build_keras"},
    batch=1,
)


def _waves(seed: int, n: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed).normal(0.0, 0.1, size=(n, SAMPLES)).astype("float32")


def _steps(size: str) -> int:
    n = (SAMPLES - 80) // 4 + 1
    for i in range(len(CHANNELS[size])):
        n = (n if i == 0 else n - 2) // 4
    return n // FINAL_POOL[size]


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    from convcheck.zoo.torch_init import recalibrate_batchnorm

    torch.manual_seed(SEED)
    layers: list[nn.Module] = [nn.Unflatten(1, (1, SAMPLES))]
    width = 1
    for i, channels in enumerate(CHANNELS[size]):
        conv = nn.Conv1d(width, channels, 80, stride=4) if i == 0 else nn.Conv1d(width, channels, 3)
        layers += [conv, nn.BatchNorm1d(channels), nn.ReLU(), nn.MaxPool1d(4)]
        width = channels
    steps = _steps(size)
    layers += [nn.AvgPool1d(FINAL_POOL[size]), nn.Flatten()] if FINAL_POOL[size] > 1 else [nn.Flatten()]
    model = nn.Sequential(*layers, nn.Linear(width * steps, N_CLASSES))
    recalibrate_batchnorm(model, lambda i: (torch.from_numpy(_waves(SEED + 100 + i, 16)),))
    return model


def build_keras(size: str) -> Any:
    from convcheck.zoo.keras_init import quiet_tensorflow, recalibrate_batchnorm

    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(SEED)
    x = inputs = keras.Input((SAMPLES,), name="audio")
    x = keras.layers.Reshape((SAMPLES, 1))(x)
    for i, channels in enumerate(CHANNELS[size]):
        x = keras.layers.Conv1D(channels, 80, strides=4)(x) if i == 0 else keras.layers.Conv1D(channels, 3)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling1D(4)(x)
    if FINAL_POOL[size] > 1:
        x = keras.layers.AveragePooling1D(FINAL_POOL[size])(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(N_CLASSES, name="logits")(x), name="audio_conv1d")
    recalibrate_batchnorm(model, _waves(SEED + 200, 64))
    return model
