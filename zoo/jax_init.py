"""What the JAX/Flax twins share: seeded NNX modules in inference form, and BatchNorm statistics
recalibrated on seeded batches drawn like the inputs (as the torch and Keras twins do), so that every
output carries signal rather than the identity statistics a fresh BatchNorm holds."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def quiet_jax() -> None:
    """CPU only and no TPU/GPU probing messages: the zoo's JAX twins run on the host."""
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def calibrated(build: Callable[[], Any]) -> Any:
    """`build()` under quiet JAX settings; the module comes back in inference form (`eval()`)."""
    quiet_jax()
    model = build()
    model.eval()
    return model


def seeded_batch(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def recalibrate_batchnorm(model: Any, batch: np.ndarray) -> Any:
    """Every BatchNorm's statistics from one seeded batch, as the Keras twins are calibrated: one forward
    pass in batch-statistics mode with momentum 0 (each layer normalises by, and keeps, the statistics of
    its own input), then back to inference form. Dropout stays off during it."""
    from flax import nnx

    norms = [m for _, m in model.iter_modules() if isinstance(m, nnx.BatchNorm)]
    saved = [bn.momentum for bn in norms]
    for bn in norms:
        bn.momentum = 0.0
    model.eval()
    model.set_attributes(use_running_average=False, raise_if_not_found=False)
    model(batch)
    for bn, momentum in zip(norms, saved):
        bn.momentum = momentum
    model.eval()
    return model
