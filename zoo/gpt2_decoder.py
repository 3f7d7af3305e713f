"""gpt2_decoder: a small GPT-2-style causal language model (token ids -> next-token logits).

Token + learned position embeddings, pre-LN decoder blocks (causal softmax self-attention through
an additive upper-triangular mask, tanh-approximate GELU MLP as GPT-2), final LayerNorm and an LM
head tied to the token embedding. Output: `logits` [batch, seq, vocab].
Full: 4 layers, hidden 256, 4 heads, vocab 50257, 512 positions (~16 M parameters). Tiny: 2
layers, hidden 64, 2 heads, vocab 1000, 128 positions. The JAX/Flax twin is the same network with its
own seeded weights; it takes int32 token ids (JAX's integer without x64), so its routes are fed int32.

Inputs are [batch, 128] for both sizes; token ids are drawn below each size's own vocabulary
(full: 50257, tiny: 1000, through `size_inputs`).

Signal: seeded weights; embeddings N(0, 0.1) (the tied head then gives logits of spread ~1 instead
of ~sqrt(hidden)); torch's default Linear init keeps attention neither uniform nor one-hot.
task "classifier": each position's logits are next-token scores, so top-1/top-5 agreement applies.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

SEED = 50257
SEQ = 128
CONFIG = {  # layers, hidden, heads, vocab, positions
    "full": (4, 256, 4, 50257, 512),
    "tiny": (2, 64, 2, 1000, SEQ),
}
ID_HIGH = CONFIG["tiny"][3]  # the tiny vocabulary

SPEC = ModelSpec(
    name="gpt2_decoder",
    description="GPT-2-style causal decoder: token ids -> next-token logits over the vocabulary",
    task="classifier",
    inputs=(InputSpec("input_ids", (1, SEQ), "int64", "int", 0, CONFIG["full"][3], {0: "batch"}),),
    size_inputs={"tiny": (InputSpec("input_ids", (1, SEQ), "int64", "int", 0, ID_HIGH, {0: "batch"}),)},
    outputs=("logits",),
    builders={Format.TORCH: "convcheck.zoo.gpt2_decoder:build_torch",
              Format.JAX: "convcheck.zoo.gpt2_decoder:build_jax"},
    source_inputs={Format.JAX: (InputSpec("input_ids", (1, SEQ), "int32", "int", 0, ID_HIGH, {0: "batch"}),)},
    batch=1,
)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    from convcheck.zoo.transformer_blocks import torch_blocks

    layers, hidden, heads, vocab, positions = CONFIG[size]
    blocks = torch_blocks()
    torch.manual_seed(SEED)

    class Gpt2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(vocab, hidden)
            self.wpe = nn.Embedding(positions, hidden)
            nn.init.normal_(self.wte.weight, std=0.1)
            nn.init.normal_(self.wpe.weight, std=0.1)
            self.blocks = nn.ModuleList(blocks.PreLNDecoderLayer(hidden, heads, 4 * hidden) for _ in range(layers))
            self.ln_f = nn.LayerNorm(hidden, eps=1e-5)
            causal = torch.triu(torch.full((positions, positions), -10000.0), diagonal=1)
            self.register_buffer("causal", causal, persistent=False)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            s = input_ids.shape[1]
            positions = torch.arange(s, device=input_ids.device)
            x = self.wte(input_ids) + self.wpe(positions)[None]
            bias = self.causal[:s, :s][None, None]
            for block in self.blocks:
                x = block(x, bias)
            return nn.functional.linear(self.ln_f(x), self.wte.weight)  # LM head tied to wte

    return Gpt2().eval()


def build_jax(size: str) -> Any:
    from convcheck.zoo.jax_init import calibrated

    layers, hidden, heads, vocab, positions = CONFIG[size]

    def build() -> Any:
        import jax
        import jax.numpy as jnp
        from flax import nnx

        class Block(nnx.Module):
            """GPT-2 block: x + causal Attn(LN(x)); x + MLP(LN(x)), tanh-approximate GELU."""

            def __init__(self, rngs: nnx.Rngs) -> None:
                self.ln1 = nnx.LayerNorm(hidden, epsilon=1e-5, rngs=rngs)
                self.attn = nnx.MultiHeadAttention(heads, hidden, decode=False, rngs=rngs)
                self.ln2 = nnx.LayerNorm(hidden, epsilon=1e-5, rngs=rngs)
                self.fc1 = nnx.Linear(hidden, 4 * hidden, rngs=rngs)
                self.fc2 = nnx.Linear(4 * hidden, hidden, rngs=rngs)

            def __call__(self, x: Any, mask: Any) -> Any:
                y = self.ln1(x)
                x = x + self.attn(y, y, y, mask=mask)
                return x + self.fc2(jax.nn.gelu(self.fc1(self.ln2(x)), approximate=True))

        class Gpt2(nnx.Module):
            def __init__(self, rngs: nnx.Rngs) -> None:
                self.wte = nnx.Embed(vocab, hidden, embedding_init=nnx.initializers.normal(0.1), rngs=rngs)
                self.wpe = nnx.Embed(positions, hidden, embedding_init=nnx.initializers.normal(0.1), rngs=rngs)
                self.blocks = nnx.List([Block(rngs) for _ in range(layers)])
                self.ln_f = nnx.LayerNorm(hidden, epsilon=1e-5, rngs=rngs)

            def __call__(self, input_ids: Any) -> Any:
                s = input_ids.shape[1]
                x = self.wte(input_ids) + self.wpe(jnp.arange(s))[None]
                mask = nnx.make_causal_mask(input_ids)
                for block in self.blocks:
                    x = block(x, mask)
                return self.wte.attend(self.ln_f(x))  # LM head tied to wte

        return Gpt2(nnx.Rngs(SEED))

    return calibrated(build)
