"""mlp_tabular: a fraud-detection style MLP over 30 standardised transaction features.

Shaped like the models trained on card-transaction data (PCA components, time, amount): dense
layers with BatchNorm and ReLU, four output logits (legitimate, card testing, account takeover,
friendly fraud) rather than one fraud score, so that a parity check has more than one unit of
evidence per row.

Signal: weights are seeded Kaiming-uniform (torch's default), BatchNorm statistics are recalibrated on
four seeded batches drawn like the inputs, and the model returns logits, not softmax probabilities
(softmax saturates). tests/unit/test_zoo_signal.py asserts the logits vary across rows and inputs.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.zoo.base import InputSpec, ModelSpec

N_FEATURES = 30
N_CLASSES = 4
HIDDEN = {"full": (256, 256, 128), "tiny": (32, 16)}
SEED = 20261124

SPEC = ModelSpec(
    name="mlp_tabular",
    description="fraud-detection MLP: 30 float features -> 4 class logits (BatchNorm, ReLU)",
    task="classifier",
    inputs=(
        InputSpec("features", (32, N_FEATURES), "float32", "normal", 0.0, 1.0, {0: "batch"}),
    ),
    outputs=("logits",),
    builders={Format.TORCH: "convcheck.zoo.mlp_tabular:build_torch"},
    batch=32,
)


def build_torch(size: str) -> Any:
    import numpy as np
    import torch
    from torch import nn

    from convcheck.zoo.torch_init import recalibrate_batchnorm

    torch.manual_seed(SEED)
    layers: list[nn.Module] = []
    width = N_FEATURES
    for hidden in HIDDEN[size]:
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.1)]
        width = hidden
    layers.append(nn.Linear(width, N_CLASSES))
    model = nn.Sequential(*layers)

    def batch(i: int) -> tuple:
        x = np.random.default_rng(SEED + 1000 + i).normal(size=(256, N_FEATURES)).astype("float32")
        return (torch.from_numpy(x),)

    recalibrate_batchnorm(model, batch)
    return model
