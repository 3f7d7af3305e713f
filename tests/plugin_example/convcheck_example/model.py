"""example_mlp: a small seeded torch MLP, the plugin's own zoo model."""

from __future__ import annotations

from typing import Any

from convcheck.model_spec import InputSpec, ModelSpec
from convcheck.types import Format

SPEC = ModelSpec(
    name="example_mlp",
    description="plugin example: 16 float features -> 3 logits (two Linear+GELU layers)",
    task="classifier",
    inputs=(InputSpec("x", (8, 16), "float32", "normal", 0.0, 1.0, {0: "batch"}),),
    outputs=("logits",),
    builders={Format.TORCH: "convcheck_example.model:build_torch"},
    batch=8,
)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(7)
    width = {"full": 64, "tiny": 32}[size]
    model = nn.Sequential(nn.Linear(16, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 3))

    return model.eval()
