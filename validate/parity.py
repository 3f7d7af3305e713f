"""Numerical parity: does the converted model compute the same function as its source?

Statistics per output, worst sample counts. Tolerance profiles are data
(validate/data/tolerances.json), keyed by precision, each with the reasoning behind it. A reference output that carries no signal (constant, all-zero, non-finite) makes the
comparison `vacuous`: a check on a constant proves nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

def _load_profiles() -> dict[str, dict[str, Any]]:
    from importlib.resources import files

    return json.loads(files("convcheck.validate").joinpath("data/tolerances.json").read_text())


#: Tolerance profiles per precision, as data with the reasoning beside each (validate/data/tolerances.json).
PROFILES: dict[str, dict[str, Any]] = _load_profiles()
#: Elementwise bounds per precision (reported as min_passing for every profile; decisive for fp32).
TOLERANCES: dict[str, dict[str, float]] = {k: {"atol": v["atol"], "rtol": v["rtol"]}
                                           for k, v in PROFILES.items() if "atol" in v}
#: max_rel divides by |r| + REL_EPS so that zeros in the reference do not make it infinite.
REL_EPS = 1e-6
#: A reference output whose values span less than this (relative to its magnitude) is constant.
CONSTANT_SPREAD = 1e-7


@dataclass
class Tolerance:
    """What a cell's outputs are held to. `check` says which bound decides: "elementwise"
    (|a - r| <= atol + rtol*|r| everywhere) or "snr" (snr_db >= min_snr_db); integer outputs are
    always compared exactly."""

    atol: float
    rtol: float
    check: str = "elementwise"
    min_snr_db: float | None = None

    @classmethod
    def for_precision(cls, precision: str) -> "Tolerance":
        profile = PROFILES[precision]
        return cls(profile["atol"], profile["rtol"], profile["check"], profile.get("min_snr_db"))


def signal_problem(ref: np.ndarray) -> str | None:
    """Why a reference output carries no signal, or None when it does."""
    if ref.size == 0:
        return "the reference output is empty"
    if not np.issubdtype(ref.dtype, np.number) and ref.dtype != np.bool_:
        return None
    values = ref.astype(np.float64)
    if not np.all(np.isfinite(values)):
        return "the reference output contains NaN or Inf"
    if values.size == 1:
        # One value per sample (a regression score at batch 1) is constant within the sample by nature:
        # only the across-samples check (does it change with the input?) can judge it.
        return None
    if not np.any(values):
        return "the reference output is all zeros"
    spread = float(values.max() - values.min())
    if spread <= CONSTANT_SPREAD * max(1.0, float(np.abs(values).max())):
        return f"the reference output is constant ({float(values.flat[0]):.6g} everywhere)"
    return None


def compare_arrays(actual: np.ndarray, ref: np.ndarray, tol: Tolerance, classifier: bool = False) -> dict[str, Any]:
    """Statistics of one output of one sample. `classifier`: the last axis holds class scores."""
    stats: dict[str, Any] = {"shape": list(ref.shape), "dtype": str(ref.dtype)}
    if actual.shape != ref.shape:
        stats.update(ok=False, problem=f"shape {list(actual.shape)} != reference {list(ref.shape)}")
        return stats
    if ref.dtype.kind in "iub":  # argmax, indices, masks: equal or not
        equal = actual == ref
        stats["exact_match"] = float(equal.mean()) if equal.size else 1.0
        diff = np.abs(actual.astype(np.float64) - ref.astype(np.float64))
        stats["max_abs"] = float(diff.max()) if diff.size else 0.0
        stats["min_atol"] = stats["max_abs"]
        stats["ok"] = bool(equal.all())
        if not stats["ok"]:
            stats["problem"] = (f"{int((~equal).sum())} of {equal.size} integer values differ "
                                f"(exact_match {stats['exact_match']:.4g})")
        return stats
    a = actual.astype(np.float64)
    r = ref.astype(np.float64)
    finite_ref = np.isfinite(r)
    bad = ~np.isfinite(a) & finite_ref
    if bad.any():
        stats.update(ok=False, problem=f"{int(bad.sum())} non-finite value(s) where the reference is finite",
                     nonfinite=int(bad.sum()))
        return stats
    # Where the reference itself is NaN/Inf, the converted value must be the same NaN/Inf; the error
    # statistics are over the positions where both are finite (a NaN would otherwise poison them).
    same_nonfinite = np.isnan(a[~finite_ref]) == np.isnan(r[~finite_ref])
    same_nonfinite &= (a[~finite_ref] == r[~finite_ref]) | np.isnan(r[~finite_ref])
    if not same_nonfinite.all():
        stats.update(ok=False, problem=f"{int((~same_nonfinite).sum())} value(s) differ where the reference is "
                     "NaN or Inf", nonfinite=int((~same_nonfinite).sum()))
        return stats
    a, r = a[finite_ref], r[finite_ref]
    if not finite_ref.all():
        stats["reference_nonfinite"] = int((~finite_ref).sum())
    diff = np.abs(a - r)
    stats["max_abs"] = float(diff.max()) if diff.size else 0.0
    stats["max_rel"] = float((diff / (np.abs(r) + REL_EPS)).max()) if diff.size else 0.0
    stats["mean_abs"] = float(diff.mean()) if diff.size else 0.0
    stats["rms"] = float(np.sqrt((diff ** 2).mean())) if diff.size else 0.0
    na, nr = float(np.linalg.norm(a)), float(np.linalg.norm(r))
    stats["cosine"] = float(np.dot(a.ravel(), r.ravel()) / (na * nr)) if na and nr else (1.0 if na == nr else 0.0)
    noise = float((diff ** 2).sum())
    signal = float((r ** 2).sum())
    stats["snr_db"] = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal else -math.inf)
    # PSNR against the reference's peak magnitude: 20*log10(max|r| / rms error).
    peak = float(np.abs(r).max()) if r.size else 0.0
    stats["psnr_db"] = math.inf if stats["rms"] == 0 else (20 * math.log10(peak / stats["rms"]) if peak else -math.inf)
    # The smallest atol that passes at the profile's rtol, i.e. max(|a - r| - rtol * |r|).
    stats["min_atol"] = max(0.0, float((diff - tol.rtol * np.abs(r)).max())) if diff.size else 0.0
    if classifier and finite_ref.all() and ref.ndim >= 1 and ref.shape[-1] > 1:
        scores, ref_scores = a.reshape(ref.shape), r.reshape(ref.shape)
        ref_top1 = ref_scores.argmax(axis=-1)
        stats["top1_agreement"] = float((scores.argmax(axis=-1) == ref_top1).mean())
        if ref.shape[-1] > 5:
            # Share of rows whose reference top-1 class is among the converted model's top 5.
            top5 = np.argsort(-scores, axis=-1)[..., :5]
            stats["top5_agreement"] = float((top5 == ref_top1[..., None]).any(axis=-1).mean())
    if tol.check == "snr" and tol.min_snr_db is not None:
        stats["ok"] = bool(stats["snr_db"] >= tol.min_snr_db)
        if not stats["ok"]:
            stats["problem"] = f"SNR {stats['snr_db']:.3g} dB below {tol.min_snr_db:g} dB (max_abs {stats['max_abs']:.3g})"
        return stats
    stats["ok"] = bool(np.all(diff <= tol.atol + tol.rtol * np.abs(r)))
    if not stats["ok"]:
        stats["problem"] = f"max_abs {stats['max_abs']:.3g} exceeds atol {tol.atol:g} + rtol {tol.rtol:g} x |ref|"
    return stats


#: Fields whose worst value across samples is the largest / the smallest.
_WORST_IS_MAX = ("max_abs", "max_rel", "mean_abs", "rms", "min_atol")
_WORST_IS_MIN = ("cosine", "snr_db", "psnr_db", "exact_match")
#: Shares of rows, averaged over samples: with batch 1 a sample agrees or not, and the worst of
#: four samples would say 0% where three of four rows agree.
_MEAN_OVER_SAMPLES = ("top1_agreement", "top5_agreement")


def summarize(samples: list[dict[str, dict[str, Any]]], tol: Tolerance) -> dict[str, Any]:
    """Fold per-sample, per-output statistics into the cell's `parity` object (worst sample counts)."""
    per_output: dict[str, dict[str, Any]] = {}
    worst_sample, worst_err = 0, -1.0
    for i, sample in enumerate(samples):
        for name, stats in sample.items():
            agg = per_output.setdefault(name, {"shape": stats["shape"], "dtype": stats["dtype"], "ok": True})
            if not stats["ok"]:
                agg["ok"] = False
                agg.setdefault("problem", f"sample {i}: {stats['problem']}")
            for key in _WORST_IS_MAX:
                if key in stats:
                    agg[key] = max(agg.get(key, 0.0), stats[key])
            for key in _WORST_IS_MIN:
                if key in stats:
                    agg[key] = min(agg.get(key, math.inf), stats[key])
            for key in _MEAN_OVER_SAMPLES:
                if key in stats:
                    agg.setdefault(f"_{key}", []).append(stats[key])
            err = stats.get("min_atol", math.inf)
            if err > worst_err:
                worst_sample, worst_err = i, err
    for agg in per_output.values():
        for key in _MEAN_OVER_SAMPLES:
            if f"_{key}" in agg:
                agg[key] = float(np.mean(agg.pop(f"_{key}")))
    parity: dict[str, Any] = {
        "ok": all(o["ok"] for o in per_output.values()),
        "tolerance": {"atol": tol.atol, "rtol": tol.rtol, "check": tol.check, "min_snr_db": tol.min_snr_db},
        "samples": len(samples),
        "worst_sample": worst_sample,
    }
    for key in _WORST_IS_MAX:
        vals = [o[key] for o in per_output.values() if key in o]
        parity[key] = max(vals) if vals else None
    for key in _WORST_IS_MIN + _MEAN_OVER_SAMPLES:  # across outputs: the worst output's
        vals = [o[key] for o in per_output.values() if key in o]
        parity[key] = min(vals) if vals else None
    # The smallest bounds that would have passed: atol at the profile's rtol, and the SNR floor.
    parity["min_passing"] = {"atol": parity.pop("min_atol"), "rtol": tol.rtol, "snr_db": parity["snr_db"]}
    parity["per_output"] = per_output
    return _json_safe(parity)


def _json_safe(obj: Any) -> Any:
    """JSON has no Infinity: an exact match's SNR is written as null with `exact: true` beside it."""
    if isinstance(obj, dict):
        out = {k: _json_safe(v) for k, v in obj.items()}
        if obj.get("snr_db") == math.inf:
            out["snr_db"], out["exact"] = None, True
        return out
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
