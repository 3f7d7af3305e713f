"""vit_tiny: ViT-Tiny/16, 3x224x224 image -> 1000 class logits.

16x16 patch embedding (a strided conv), a learned class token and position embedding, 12 pre-norm
transformer blocks (dim 192, 3 heads, MLP x4, LayerNorm eps 1e-6, exact erf GELU), final LayerNorm,
head on the class token: 5.7M parameters. The tiny size has depth 2, dim 64, 2 heads (64 is not a
multiple of 3) and the same 224x224 input (spec inputs are one per model, not per size; 196 tokens
of dim 64 still run in milliseconds). The Keras twin uses keras.layers.MultiHeadAttention and two
small layers for the class token and position embedding, with its own seeded weights; the JAX/Flax
twin nnx.MultiHeadAttention (NHWC input, as Keras).

GELU is the exact (erf) form in BOTH twins, as in the original ViT, on purpose: Keras' exact GELU
lowers to `Erfc`, which tf2onnx cannot convert (it logs the op and writes an invalid model), a real
finding convcheck reports as `unsupported` on keras/onnx/... routes. Switching the Keras twin to the
tanh approximation would hide it.

Signal: no BatchNorm to recalibrate. Class token and position embedding are drawn N(0, 0.02) as in
timm, the rest keeps each framework's default init; the N(0,1) patches then dominate the small class
token, so its output depends on the image. Logits, not softmax. No tolerance override.
"""

from __future__ import annotations

from typing import Any

from convcheck.zoo.blocks import image_spec

SEED = 16
RESOLUTION = 224
PATCH = 16
N_CLASSES = 1000
CONFIG = {"full": {"dim": 192, "depth": 12, "heads": 3}, "tiny": {"dim": 64, "depth": 2, "heads": 2}}
MLP_RATIO = 4
EPS = 1e-6
TOKEN_STD = 0.02

SPEC = image_spec("vit_tiny", "ViT-Tiny/16: 3x224x224 image -> 1000 class logits (class token, LayerNorm, "
                  "multi-head attention, exact GELU)", "vit_tiny", RESOLUTION, jax=True)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    dim, depth, heads = CONFIG[size]["dim"], CONFIG[size]["depth"], CONFIG[size]["heads"]
    tokens = (RESOLUTION // PATCH) ** 2 + 1

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim, eps=EPS), nn.LayerNorm(dim, eps=EPS)
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.mlp = nn.Sequential(nn.Linear(dim, MLP_RATIO * dim), nn.GELU(), nn.Linear(MLP_RATIO * dim, dim))

        def forward(self, x: Any) -> Any:
            b, n, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
            attn = (q @ k.transpose(-2, -1) * (dim // heads) ** -0.5).softmax(-1)
            x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, dim))
            return x + self.mlp(self.norm2(x))

    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, dim, PATCH, PATCH)
            self.cls = nn.Parameter(torch.randn(1, 1, dim) * TOKEN_STD)
            self.pos = nn.Parameter(torch.randn(1, tokens, dim) * TOKEN_STD)
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=EPS)
            self.head = nn.Linear(dim, N_CLASSES)

        def forward(self, image: Any) -> Any:
            x = self.patch(image).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            return self.head(self.norm(self.blocks(x))[:, 0])

    torch.manual_seed(SEED)
    return ViT().eval()


def build_keras(size: str) -> Any:
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    dim, depth, heads = CONFIG[size]["dim"], CONFIG[size]["depth"], CONFIG[size]["heads"]
    tokens = (RESOLUTION // PATCH) ** 2 + 1
    init = keras.initializers.RandomNormal(stddev=TOKEN_STD)

    class ClassToken(keras.layers.Layer):
        def build(self, shape: Any) -> None:
            self.token = self.add_weight(shape=(1, 1, dim), initializer=init, name="cls")

        def call(self, x: Any) -> Any:
            token = keras.ops.broadcast_to(self.token, (keras.ops.shape(x)[0], 1, dim))
            return keras.ops.concatenate([token, x], axis=1)

    class PositionEmbedding(keras.layers.Layer):
        def build(self, shape: Any) -> None:
            self.pos = self.add_weight(shape=(1, tokens, dim), initializer=init, name="pos")

        def call(self, x: Any) -> Any:
            return x + self.pos

    keras.utils.set_random_seed(SEED)
    x = inputs = keras.Input((RESOLUTION, RESOLUTION, 3), name="image")
    x = keras.layers.Conv2D(dim, PATCH, PATCH)(x)
    x = keras.layers.Reshape((tokens - 1, dim))(x)
    x = PositionEmbedding()(ClassToken()(x))
    for _ in range(depth):
        y = keras.layers.LayerNormalization(epsilon=EPS)(x)
        x = keras.layers.Add()([x, keras.layers.MultiHeadAttention(heads, dim // heads)(y, y)])
        y = keras.layers.LayerNormalization(epsilon=EPS)(x)
        y = keras.layers.Dense(MLP_RATIO * dim, activation=keras.activations.gelu)(y)  # exact (erf) GELU
        x = keras.layers.Add()([x, keras.layers.Dense(dim)(y)])
    x = keras.layers.LayerNormalization(epsilon=EPS)(x)
    return keras.Model(inputs, keras.layers.Dense(N_CLASSES, name="logits")(x[:, 0]), name="vit_tiny")


def build_jax(size: str) -> Any:
    from convcheck.zoo.jax_init import calibrated

    dim, depth, heads = CONFIG[size]["dim"], CONFIG[size]["depth"], CONFIG[size]["heads"]
    tokens = (RESOLUTION // PATCH) ** 2 + 1

    def build() -> Any:
        import jax
        import jax.numpy as jnp
        from flax import nnx

        class Block(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                self.norm1 = nnx.LayerNorm(dim, epsilon=EPS, rngs=rngs)
                self.attn = nnx.MultiHeadAttention(heads, dim, decode=False, rngs=rngs)
                self.norm2 = nnx.LayerNorm(dim, epsilon=EPS, rngs=rngs)
                self.fc1 = nnx.Linear(dim, MLP_RATIO * dim, rngs=rngs)
                self.fc2 = nnx.Linear(MLP_RATIO * dim, dim, rngs=rngs)

            def __call__(self, x: Any) -> Any:
                y = self.norm1(x)
                x = x + self.attn(y, y, y)
                return x + self.fc2(jax.nn.gelu(self.fc1(self.norm2(x)), approximate=False))  # exact (erf) GELU

        class ViT(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                self.patch = nnx.Conv(3, dim, (PATCH, PATCH), strides=PATCH, padding="VALID", rngs=rngs)
                self.cls = nnx.Param(jax.random.normal(rngs.params(), (1, 1, dim)) * TOKEN_STD)
                self.pos = nnx.Param(jax.random.normal(rngs.params(), (1, tokens, dim)) * TOKEN_STD)
                self.blocks = nnx.List([Block(rngs) for _ in range(depth)])
                self.norm = nnx.LayerNorm(dim, epsilon=EPS, rngs=rngs)
                self.logits = nnx.Linear(dim, N_CLASSES, rngs=rngs)

            def __call__(self, image: Any) -> Any:
                x = self.patch(image)
                x = x.reshape(x.shape[0], -1, dim)
                x = jnp.concatenate([jnp.broadcast_to(self.cls.value, (x.shape[0], 1, dim)), x], axis=1) + self.pos.value
                for block in self.blocks:
                    x = block(x)
                return self.logits(self.norm(x)[:, 0])

        return ViT(nnx.Rngs(SEED))

    return calibrated(build)
