"""The plan: run settings and the models x routes x targets cells they expand into.

A light module every part of the engine reads (the cache key, the DAG, the executors, the run API):
it imports no executor, no pipeline stage and no framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convcheck.errors import ConvcheckError
from convcheck.model_spec import ModelSpec
from convcheck.registry import converters, did_you_mean, models
from convcheck.routes import Route, sources
from convcheck.types import Format, Target
from convcheck.validate.latency import LatencyConfig
from convcheck.validate.loadgen import LoadSettings


@dataclass
class RunSettings:
    workdir: Path
    size: str = "full"
    samples: int = 4  # parity samples per cell, seeds 0..samples-1
    threads: int | None = None  # None: the runtime's default
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    #: Reference runtime per source format, where the user chose another than the default (routes.sources).
    references: dict[Format, str] = field(default_factory=dict)
    #: Options hops read from their ConvertContext (tvm_tune_trials, cache_dir).
    hop_settings: dict[str, Any] = field(default_factory=dict)
    #: `--atol/--rtol`: one elementwise bound for every cell, instead of the precision profiles.
    tolerance_override: dict[str, float] | None = None
    #: `--batch 1,8,...`: extra batch sizes timed where the model's batch axis is dynamic.
    batches: tuple[int, ...] = ()
    #: Where converted artifacts are cached across runs (convcheck.artifact_cache); None: not cached.
    artifact_cache_dir: Path | None = None
    #: `--max-artifact-mb`: a conversion writing more than this is refused (a model or converter that
    #: would fill the disk); None: no bound.
    max_artifact_mb: float | None = 20480.0
    #: `--toolchain PKG==VERSION` overrides (convcheck.toolchains): routes that touch PKG run in an
    #: environment where it is that version. Not in the cell key as such: the environment's resolved
    #: versions are (convcheck.cache), so a cell the override does not touch keeps its cache entry.
    toolchains: tuple[str, ...] = ()
    #: `convcheck load` (and an audit with --traffic and a budget): MLPerf LoadGen scenarios run on every
    #: passing cell (convcheck.validate.loadgen); None: no load test.
    load: LoadSettings | None = None

    def reference_runtime(self, source: Format) -> str:
        return self.references.get(source) or sources()[source]


@dataclass(frozen=True)
class PlannedCell:
    spec: ModelSpec
    route: Route
    target: Target
    #: The toolchain environment (convcheck.envs.Env) the cell runs in, set once it exists; None: this
    #: interpreter. Which one a route needs is convcheck.toolchains.env_for(route, settings.toolchains).
    env: Any = field(default=None, compare=False)


def select_models(spec: str | None) -> list[ModelSpec]:
    """Models named by `--models`: None or "all" -> the whole zoo."""
    names = models.names()
    if spec is None or spec.strip() == "all":
        return [models.get(n) for n in names]  # type: ignore[misc]
    chosen: list[ModelSpec] = []
    for name in (s.strip() for s in spec.split(",")):
        if not name:
            continue
        if name not in names:
            raise ConvcheckError(f"unknown model {name!r}{did_you_mean(name, names)} "
                                 "(list the zoo with `convcheck models`)")
        chosen.append(models.get(name))  # type: ignore[arg-type]
    if not chosen:
        raise ConvcheckError("--models is empty: name at least one model, or `all`")
    return chosen


def plan(specs: list[ModelSpec], routes: list[Route], devices: list[str], precisions: list[str]) -> list[PlannedCell]:
    """Expand models x routes x targets. A route that runs on none of the requested devices (TensorRT,
    `torch/eager` on a CPU run) still gets one cell, on its own device, so its status says why it
    cannot run here; precisions a runtime does not offer are not planned."""
    cells = []
    for spec in specs:
        for route in routes:
            if route.source not in spec.sources:
                continue
            route_devices = [d for d in devices if d in route.devices] or [route.devices[0]]
            # A route that runs the user's file as it is (no conversion) runs it at the file's precision.
            as_given = spec.precision and all(converters.get(c).passes_through  # type: ignore[attr-defined]
                                              for c in route.converters)
            for device in route_devices:
                for precision in precisions:
                    if precision in route.precisions and (not as_given or precision == spec.precision):
                        cells.append(PlannedCell(spec, route, Target(route.runtime, device, precision)))
    if not cells:
        raise ConvcheckError(
            "nothing to run: none of the chosen routes starts from a format these models come in "
            f"(models: {', '.join(s.name for s in specs)}; their sources: "
            f"{', '.join(sorted({f.value for s in specs for f in s.sources}))}) "
            "or none supports the chosen precision"
        )
    return cells
