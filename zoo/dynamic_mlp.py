"""dynamic_mlp: a per-token MLP over [batch, seq, features] whose batch AND sequence axes are dynamic.

Two residual blocks, each: LayerNorm, Linear -> GELU -> Linear per token, plus a sequence-context
term (the mean over the sequence axis, projected and broadcast back), then a per-token head of 8
scores. The mean makes the dynamic `seq` axis a reduction axis, not only a pass-through one, so
an exporter that specialises it to the example length is caught when shapes change.
Full: hidden 512; tiny: hidden 64. Example input [2, 24, 32] (batch 2: the dynamo exporter
specialises dimensions of size 1). torch only.

Signal: seeded weights with torch's default init; raw per-token scores (no softmax).
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

SEED = 2424
FEATURES = 32
N_OUT = 8
HIDDEN = {"full": 512, "tiny": 64}

SPEC = ModelSpec(
    name="dynamic_mlp",
    description="per-token MLP with sequence context: [batch, seq, 32] -> [batch, seq, 8], batch and seq dynamic",
    task="regression",
    inputs=(InputSpec("tokens", (2, 24, FEATURES), "float32", "normal", 0.0, 1.0, {0: "batch", 1: "seq"}),),
    outputs=("token_scores",),
    builders={Format.TORCH: "convcheck.zoo.dynamic_mlp:build_torch"},
    batch=2,
)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    hidden = HIDDEN[size]
    torch.manual_seed(SEED)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(FEATURES)
            self.mlp = nn.Sequential(nn.Linear(FEATURES, hidden), nn.GELU(), nn.Linear(hidden, FEATURES))
            self.context = nn.Linear(FEATURES, FEATURES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.norm(x)
            return x + self.mlp(h) + self.context(h.mean(dim=1, keepdim=True))

    model = nn.Sequential(Block(), Block(), nn.LayerNorm(FEATURES), nn.Linear(FEATURES, N_OUT))
    return model.eval()
