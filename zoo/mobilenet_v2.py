"""mobilenet_v2: MobileNetV2 (width 1.0), 3x224x224 image -> 1000 class logits.

Inverted residual blocks (1x1 expand x6, 3x3 depthwise, 1x1 linear projection, residual when the
shape allows), ReLU6, BatchNorm, 1280-channel head, global average pool, one Linear/Dense: 3.5M
parameters. The tiny size has width 0.25, one block per stage and a 128-channel head (same 224x224
input: spec inputs are one per model, not per size). The Keras and JAX/Flax twins are the same
network in NHWC with their own seeded weights.

Signal: with the usual init torch MobileNetV2's logits have std 1e-9 and Keras' (`weights=None`)
are constant (NOTES-frameworks.md). Every BatchNorm's statistics are recalibrated on seeded N(0,1)
batches drawn like the inputs (zoo/blocks.py); the model returns logits, not softmax.
No tolerance override: the default fp32 profile holds.
"""

from __future__ import annotations

from typing import Any

from convcheck.zoo.blocks import image_spec, make_divisible

SEED = 2
RESOLUTION = 224
N_CLASSES = 1000
# (expansion t, channels c, repeats n, first stride s), as in the paper's table 2
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
WIDTH = {"full": 1.0, "tiny": 0.25}
MAX_REPEATS = {"full": 99, "tiny": 1}
HEAD = {"full": 1280, "tiny": 128}

SPEC = image_spec("mobilenet_v2", "MobileNetV2: 3x224x224 image -> 1000 class logits (inverted residuals, "
                  "depthwise conv, ReLU6)", "mobilenet_v2", RESOLUTION, jax=True)


def _blocks(size: str) -> list[tuple[int, int, int, int]]:
    """(cin, cout, expansion, stride) per inverted residual block; the stem's width is blocks[0][0]."""
    cin = make_divisible(32 * WIDTH[size])
    out = []
    for t, c, n, s in STAGES:
        cout = make_divisible(c * WIDTH[size])
        for i in range(min(n, MAX_REPEATS[size])):
            out.append((cin, cout, t, s if i == 0 else 1))
            cin = cout
    return out


def build_torch(size: str) -> Any:
    from torch import nn

    from convcheck.zoo.blocks import t_mbconv_net

    return t_mbconv_net([(cin, cout, t, 3, s) for cin, cout, t, s in _blocks(size)], HEAD[size], nn.ReLU6, 0.0, SEED, RESOLUTION, N_CLASSES)


def build_keras(size: str) -> Any:
    from convcheck.zoo.blocks import k_mbconv_net

    return k_mbconv_net([(cin, cout, t, 3, s) for cin, cout, t, s in _blocks(size)], HEAD[size], "relu6", 0.0, SEED, RESOLUTION, N_CLASSES,
                        "mobilenet_v2")


def build_jax(size: str) -> Any:
    import jax

    from convcheck.zoo.blocks import j_mbconv_net

    return j_mbconv_net([(cin, cout, t, 3, s) for cin, cout, t, s in _blocks(size)], HEAD[size], jax.nn.relu6, SEED,
                        RESOLUTION, N_CLASSES)
