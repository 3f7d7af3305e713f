"""Building blocks shared by the zoo's vision models (ResNet, MobileNetV2, EfficientNet, ViT, U-Net).

Each helper comes in a torch flavour (`t_*`, returns an `nn.Module`) and a Keras flavour (`k_*`,
applies layers to a KerasTensor, functional API). Heavy frameworks are imported inside the helpers,
so importing a zoo module to read its SPEC imports neither torch nor TensorFlow.

`image_spec` declares the usual vision input: `image`, float32 N(0, 1), batch axis dynamic, NCHW
for torch and NHWC (via `source_inputs`) for the Keras twin. The input resolution is one per spec,
not per size (ModelSpec inputs do not depend on the size), so a model's tiny variant takes the same
resolution as the full one and is made small by its widths and depths instead.

Note: a spec's fingerprint hashes only its own module's source, not this file's: after changing a
block here, clear convcheck's artifact cache (or bump the model module) so no stale export is reused.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

RECAL_BATCH = 8  # images per recalibration batch (torch: 4 batches; Keras: one batch of 2x this)


def image_spec(name: str, description: str, module: str, resolution: int, task: str = "classifier",
               tolerances: dict | None = None, jax: bool = False) -> ModelSpec:
    """An image model's spec: torch takes NCHW, the Keras (and, with `jax`, the JAX/Flax) twin NHWC."""
    nchw = InputSpec("image", (1, 3, resolution, resolution), "float32", "normal", 0.0, 1.0, {0: "batch"})
    nhwc = InputSpec("image", (1, resolution, resolution, 3), "float32", "normal", 0.0, 1.0, {0: "batch"})
    nhwc_sources = (Format.KERAS, Format.JAX) if jax else (Format.KERAS,)
    return ModelSpec(
        name=name, description=description, task=task, inputs=(nchw,), outputs=("logits",),
        builders={fmt: f"convcheck.zoo.{module}:build_{fmt.value}" for fmt in (Format.TORCH, *nhwc_sources)},
        source_inputs={fmt: (nhwc,) for fmt in nhwc_sources},
        tolerances=tolerances or {},
        batch=1,
    )


def make_divisible(v: float, divisor: int = 8) -> int:
    """Channel rounding of MobileNet/EfficientNet: nearest multiple of 8, never below 90% of v."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# ---------------------------------------------------------------------------------------- torch


def t_recalibrate(model: Any, seed: int, resolution: int) -> Any:
    """Seeded N(0,1) NCHW batches re-estimate every BatchNorm's statistics; returns the model in eval."""
    import numpy as np
    import torch

    from convcheck.zoo.torch_init import recalibrate_batchnorm

    def batch(i: int) -> tuple:
        x = np.random.default_rng(seed + 100 + i).normal(size=(RECAL_BATCH, 3, resolution, resolution))
        return (torch.from_numpy(x.astype("float32")),)

    recalibrate_batchnorm(model, batch)
    return model.eval()


def t_conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: Any = None) -> Any:
    """Conv (no bias, 'same'-style padding k//2) + BatchNorm + optional activation module."""
    from torch import nn

    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


def t_squeeze_excite(channels: int, squeezed: int) -> Any:
    """SE: global pool -> 1x1 conv + SiLU -> 1x1 conv + sigmoid -> channel-wise scale."""
    from torch import nn

    class SqueezeExcite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reduce = nn.Conv2d(channels, squeezed, 1)
            self.expand = nn.Conv2d(squeezed, channels, 1)

        def forward(self, x: Any) -> Any:
            s = x.mean((2, 3), keepdim=True)
            return x * self.expand(nn.functional.silu(self.reduce(s))).sigmoid()

    return SqueezeExcite()


def t_inverted_residual(cin: int, cout: int, expand: int, k: int, stride: int, act: Any,
                        se_ratio: float = 0.0) -> Any:
    """MobileNetV2 / EfficientNet MBConv: 1x1 expand, kxk depthwise, [SE], 1x1 linear projection."""
    from torch import nn

    class InvertedResidual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            mid = cin * expand
            layers: list[nn.Module] = []
            if expand != 1:
                layers.append(t_conv_bn(cin, mid, 1, act=act()))
            layers.append(t_conv_bn(mid, mid, k, stride, groups=mid, act=act()))
            if se_ratio:
                layers.append(t_squeeze_excite(mid, max(1, int(cin * se_ratio))))
            layers.append(t_conv_bn(mid, cout, 1))
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: Any) -> Any:
            y = self.body(x)
            return x + y if self.residual else y

    return InvertedResidual()


# ---------------------------------------------------------------------------------------- keras


def k_recalibrate(model: Any, seed: int, resolution: int) -> Any:
    import numpy as np

    from convcheck.zoo.keras_init import recalibrate_batchnorm

    x = np.random.default_rng(seed + 200).normal(size=(2 * RECAL_BATCH, resolution, resolution, 3))
    recalibrate_batchnorm(model, x.astype("float32"))
    return model


