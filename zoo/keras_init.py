"""Helpers that make seeded, untrained Keras models carry signal (see zoo/torch_init.py for why).

Keras 3 BatchNormalization updates its moving statistics as `m = m * momentum + batch * (1 - momentum)`:
with momentum 0 one training-mode call replaces them by the statistics of that batch. Dropout is
switched off for that call so the statistics are those inference will see.
"""

from __future__ import annotations

from typing import Any


def recalibrate_batchnorm(model: Any, batch: Any) -> None:
    import keras

    norms = [layer for layer in _layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in _layers(model) if isinstance(layer, keras.layers.Dropout)]
    saved_momentum = [bn.momentum for bn in norms]
    saved_rate = [d.rate for d in drops]
    for bn in norms:
        bn.momentum = 0.0
    for d in drops:
        d.rate = 0.0
    model(batch, training=True)
    for bn, m in zip(norms, saved_momentum):
        bn.momentum = m
    for d, r in zip(drops, saved_rate):
        d.rate = r


def _layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_layers(layer))
    return found


def quiet_tensorflow() -> None:
    """TensorFlow prints oneDNN/CUDA banners on import: keep them out of convcheck's output."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
