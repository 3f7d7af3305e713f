"""Helpers that make seeded, untrained Keras models carry signal (see zoo/torch_init.py for why).

Keras 3 BatchNormalization updates its moving statistics as `m = m * momentum + batch * (1 - momentum)`:
with momentum 0 one training-mode call replaces them by the statistics of that batch. Dropout is
switched off for that call so the statistics are those inference will see.
"""

from __future__ import annotations

import re
import sys
import tempfile
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


#: Native start-up chatter TensorFlow writes to stderr (fd 2) on import, whatever TF_CPP_MIN_LOG_LEVEL
#: says: absl's pre-initialisation notice and info lines (oneDNN, CPU features, CUDA probing).
_BANNER = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} |W\d{4} .*(cuda|cudnn|"
                     r"cufft|cublas|TF-TRT|cpu_feature_guard|computation_placer))")


def quiet_tensorflow() -> None:
    """Import TensorFlow (and Keras) with their native start-up banners kept off the user's terminal.

    The banners are written by C++ straight to file descriptor 2, so only redirecting the descriptor
    catches them; anything else written meanwhile (a real error) is passed on."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if "tensorflow" in sys.modules:
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401 - Keras' TF backend loads a second TF library with its own banner
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [ln for ln in sink.read().decode(errors="replace").splitlines()
                    if ln.strip() and not _BANNER.match(ln) and "\x1b[" not in ln]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
