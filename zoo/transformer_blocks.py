"""Transformer pieces shared by the zoo's text models (bert_encoder, gpt2_decoder, dynamic_mlp).

Attention is written out (Linear q/k/v, matmul, softmax, matmul) rather than through
`F.scaled_dot_product_attention` or `nn.MultiheadAttention`, so every exporter sees the same plain
ops a hand-written BERT/GPT-2 has. Weights keep torch's default init (Linear: uniform in
+-1/sqrt(fan_in)); embeddings are N(0, 1): attention scores then have a spread of ~0.3-1, so the
softmax is neither uniform nor one-hot and a wrong softmax/mask shows in the outputs.

Everything imports torch / keras lazily: classes are created by `torch_blocks()` / `keras_blocks()`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def torch_blocks() -> Any:
    import math
    from types import SimpleNamespace

    import torch
    from torch import nn

    class SelfAttention(nn.Module):
        def __init__(self, hidden: int, heads: int) -> None:
            super().__init__()
            self.heads, self.head_dim = heads, hidden // heads
            self.q, self.k, self.v = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
            self.out = nn.Linear(hidden, hidden)

        def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
            b, s, h = x.shape

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(b, s, self.heads, self.head_dim).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            if bias is not None:
                scores = scores + bias  # additive: 0 where attended, large negative where masked
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
            return self.out(ctx.transpose(1, 2).reshape(b, s, h))

    class PostLNEncoderLayer(nn.Module):
        """BERT layer: x = LN(x + Attn(x)); x = LN(x + FFN(x)), exact GELU."""

        def __init__(self, hidden: int, heads: int, ffn: int, eps: float = 1e-12) -> None:
            super().__init__()
            self.attn = SelfAttention(hidden, heads)
            self.ln1 = nn.LayerNorm(hidden, eps=eps)
            self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden))
            self.ln2 = nn.LayerNorm(hidden, eps=eps)

        def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
            x = self.ln1(x + self.attn(x, bias))
            return self.ln2(x + self.ffn(x))

    class PreLNDecoderLayer(nn.Module):
        """GPT-2 block: x = x + Attn(LN(x)) (causal); x = x + MLP(LN(x)), tanh-approximate GELU."""

        def __init__(self, hidden: int, heads: int, ffn: int) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(hidden, eps=1e-5)
            self.attn = SelfAttention(hidden, heads)
            self.ln2 = nn.LayerNorm(hidden, eps=1e-5)
            self.mlp = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(approximate="tanh"), nn.Linear(ffn, hidden))

        def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
            x = x + self.attn(self.ln1(x), bias)
            return x + self.mlp(self.ln2(x))

    return SimpleNamespace(SelfAttention=SelfAttention, PostLNEncoderLayer=PostLNEncoderLayer,
                           PreLNDecoderLayer=PreLNDecoderLayer)


def keras_encoder_layer(x: Any, mask: Any, hidden: int, heads: int, ffn: int, name: str) -> Any:
    """BERT layer in Keras 3 functional style: MultiHeadAttention with a [batch, 1, seq] bool mask."""
    import keras

    attn = keras.layers.MultiHeadAttention(heads, hidden // heads, name=f"{name}_attn")(x, x, attention_mask=mask)
    x = keras.layers.LayerNormalization(epsilon=1e-12, name=f"{name}_ln1")(x + attn)
    h = keras.layers.Dense(ffn, activation="gelu", name=f"{name}_ffn1")(x)  # exact GELU, as BERT
    h = keras.layers.Dense(hidden, name=f"{name}_ffn2")(h)
    return keras.layers.LayerNormalization(epsilon=1e-12, name=f"{name}_ln2")(x + h)


@lru_cache(maxsize=1)
def keras_position_embedding() -> Any:
    """A learned [seq, hidden] table added to the token embeddings (BERT's absolute positions)."""
    import keras

    class PositionEmbedding(keras.layers.Layer):
        def __init__(self, seq: int, hidden: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.seq, self.hidden = seq, hidden

        def build(self, input_shape: Any) -> None:
            self.table = self.add_weight(shape=(self.seq, self.hidden), name="table",
                                         initializer=keras.initializers.RandomNormal(stddev=1.0))

        def call(self, x: Any) -> Any:
            return x + self.table[None, :, :]

    return PositionEmbedding
