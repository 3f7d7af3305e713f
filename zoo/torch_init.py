"""Helpers that make seeded, untrained torch models carry signal.

Random initialisation often collapses a deep network's output to (nearly) a constant, and a parity
check on a constant proves nothing. Recalibrating BatchNorm running statistics on a few seeded
random batches fixed every case measured (shared NOTES-frameworks.md).
"""

from __future__ import annotations

from typing import Any, Callable


def recalibrate_batchnorm(model: Any, make_batch: Callable[[int], tuple], batches: int = 4) -> None:
    """Re-estimate BatchNorm running mean/var as a cumulative average over `batches` seeded batches."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: every batch counts equally
    model.train()
    with torch.no_grad():
        for i in range(batches):
            model(*make_batch(i))
    model.eval()
