"""unet_small: a small U-Net, 3x128x128 image -> 4 class logits per pixel (segmentation).

Encoder: three levels of two 3x3 conv + BatchNorm + ReLU, each followed by 2x2 max pooling; a
bottleneck level; decoder: bilinear x2 upsampling (torch `interpolate`, Keras `UpSampling2D`),
concatenation with the encoder's skip, two 3x3 convs; a 1x1 conv to 4 class logits per pixel
(torch NCHW 1x4x128x128, Keras NHWC 1x128x128x4). Widths 32/64/128/256 (full, 1.9M parameters) or
8/16/32/64 (tiny), same 128x128 input (spec inputs are one per model, not per size).

Signal: every BatchNorm's statistics are recalibrated on seeded N(0,1) batches drawn like the
inputs (zoo/blocks.py); the model returns logits, not softmax. No tolerance override.
"""

from __future__ import annotations

from typing import Any

from convcheck.zoo.blocks import image_spec

SEED = 128
RESOLUTION = 128
N_CLASSES = 4
WIDTHS = {"full": (32, 64, 128, 256), "tiny": (8, 16, 32, 64)}

SPEC = image_spec("unet_small", "small U-Net: 3x128x128 image -> 4 class logits per pixel (skip concat, "
                  "bilinear upsampling)", "unet_small", RESOLUTION, task="segmentation")


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    from convcheck.zoo.blocks import t_conv_bn, t_recalibrate

    def double(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(t_conv_bn(cin, cout, 3, act=nn.ReLU()), t_conv_bn(cout, cout, 3, act=nn.ReLU()))

    class UNet(nn.Module):
        def __init__(self, widths: tuple[int, ...]) -> None:
            super().__init__()
            ins = (3, *widths[:-1])
            self.down = nn.ModuleList(double(i, o) for i, o in zip(ins, widths))
            self.up = nn.ModuleList(double(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 1))
            self.head = nn.Conv2d(widths[0], N_CLASSES, 1)

        def forward(self, image: Any) -> Any:
            skips, x = [], image
            for i, block in enumerate(self.down):
                x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for block, skip in zip(reversed(self.up), reversed(skips[:-1])):
                x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
                x = block(torch.cat([x, skip], dim=1))
            return self.head(x)

    torch.manual_seed(SEED)
    return t_recalibrate(UNet(WIDTHS[size]), SEED, RESOLUTION)


def build_keras(size: str) -> Any:
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from convcheck.zoo.blocks import k_conv_bn, k_recalibrate

    keras.utils.set_random_seed(SEED)
    widths = WIDTHS[size]
    x = inputs = keras.Input((RESOLUTION, RESOLUTION, 3), name="image")
    skips = []
    for i, width in enumerate(widths):
        if i:
            x = keras.layers.MaxPooling2D(2)(x)
        x = k_conv_bn(k_conv_bn(x, width, 3, act="relu"), width, 3, act="relu")
        skips.append(x)
    for width, skip in zip(reversed(widths[:-1]), reversed(skips[:-1])):
        x = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = keras.layers.Concatenate()([x, skip])
        x = k_conv_bn(k_conv_bn(x, width, 3, act="relu"), width, 3, act="relu")
    model = keras.Model(inputs, keras.layers.Conv2D(N_CLASSES, 1, name="logits")(x), name="unet_small")
    return k_recalibrate(model, SEED, RESOLUTION)
