"""Numerical parity: does the converted model compute the same function as its source?

Statistics per output, worst sample counts. Tolerance profiles are data
(convcheck/data/tolerances.json, the policy in convcheck.tolerance), keyed by precision, each with
the reasoning behind it. A reference output that carries no signal (constant, all-zero, non-finite) makes the
comparison `vacuous`: a check on a constant proves nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convcheck.tolerance import Tolerance

#: max_rel divides by |r| + REL_EPS x the output's peak |r|, so that zeros in the reference do not make
#: it infinite. Relative to the output's scale: an absolute epsilon (it was 1e-6) hid a 100% error on
#: an output of magnitude 1e-7.
REL_EPS = 1e-6
#: A reference output whose values span less than this fraction of their magnitude is constant.
CONSTANT_SPREAD = 1e-7


def as_numeric(a: np.ndarray) -> np.ndarray:
    """bfloat16 (ml_dtypes, dtype kind 'V') as float32, so numpy's float paths see a float."""
    return a.astype(np.float32) if a.dtype.name == "bfloat16" else a


def output_scale(refs: list[np.ndarray]) -> float:
    """An output's scale: its peak finite |value| over every sample (0.0 for non-float outputs)."""
    peak = 0.0
    for r in map(as_numeric, refs):
        if r.dtype.kind in "fc" and r.size:
            finite = np.abs(r[np.isfinite(r)].astype(np.float64))
            if finite.size:
                peak = max(peak, float(finite.max()))
    return peak


def signal_problem(ref: np.ndarray | list[np.ndarray]) -> str | None:
    """Why a reference output carries no signal, or None when it does.

    Judged over every sample together (a list, or one array): an output constant within one sample
    can change with the input (Greater(x, 0) on three values is all True for some x). NaN/Inf are not
    a problem by themselves (a route must reproduce them); an output with no finite value is. Spread
    is judged relative to the values' own magnitude: x*1e-9 is not constant."""
    arrays = [as_numeric(a) for a in (ref if isinstance(ref, list) else [ref])]
    if any(a.size == 0 for a in arrays):
        return "the reference output is empty"
    if not all(np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_ for a in arrays):
        values = np.concatenate([np.asarray(a).ravel() for a in arrays])
        return None if values.size <= 1 or len(set(values.tolist())) > 1 else \
            f"the reference output is constant ({values[0]!r} everywhere)"
    values = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "the reference output is NaN or Inf everywhere"
    if values.size == 1:
        # One value in all (a score of one sample): only the input-dependence check can judge it.
        return None
    if not np.any(values):
        return "the reference output is all zeros"
    if finite.size < values.size:
        return None  # finite values beside NaN/Inf: the pattern itself is signal a route must reproduce
    spread = float(finite.max() - finite.min())
    if spread <= CONSTANT_SPREAD * float(np.abs(finite).max()):
        return f"the reference output is constant ({float(finite[0]):.6g} everywhere)"
    return None


