"""efficientnet_b0: EfficientNet-B0, 3x224x224 image -> 1000 class logits.

MBConv blocks (1x1 expand, 3x3/5x5 depthwise, squeeze-excitation at 0.25 of the block's input
channels, 1x1 linear projection, residual when the shape allows), SiLU, BatchNorm, 1280-channel
head, global average pool, one Linear/Dense: 5.3M parameters. No stochastic depth or dropout
(inference only). The tiny size has width 0.25, one block per stage and a 128-channel head (same
224x224 input: spec inputs are one per model, not per size). The Keras twin is the same network in
NHWC with its own seeded weights.

Signal: every BatchNorm's statistics are recalibrated on seeded N(0,1) batches drawn like the
inputs (zoo/blocks.py); the model returns logits, not softmax. No tolerance override.
"""

from __future__ import annotations

from typing import Any

from convcheck.zoo.blocks import image_spec, make_divisible

SEED = 0xB0
RESOLUTION = 224
N_CLASSES = 1000
SE_RATIO = 0.25
# (expansion, kernel, first stride, channels, repeats), B0's stages
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
WIDTH = {"full": 1.0, "tiny": 0.25}
MAX_REPEATS = {"full": 99, "tiny": 1}
HEAD = {"full": 1280, "tiny": 128}

SPEC = image_spec("efficientnet_b0", "EfficientNet-B0: 3x224x224 image -> 1000 class logits (MBConv, "
                  "squeeze-excitation, SiLU)", "efficientnet_b0", RESOLUTION)


def _blocks(size: str) -> list[tuple[int, int, int, int, int]]:
    """(cin, cout, expansion, kernel, stride) per MBConv block; the stem's width is blocks[0][0]."""
    cin = make_divisible(32 * WIDTH[size])
    out = []
    for e, k, s, c, n in STAGES:
        cout = make_divisible(c * WIDTH[size])
        for i in range(min(n, MAX_REPEATS[size])):
            out.append((cin, cout, e, k, s if i == 0 else 1))
            cin = cout
    return out


def build_torch(size: str) -> Any:
    from torch import nn

    from convcheck.zoo.blocks import t_mbconv_net

    return t_mbconv_net(_blocks(size), HEAD[size], nn.SiLU, SE_RATIO, SEED, RESOLUTION, N_CLASSES)


def build_keras(size: str) -> Any:
    from convcheck.zoo.blocks import k_mbconv_net

    return k_mbconv_net(_blocks(size), HEAD[size], "silu", SE_RATIO, SEED, RESOLUTION, N_CLASSES,
                        "efficientnet_b0")
