"""bert_encoder: a small BERT-style encoder for sequence classification.

Token + learned position embeddings, LayerNorm, post-LN encoder layers (softmax self-attention with
an additive padding mask from `attention_mask`, exact-GELU FFN), a BERT pooler (tanh Dense over the
first token) and a classification head. Outputs: `logits` (3 classes) and `last_hidden_state`
[batch, seq, hidden], so a parity check sees every token, not only three numbers.
Full: 4 layers, hidden 256, 4 heads, vocab 30522, 512 positions (~11 M parameters). Tiny: 2 layers,
hidden 64, 2 heads, vocab 1000, 128 positions.

Inputs are [batch, 128] for both sizes; token ids are drawn below each size's own vocabulary
(full: 30522, tiny: 1000, through `size_inputs`).

The Keras twin is the same architecture in Keras 3 layers (MultiHeadAttention, LayerNormalization,
Dense(activation="gelu"), i.e. exact GELU: tf2onnx cannot convert its `Erfc`, a real finding).

`attention_mask` is padded like a real batch (InputSpec "mask": each row keeps 50-100% of its
tokens, the tail is 0), so the masking path is exercised, not folded into a constant.

Signal: seeded weights, embeddings N(0, 1) (torch) so attention scores spread; logits, not softmax.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

SEED = 30522
N_CLASSES = 3
SEQ = 128
CONFIG = {  # layers, hidden, heads, ffn, vocab, positions
    "full": (4, 256, 4, 1024, 30522, 512),
    "tiny": (2, 64, 2, 128, 1000, SEQ),
}
ID_HIGH = CONFIG["tiny"][4]  # the tiny vocabulary


SPEC = ModelSpec(
    name="bert_encoder",
    description="BERT-style encoder: token ids + attention mask -> 3 class logits and last_hidden_state",
    task="classifier",
    inputs=(InputSpec("input_ids", (1, SEQ), "int64", "int", 0, CONFIG["full"][4], {0: "batch"}),
            # Padded like real batches: each row keeps 50-100% of its tokens, the rest is masked out.
            InputSpec("attention_mask", (1, SEQ), "int64", "mask", 0.5, 1.0, {0: "batch"})),
    size_inputs={"tiny": (InputSpec("input_ids", (1, SEQ), "int64", "int", 0, ID_HIGH, {0: "batch"}),
                          InputSpec("attention_mask", (1, SEQ), "int64", "mask", 0.5, 1.0, {0: "batch"}))},
    outputs=("logits", "last_hidden_state"),
    builders={Format.TORCH: "convcheck.zoo.bert_encoder:build_torch",
              Format.KERAS: "convcheck.zoo.bert_encoder:build_keras"},
    batch=1,
)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    from convcheck.zoo.transformer_blocks import torch_blocks

    layers, hidden, heads, ffn, vocab, positions = CONFIG[size]
    blocks = torch_blocks()
    torch.manual_seed(SEED)

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(vocab, hidden)
            self.pos = nn.Embedding(positions, hidden)
            self.ln = nn.LayerNorm(hidden, eps=1e-12)
            self.layers = nn.ModuleList(blocks.PostLNEncoderLayer(hidden, heads, ffn) for _ in range(layers))
            self.pooler = nn.Linear(hidden, hidden)
            self.classifier = nn.Linear(hidden, N_CLASSES)
            # Wider than torch's default (std ~0.6/sqrt(hidden)): with 3 logits per row the default
            # gave a tiny model's logits a spread of only 0.016.
            nn.init.normal_(self.classifier.weight, std=3.0 / hidden ** 0.5)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = self.ln(self.tok(input_ids) + self.pos(positions)[None])
            bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
            for layer in self.layers:
                x = layer(x, bias)
            pooled = torch.tanh(self.pooler(x[:, 0]))
            return self.classifier(pooled), x

    return Bert().eval()


def build_keras(size: str) -> Any:
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from convcheck.zoo.transformer_blocks import keras_encoder_layer, keras_position_embedding

    layers, hidden, heads, ffn, vocab, _ = CONFIG[size]
    seq = SEQ
    keras.utils.set_random_seed(SEED)
    ids = keras.Input((seq,), dtype="int64", name="input_ids")
    mask_in = keras.Input((seq,), dtype="int64", name="attention_mask")
    x = keras.layers.Embedding(vocab, hidden, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
                               name="tok")(ids)
    x = keras_position_embedding()(seq, hidden, name="pos")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-12, name="emb_ln")(x)
    mask = keras.ops.cast(keras.ops.expand_dims(mask_in, 1), "bool")  # [batch, 1, seq]
    for i in range(layers):
        x = keras_encoder_layer(x, mask, hidden, heads, ffn, name=f"layer{i}")
    pooled = keras.layers.Dense(hidden, activation="tanh", name="pooler")(x[:, 0])
    logits = keras.layers.Dense(N_CLASSES, name="logits")(pooled)
    return keras.Model([ids, mask_in], [logits, x], name="bert_encoder")
