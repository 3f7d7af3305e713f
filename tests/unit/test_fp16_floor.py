"""The fp16 floor: the source framework's own fp16 run against its fp32 reference (torch CPU half, a
Keras float16 twin), measured on the reference's own inputs and checked against an independent
computation of the same thing."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from convcheck.plan import RunSettings
from convcheck.reference import compute_reference, fp16_floor
from convcheck.registry import models
from convcheck.types import Format
from convcheck.validate.parity import snr_db

pytestmark = pytest.mark.framework


def test_torch_fp16_floor_is_the_models_own_half_precision_error(tmp_path):
    import torch

    spec = models.get("cnn_small")
    settings = RunSettings(tmp_path, size="tiny", samples=2)
    ref = compute_reference(settings, spec, Format.TORCH)
    found = fp16_floor(settings, spec, ref, Format.TORCH)
    assert found["reference"] == "torch float16" and "error" not in found
    model = copy.deepcopy(_built(spec, Format.TORCH)).half().eval()
    with torch.no_grad():
        worst = min(snr_db(r["logits"].astype(np.float64).ravel(),
                           np.abs(model(torch.from_numpy(f["image"]).half()).double().numpy().ravel()
                                  - r["logits"].astype(np.float64).ravel()))
                    for f, r in zip(ref.feeds, ref.outputs))
    assert found["per_output"]["logits"]["snr_db"] == pytest.approx(worst, abs=1e-6)
    assert 40 < worst < 90  # fp16's rounding on a small CNN: real, and far from fp32's


def test_keras_fp16_floor_runs_a_float16_twin(tmp_path):
    spec = models.get("mlp_tabular")
    settings = RunSettings(tmp_path, size="tiny", samples=2)
    ref = compute_reference(settings, spec, Format.KERAS)
    found = fp16_floor(settings, spec, ref, Format.KERAS)
    assert found["reference"] == "keras float16" and "error" not in found, found
    snr = found["per_output"]["logits"]["snr_db"]
    assert 40 < snr < 90, snr


def _built(spec, fmt):
    from convcheck.model_spec import materialize

    return materialize(spec.source_artifact(fmt, "tiny"))
