"""resnet50: ResNet-50 (v1.5: stride on the 3x3 conv), 3x224x224 image -> 1000 class logits.

Bottleneck blocks [3, 4, 6, 3] at widths 64/128/256/512 (x4 expansion), 7x7 stem and max pool,
global average pool, one Linear/Dense: 25.6M parameters, the network most deployment guides use.
The tiny size keeps the architecture with one bottleneck per stage at widths 8/16/32/64, so its
routes convert in seconds (same 224x224 input: spec inputs are one per model, not per size).

The Keras twin is the same network in Keras' own layout (NHWC input, padding 'same'); its weights
are its own seeded draws: twins are compared each with its own framework, never with each other.

Signal: with the usual init ResNet-50's logits are large but nearly input-independent
(sensitivity 0.02, NOTES-frameworks.md). Every BatchNorm's statistics are recalibrated on seeded
N(0,1) batches drawn like the inputs (zoo/blocks.py), and the model returns logits, not softmax.
No tolerance override: the default fp32 profile holds.
"""

from __future__ import annotations

from typing import Any

from convcheck.zoo.blocks import image_spec

SEED = 50
RESOLUTION = 224
N_CLASSES = 1000
WIDTHS = {"full": (64, 128, 256, 512), "tiny": (8, 16, 32, 64)}
DEPTHS = {"full": (3, 4, 6, 3), "tiny": (1, 1, 1, 1)}
EXPANSION = 4

SPEC = image_spec("resnet50", "ResNet-50: 3x224x224 image -> 1000 class logits (bottleneck blocks, BatchNorm)",
                  "resnet50", RESOLUTION)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    from convcheck.zoo.blocks import t_conv_bn, t_recalibrate

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            cout = width * EXPANSION
            self.body = nn.Sequential(t_conv_bn(cin, width, 1, act=nn.ReLU()),
                                      t_conv_bn(width, width, 3, stride, act=nn.ReLU()),
                                      t_conv_bn(width, cout, 1))
            self.shortcut = t_conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x: Any) -> Any:
            return torch.relu(self.body(x) + self.shortcut(x))

    torch.manual_seed(SEED)
    stem = WIDTHS[size][0]
    layers: list[nn.Module] = [t_conv_bn(3, stem, 7, 2, act=nn.ReLU()), nn.MaxPool2d(3, 2, 1)]
    cin = stem
    for stage, (width, depth) in enumerate(zip(WIDTHS[size], DEPTHS[size])):
        for b in range(depth):
            layers.append(Bottleneck(cin, width, 2 if stage > 0 and b == 0 else 1))
            cin = width * EXPANSION
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, N_CLASSES))
    return t_recalibrate(model, SEED, RESOLUTION)


def build_keras(size: str) -> Any:
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from convcheck.zoo.blocks import k_conv_bn, k_recalibrate

    keras.utils.set_random_seed(SEED)
    x = inputs = keras.Input((RESOLUTION, RESOLUTION, 3), name="image")
    stem = WIDTHS[size][0]
    x = k_conv_bn(x, stem, 7, 2, act="relu")
    x = keras.layers.MaxPooling2D(3, 2, padding="same")(x)
    cin = stem
    for stage, (width, depth) in enumerate(zip(WIDTHS[size], DEPTHS[size])):
        for b in range(depth):
            stride = 2 if stage > 0 and b == 0 else 1
            cout = width * EXPANSION
            y = k_conv_bn(x, width, 1, act="relu")
            y = k_conv_bn(y, width, 3, stride, act="relu")
            y = k_conv_bn(y, cout, 1)
            shortcut = k_conv_bn(x, cout, 1, stride) if stride != 1 or cin != cout else x
            x = keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))
            cin = cout
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(N_CLASSES, name="logits")(x), name="resnet50")
    return k_recalibrate(model, SEED, RESOLUTION)
