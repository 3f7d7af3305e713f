"""Tolerance profiles as data, how each decides, the fp64 noise floor, and the CLI overrides."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convcheck.compare import compare_outputs
from convcheck.tolerance import PROFILES, Tolerance
from convcheck.validate.parity import compare_arrays
from convcheck.model_spec import InputSpec, ModelSpec


def test_every_profile_is_data_with_its_reason():
    for name in ("fp32", "fp16", "int8", "integer_outputs"):
        assert len(PROFILES[name]["why"]) > 80, name
    assert PROFILES["fp32"]["check"] == "elementwise" and PROFILES["fp32"]["noise_floor_factor"] >= 1
    assert PROFILES["fp16"]["min_snr_db"] > PROFILES["int8"]["min_snr_db"]


def test_integer_outputs_must_match_exactly():
    ref = np.array([3, 1, 4, 1, 5], dtype=np.int64)
    one_off = ref.copy()
    one_off[2] = 9
    loose = Tolerance(10.0, 10.0)  # no float tolerance makes a different index right
    stats = compare_arrays(one_off, ref, loose)
    assert not stats["ok"] and stats["exact_match"] == pytest.approx(0.8)
    assert compare_arrays(ref.copy(), ref, loose)["exact_match"] == 1.0


def test_reduced_precision_is_judged_by_snr_not_by_one_outlier():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=10_000).astype(np.float32)
    noisy = ref + rng.normal(scale=1e-3, size=ref.shape).astype(np.float32)  # ~60 dB
    noisy[17] += 0.5  # one outlier: fails any sane elementwise bound, changes nothing overall
    fp16 = Tolerance.for_precision("fp16")
    stats = compare_arrays(noisy, ref, fp16)
    assert stats["ok"] and stats["snr_db"] > fp16.min_snr_db
    assert stats["max_abs"] > fp16.atol + fp16.rtol * abs(ref[17])
    garbage = ref + rng.normal(scale=0.3, size=ref.shape).astype(np.float32)  # ~10 dB
    bad = compare_arrays(garbage, ref, fp16)
    assert not bad["ok"] and "SNR" in bad["problem"]
    # PSNR against the reference's peak, written independently
    rms = np.sqrt(np.mean((garbage.astype(np.float64) - ref) ** 2))
    assert bad["psnr_db"] == pytest.approx(20 * math.log10(np.abs(ref).max() / rms), rel=1e-9)


def _spec() -> ModelSpec:
    return ModelSpec("m", "test", "regression", (InputSpec("x", (1, 4)),), ("y",))


def test_noise_floor_raises_fp32_atol_and_says_so():
    ref = [{"y": np.full((1, 100), 0.01, dtype=np.float32)}]
    off = [{"y": ref[0]["y"] + np.float32(5e-4)}]  # beyond 1e-4 + 1e-3 * 0.01
    # The source itself errs by 1e-4 on an output of 0.01 against float64 (SNR 40 dB).
    floor = {"reference": "torch float64", "max_abs": 1e-4,
             "per_output": {"y": {"max_abs": 1e-4, "max_rel": 1e-2, "snr_db": 40.0}}}
    without = compare_outputs(_spec(), off, ref, "fp32")
    assert not without["ok"] and without["noise_floor"] is None
    fair = compare_outputs(_spec(), off, ref, "fp32", floor)
    factor = PROFILES["fp32"]["noise_floor_factor"]
    assert fair["ok"] and fair["tolerance"]["raised_by_noise_floor"]["y"] == pytest.approx(factor * 1e-4)
    assert fair["tolerance"]["snr_lowered_by_noise_floor"]["y"] == pytest.approx(40.0 - 20.0)
    assert fair["noise_floor"] == floor


def test_an_fp16_cell_is_not_blamed_for_what_fp16_costs_the_source_itself():
    rng = np.random.default_rng(0)
    ref = [{"y": rng.normal(size=(1, 100)).astype(np.float32)}]
    off = [{"y": ref[0]["y"] + rng.normal(scale=0.022, size=(1, 100)).astype(np.float32)}]  # about 33 dB
    margin = PROFILES["fp16"]["fp16_floor_margin_db"]

    def floor(snr):
        return {"reference": "torch float16", "per_output": {"y": {"max_abs": 0.05, "snr_db": snr}}}

    # Without a floor, or where the source in fp16 keeps 50 dB, the fixed 40 dB bound decides: mismatch.
    for half in (None, floor(50.0), floor(None), {"reference": "torch float16", "error": "no half kernels"}):
        judged = compare_outputs(_spec(), off, ref, "fp16", fp16_floor=half)
        assert not judged["ok"] and "snr_lowered_by_fp16_floor" not in judged["tolerance"], half
    # The source itself loses 31.4 dB in fp16 (torch's own ResNet-50): the route's 33 dB is no worse.
    deep = compare_outputs(_spec(), off, ref, "fp16", fp16_floor=floor(31.4))
    assert deep["ok"] and deep["tolerance"]["snr_lowered_by_fp16_floor"]["y"] == pytest.approx(31.4 - margin)
    assert deep["fp16_floor"] == floor(31.4)
    # ... but a route far worse than the source's own fp16 (a wrong op, ~10 dB) still fails.
    wrong = [{"y": ref[0]["y"] + rng.normal(scale=0.3, size=(1, 100)).astype(np.float32)}]
    assert not compare_outputs(_spec(), wrong, ref, "fp16", fp16_floor=floor(31.4))["ok"]
    # An fp32 cell has no fp16 floor to apply.
    assert "fp16_floor" not in compare_outputs(_spec(), ref, ref, "fp32", fp16_floor=floor(31.4))


def test_cli_style_override_replaces_the_profile():
    ref = [{"y": np.ones((1, 100), dtype=np.float32)}]
    off = [{"y": ref[0]["y"] + np.float32(1e-6)}]
    assert compare_outputs(_spec(), off, ref, "int8")["ok"]
    strict = compare_outputs(_spec(), off, ref, "int8", override={"atol": 1e-9, "rtol": 0.0})
    assert not strict["ok"] and strict["tolerance"]["profile"] == "--atol/--rtol"


@pytest.mark.slow
@pytest.mark.framework
def test_cli_tolerance_and_batch_options(cli, tmp_path):
    proc = cli("matrix", "--models", "mlp_tabular", "--atol", "1e-3", cwd=tmp_path)
    assert proc.returncode == 2 and "--atol and --rtol go together" in proc.stderr
    proc = cli("matrix", "--models", "mlp_tabular", "--batch", "1,x", cwd=tmp_path)
    assert proc.returncode == 2 and "--batch" in proc.stderr
    # an impossible bound turns a faithful route into a mismatch: the override is really applied
    proc = cli("matrix", "--models", "mlp_tabular", "--routes", "torch/onnx/ort", "--size", "tiny", "--samples", "2",
               "--bench-seconds", "0.01", "--bench-iters", "3", "--atol", "0", "--rtol", "0", "--batch", "1,8",
               "--out", str(tmp_path / "o"), cwd=tmp_path)
    import json

    cell = json.loads((tmp_path / "o" / "results.json").read_text())["cells"][0]
    assert proc.returncode == 1 and cell["status"] == "mismatch", cell["error"]
    assert cell["parity"]["noise_floor"]["reference"] == "torch float64"
    assert [b["batch"] for b in cell["batches"]["per_batch"]] == [1, 8]
    assert all(b["throughput_per_s"] > 0 for b in cell["batches"]["per_batch"])
    assert cell["latency_ms"]["threads"] >= 1 and cell["latency_ms"]["cv"] >= 0
