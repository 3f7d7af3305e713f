"""The reference: what the source framework itself computes, and how far that is from exact.

Per (model, source) a run computes the reference outputs once: every seeded sample through the
source's reference runtime (PyTorch eager, Keras, ONNX Runtime with optimisations off...), whether
each output carries signal (a constant reference proves nothing: `vacuous`), and the noise floor:
the fp32 reference against the same source in float64 (or against another implementation of its
format), the error no route is blamed for. For fp16 cells, the fp16 floor (`fp16_floor`, computed once
per model when a cell first needs it): what the source itself loses computing in fp16.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.errors import CellFailure
from convcheck.failures import first_line
from convcheck.model_spec import ModelSpec
from convcheck.plan import RunSettings
from convcheck.registry import runtimes
from convcheck.types import Artifact, Format, Status, Target
from convcheck.validate import parity as parity_mod


@dataclass
class Reference:
    runtime: str
    feeds: list[dict[str, np.ndarray]]
    outputs: list[dict[str, np.ndarray]]
    seconds: float
    vacuous: dict[str, str]  # output name -> why it carries no signal
    #: How far the fp32 reference is from the source run in float64, per output (None: cannot run fp64).
    noise_floor: dict[str, Any] | None = None
    #: Why the reference is not the default one (ONNX Runtime refused the model: the ONNX evaluator ran).
    note: str | None = None


def source_artifact(settings: RunSettings, spec: ModelSpec, source: Format) -> Artifact:
    """The model as its source framework loads it, with the input and output names the cell uses."""
    art = spec.source_artifact(source, settings.size)
    art.metadata["input_names"] = [i.name for i in spec.inputs_for(source, settings.size)]
    art.metadata["output_names"] = list(spec.outputs)
    return art


def compute_reference(settings: RunSettings, spec: ModelSpec, source: Format) -> Reference:
    """The source framework's own outputs on every sample, whether they carry signal, and the source's
    noise floor against float64."""
    started = time.perf_counter()
    name = settings.reference_runtime(source)
    count = spec.sample_count(settings.samples)
    feeds = [spec.feeds(seed, fmt=source, size=settings.size) for seed in range(count)]
    note = None
    try:
        outputs, probe = _reference_outputs(settings, name, spec, source, feeds)
    except _ReferenceUnavailable as refused:  # only this reference runtime cannot load the model
        fallback = runtimes.get(name).reference_fallback  # type: ignore[attr-defined]
        if fallback is None:
            raise refused.cause from None
        note = (f"the reference is {fallback}, not {name}: {name} could not load the model "
                f"({first_line(refused.cause)})")
        name = fallback
        try:
            outputs, probe = _reference_outputs(settings, name, spec, source, feeds)
        except _ReferenceUnavailable as again:  # neither loads it: the fallback's own error, the first's chained
            raise again.cause from refused.cause
    vacuous: dict[str, str] = {}
    for out in spec.outputs:
        if any(out not in o for o in outputs):
            raise CellFailure(Status.RUNTIME_ERROR.value,
                              f"the reference ({name}) returned no output {out!r} (got {sorted(outputs[0])})",
                              "reference")
        # Judged over every sample together: an output constant within one sample may still
        # follow its input (Greater(x, 0) on three values), and one that ignores its input
        # entirely is caught even with one sample (the perturbed probe).
        values = [o[out] for o in outputs] + ([probe[out]] if probe is not None and out in probe else [])
        problem = parity_mod.signal_problem(values)
        if problem:
            vacuous[out] = problem
        elif len(values) > 1 and all(_same(values[0], v) for v in values[1:]):
            vacuous[out] = ("the reference output does not change with the input" if len(outputs) > 1 else
                            "the reference output does not change when the input is perturbed")
    noise_floor = _noise_floor(settings, spec, source, name, feeds, outputs)
    return Reference(name, feeds, outputs, time.perf_counter() - started, vacuous, noise_floor, note)

def _reference_outputs(settings: RunSettings, name: str, spec: ModelSpec, source: Format, feeds: list[dict[str, np.ndarray]]
                       ) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray] | None]:
    """The reference's outputs on every sample, and on a perturbed copy of the first when there is
    one sample only (does the output depend on the input at all?)."""
    runtime = runtimes.get(name)(Target(name), settings.threads)
    try:
        runtime.activate(source_artifact(settings, spec, source))
    except Exception as exc:  # noqa: BLE001 - a fallback reference may load it (Runtime.reference_fallback)
        raise _ReferenceUnavailable(exc) from exc
    try:
        outputs = [runtime.infer(f) for f in feeds]
        probe = None
        if len(feeds) == 1:
            perturbed = perturb(feeds[0], spec, source, settings.size)
            if perturbed is not None:
                try:
                    probe = runtime.infer(perturbed)
                except Exception:  # noqa: BLE001 - the probe is evidence only where the model accepts it
                    probe = None
    finally:
        runtime.deactivate()
    return outputs, probe

def _noise_floor(settings: RunSettings, spec: ModelSpec, source: Format, name: str, feeds: list[dict[str, np.ndarray]],
                 outputs: list[dict[str, np.ndarray]]) -> dict[str, Any] | None:
    """The fp32 reference against the same source run in float64 (or, where the source has no
    float64 mode, against another implementation of the same format): the error the source
    framework itself makes, which no route is blamed for. None when the reference runtime has no
    such mode; {"error": ...} when it has one that failed: a floor never measured is never shown."""
    runtime_cls = runtimes.get(name)
    # A runtime offers either a float64 mode, or another implementation of its format to measure
    # against (`noise_floor_runtime`: LiteRT's optimised kernels beside its reference kernels).
    alternative = runtime_cls.noise_floor_runtime  # type: ignore[attr-defined]
    if alternative is None and "fp64" not in runtime_cls.precisions:  # type: ignore[attr-defined]
        return None
    label = runtime_cls.noise_floor_label or f"{name} float64"  # type: ignore[attr-defined]
    started = time.perf_counter()
    try:
        exact = _source_outputs(alternative(settings.threads) if alternative is not None
                                else runtime_cls(Target(name, "cpu", "fp64"), settings.threads), settings, spec, source,
                                feeds)
    except Exception as exc:  # noqa: BLE001 - a model that will not run in float64 has no floor
        return {"reference": label, "error": first_line(exc)}
    per_output = {}
    for out in spec.outputs:
        pairs = [(o[out], e.get(out)) for o, e in zip(outputs, exact)]
        if not pairs or any(e is None for _, e in pairs) or pairs[0][0].dtype.kind != "f":
            continue
        if any(np.shape(o) != np.shape(e) for o, e in pairs):
            continue
        # Every sample's finite positions together, judged by parity's own statistics (scale-relative
        # max_rel, an SNR that cannot overflow on 1e200-sized data).
        o64 = np.concatenate([o.astype(np.float64).ravel() for o, _ in pairs])
        e64 = np.concatenate([np.asarray(e).astype(np.float64).ravel() for _, e in pairs])
        both = np.isfinite(o64) & np.isfinite(e64)
        d, e64 = np.abs(o64[both] - e64[both]), e64[both]
        scale = float(np.abs(e64).max()) if e64.size else 0.0
        rel_eps = max(parity_mod.REL_EPS * scale, np.finfo(np.float64).tiny)
        snr = parity_mod.snr_db(e64, d) if d.size else math.inf
        per_output[out] = {"max_abs": float(d.max()) if d.size else 0.0,
                           "max_rel": float((d / (np.abs(e64) + rel_eps)).max()) if d.size else 0.0,
                           "snr_db": snr if math.isfinite(snr) else None}
    worst = max((v["max_abs"] for v in per_output.values()), default=0.0)
    return {"reference": label, "max_abs": worst, "per_output": per_output,
            "seconds": time.perf_counter() - started}


def fp16_floor(settings: RunSettings, spec: ModelSpec, ref: Reference, source: Format) -> dict[str, Any] | None:
    """What computing in fp16 costs the source framework itself on the reference's inputs: the source run
    in float16 (torch CPU half, a Keras float16 twin) against the fp32 reference, per output (its SNR).
    An fp16 route that loses no more than that is not blamed for fp16's own rounding (deep networks lose
    more than a fixed SNR allows however faithfully they are converted). None when the reference runtime
    has no fp16 mode; {"error": ...} when it failed: a floor never measured is never applied."""
    name = ref.runtime
    runtime_cls = runtimes.get(name)
    if "fp16" not in runtime_cls.precisions:  # type: ignore[attr-defined]
        return None
    label = f"{name} float16"
    started = time.perf_counter()
    try:
        half = _source_outputs(runtime_cls(Target(name, "cpu", "fp16"), settings.threads), settings, spec, source,
                               ref.feeds)
    except Exception as exc:  # noqa: BLE001 - a model with no fp16 kernels here has no fp16 floor
        return {"reference": label, "error": first_line(exc)}
    per_output = {}
    for out in spec.outputs:
        pairs = [(r[out], h.get(out)) for r, h in zip(ref.outputs, half)]
        if any(h is None or np.shape(h) != np.shape(r) for r, h in pairs) or pairs[0][0].dtype.kind != "f":
            continue
        snrs, max_abs = [], 0.0
        for r, h in pairs:
            r64, h64 = r.astype(np.float64).ravel(), np.asarray(h).astype(np.float64).ravel()
            if (np.isfinite(r64) & ~np.isfinite(h64)).any():
                snrs.append(-math.inf)  # the source overflows in fp16: a route that does too is not excused
                continue
            both = np.isfinite(r64) & np.isfinite(h64)
            if both.any():
                d = np.abs(h64[both] - r64[both])
                snrs.append(parity_mod.snr_db(r64[both], d))
                max_abs = max(max_abs, float(d.max()))
        # The worst sample decides a cell, so the floor is the worst sample's SNR too.
        if snrs:
            per_output[out] = {"max_abs": max_abs, "snr_db": min(snrs) if math.isfinite(min(snrs)) else None}
    return {"reference": label, "per_output": per_output, "seconds": time.perf_counter() - started}


def _source_outputs(runtime: Any, settings: RunSettings, spec: ModelSpec, source: Format,
                    feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The source model on `feeds` through `runtime` (the reference runtime at another precision, or
    another implementation of its format), released afterwards."""
    runtime.activate(source_artifact(settings, spec, source))
    try:
        return [runtime.infer(f) for f in feeds]
    finally:
        runtime.deactivate()


