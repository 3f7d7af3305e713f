"""Running one cell: reference -> convert (each hop) -> load -> run -> compare -> benchmark.

Every stage's exception becomes the cell's status (see convcheck.failures); nothing a converter or
runtime does stops the matrix. Within one run, the reference outputs of a model are computed once,
and routes that share a prefix share its artifact (one ONNX export feeds every ONNX runtime).
"""

from __future__ import annotations

import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.convert.base import ConvertContext
from convcheck.environment import module_present
from convcheck.errors import CellFailure
from convcheck.failures import classify, first_line
from convcheck.registry import converters, runtimes
from convcheck.routes import SOURCES, Route
from convcheck.types import Artifact, Format, Status, Target
from convcheck.validate import parity as parity_mod
from convcheck.validate.latency import LatencyConfig, measure
from convcheck.zoo.base import ModelSpec


@dataclass
class RunSettings:
    workdir: Path
    size: str = "full"
    samples: int = 4  # parity samples per cell, seeds 0..samples-1
    threads: int | None = None  # None: the runtime's default
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    #: Reference runtime per source format, where the user chose another than SOURCES' default.
    references: dict[Format, str] = field(default_factory=dict)
    #: Options hops read from their ConvertContext (tvm_tune_trials, cache_dir).
    hop_settings: dict[str, Any] = field(default_factory=dict)

    def reference_runtime(self, source: Format) -> str:
        return self.references.get(source, SOURCES[source])


@dataclass
class Reference:
    runtime: str
    feeds: list[dict[str, np.ndarray]]
    outputs: list[dict[str, np.ndarray]]
    seconds: float
    vacuous: dict[str, str]  # output name -> why it carries no signal


@dataclass
class _Converted:
    artifact: Artifact | None
    failure: CellFailure | None
    record: list[dict[str, Any]]  # one entry per hop: converter, format, digest, size, seconds
    log: list[str]


