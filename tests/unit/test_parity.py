"""Parity statistics, cross-checked against independently written numpy and polygraphy's comparator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convcheck.validate.parity import REL_EPS, Tolerance, compare_arrays, signal_problem, summarize

FP32 = Tolerance.for_precision("fp32")


def test_statistics_match_independent_numpy():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(16, 10)).astype(np.float32)
    act = ref + rng.normal(scale=1e-5, size=ref.shape).astype(np.float32)
    s = compare_arrays(act, ref, FP32, classifier=True)
    d = act.astype(np.float64) - ref.astype(np.float64)
    assert s["max_abs"] == pytest.approx(np.max(np.abs(d)))
    assert s["mean_abs"] == pytest.approx(np.mean(np.abs(d)))
    assert s["rms"] == pytest.approx(np.sqrt(np.mean(d * d)))
    # max_rel's epsilon is relative to the output's peak |ref|, not an absolute 1e-6.
    peak = np.abs(ref.astype(np.float64)).max()
    assert s["max_rel"] == pytest.approx(np.max(np.abs(d) / (np.abs(ref.astype(np.float64)) + REL_EPS * peak)))
    cos = np.sum(act.astype(np.float64) * ref) / (np.linalg.norm(act.astype(np.float64)) * np.linalg.norm(ref.astype(np.float64)))
    assert s["cosine"] == pytest.approx(cos, abs=1e-12)
    assert s["snr_db"] == pytest.approx(10 * math.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum(d * d)))
    assert s["top1_agreement"] == 1.0 and s["top5_agreement"] == 1.0
    assert s["ok"]


@pytest.mark.framework
def test_statistics_agree_with_polygraphy_comparator():
    pytest.importorskip("polygraphy")
    from polygraphy.comparator import SimpleCompareFunc
    from polygraphy.comparator.struct import IterationResult

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(4, 8)).astype(np.float32)
    act = ref + np.float32(3e-4)
    ours = compare_arrays(act, ref, Tolerance(atol=1e-5, rtol=0.0))
    func = SimpleCompareFunc(atol=1e-5, rtol=0.0, check_error_stat="max")
    result = func(IterationResult({"y": act}, runner_name="a"), IterationResult({"y": ref}, runner_name="b"))
    assert bool(result["y"]) is ours["ok"] is False
    assert bool(SimpleCompareFunc(atol=ours["max_abs"] * 1.0001, rtol=0.0)(
        IterationResult({"y": act}, runner_name="a"), IterationResult({"y": ref}, runner_name="b"))["y"])


def test_min_passing_atol_is_the_smallest_that_passes():
    ref = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    act = ref + np.array([2e-3, 0.0, -1e-3], dtype=np.float32)
    s = compare_arrays(act, ref, FP32)
    assert not s["ok"]
    assert np.allclose(act, ref, atol=s["min_atol"] * 1.0001, rtol=FP32.rtol)
    assert not np.allclose(act, ref, atol=s["min_atol"] * 0.99, rtol=FP32.rtol)


def test_nan_where_reference_is_finite_is_a_mismatch():
    ref = np.ones((2, 3), dtype=np.float32) * np.arange(3)
    act = ref.copy()
    act[1, 2] = np.nan
    s = compare_arrays(act, ref, FP32)
    assert not s["ok"] and "non-finite" in s["problem"]


def test_shape_mismatch_is_reported():
    s = compare_arrays(np.zeros((2, 3)), np.zeros((3, 2)), FP32)
    assert not s["ok"] and "shape" in s["problem"]


@pytest.mark.parametrize("ref, why", [
    (np.zeros((4, 4), np.float32), "all zeros"),
    (np.full((4, 4), 0.25, np.float32), "constant"),
    (np.array([np.nan, np.inf], np.float32), "NaN"),
    (np.zeros((0,), np.float32), "empty"),
])
def test_references_without_signal_are_flagged(ref, why):
    assert why in signal_problem(ref)


def test_signal_is_judged_over_every_sample_and_relative_to_scale():
    """Regressions: Greater(x, 0) all True in one sample was vacuous; x*1e-9 was "constant"; a NaN
    beside finite values made the cell vacuous although a route must reproduce it."""
    assert signal_problem([np.array([[True, True, True]]), np.array([[True, False, True]])]) is None
    assert "constant" in signal_problem([np.array([[True, True, True]]), np.array([[True, True, True]])])
    tiny = np.random.default_rng(0).normal(size=(1, 8)) * 1e-9
    assert signal_problem(tiny.astype(np.float32)) is None
    assert signal_problem(np.array([1.0, np.nan, 3.0], np.float32)) is None
    assert "constant" in signal_problem(np.full((2, 3), 1e-9, np.float32))


def test_reference_with_signal_passes_the_check():
    assert signal_problem(np.array([0.1, 0.2, 0.3], np.float32)) is None


def test_summary_keeps_the_worst_sample():
    ref = np.linspace(-1, 1, 20, dtype=np.float32)
    samples = [{"y": compare_arrays(ref + e, ref, FP32)} for e in (1e-7, 5e-4, 1e-6)]
    p = summarize(samples, FP32)
    assert p["worst_sample"] == 1
    assert p["max_abs"] == pytest.approx(5e-4, rel=1e-3)
    assert p["samples"] == 3 and not p["ok"]
    exact = summarize([{"y": compare_arrays(ref, ref, FP32)}], FP32)
    assert exact["snr_db"] is None and exact["exact"] is True and exact["ok"]


def test_where_the_reference_is_nan_the_route_must_be_nan_too_and_stats_stay_finite():
    ref = np.array([[0.5, np.nan, -1.0, 2.0]], dtype=np.float32)
    same = ref + np.array([[1e-6, 0, 0, 0]], dtype=np.float32)
    stats = compare_arrays(same, ref, Tolerance(1e-4, 1e-3), classifier=True)
    assert stats["ok"] and stats["reference_nonfinite"] == 1
    assert math.isclose(stats["max_abs"], 1e-6, rel_tol=0.1)  # over the finite positions, not NaN or 0
    assert "top1_agreement" not in stats  # argmax over a NaN row means nothing
    filled = np.nan_to_num(ref)
    stats = compare_arrays(filled, ref, Tolerance(1e-4, 1e-3))
    assert not stats["ok"] and "where the reference is NaN" in stats["problem"]


def test_a_single_value_output_is_not_called_constant():
    # One score per sample at batch 1: only the across-samples check can judge it.
    assert signal_problem(np.array([[0.7]], dtype=np.float32)) is None
    assert signal_problem(np.array([[np.inf]], dtype=np.float32)) is not None


def test_top1_agreement_is_the_share_of_rows_over_all_samples():
    tol = Tolerance(1e-4, 1e-3)
    ref = np.array([[0.0, 1.0, 0.5]], dtype=np.float32)
    flipped = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    samples = [{"y": compare_arrays(ref, ref, tol, classifier=True)} for _ in range(3)]
    samples.append({"y": compare_arrays(flipped, ref, tol, classifier=True)})
    assert summarize(samples, tol)["top1_agreement"] == pytest.approx(0.75)


def test_statistics_do_not_overflow_on_huge_float64_values():
    """The ONNX backend tests ship float64 inputs of magnitude 1e223: squared, they overflowed to inf
    and the PSNR's log10(0) was an internal error."""
    ref = np.array([[1.0, 9.0e223, 1.0], [2.0, 3.0, 4.0]])
    stats = compare_arrays(ref.copy(), ref, FP32)
    assert stats["ok"] and stats["snr_db"] == math.inf
    off = ref.copy()
    off[0, 1] *= 1 + 1e-3
    stats = compare_arrays(off, ref, FP32)
    assert stats["snr_db"] == pytest.approx(60.0, abs=0.01) and stats["cosine"] == pytest.approx(1.0)
    assert math.isfinite(stats["psnr_db"]) and math.isfinite(stats["rms"])
