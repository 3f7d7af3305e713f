"""The sums behind SNR and cosine: exact enough, alignment-proof, and cheap at LLM-vocabulary sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convcheck.validate.parity import compare_arrays, stable_sum
from convcheck.tolerance import Tolerance


def test_stable_sum_is_bit_identical_at_every_alignment_and_close_to_the_exact_sum():
    rng = np.random.default_rng(3)
    values = rng.standard_normal(300_001) ** 2
    exact = math.fsum(values.tolist())
    sums = set()
    for offset in range(8):  # the same values at eight different addresses (one float64 apart)
        buffer = np.empty(values.size + 8, dtype=np.float64)
        view = buffer[offset: offset + values.size]
        view[:] = values
        sums.add(stable_sum(view))
    assert len(sums) == 1
    assert sums.pop() == pytest.approx(exact, rel=1e-13)
    assert stable_sum(np.array([1e16, 1.0, -1e16])) == 1.0  # short arrays: math.fsum, exactly


def test_gpt2_sized_logits_are_judged_right():
    # The size every GPT-2 cell compares four times (per-value math.fsum took 2.7 s per sample here).
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((1, 128, 50257)).astype(np.float32)
    got = ref + rng.standard_normal(ref.shape).astype(np.float32) * 1e-5
    stats = compare_arrays(got, ref, Tolerance.for_precision("fp32"), classifier=True)
    assert stats["ok"] and stats["top1_agreement"] == 1.0 and stats["top5_agreement"] == 1.0
    assert 0.999999 < stats["cosine"] <= 1.0 + 1e-12


def test_top5_agreement_counts_a_reference_winner_anywhere_in_the_top_five():
    ref = np.array([[0.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    got = np.array([[0.0, 5.5, 1.0, 2.0, 9.0, 8.0, 7.0]])  # the winner (class 1) is 5th: in the top five
    assert compare_arrays(got, ref, Tolerance.for_precision("fp32"), classifier=True)["top5_agreement"] == 1.0
    got = np.array([[0.0, 0.5, 1.0, 2.0, 9.0, 8.0, 7.0]])  # 7th of 7: not
    assert compare_arrays(got, ref, Tolerance.for_precision("fp32"), classifier=True)["top5_agreement"] == 0.0