class CellRunner:
    """Runs cells of one matrix, sharing references and artifacts between them."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self._references: dict[tuple[str, str], Reference | CellFailure] = {}
        self._converted: dict[tuple[Any, ...], _Converted] = {}

    # -- shared work ---------------------------------------------------------------------------
    def reference(self, spec: ModelSpec, source: Format) -> Reference:
        key = (spec.name, source.value)
        if key not in self._references:
            try:
                self._references[key] = self._compute_reference(spec, source)
            except Exception as exc:  # noqa: BLE001 - the model itself failed: data, not a crash
                self._references[key] = classify(exc, "reference")
        ref = self._references[key]
        if isinstance(ref, CellFailure):
            raise ref
        return ref

    def _compute_reference(self, spec: ModelSpec, source: Format) -> Reference:
        started = time.perf_counter()
        name = self.settings.reference_runtime(source)
        runtime = runtimes.get(name)(Target(name), self.settings.threads)
        runtime.activate(self.source_artifact(spec, source))
        count = spec.sample_count(self.settings.samples)
        feeds = [spec.feeds(seed, fmt=source, size=self.settings.size) for seed in range(count)]
        outputs = [runtime.infer(f) for f in feeds]
        runtime.deactivate()
        vacuous: dict[str, str] = {}
        for out in spec.outputs:
            if any(out not in o for o in outputs):
                raise CellFailure(Status.RUNTIME_ERROR.value,
                                  f"the reference ({name}) returned no output {out!r} (got {sorted(outputs[0])})",
                                  "reference")
            # An output is vacuous if it is constant within a sample or identical across samples.
            problems = [parity_mod.signal_problem(o[out]) for o in outputs]
            if any(problems):
                vacuous[out] = next(p for p in problems if p)
            elif len(outputs) > 1 and all(np.array_equal(outputs[0][out], o[out]) for o in outputs[1:]):
                vacuous[out] = "the reference output does not change with the input"
        return Reference(name, feeds, outputs, time.perf_counter() - started, vacuous)

    def source_artifact(self, spec: ModelSpec, source: Format) -> Artifact:
        art = spec.source_artifact(source, self.settings.size)
        art.metadata["input_names"] = [i.name for i in spec.inputs_for(source, self.settings.size)]
        art.metadata["output_names"] = list(spec.outputs)
        return art

    def convert(self, spec: ModelSpec, route: Route, target: Target, hops: int | None = None) -> _Converted:
        """The artifact after the first `hops` hops of `route` (all by default), reusing converted prefixes.

        A prefix is shared between cells unless one of its hops depends on the target (a TensorRT
        engine for fp16, TVM code for cuda): then only cells of the same device and precision share it.
        """
        ref = self.reference(spec, route.source)
        done = _Converted(self.source_artifact(spec, route.source), None, [], [])
        chain = route.converters[: len(route.converters) if hops is None else hops]
        for depth, conv_name in enumerate(chain, start=1):
            prefix = chain[:depth]
            target_bound = any(converters.get(c).depends_on_target for c in prefix)  # type: ignore[attr-defined]
            key = (spec.name, route.source.value, prefix, (target.device, target.precision) if target_bound else None)
            if key not in self._converted:
                self._converted[key] = self._convert_hop(spec, route.source, conv_name, done, ref, target,
                                                         target_bound)
            done = self._converted[key]
            if done.failure:
                break
        return done

    def _convert_hop(self, spec: ModelSpec, source: Format, conv_name: str, upstream: _Converted, ref: Reference,
                     target: Target, target_bound: bool) -> _Converted:
        conv = converters.get(conv_name)()
        # One folder per (source, hop chain[, target]): the same key as the in-run sharing, so two routes
        # never write into each other's artifact (torch/onnx/tvm and keras/onnx/tvm once did).
        folder = "-".join([source.value] + [c["hop"] for c in upstream.record] + [conv.hop])
        if target_bound:
            folder += f"-{target.device}-{target.precision}"
        ctx = ConvertContext(self.settings.workdir / "artifacts" / spec.name / folder,
                             list(spec.inputs_for(source, self.settings.size)),
                             list(spec.outputs), ref.feeds[0], target=target,
                             settings=dict(self.settings.hop_settings,
                                           given_artifacts={f.value: str(p) for f, p in spec.given_artifacts.items()}))
        started = time.perf_counter()
        try:
            # Framework warnings (deprecations, tracer notes) belong in the cell's log, not the terminal.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    art = conv.convert(upstream.artifact, ctx)
                finally:
                    ctx.log.extend(f"warning: {w.category.__name__}: {w.message}" for w in caught[:50])
        except Exception as exc:  # noqa: BLE001 - a converter error is the cell's status
            failure = classify(exc, f"convert:{conv.hop}")
            rec = {"hop": conv.hop, "converter": type(conv).__name__, "ok": False,
                   "seconds": time.perf_counter() - started}
            return _Converted(None, failure, upstream.record + [rec], upstream.log + ctx.log)
        rec = {
            "hop": conv.hop, "converter": type(conv).__name__, "ok": True, "format": art.format.value,
            "seconds": art.metadata.get("convert_seconds"), "sha256": art.sha256, "bytes": art.bytes,
            "path": str(art.path), "metadata": {k: v for k, v in art.metadata.items() if k != "convert_seconds"},
        }
        return _Converted(art, None, upstream.record + [rec], upstream.log + ctx.log)

    def precheck(self, spec: ModelSpec, route: Route, target: Target, cell: dict[str, Any]) -> None:
        """A cell that cannot run here still learns what this machine can tell.

        - A hop's package is missing (TensorRT): convert up to that hop and run its static `precheck`
          (TensorRT's op support list against the ONNX graph), if it has one.
        - Every hop converts here but the runtime cannot execute (Core ML off macOS, CUDA without a GPU):
          convert for real — a converter error is this cell's real status — then run the runtime's
          `static_check` on the artifact (I/O names, shapes, op list...), if it has one.
        The findings go to `cell["precheck"]`; the status stays missing_dep / no_device otherwise.
        """
        ref = self.reference(spec, route.source)
        for depth, conv_name in enumerate(route.converters):
            conv = converters.get(conv_name)
            if all(module_present(r.module) for r in conv.requires):  # type: ignore[attr-defined]
                continue
            check = getattr(conv, "precheck", None)
            if check is None:
                return
            upstream = self.convert(spec, route, target, hops=depth)
            if upstream.failure is None and upstream.artifact is not None:
                self._record_precheck(cell, check(upstream.artifact))
            return
        runtime_cls = runtimes.get(route.runtime)
        if not route.converters or not all(module_present(r.module) for r in runtime_cls.requires):  # type: ignore[attr-defined]
            return
        converted = self.convert(spec, route, target)
        self._record_conversion(cell, converted)
        if converted.failure:
            failure = converted.failure
            cell["status"] = failure.status
            cell["error"] = {"kind": failure.status, "message": failure.message, "stage": failure.stage,
                             "op": failure.op}
            return
        check = getattr(runtime_cls, "static_check", None)
        if check is not None:
            self._record_precheck(cell, check(converted.artifact, spec, ref))

    @staticmethod
    def _record_precheck(cell: dict[str, Any], found: dict[str, Any] | None) -> None:
        if not found:
            return
        cell["precheck"] = found
        if found.get("verdict"):
            cell["error"]["message"] += f". Static check: {found['verdict']}"

    @staticmethod
    def _record_conversion(cell: dict[str, Any], converted: _Converted) -> None:
        cell["artifacts"] = converted.record
        cell["log"] = converted.log[-50:]
        cell["timings_s"]["convert"] = sum(r["seconds"] or 0.0 for r in converted.record)
        for rec in converted.record:
            cell["stages"].append({"stage": f"convert:{rec['hop']}", "ok": rec["ok"], "seconds": rec["seconds"]})
        if converted.artifact is not None:
            cell["artifact_bytes"] = converted.artifact.bytes

    # -- one cell ------------------------------------------------------------------------------
    def run(self, spec: ModelSpec, route: Route, target: Target) -> dict[str, Any]:
        cell = new_cell(spec.name, route, target, self.settings.size)
        try:
            self._run_stages(spec, route, target, cell)
        except CellFailure as failure:
            cell["status"] = failure.status
            cell["error"] = {"kind": failure.status, "message": failure.message, "stage": failure.stage,
                             "op": failure.op}
        except Exception as exc:  # noqa: BLE001 - a bug in convcheck must not stop the other cells
            cell["status"] = Status.RUNTIME_ERROR.value
            cell["error"] = {"kind": Status.RUNTIME_ERROR.value, "stage": "internal", "op": None,
                             "message": f"internal error in convcheck (please report): {first_line(exc)}"}
            cell["log"] = cell["log"] + traceback.format_exc().splitlines()
        return cell

    def _run_stages(self, spec: ModelSpec, route: Route, target: Target, cell: dict[str, Any]) -> None:
        stages = cell["stages"]
        ref = self.reference(spec, route.source)
        cell["reference"] = ref.runtime
        stages.append({"stage": "reference", "ok": True, "seconds": ref.seconds})
        cell["timings_s"]["reference"] = ref.seconds

        converted = self.convert(spec, route, target)
        self._record_conversion(cell, converted)
        if converted.failure:
            raise converted.failure
        artifact = converted.artifact
        assert artifact is not None

        t0 = time.perf_counter()
        try:
            runtime = self._activate(route.runtime, target, artifact)
        except Exception as exc:  # noqa: BLE001
            stages.append({"stage": "load", "ok": False, "seconds": time.perf_counter() - t0})
            raise classify(exc, "load") from exc
        cell["timings_s"]["load"] = time.perf_counter() - t0
        stages.append({"stage": "load", "ok": True, "seconds": cell["timings_s"]["load"]})
        try:
            self._run_and_compare(spec, runtime, ref, cell)
        finally:
            runtime.deactivate()
        self._benchmark_variants(spec, route, target, artifact, ref, cell)
        self._finish(ref, cell)

    def _activate(self, runtime_name: str, target: Target, artifact: Artifact) -> Any:
        runtime = runtimes.get(runtime_name)(target, self.settings.threads)
        runtime.activate(artifact)
        return runtime

    def _run_and_compare(self, spec: ModelSpec, runtime: Any, ref: Reference, cell: dict[str, Any]) -> None:
        stages = cell["stages"]
        t0 = time.perf_counter()
        try:
            first = runtime.infer(ref.feeds[0])
            cell["timings_s"]["first_inference"] = time.perf_counter() - t0
            actual = [first] + [runtime.infer(f) for f in ref.feeds[1:]]
        except Exception as exc:  # noqa: BLE001
            stages.append({"stage": "run", "ok": False, "seconds": time.perf_counter() - t0})
            raise classify(exc, "run") from exc
        stages.append({"stage": "run", "ok": True, "seconds": time.perf_counter() - t0})
        cell["runtime_settings"] = runtime.describe()

        t0 = time.perf_counter()
        parity = compare_outputs(spec, actual, ref.outputs, cell["precision"])
        cell["parity"] = parity
        stages.append({"stage": "compare", "ok": parity["ok"], "seconds": time.perf_counter() - t0})

        t0 = time.perf_counter()
        feeds = ref.feeds[0]
        cell["latency_ms"] = measure(lambda: runtime.infer(feeds), self.settings.latency)
        cell["latency_ms"]["batch"] = spec.batch
        stages.append({"stage": "benchmark", "ok": True, "seconds": time.perf_counter() - t0})

    def _benchmark_variants(self, spec: ModelSpec, route: Route, target: Target, artifact: Artifact,
                            ref: Reference, cell: dict[str, Any]) -> None:
        """Other builds of the same artifact (TVM untuned beside tuned): parity and latency of each."""
        variants = artifact.metadata.get("variants") or {}
        if not variants:
            return
        cell["variants"] = {}
        for name, entry in variants.items():
            alt = Artifact(artifact.format, artifact.path, {**artifact.metadata, "entry": entry})
            record: dict[str, Any] = {"entry": entry}
            try:
                runtime = self._activate(route.runtime, target, alt)
                try:
                    got = [runtime.infer(f) for f in ref.feeds]
                    record["parity"] = compare_outputs(spec, got, ref.outputs, cell["precision"])
                    feeds = ref.feeds[0]
                    record["latency_ms"] = measure(lambda: runtime.infer(feeds), self.settings.latency)
                finally:
                    runtime.deactivate()
            except Exception as exc:  # noqa: BLE001 - a variant failing is recorded, the cell stands
                record["error"] = first_line(exc)
            cell["variants"][name] = record

    @staticmethod
    def _finish(ref: Reference, cell: dict[str, Any]) -> None:
        parity = cell["parity"]
        if not parity["ok"]:
            bad = next(f"{n}: {o['problem']}" for n, o in parity["per_output"].items() if not o["ok"])
            raise CellFailure(Status.MISMATCH.value, bad, "compare")
        if ref.vacuous:
            name, why = next(iter(ref.vacuous.items()))
            raise CellFailure(Status.VACUOUS.value, f"output {name}: {why}; the comparison proves nothing",
                              "compare")
        cell["status"] = Status.PASS.value


def compare_outputs(spec: ModelSpec, actual: list[dict[str, np.ndarray]], expected: list[dict[str, np.ndarray]],
                    precision: str) -> dict[str, Any]:
    """The cell's `parity` object over every sample; a missing output is a mismatch.

    A model that itself computes in lower precision (a user's int8 .tflite) is judged at its own
    precision's tolerance on every route: the error it brings is not the route's."""
    precision = _looser(precision, spec.precision)
    tol = parity_mod.Tolerance.for_precision(precision)
    overrides = spec.tolerances.get(precision, {})
    per_output_tol = {n: parity_mod.Tolerance(**{**vars(tol), **overrides.get(n, {})}) for n in spec.outputs}
    per_sample = []
    for got, want in zip(actual, expected):
        missing = [n for n in spec.outputs if n not in got]
        if missing:
            raise CellFailure(Status.MISMATCH.value,
                              f"output(s) {missing} missing; the runtime returned {sorted(got)}", "compare")
        per_sample.append({n: parity_mod.compare_arrays(got[n], want[n], per_output_tol[n], spec.task == "classifier")
                           for n in spec.outputs})
    parity = parity_mod.summarize(per_sample, tol)
    parity["tolerance"]["profile"] = precision
    if overrides:
        parity["tolerance"]["per_output"] = {n: vars(t) for n, t in per_output_tol.items() if n in overrides}
    return parity


def _looser(precision: str, model_precision: str) -> str:
    from convcheck.types import PRECISIONS  # ordered from the strictest tolerance to the loosest

    if model_precision in PRECISIONS and PRECISIONS.index(model_precision) > PRECISIONS.index(precision):
        return model_precision
    return precision


def new_cell(model: str, route: Route, target: Target, size: str) -> dict[str, Any]:
    """A results.json cell with every field present (filled as stages complete)."""
    return {
        "model": model,
        "size": size,
        "route": route.id,
        "source": route.source.value,
        "steps": list(route.hops),
        "converters": [converters.get(c).__name__ for c in route.converters],  # type: ignore[attr-defined]
        "runtime": target.runtime,
        "device": target.device,
        "precision": target.precision,
        "status": Status.UPSTREAM_FAILED.value,
        "error": None,
        "parity": None,
        "latency_ms": None,
        "timings_s": {"reference": None, "convert": None, "load": None, "first_inference": None},
        "artifact_bytes": None,
        "artifacts": [],
        "stages": [],
        "runtime_settings": None,
        "log": [],
    }


def skipped_cell(model: str, route: Route, target: Target, size: str, status: Status, reason: str,
                 hint: str = "") -> dict[str, Any]:
    """A cell that cannot run here (missing_dep, no_device): recorded with its stated reason."""
    cell = new_cell(model, route, target, size)
    cell["status"] = status.value
    message = f"{reason}; {hint}" if hint else reason
    cell["error"] = {"kind": status.value, "message": message, "stage": "plan", "op": None}
    return cell
