"""Every zoo model's reference outputs carry signal: a parity check on a constant proves nothing.

Thresholds: within each output, the standard deviation across all values is at least MIN_STD;
across two seeded inputs, the outputs differ by at least MIN_SENSITIVITY relative to their size.
"""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.registry import models
from convcheck.types import Format, Target
from convcheck.validate.parity import signal_problem

MIN_STD = 1e-2
MIN_SENSITIVITY = 0.05

CASES = [(name, fmt, size) for name, spec in models.items() for fmt in spec.sources for size in spec.sizes]


@pytest.mark.framework
@pytest.mark.parametrize("name, fmt, size", CASES, ids=[f"{n}-{f.value}-{s}" for n, f, s in CASES])
def test_reference_outputs_vary(name, fmt, size):
    from convcheck.registry import runtimes
    from convcheck.routes import sources

    spec = models.get(name)
    art = spec.source_artifact(fmt, size)
    art.metadata.update(input_names=[i.name for i in spec.inputs_for(fmt, size)], output_names=list(spec.outputs))
    rt = runtimes.get(sources()[fmt])(Target(sources()[fmt]))
    rt.activate(art)
    y1, y2 = rt.infer(spec.feeds(0, fmt=fmt, size=size)), rt.infer(spec.feeds(1, fmt=fmt, size=size))
    for out in spec.outputs:
        assert signal_problem(y1[out]) is None, f"{name}/{out}: {signal_problem(y1[out])}"
        assert float(np.std(y1[out])) >= MIN_STD, f"{name}/{out} barely varies"
        sensitivity = np.linalg.norm(y1[out] - y2[out]) / np.linalg.norm(y1[out])
        assert sensitivity >= MIN_SENSITIVITY, f"{name}/{out} hardly depends on its input ({sensitivity:.3g})"


def test_tabular_is_a_torch_model():
    assert Format.TORCH in models.get("mlp_tabular").sources
