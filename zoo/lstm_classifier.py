"""lstm_classifier: a text classifier, token ids -> embedding -> LSTM -> 5 class logits.

Full: vocab 20000, embedding 128, two stacked LSTM layers of 256 units (~3.4 M parameters). Tiny:
vocab 1000, embedding 32, one LSTM layer of 32 units. Logits from the last layer's final hidden
state. Inputs are [batch, 64] for both sizes with ids below each size's vocabulary (`size_inputs`).

The Keras twin uses `keras.layers.LSTM` with its defaults (no `unroll=True`): TFLite needs Select
TF (Flex) ops for it, TVM's ONNX frontend has no LSTM, TVM's from_exported_program computes wrong
numbers on it. Those are the findings this model exists to show; none is designed away.

Signal: seeded weights, embeddings N(0, 1); the classifier's weights are N(0, 3/sqrt(units))
because LSTM outputs are small (|h| < 1) and torch's default head gave logits of spread ~0.05.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

SEED = 1997
SEQ = 64
N_CLASSES = 5
CONFIG = {"full": (20000, 128, 256, 2), "tiny": (1000, 32, 32, 1)}  # vocab, embedding, units, layers
ID_HIGH = CONFIG["tiny"][0]  # the tiny vocabulary

SPEC = ModelSpec(
    name="lstm_classifier",
    description="LSTM text classifier: token ids -> embedding -> LSTM -> 5 class logits",
    task="classifier",
    inputs=(InputSpec("input_ids", (1, SEQ), "int64", "int", 0, CONFIG["full"][0], {0: "batch"}),),
    size_inputs={"tiny": (InputSpec("input_ids", (1, SEQ), "int64", "int", 0, ID_HIGH, {0: "batch"}),)},
    outputs=("logits",),
    builders={Format.TORCH: "convcheck.zoo.lstm_classifier:build_torch",
              Format.KERAS: "convcheck.zoo.lstm_classifier:build_keras"},
    batch=1,
)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    vocab, emb, units, layers = CONFIG[size]
    torch.manual_seed(SEED)

    class LstmClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, emb)
            self.lstm = nn.LSTM(emb, units, num_layers=layers, batch_first=True)
            self.head = nn.Linear(units, N_CLASSES)
            nn.init.normal_(self.head.weight, std=3.0 / units ** 0.5)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            _, (h_n, _) = self.lstm(self.embed(input_ids))
            return self.head(h_n[-1])

    return LstmClassifier().eval()


def build_keras(size: str) -> Any:
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    vocab, emb, units, layers = CONFIG[size]
    keras.utils.set_random_seed(SEED)
    ids = keras.Input((SEQ,), dtype="int64", name="input_ids")
    x = keras.layers.Embedding(vocab, emb, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0))(ids)
    for i in range(layers):
        x = keras.layers.LSTM(units, return_sequences=i < layers - 1, name=f"lstm{i}")(x)
    head = keras.layers.Dense(N_CLASSES, name="logits",
                              kernel_initializer=keras.initializers.RandomNormal(stddev=3.0 / units ** 0.5))
    return keras.Model(ids, head(x), name="lstm_classifier")
