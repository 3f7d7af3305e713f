"""Judging a runtime's outputs against the reference: the tolerance each output is held to (the
precision's profile, the model's own override, the noise floor) and the cell's `parity` object."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convcheck.errors import CellFailure
from convcheck.model_spec import ModelSpec
from convcheck.tolerance import PROFILES, Tolerance
from convcheck.types import PRECISIONS, Status
from convcheck.validate import parity as parity_mod


def compare_outputs(spec: ModelSpec, actual: list[dict[str, np.ndarray]], expected: list[dict[str, np.ndarray]],
                    precision: str, noise_floor: dict[str, Any] | None = None,
                    override: dict[str, float] | None = None, fp16_floor: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The cell's `parity` object over every sample; a missing output is a mismatch.

    The tolerance, per output: the precision's profile (convcheck/data/tolerances.json), then the
    model's own override for that output (declared next to the model, with its reason), then for an
    elementwise check atol raised to `noise_floor_factor` x the source's own fp32-vs-fp64 error; a
    `--atol/--rtol` override replaces all of it. A model that itself computes in lower precision (a
    user's int8 .tflite) is judged at its own precision's profile on every route: the error it brings
    is not the route's. An fp16 cell's SNR bound is lowered to `fp16_floor_margin_db` below the source's
    own SNR computed in fp16 (`fp16_floor`) where that is lower: fp16 rounding over a deep network costs
    more than the fixed bound allows however faithful the conversion (torch's own fp16 ResNet-50: 31 dB)."""
    precision = _looser(precision, spec.precision)
    base = Tolerance.for_precision(precision)
    factor = PROFILES[precision].get("noise_floor_factor")
    model_overrides = spec.tolerances.get(precision, {})
    floors = (noise_floor or {}).get("per_output", {})
    margin = PROFILES[precision].get("fp16_floor_margin_db")
    half_floors = (fp16_floor or {}).get("per_output", {}) if margin is not None else {}
    lowered_fp16: dict[str, float] = {}
    per_output_tol: dict[str, Tolerance] = {}
    raised: dict[str, float] = {}
    lowered: dict[str, float] = {}
    for name in spec.outputs:
        if override:
            per_output_tol[name] = Tolerance(override["atol"], override["rtol"], "elementwise")
            continue
        tol = Tolerance(**{**vars(base), **model_overrides.get(name, {})})
        floor = floors.get(name) or {}
        if factor and floor.get("max_abs") is not None:
            # The route is not blamed for the error the source framework makes against float64.
            if tol.check == "elementwise" and factor * floor["max_abs"] > tol.atol:
                tol.atol = factor * floor["max_abs"]
                raised[name] = tol.atol
            if tol.check == "snr" and factor * floor["max_abs"] > (tol.negligible or 0.0):
                tol.negligible = factor * floor["max_abs"]
                raised[name] = tol.negligible
            floor_snr = floor.get("snr_db")
            if tol.check == "elementwise" and tol.min_snr_db is not None and floor_snr is not None:
                allowed = floor_snr - 20 * math.log10(factor)
                if allowed < tol.min_snr_db:
                    tol.min_snr_db = allowed
                    lowered[name] = allowed
        half_snr = (half_floors.get(name) or {}).get("snr_db")
        if tol.check == "snr" and tol.min_snr_db is not None and half_snr is not None \
                and half_snr - margin < tol.min_snr_db:
            tol.min_snr_db = half_snr - margin
            lowered_fp16[name] = tol.min_snr_db
        per_output_tol[name] = tol
    scales = {n: parity_mod.output_scale([w[n] for w in expected if n in w]) for n in spec.outputs}
    per_sample = []
    for got, want in zip(actual, expected):
        missing = [n for n in spec.outputs if n not in got]
        if missing:
            raise CellFailure(Status.MISMATCH.value,
                              f"output(s) {missing} missing; the runtime returned {sorted(got)}", "compare")
        per_sample.append({n: parity_mod.compare_arrays(got[n], want[n], per_output_tol[n], spec.task == "classifier",
                                                        scales[n]) for n in spec.outputs})
    parity = parity_mod.summarize(per_sample, base if not override else next(iter(per_output_tol.values())))
    parity["tolerance"]["profile"] = "--atol/--rtol" if override else precision
    # The bound each output was actually held to (atol_eff follows its scale).
    parity["tolerance"]["per_output"] = {n: {**vars(t), "scale": scales[n],
                                             "atol_effective": t.effective_atol(scales[n])}
                                         for n, t in per_output_tol.items()}
    if raised:
        parity["tolerance"]["raised_by_noise_floor"] = raised
    if lowered:
        parity["tolerance"]["snr_lowered_by_noise_floor"] = lowered
    if lowered_fp16:
        parity["tolerance"]["snr_lowered_by_fp16_floor"] = lowered_fp16
    # Where the source's own fp32 error against float64 reaches a tenth of the output's scale, the fp32
    # reference is itself unreliable on these inputs: the widened bound is stated, never silent.
    shaky = [n for n in spec.outputs if (floors.get(n) or {}).get("max_abs") is not None and scales[n]
             and floors[n]["max_abs"] >= 0.1 * scales[n]]
    if shaky and not override:
        parity["tolerance"]["ill_conditioned"] = shaky
    parity["noise_floor"] = noise_floor
    if fp16_floor is not None and margin is not None and not override:
        parity["fp16_floor"] = fp16_floor
    return parity


def _looser(precision: str, model_precision: str) -> str:
    # PRECISIONS is ordered from the strictest tolerance to the loosest.
    if model_precision in PRECISIONS and PRECISIONS.index(model_precision) > PRECISIONS.index(precision):
        return model_precision
    return precision