class _ReferenceUnavailable(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal, NaNs included (an output that is NaN at the same places in both did not change)."""
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def perturb(feeds: dict[str, np.ndarray], spec: ModelSpec, source: Format, size: str) -> dict[str, np.ndarray] | None:
    """A copy of one sample that differs from it, for the input-dependence probe: a fresh seeded draw
    for generated inputs; for the user's own data, float inputs plus 5% of their spread in noise and
    integer/boolean/string inputs shuffled (their values stay valid indices). None when no input can
    be changed (every value the same)."""
    rng = np.random.default_rng(12345)
    if not spec.given_feeds:
        return spec.feeds(10_007, fmt=source, size=size)
    out: dict[str, np.ndarray] = {}
    changed = False
    for name, x in feeds.items():
        x = np.asarray(x)
        if x.dtype.kind == "f" and x.size:
            finite = x[np.isfinite(x)].astype(np.float64)
            spread = float(finite.std()) if finite.size > 1 else 0.0
            step = 0.05 * (spread or float(np.abs(finite).mean() if finite.size else 0.0) or 1.0)
            y = (x.astype(np.float64) + rng.normal(0.0, step, size=x.shape)).astype(x.dtype)
        elif x.size > 1:
            y = rng.permutation(x.ravel()).reshape(x.shape)
        else:
            y = x
        changed = changed or not _same(x, y)
        out[name] = y
    return out if changed else None