def compare_arrays(actual: np.ndarray, ref: np.ndarray, tol: Tolerance, classifier: bool = False,
                   scale: float | None = None) -> dict[str, Any]:
    """Statistics of one output of one sample. `classifier`: the last axis holds class scores.
    `scale`: the output's peak |reference| over every sample (output_scale); this sample's if None."""
    stats: dict[str, Any] = {"shape": list(ref.shape), "dtype": str(ref.dtype)}
    if ref.dtype.name == "bfloat16":
        # One bfloat16 ulp is 2^-8 of the value: no bound tighter than that can be met by any route.
        tol = Tolerance(**{**vars(tol), "rtol": max(tol.rtol, 2.0 ** -8)})
    actual, ref = as_numeric(actual), as_numeric(ref)
    if actual.shape != ref.shape:
        stats.update(ok=False, problem=f"shape {list(actual.shape)} != reference {list(ref.shape)}")
        return stats
    if ref.dtype.kind in "iubUSO":  # argmax, indices, masks, labels: equal or not
        if ref.dtype.kind in "USO" or actual.dtype.kind in "USO":
            equal = np.asarray(actual.astype(str) == ref.astype(str))
        else:
            equal = actual == ref
            diff = np.abs(actual.astype(np.float64) - ref.astype(np.float64))
            stats["max_abs"] = float(diff.max()) if diff.size else 0.0
            stats["min_atol"] = stats["max_abs"]
        stats["exact_match"] = float(equal.mean()) if equal.size else 1.0
        stats["ok"] = bool(equal.all())
        if not stats["ok"]:
            stats["problem"] = (f"{int((~equal).sum())} of {equal.size} {ref.dtype.kind in 'USO' and 'string' or 'integer'} "
                                f"values differ (exact_match {stats['exact_match']:.4g})")
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
    peak = float(np.abs(r).max()) if r.size else 0.0
    scale = peak if scale is None else scale
    stats["scale"] = scale
    stats["max_abs"] = float(diff.max()) if diff.size else 0.0
    rel_eps = max(REL_EPS * scale, np.finfo(np.float64).tiny)
    stats["max_rel"] = float((diff / (np.abs(r) + rel_eps)).max()) if diff.size else 0.0
    stats["mean_abs"] = float(diff.mean()) if diff.size else 0.0
    # Sums of squares are taken on values scaled by their peak: float64 data of magnitude 1e200 (the
    # ONNX backend tests ship some) would overflow to inf and turn every ratio into a math error.
    d_peak, d_energy = _scaled_energy(diff)
    r_peak, r_energy = _scaled_energy(r)
    stats["rms"] = d_peak * math.sqrt(d_energy / diff.size) if diff.size else 0.0
    a_peak, a_energy = _scaled_energy(a)
    if a_peak and r_peak:
        dot = stable_sum((a / a_peak) * (r / r_peak))
        stats["cosine"] = dot / math.sqrt(a_energy * r_energy)
    else:
        stats["cosine"] = 1.0 if a_peak == r_peak else 0.0
    stats["snr_db"] = _snr_db((r_peak, r_energy), (d_peak, d_energy))
    # PSNR against the reference's peak magnitude: 20*log10(max|r| / rms error).
    stats["psnr_db"] = math.inf if stats["rms"] == 0 else (20 * math.log10(peak / stats["rms"]) if peak else -math.inf)
    # The smallest atol that passes at the profile's rtol, i.e. max(|a - r| - rtol * |r|), and the same
    # as a fraction of the output's scale.
    stats["min_atol"] = max(0.0, float((diff - tol.rtol * np.abs(r)).max())) if diff.size else 0.0
    stats["min_atol_rel"] = stats["min_atol"] / scale if scale else (0.0 if stats["min_atol"] == 0 else math.inf)
    if classifier and finite_ref.all() and ref.ndim >= 1 and ref.shape[-1] > 1:
        scores, ref_scores = a.reshape(ref.shape), r.reshape(ref.shape)
        ref_top1 = ref_scores.argmax(axis=-1)
        stats["top1_agreement"] = float((scores.argmax(axis=-1) == ref_top1).mean())
        if ref.shape[-1] > 5:
            # Share of rows whose reference top-1 class is among the converted model's top 5.
            top5 = np.argpartition(-scores, 4, axis=-1)[..., :5]  # the 5 best, in any order
            stats["top5_agreement"] = float((top5 == ref_top1[..., None]).any(axis=-1).mean())
    if tol.check == "snr" and tol.min_snr_db is not None:
        negligible = tol.negligible is not None and stats["max_abs"] <= tol.negligible
        stats["ok"] = bool(stats["snr_db"] >= tol.min_snr_db or negligible)
        if negligible and stats["snr_db"] < tol.min_snr_db:
            stats["negligible"] = True  # passed on the near-zero rule, not on SNR
        if not stats["ok"]:
            stats["problem"] = (f"SNR {stats['snr_db']:.3g} dB below {tol.min_snr_db:g} dB (max_abs "
                                f"{stats['max_abs']:.3g}, above the negligible {tol.negligible or 0:.3g})")
        return stats
    atol = tol.effective_atol(scale)
    within = bool(np.all(diff <= atol + tol.rtol * np.abs(r)))
    snr_ok = tol.min_snr_db is None or stats["snr_db"] >= tol.min_snr_db
    stats["ok"] = within and snr_ok
    if not within:
        stats["problem"] = (f"max_abs {stats['max_abs']:.3g} exceeds atol {atol:.3g} + rtol {tol.rtol:g} x |ref| "
                            f"(atol = max({tol.atol_rel:g} x scale {scale:.3g}, {tol.atol:.3g}))")
    elif not snr_ok:
        stats["problem"] = (f"SNR {stats['snr_db']:.3g} dB below {tol.min_snr_db:g} dB (cosine {stats['cosine']:.6g}) "
                            f"though every value is within atol {atol:.3g}: a different function at a small scale")
    return stats


def snr_db(reference: np.ndarray, error: np.ndarray) -> float:
    """10*log10(sum r^2 / sum e^2), computed without overflow; inf when the error is zero."""
    return _snr_db(_scaled_energy(reference), _scaled_energy(error))


def _snr_db(signal: tuple[float, float], noise: tuple[float, float]) -> float:
    (r_peak, r_energy), (d_peak, d_energy) = signal, noise
    if not d_peak:
        return math.inf
    if not r_peak:
        return -math.inf
    return 20 * math.log10(r_peak / d_peak) + 10 * math.log10(r_energy / d_energy)


def _scaled_energy(x: np.ndarray) -> tuple[float, float]:
    """(peak |x|, sum((x / peak)^2)): an energy that cannot overflow."""
    if not x.size:
        return 0.0, 0.0
    peak = float(np.abs(x).max())
    if not peak:
        return 0.0, 0.0
    return peak, stable_sum((x / peak) ** 2)


#: Columns of the block stable_sum folds an array into.
_SUM_COLUMNS = 4096


def stable_sum(values: np.ndarray) -> float:
    """The float64 sum of `values`, the same to the last bit whatever the array's memory alignment.

    numpy's own sum is pairwise with SIMD lanes whose grouping follows the data's alignment: the same cell
    run in two processes differed in the last digit of its SNR. Here the values are folded into rows of
    _SUM_COLUMNS; each column is summed down the rows in order (a reduction over the outer axis adds row
    after row, elementwise), and the column totals are added exactly by math.fsum. math.fsum over every
    value did the same but cost 1 s per 3 M values: 11 s of every GPT-2 cell's compare."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size <= _SUM_COLUMNS:
        return math.fsum(flat.tolist())
    rows = -(-flat.size // _SUM_COLUMNS)
    block = np.zeros(rows * _SUM_COLUMNS, dtype=np.float64)
    block[: flat.size] = flat
    return math.fsum(np.add.reduce(block.reshape(rows, _SUM_COLUMNS), axis=0).tolist())


#: Fields whose worst value across samples is the largest / the smallest.
_WORST_IS_MAX = ("max_abs", "max_rel", "mean_abs", "rms", "min_atol", "min_atol_rel", "reference_nonfinite", "scale")
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
        "tolerance": {"atol": tol.atol, "rtol": tol.rtol, "check": tol.check, "min_snr_db": tol.min_snr_db,
                      "atol_rel": tol.atol_rel, "negligible": tol.negligible},
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
    parity["min_passing"] = {"atol": parity.pop("min_atol"), "atol_rel": parity.pop("min_atol_rel"),
                             "rtol": tol.rtol, "snr_db": parity["snr_db"]}
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
