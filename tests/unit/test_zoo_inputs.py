"""Input declarations: value ranges, padded masks, per-size and per-framework inputs."""

from __future__ import annotations

import numpy as np

from convcheck.registry import models
from convcheck.types import Format
from convcheck.model_spec import InputSpec


def test_mask_rows_are_ones_then_zeros_with_lengths_in_range():
    spec = InputSpec("attention_mask", (64, 40), "int64", "mask", 0.5, 1.0)
    mask = spec.sample(np.random.default_rng(0))
    assert mask.dtype == np.int64 and set(np.unique(mask)) <= {0, 1}
    lengths = mask.sum(axis=1)
    assert lengths.min() >= 20 and lengths.max() <= 40 and len(set(lengths)) > 5  # padded, and varied
    for row, n in zip(mask, lengths):
        assert row[:n].all() and not row[n:].any()


def test_token_ids_stay_below_each_sizes_vocabulary():
    bert = models.get("bert_encoder")
    tiny = bert.feeds(0, size="tiny")["input_ids"]
    full = np.concatenate([bert.feeds(s, size="full")["input_ids"] for s in range(4)])
    assert tiny.max() < 1000 and full.max() >= 1000 and full.max() < 30522


def test_keras_twin_takes_nhwc_and_torch_nchw():
    cnn = models.get("cnn_small")
    assert cnn.feeds(0, fmt=Format.TORCH)["image"].shape == (1, 3, 64, 64)
    assert cnn.feeds(0, fmt=Format.KERAS)["image"].shape == (1, 64, 64, 3)


def test_samples_are_seeded():
    spec = models.get("mlp_tabular")
    assert np.array_equal(spec.feeds(3)["features"], spec.feeds(3)["features"])
    assert not np.array_equal(spec.feeds(3)["features"], spec.feeds(4)["features"])