def k_conv_bn(x: Any, cout: int | None, k: int, stride: int = 1, act: str | None = None,
              depthwise: bool = False) -> Any:
    """Conv2D / DepthwiseConv2D (no bias, padding 'same') + BatchNormalization + optional activation."""
    import keras

    if depthwise:
        x = keras.layers.DepthwiseConv2D(k, stride, padding="same", use_bias=False)(x)
    else:
        x = keras.layers.Conv2D(cout, k, stride, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation(act)(x) if act else x


def k_inverted_residual(x: Any, cin: int, cout: int, expand: int, k: int, stride: int, act: str,
                        se_ratio: float = 0.0) -> Any:
    import keras

    inp = x
    mid = cin * expand
    if expand != 1:
        x = k_conv_bn(x, mid, 1, act=act)
    x = k_conv_bn(x, None, k, stride, act=act, depthwise=True)
    if se_ratio:
        s = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = keras.layers.Conv2D(max(1, int(cin * se_ratio)), 1, activation="silu")(s)
        s = keras.layers.Conv2D(mid, 1, activation="sigmoid")(s)
        x = keras.layers.Multiply()([x, s])
    x = k_conv_bn(x, cout, 1)
    return keras.layers.Add()([inp, x]) if stride == 1 and cin == cout else x


def t_mbconv_net(blocks: list[tuple[int, int, int, int, int]], head: int, act: Any, se_ratio: float, seed: int,
                 resolution: int, n_classes: int) -> Any:
    """MobileNetV2 / EfficientNet body: stem, MBConv blocks (cin, cout, expand, kernel, stride), 1x1
    head, global pool, classifier; BatchNorm recalibrated. `act` is an activation class (nn.SiLU)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list[nn.Module] = [t_conv_bn(3, blocks[0][0], 3, 2, act=act())]
    layers += [t_inverted_residual(cin, cout, e, k, s, act, se_ratio) for cin, cout, e, k, s in blocks]
    layers.append(t_conv_bn(blocks[-1][1], head, 1, act=act()))
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(head, n_classes))
    return t_recalibrate(model, seed, resolution)


def k_mbconv_net(blocks: list[tuple[int, int, int, int, int]], head: int, act: str, se_ratio: float, seed: int,
                 resolution: int, n_classes: int, name: str) -> Any:
    """The Keras twin of `t_mbconv_net` (NHWC input named `image`)."""
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((resolution, resolution, 3), name="image")
    x = k_conv_bn(x, blocks[0][0], 3, 2, act=act)
    for cin, cout, e, k, s in blocks:
        x = k_inverted_residual(x, cin, cout, e, k, s, act, se_ratio)
    x = k_conv_bn(x, head, 1, act=act)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(n_classes, name="logits")(x), name=name)
    return k_recalibrate(model, seed, resolution)



# ---------------------------------------------------------------------------------------- jax


def j_mbconv_net(blocks: list[tuple[int, int, int, int, int]], head: int, act: Any, seed: int, resolution: int,
                 n_classes: int) -> Any:
    """The JAX/Flax NNX twin of `t_mbconv_net` without squeeze-excite (NHWC input): stem conv, inverted
    residuals (1x1 expand, kxk depthwise, 1x1 linear projection), head conv, global mean, Linear."""
    from convcheck.zoo.jax_init import calibrated, recalibrate_batchnorm

    def build() -> Any:
        from flax import nnx

        class ConvBn(nnx.Module):
            def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int, activate: bool,
                         rngs: nnx.Rngs) -> None:
                self.conv = nnx.Conv(cin, cout, (k, k), strides=stride, padding="SAME", feature_group_count=groups,
                                     use_bias=False, rngs=rngs)
                self.bn = nnx.BatchNorm(cout, use_running_average=True, rngs=rngs)
                self.activate = activate

            def __call__(self, x: Any) -> Any:
                y = self.bn(self.conv(x))
                return act(y) if self.activate else y

        class InvertedResidual(nnx.Module):
            def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int, rngs: nnx.Rngs) -> None:
                mid = cin * expand
                layers = [ConvBn(cin, mid, 1, 1, 1, True, rngs)] if expand != 1 else []
                layers += [ConvBn(mid, mid, k, stride, mid, True, rngs), ConvBn(mid, cout, 1, 1, 1, False, rngs)]
                self.layers = nnx.List(layers)
                self.residual = stride == 1 and cin == cout

            def __call__(self, x: Any) -> Any:
                y = x
                for layer in self.layers:
                    y = layer(y)
                return x + y if self.residual else y

        class MbConvNet(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                self.stem = ConvBn(3, blocks[0][0], 3, 2, 1, True, rngs)
                self.blocks = nnx.List([InvertedResidual(cin, cout, e, k, s, rngs) for cin, cout, e, k, s in blocks])
                self.head = ConvBn(blocks[-1][1], head, 1, 1, 1, True, rngs)
                self.logits = nnx.Linear(head, n_classes, rngs=rngs)

            def __call__(self, image: Any) -> Any:
                x = self.stem(image)
                for block in self.blocks:
                    x = block(x)
                return self.logits(self.head(x).mean(axis=(1, 2)))

        model = MbConvNet(nnx.Rngs(seed))
        import numpy as np

        batch = np.random.default_rng(seed + 300).normal(size=(2 * RECAL_BATCH, resolution, resolution, 3))
        return recalibrate_batchnorm(model, batch.astype("float32"))

    return calibrated(build)
