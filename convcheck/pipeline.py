"""Running one cell: reference -> convert (each hop) -> load -> run -> compare -> benchmark.

Every stage's exception becomes the cell's status (see convcheck.failures); nothing a converter or
runtime does stops the matrix. Within one run, the reference outputs of a model are computed once,
and routes that share a prefix share its artifact (one ONNX export feeds every ONNX runtime).
"""

from __future__ import annotations

import shutil
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from convcheck import dag
from convcheck.cells import detail_lines, internal_error_fields, new_cell
from convcheck.compare import compare_outputs
from convcheck.converter import ConvertContext
from convcheck.environment import module_present
from convcheck.errors import CellFailure
from convcheck.failures import classify, first_line
from convcheck.model_spec import ModelSpec
from convcheck.plan import RunSettings
from convcheck.reference import Reference, compute_reference, fp16_floor, source_artifact
from convcheck.registry import converters, runtimes
from convcheck.routes import Route
from convcheck.tolerance import Tolerance
from convcheck.types import Artifact, Format, Status, Target
from convcheck.validate.latency import measure


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
        self._fp16_floors: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._converted: dict[tuple[Any, ...], _Converted] = {}
        #: Called with (stage task id, stage) as each task of the plan's DAG starts (convcheck.dag):
        #: a worker reports it to the parent, which then knows what killed it if it dies.
        self.on_stage: Callable[[str, str], None] = lambda task, stage: None
        from convcheck.artifact_cache import ArtifactCache

        self.artifact_cache = ArtifactCache(settings.artifact_cache_dir or Path("."),
                                            enabled=settings.artifact_cache_dir is not None)
        from convcheck.quiet_cores import machine_cores

        #: Timings take the machine's cores alone; the rest of a cell shares them (convcheck.quiet_cores).
        self.cores = machine_cores()

    # -- shared work ---------------------------------------------------------------------------
    def _compare(self, spec: ModelSpec, actual: list[dict[str, np.ndarray]], ref: Reference,
                 cell: dict[str, Any]) -> dict[str, Any]:
        """The cell's parity against the reference, by the rules of its precision."""
        half = None
        if "fp16" in (cell["precision"], spec.precision) and not self.settings.tolerance_override:
            half = self.fp16_floor(spec, Format(cell["source"]), ref)
        return compare_outputs(spec, actual, ref.outputs, cell["precision"], ref.noise_floor,
                               self.settings.tolerance_override, fp16_floor=half)

    def fp16_floor(self, spec: ModelSpec, source: Format, ref: Reference) -> dict[str, Any] | None:
        """The source's own fp16 error on the reference's inputs: measured once per model and source, when
        the first fp16 cell needs it (an fp32-only run never pays for it)."""
        key = (spec.name, source.value)
        if key not in self._fp16_floors:
            self._fp16_floors[key] = fp16_floor(self.settings, spec, ref, source)
        return self._fp16_floors[key]

    def reference(self, spec: ModelSpec, source: Format) -> Reference:
        key = (spec.name, source.value)
        if key not in self._references:
            self.on_stage(dag.reference_task(spec.name, source.value), "reference")
            try:
                self._references[key] = compute_reference(self.settings, spec, source)
            except Exception as exc:  # noqa: BLE001 - the model itself failed: data, not a crash
                self._references[key] = classify(exc, "reference")
        ref = self._references[key]
        if isinstance(ref, CellFailure):
            raise ref
        return ref

    def source_artifact(self, spec: ModelSpec, source: Format) -> Artifact:
        return source_artifact(self.settings, spec, source)

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
                self.cores.let_timers_in()  # a conversion takes minutes: a waiting timing goes first
                self.on_stage(dag.convert_task(spec.name, route.source.value, prefix, target if target_bound else None),
                              f"convert:{converters.get(conv_name).hop}")  # type: ignore[attr-defined]
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
        key = self._hop_key(spec, conv, upstream, target if target_bound else None, ctx)
        cached = self.artifact_cache.get(key)
        if cached is not None:
            rec = {"hop": conv.hop, "converter": type(conv).__name__, "ok": True, "format": cached.format.value,
                   "seconds": 0.0, "sha256": cached.sha256, "bytes": cached.bytes, "path": str(cached.path),
                   "cached": True, "metadata": cached.metadata}
            return _Converted(cached, None, upstream.record + [rec],
                              upstream.log + [f"{conv.hop}: reused the cached conversion {key[:12]} (same inputs)"])
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
        limit = self.settings.max_artifact_mb
        if limit is not None and art.bytes is not None and art.bytes > limit * 2**20:
            # Not kept, not cached: the disk bound is what keeps one model from filling the machine's disk.
            shutil.rmtree(ctx.workdir, ignore_errors=True)
            failure = CellFailure(Status.CONVERT_ERROR.value,
                                  f"{conv.hop} wrote {art.bytes / 2**20:.0f} MiB, over the {limit:g} MiB bound "
                                  "(--max-artifact-mb); the artifact was deleted", f"convert:{conv.hop}")
            rec = {"hop": conv.hop, "converter": type(conv).__name__, "ok": False,
                   "seconds": time.perf_counter() - started, "bytes": art.bytes}
            return _Converted(None, failure, upstream.record + [rec], upstream.log + ctx.log)
        rec = {
            "hop": conv.hop, "converter": type(conv).__name__, "ok": True, "format": art.format.value,
            "seconds": art.metadata.get("convert_seconds"), "sha256": art.sha256, "bytes": art.bytes,
            "path": str(art.path), "metadata": {k: v for k, v in art.metadata.items() if k != "convert_seconds"},
        }
        self.artifact_cache.put(key, art)
        return _Converted(art, None, upstream.record + [rec], upstream.log + ctx.log)

    @staticmethod
    def _hop_key(spec: ModelSpec, conv: Any, upstream: "_Converted", target: Target | None,
                 ctx: ConvertContext) -> str | None:
        from convcheck.artifact_cache import hop_key
        from convcheck.types import digest_paths

        # Hop options that live in the run settings (tuning trials) and the user's own converted files.
        settings = {k: v for k, v in ctx.settings.items() if k not in ("cache_dir", "given_artifacts")}
        settings["given"] = {f.value: digest_paths([p])[0] for f, p in spec.given_artifacts.items()}
        return hop_key(upstream.artifact.sha256 if upstream.artifact else None, type(conv),
                       (conv.options, settings), target.id if target else None, ctx.input_specs, ctx.output_names)

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
        runtime_cls = runtimes.get(route.runtime)
        for depth, conv_name in enumerate(route.converters):
            conv = converters.get(conv_name)
            if all(module_present(r.module) for r in conv.requires):  # type: ignore[attr-defined]
                continue
            # Convert as far as this machine can: a hop before the missing one that fails is what
            # blocks the cell (Keras GELU -> tf2onnx's Erfc -> TensorRT is unsupported, not
            # missing_dep: installing TensorRT would not help).
            check = conv.precheck  # type: ignore[attr-defined]
            if depth == 0:
                return
            upstream = self.convert(spec, route, target, hops=depth)
            if upstream.failure is not None:
                self._record_conversion(cell, upstream)
                self.blocked_by(cell, upstream.failure, conv.__name__)
            elif check is not None and upstream.artifact is not None:
                self._record_precheck(cell, check(upstream.artifact))
            return
        if not route.converters:
            return
        runtime_missing = not all(module_present(r.module) for r in runtime_cls.requires)  # type: ignore[attr-defined]
        converted = self.convert(spec, route, target)
        self._record_conversion(cell, converted)
        if converted.failure:
            self.blocked_by(cell, converted.failure, runtime_cls.__name__)
            return
        if runtime_missing:
            return
        check = runtime_cls.static_check  # type: ignore[attr-defined]
        if check is not None:
            self._record_precheck(cell, check(converted.artifact, spec, ref))

    @staticmethod
    def blocked_by(cell: dict[str, Any], failure: CellFailure, missing: str) -> None:
        """A cell is judged by the first thing that blocks it: a conversion that fails before the
        piece this machine lacks is reached is the cell's status; the missing piece is noted."""
        was = cell["error"]["message"] if cell.get("error") else ""
        cell["log"] = cell["log"] + detail_lines(failure)
        cell["status"] = failure.status
        cell["error"] = {"kind": failure.status, "message": failure.message, "stage": failure.stage,
                         "op": failure.op}
        if was:
            cell["warnings"].append(f"also could not run here ({missing}): {was}")

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
            with self.cores.shared():
                self._run_stages(spec, route, target, cell)
        except CellFailure as failure:
            cell["status"] = failure.status
            cell["error"] = {"kind": failure.status, "message": failure.message, "stage": failure.stage,
                             "op": failure.op}
            cell["log"] = cell["log"] + detail_lines(failure)
        except Exception as exc:  # noqa: BLE001 - a bug in convcheck must not stop the other cells
            # Every framework call of a stage is classified where it is made (classify): what reaches
            # here is convcheck's own bug, never a finding about the route (not cached, not scored).
            cell.update(internal_error_fields(exc, cell["stages"]))
            cell["log"] = cell["log"] + traceback.format_exc().splitlines()
        return cell

    def _run_stages(self, spec: ModelSpec, route: Route, target: Target, cell: dict[str, Any]) -> None:
        stages = cell["stages"]
        ref = self.reference(spec, route.source)
        cell["reference"] = ref.runtime
        if ref.note:
            cell["warnings"].append(ref.note)
        stages.append({"stage": "reference", "ok": True, "seconds": ref.seconds})
        cell["timings_s"]["reference"] = ref.seconds

        converted = self.convert(spec, route, target)
        self._record_conversion(cell, converted)
        if converted.failure:
            raise converted.failure
        artifact = converted.artifact
        assert artifact is not None

        task = dag.cell_task(spec.name, route.id, target.device, target.precision)
        self.cores.let_timers_in()
        self.on_stage(task, "load")
        rss_before = _rss_mb()
        t0 = time.perf_counter()
        try:
            runtime = self._activate(route.runtime, target, artifact)
        except Exception as exc:  # noqa: BLE001
            stages.append({"stage": "load", "ok": False, "seconds": time.perf_counter() - t0})
            raise classify(exc, "load") from exc
        cell["timings_s"]["load"] = time.perf_counter() - t0
        stages.append({"stage": "load", "ok": True, "seconds": cell["timings_s"]["load"]})
        cell["memory_mb"] = {"rss_before_load": rss_before, "rss_after_load": _rss_mb()}
        self._static_check(route, artifact, spec, ref, cell)
        try:
            self.on_stage(task, "run")
            self._run_and_compare(spec, runtime, ref, cell)
            self.on_stage(task, "benchmark")
            self._benchmark_batches(spec, route.source, runtime, cell)
            cell["memory_mb"].update(_memory_after(target))
            if self.settings.load is not None:
                self.on_stage(task, "loadgen")
                self._serve(spec, route, target, runtime, ref, cell)
        finally:
            runtime.deactivate()
        if not cell["parity"]["ok"]:
            self.on_stage(task, "localize")
            self._localize(spec, route, ref, cell)
        self._benchmark_variants(spec, route, target, artifact, ref, cell)
        self._finish(ref, cell)

    @staticmethod
    def _static_check(route: Route, artifact: Artifact, spec: ModelSpec, ref: Reference, cell: dict[str, Any]) -> None:
        """A runtime's static checks run on executed cells too: they see what execution hides (Core ML's
        int32 inputs where the source takes int64, which the runtime casts). A failed one is a warning."""
        check = runtimes.get(route.runtime).static_check  # type: ignore[attr-defined]
        if check is None:
            return
        try:
            found = check(artifact, spec, ref)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run must not hide the run's verdict
            cell["warnings"].append(f"static check failed to run: {first_line(exc)}")
            return
        cell["precheck"] = found
        failed = [c for c in found.get("checks", []) if not c["ok"]]
        cell["warnings"].extend(f"static check {c['name']}: {c['detail']}" for c in failed)

    def _activate(self, runtime_name: str, target: Target, artifact: Artifact) -> Any:
        runtime = runtimes.get(runtime_name)(target, self.settings.threads)
        runtime.activate(artifact)
        return runtime

    def _cross_check(self, spec: ModelSpec, runtime: Any, ref: Reference, cell: dict[str, Any]) -> None:
        """The runtime's second executor, if it has one, judged by the same rules; it informs, never decides."""
        t0 = time.perf_counter()
        try:
            opinion = runtime.second_opinion(ref.feeds)
            if opinion is None:
                return
            executor, outputs = opinion
            other = self._compare(spec, outputs, ref, cell)
        except Exception as exc:  # noqa: BLE001 - the second opinion failing must not change the cell
            cell["cross_check"] = {"executor": getattr(runtime, "second_executor", None), "ok": None,
                                   "error": first_line(exc), "seconds": time.perf_counter() - t0}
            return
        cell["cross_check"] = {"executor": executor, "ok": other["ok"], "max_abs": other.get("max_abs"),
                               "snr_db": other.get("snr_db"), "seconds": time.perf_counter() - t0}
        if other["ok"] != cell["parity"]["ok"]:
            verdicts = {True: "within tolerance", False: "outside tolerance"}
            cell["warnings"].append(f"the cell's runtime is {verdicts[cell['parity']['ok']]} but {executor} is "
                                    f"{verdicts[other['ok']]} (max_abs {other.get('max_abs'):.3g}) on the same "
                                    "artifact and inputs: the two executors disagree")

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
        cell["warnings"].extend(cell["runtime_settings"].get("notes") or [])  # a runtime's documented deviations

        t0 = time.perf_counter()
        parity = self._compare(spec, actual, ref, cell)
        cell["parity"] = parity
        for name in parity["tolerance"].get("ill_conditioned") or []:
            floor = parity["noise_floor"]["per_output"][name]["max_abs"]
            cell["warnings"].append(f"output {name}: the source itself errs by {floor:.3g} against float64 on these "
                                    "inputs, at least a tenth of the output's scale: the fp32 reference is unreliable "
                                    "here and the bound was widened to match; judge this cell with care")
        stages.append({"stage": "compare", "ok": parity["ok"], "seconds": time.perf_counter() - t0})
        self._cross_check(spec, runtime, ref, cell)

        if runtime.no_latency:
            cell["warnings"].append(f"no latency: {runtime.no_latency}")
            return
        feeds = ref.feeds[0]
        with self.cores.exclusive() as waited:
            if waited > 0.01:
                stages.append({"stage": "wait:cores", "ok": True, "seconds": waited})
            t0 = time.perf_counter()
            try:
                cell["latency_ms"] = measure(runtime.timed_call(feeds), self.settings.latency)
            except Exception as exc:  # noqa: BLE001 - the runtime failing under the timing loop is its status
                stages.append({"stage": "benchmark", "ok": False, "seconds": time.perf_counter() - t0})
                raise classify(exc, "benchmark") from exc
            seconds = time.perf_counter() - t0  # not the wait to share the cores again, after the hold
            alone = self.cores.held_alone
        cell["latency_ms"]["batch"] = _batch_of(feeds)
        cell["latency_ms"]["threads"] = cell["runtime_settings"].get("threads")
        cell["latency_ms"]["waited_for_cores_s"] = waited
        # False where the lock files could not be made, or another worker held the cores past the bound:
        # timed without keeping other convcheck workers off.
        cell["latency_ms"]["cores_held_alone"] = alone
        if not alone:
            why = self.cores.unavailable or f"another worker held them for over {self.cores.max_wait_s:g} s"
            cell["warnings"].append(f"latency timed without the cores to itself ({why}): other convcheck work may "
                                    "have run beside it")
        if cell["latency_ms"]["noisy"]:
            cell["warnings"].append(f"noisy latency: cv {cell['latency_ms']['cv']:.0%} over "
                                    f"{cell['latency_ms']['n']} iterations; compare p50s with care")
        stages.append({"stage": "benchmark", "ok": True, "seconds": seconds})

    def _benchmark_batches(self, spec: ModelSpec, source: Format, runtime: Any, cell: dict[str, Any]) -> None:
        """`--batch 1,8,...`: latency and throughput per batch size, where the batch axis is dynamic.

        A runtime whose artifact was built for one shape (TVM compiles the shapes in, a TensorRT
        profile has a range) may refuse a batch: that is recorded, not a failure of the cell."""
        if not self.settings.batches or runtime.no_latency:
            return
        fixed = self._fixed_batch(spec, source)
        if fixed is not None:
            cell["batches"] = {"skipped": fixed}
            return
        found = []
        for batch in self.settings.batches:
            feeds = spec.feeds(0, batch=batch, fmt=source, size=self.settings.size)
            if spec.given_feeds:
                # The user's data comes at its own batch: its first row repeated to the batch timed
                # (spec.feeds would hand back the same sample under every batch label).
                feeds = {n: np.repeat(np.asarray(a)[:1], batch, axis=0) if np.ndim(a) else a for n, a in feeds.items()}
            entry: dict[str, Any] = {"batch": batch}
            try:
                with self.cores.exclusive():
                    entry["latency_ms"] = measure(runtime.timed_call(feeds), self.settings.latency)
                entry["throughput_per_s"] = batch * 1000.0 / entry["latency_ms"]["p50"]
            except Exception as exc:  # noqa: BLE001 - a fixed-shape artifact: recorded per batch
                entry["error"] = first_line(exc)
            found.append(entry)
        cell["batches"] = {"per_batch": found}

    def _serve(self, spec: ModelSpec, route: Route, target: Target, runtime: Any, ref: Reference,
               cell: dict[str, Any]) -> None:
        """MLPerf LoadGen's scenarios over the cell's runtime (convcheck.validate.loadgen), on a cell that
        passes: a load figure of a route whose outputs do not match would be a figure about nothing. A
        load test that cannot run is recorded in `cell["load"]`; it never changes the cell's verdict."""
        from convcheck.validate.loadgen import LoadgenMissing, RuntimeFailed, serve

        if not cell["parity"]["ok"] or ref.vacuous:
            cell["load"] = {"skipped": "the cell does not pass: load is measured only where the outputs match"}
            return
        if runtime.no_latency:
            cell["load"] = {"skipped": f"no latency on this host: {runtime.no_latency}"}
            return
        log_dir = self.settings.workdir / "load" / spec.name / f"{route.id.replace('/', '_')}-{target.device}-" \
                                                               f"{target.precision}"
        t0 = time.perf_counter()
        try:
            with self.cores.exclusive():  # LoadGen's latencies are timings too
                cell["load"] = serve(runtime, ref.feeds, self.settings.load, (cell.get("latency_ms") or {}).get("p50"),
                                     self._fixed_batch(spec, route.source),
                                     lambda outputs: self._compare(spec, outputs, ref, cell), log_dir)
            cell["load"]["logs"] = str(log_dir.relative_to(self.settings.workdir))  # beside results.json
            ok = cell["load"]["error"] is None
        except (LoadgenMissing, RuntimeFailed) as exc:  # recorded; the cell's verdict stands
            # Anything else raised by the harness is convcheck's own bug: the cell's internal error.
            cell["load"] = {"error": str(exc)}
            ok = False
        if not ok:
            cell["warnings"].append(f"load: {cell['load']['error']}")
        cell["timings_s"]["loadgen"] = time.perf_counter() - t0
        cell["stages"].append({"stage": "loadgen", "ok": ok, "seconds": cell["timings_s"]["loadgen"]})

    def _fixed_batch(self, spec: ModelSpec, source: Format) -> str | None:
        """Why batch sizes cannot vary for this model (`--batch` sweeps, load-test batching), or None when
        every input's first axis is dynamic."""
        inputs = spec.inputs_for(source, self.settings.size)
        if all(0 in i.dynamic_axes for i in inputs):
            return None
        return f"the model's batch axis is not dynamic: {', '.join(i.describe() for i in inputs)}"

    def _localize(self, spec: ModelSpec, route: Route, ref: Reference, cell: dict[str, Any]) -> None:
        """Where the error starts, on the worst sample, with the tolerance the cell was judged by."""
        from convcheck.validate.localize import localize_cell
        from convcheck.model_spec import materialize

        applied = cell["parity"]["tolerance"]
        tol = Tolerance(applied["atol"], applied["rtol"], applied.get("check", "elementwise"),
                        applied.get("min_snr_db"), applied.get("atol_rel") or 0.0, applied.get("negligible"))
        feeds = ref.feeds[cell["parity"].get("worst_sample") or 0]
        found = localize_cell(route.formats, route.runtime, cell["artifacts"],
                              lambda: materialize(self.source_artifact(spec, route.source)), feeds, tol,
                              source_file=spec.files.get(route.source))
        cell["localization"] = found
        if found.get("found"):
            # Exporters and hand-built graphs leave nodes unnamed: then the tensor it writes names it.
            where = found.get("node") or found.get("layer") or (f"writing {found['output']}" if found.get("output")
                                                                 else "")
            module = found.get("torch_module")
            layer = found.get("keras_layer")
            cell["localization"]["summary"] = (f"error starts at {found.get('op_type') or found.get('keras_class')} "
                                               f"{where}" + (f" (torch module {module})" if module else "")
                                               + (f" (Keras layer {layer})" if layer else ""))

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
                    record["parity"] = self._compare(spec, got, ref, cell)
                    feeds = ref.feeds[0]
                    with self.cores.exclusive():
                        record["latency_ms"] = measure(runtime.timed_call(feeds), self.settings.latency)
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
            summary = (cell.get("localization") or {}).get("summary")
            raise CellFailure(Status.MISMATCH.value, f"{bad}; {summary}" if summary else bad, "compare")
        if ref.vacuous:
            name, why = next(iter(ref.vacuous.items()))
            raise CellFailure(Status.VACUOUS.value, f"output {name}: {why}; the comparison proves nothing",
                              "compare")
        cell["status"] = Status.PASS.value


def _batch_of(feeds: dict[str, np.ndarray]) -> int | None:
    first = next(iter(feeds.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else None


def _rss_mb() -> float | None:
    """This process's resident memory now (Linux /proc; None elsewhere)."""
    import os

    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _memory_after(target: Target) -> dict[str, Any]:
    """Resident memory after the cell ran, the process's peak so far, and the GPU's where there is one.

    Cells share a process until the engine isolates them (one worker per task): the peak is the
    process's, so it bounds a cell's need from above; rss_after_run - rss_before_load is the
    cell's own footprint when nothing was freed in between."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    now = _rss_mb()
    # ru_maxrss is sampled by the kernel lazily: never report a peak below what is resident now.
    found: dict[str, Any] = {"rss_after_run": now, "process_peak_rss": max(peak, now or 0.0), "gpu_peak": None}
    if target.device == "cuda" and "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            found["gpu_peak"] = torch.cuda.max_memory_allocated() / 2**20
    return found
