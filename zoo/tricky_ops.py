"""tricky_ops: one small torch model built to cover ops converters get wrong, not to be useful.

Over x [batch, 8, 16]: einsum projection and einsum self-attention, topk over features, gather of
the projection at the top-k indices, scatter_add of (values x gathered) back into a zero tensor,
cumsum along the sequence, F.interpolate (linear, x2 along the sequence), torch.where (leaky
masking). Outputs: `features` [batch, 16, width] float32 and `argmax` [batch, 16] int64 (argmax
over the features of each upsampled position): an integer output, compared exactly as numbers.
Full: projection width 64, top-8; tiny: width 16, top-4.

Signal: seeded weights; features are raw (no normalisation); argmax takes `width` values per
position, so it differs across positions and inputs (checked: std and sensitivity above the test's
thresholds). A near-tie in argmax could flip under reassociation: over seeds 0-19 the smallest gap
between a position's top two features was 4e-3 (full) / 7e-3 (tiny), median ~0.1, against fp32
conversion errors of ~2e-6. At fp16 (errors ~1e-2 on features of size ~3) a flip is possible and
would show as an `argmax` mismatch: a real precision effect, so no tolerance override hides it.
"""

from __future__ import annotations

from typing import Any

from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

SEED = 4242
SEQ, FEATURES = 8, 16
CONFIG = {"full": (64, 8), "tiny": (16, 4)}  # projection width, top-k

SPEC = ModelSpec(
    name="tricky_ops",
    description="op coverage: einsum, topk, gather, scatter_add, cumsum, interpolate, where, argmax (int64 output)",
    task="regression",
    inputs=(InputSpec("x", (2, SEQ, FEATURES), "float32", "normal", 0.0, 1.0, {0: "batch"}),),
    outputs=("features", "argmax"),
    builders={Format.TORCH: "convcheck.zoo.tricky_ops:build_torch"},
    batch=2,
)


def build_torch(size: str) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F

    width, k = CONFIG[size]
    torch.manual_seed(SEED)

    class TrickyOps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Parameter(torch.randn(FEATURES, width) / FEATURES ** 0.5)

        def forward(self, x: torch.Tensor) -> tuple:
            p = torch.einsum("bsf,fw->bsw", x, self.proj)
            attn = torch.softmax(torch.einsum("bsw,btw->bst", p, p) / width ** 0.5, dim=-1)
            h = torch.einsum("bst,btw->bsw", attn, p)
            values, idx = torch.topk(h, k, dim=-1)
            picked = torch.gather(p, -1, idx)
            s = torch.zeros_like(h).scatter_add(-1, idx, values * picked)
            c = torch.cumsum(s + h, dim=1)
            up = F.interpolate(c.transpose(1, 2), scale_factor=2.0, mode="linear", align_corners=False).transpose(1, 2)
            features = torch.where(up > 0, up, 0.1 * up)
            return features, features.argmax(dim=-1)

    return TrickyOps().eval()
