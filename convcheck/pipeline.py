"""Running one cell: reference -> convert (each hop) -> load -> run -> compare -> benchmark.

Every stage's exception becomes the cell's status (see convcheck.failures); nothing a converter or
runtime does stops the matrix. Within one run, the reference outputs of a model are computed once,
and routes that share a prefix share its artifact (one ONNX export feeds every ONNX runtime).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.convert.base import ConvertContext
from convcheck.errors import CellFailure
from convcheck.failures import classify, first_line
from convcheck.registry import converters, runtimes
from convcheck.routes import SOURCES, Route
from convcheck.types import Artifact, Status, Target
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


@dataclass
class Reference:
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
        self._converted: dict[tuple[str, tuple[str, ...]], _Converted] = {}

    # -- shared work ---------------------------------------------------------------------------
    def reference(self, spec: ModelSpec, route: Route) -> Reference:
        key = (spec.name, route.source.value)
        if key not in self._references:
            try:
                self._references[key] = self._compute_reference(spec, route)
            except Exception as exc:  # noqa: BLE001 - the model itself failed: data, not a crash
                self._references[key] = classify(exc, "reference")
        ref = self._references[key]
        if isinstance(ref, CellFailure):
            raise ref
        return ref

    def _compute_reference(self, spec: ModelSpec, route: Route) -> Reference:
        started = time.perf_counter()
        runtime = runtimes.get(SOURCES[route.source])(Target(SOURCES[route.source]), self.settings.threads)
        runtime.activate(self.source_artifact(spec, route))
        feeds = [spec.feeds(seed) for seed in range(self.settings.samples)]
        outputs = [runtime.infer(f) for f in feeds]
        runtime.deactivate()
        vacuous: dict[str, str] = {}
        for name in spec.outputs:
            # An output is vacuous if it is constant within a sample or identical across samples.
            problems = [parity_mod.signal_problem(o[name]) for o in outputs]
            if any(problems):
                vacuous[name] = next(p for p in problems if p)
            elif len(outputs) > 1 and all(np.array_equal(outputs[0][name], o[name]) for o in outputs[1:]):
                vacuous[name] = "the reference output does not change with the input"
        return Reference(feeds, outputs, time.perf_counter() - started, vacuous)

    def source_artifact(self, spec: ModelSpec, route: Route) -> Artifact:
        art = spec.source_artifact(route.source, self.settings.size)
        art.metadata["input_names"] = [i.name for i in spec.inputs]
        art.metadata["output_names"] = list(spec.outputs)
        return art

    def convert(self, spec: ModelSpec, route: Route, ref: Reference) -> _Converted:
        """The artifact after every hop of `route`, reusing any prefix already converted."""
        done = _Converted(self.source_artifact(spec, route), None, [], [])
        for depth, conv_name in enumerate(route.converters, start=1):
            key = (spec.name, route.converters[:depth])
            if key not in self._converted:
                self._converted[key] = self._convert_hop(spec, conv_name, done, ref)
            done = self._converted[key]
            if done.failure:
                break
        return done

    def _convert_hop(self, spec: ModelSpec, conv_name: str, upstream: _Converted, ref: Reference) -> _Converted:
        conv = converters.get(conv_name)()
        hop_dir = self.settings.workdir / "artifacts" / spec.name / "-".join(
            [c["hop"] for c in upstream.record] + [conv.hop]
        )
        ctx = ConvertContext(hop_dir, list(spec.inputs), list(spec.outputs), ref.feeds[0])
        started = time.perf_counter()
        try:
            art = conv.convert(upstream.artifact, ctx)
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
        ref = self.reference(spec, route)
        stages.append({"stage": "reference", "ok": True, "seconds": ref.seconds})
        cell["timings_s"]["reference"] = ref.seconds

        converted = self.convert(spec, route, ref)
        cell["artifacts"] = converted.record
        cell["log"] = converted.log[-50:]
        cell["timings_s"]["convert"] = sum(r["seconds"] or 0.0 for r in converted.record)
        for rec in converted.record:
            stages.append({"stage": f"convert:{rec['hop']}", "ok": rec["ok"], "seconds": rec["seconds"]})
        if converted.failure:
            raise converted.failure
        artifact = converted.artifact
        assert artifact is not None
        cell["artifact_bytes"] = artifact.bytes

        runtime = runtimes.get(route.runtime)(target, self.settings.threads)
        t0 = time.perf_counter()
        try:
            runtime.activate(artifact)
        except Exception as exc:  # noqa: BLE001
            stages.append({"stage": "load", "ok": False, "seconds": time.perf_counter() - t0})
            raise classify(exc, "load") from exc
        cell["timings_s"]["load"] = time.perf_counter() - t0
        stages.append({"stage": "load", "ok": True, "seconds": cell["timings_s"]["load"]})
        try:
            self._run_and_compare(spec, runtime, ref, cell)
        finally:
            runtime.deactivate()

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
        tol = parity_mod.Tolerance.for_precision(cell["precision"])
        per_sample = []
        for got, want in zip(actual, ref.outputs):
            missing = [n for n in spec.outputs if n not in got]
            if missing:
                stages.append({"stage": "compare", "ok": False, "seconds": time.perf_counter() - t0})
                raise CellFailure(Status.MISMATCH.value,
                                  f"output(s) {missing} missing; the runtime returned {sorted(got)}", "compare")
            per_sample.append({n: parity_mod.compare_arrays(got[n], want[n], tol, spec.task == "classifier")
                               for n in spec.outputs})
        parity = parity_mod.summarize(per_sample, tol)
        cell["parity"] = parity
        stages.append({"stage": "compare", "ok": parity["ok"], "seconds": time.perf_counter() - t0})

        t0 = time.perf_counter()
        feeds = ref.feeds[0]
        cell["latency_ms"] = measure(lambda: runtime.infer(feeds), self.settings.latency)
        cell["latency_ms"]["batch"] = spec.batch
        stages.append({"stage": "benchmark", "ok": True, "seconds": time.perf_counter() - t0})

        if not parity["ok"]:
            bad = next(f"{n}: {o['problem']}" for n, o in parity["per_output"].items() if not o["ok"])
            raise CellFailure(Status.MISMATCH.value, bad, "compare")
        if ref.vacuous:
            name, why = next(iter(ref.vacuous.items()))
            raise CellFailure(Status.VACUOUS.value, f"output {name}: {why}; the comparison proves nothing",
                              "compare")
        cell["status"] = Status.PASS.value


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
