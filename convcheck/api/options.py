"""The API's option objects: what a run computes (`MatrixOptions`, `CheckOptions`), how it runs
(`EngineOptions`) and what fails it (`ReportOptions`). Each validates itself when made (a
ConvcheckError naming the option and the fix) and round-trips through `to_dict()`/`from_dict()`."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Optional, Union

from convcheck.errors import ConvcheckError

#: Version of the `to_dict()` form; `from_dict` reads this one and older ones.
OPTIONS_VERSION = 1

PathLike = Union[str, "os.PathLike[str]"]
Words = Union[str, Iterable[str]]


# -- value checks shared by the option classes -------------------------------------------------------
def _words(value: Words | None) -> tuple[str, ...] | None:
    """"a, b" or ["a", "b"] -> ("a", "b"); None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(v.strip() for v in items if v.strip())


def _path(value: PathLike | None) -> Path | None:
    return None if value is None else Path(value)


def _choose(value: str, kind: str, vocabulary: tuple[str, ...], special: dict[str, Callable[[], Iterable[str]]],
            resolve: bool = True) -> list[str]:
    """A comma-separated choice from `vocabulary`, or one of the `special` words (each a callable,
    called only to `resolve` the word: `auto` asks the machine)."""
    if value in special:
        return list(special[value]()) if resolve else []
    chosen = _words(value) or (vocabulary[0],)
    for item in chosen:
        if item not in vocabulary:
            raise ConvcheckError(f"unknown {kind} {item!r}: use one of {', '.join([*vocabulary, *special])}")
    return list(chosen)


def _devices(devices: tuple[str, ...], resolve: bool = True) -> list[str]:
    from convcheck.environment import devices as present
    from convcheck.types import DEVICES

    return _choose(",".join(devices), "device", DEVICES, {"auto": present, "all": lambda: DEVICES}, resolve)


def _precisions(precisions: tuple[str, ...]) -> list[str]:
    from convcheck.types import PRECISIONS

    return _choose(",".join(precisions), "precision", PRECISIONS, {"all": lambda: PRECISIONS})


def _batches(value: str | Iterable[int]) -> tuple[int, ...]:
    if isinstance(value, str):
        if not value:
            return ()
        try:
            sizes = tuple(dict.fromkeys(int(v) for v in value.split(",") if v.strip()))
        except ValueError:
            raise ConvcheckError(f"--batch {value!r}: give batch sizes joined by commas, e.g. 1,8,32") from None
        if not sizes or any(b < 1 for b in sizes):
            raise ConvcheckError(f"--batch {value!r}: batch sizes must be 1 or more")
        return sizes
    sizes = tuple(dict.fromkeys(value))
    if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes):
        raise ConvcheckError(f"--batch {list(sizes)}: batch sizes are whole numbers, 1 or more")
    return sizes


def _at_least(name: str, value: Any, low: float, whole: bool = False, optional: bool = False,
              finite: bool = True) -> None:
    """A number option: at least `low`; `finite` for the plan's (they are stored as JSON, which has no inf)."""
    if value is None and optional:
        return
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= low or (finite and value == math.inf):
        raise ConvcheckError(f"--{name.replace('_', '-')} {value!r}: give a {'whole ' if whole else ''}"
                             f"{'finite ' if finite and not whole else ''}number, {low:g} or more")


def _resolved(value: str | None) -> str | None:
    """A path given relative to here, stored absolute (a resume works from any folder); a
    package.module:factory name, or a file that is not there, as it is."""
    return str(Path(value).resolve()) if value is not None and Path(value).exists() else value


class _Options:
    """to_dict/from_dict for the frozen option dataclasses below."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": OPTIONS_VERSION, "kind": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        if not isinstance(data, dict):
            raise ConvcheckError(f"{cls.__name__}.from_dict takes a dict, not {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", OPTIONS_VERSION)
        if not isinstance(version, int) or version > OPTIONS_VERSION:
            raise ConvcheckError(f"{cls.__name__} version {version!r} is newer than this convcheck reads "
                                 f"({OPTIONS_VERSION}): upgrade convcheck")
        kind = data.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ConvcheckError(f"these are {kind!r} options, not {cls.kind!r}: read them with the "
                                 f"{cls.kind!r} options class")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConvcheckError(f"{cls.__name__}: unknown option {unknown[0]!r}; use any of {', '.join(sorted(names))}")
        return cls(**data)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)


@dataclass(frozen=True, kw_only=True)
class _PlanOptions(_Options):
    """What a run computes (stored with the run; a resume replays it). Shared by matrix and check."""

    routes: Optional[tuple[str, ...]] = None  # None: every route available here; ("all",): every route
    devices: tuple[str, ...] = ("auto",)  # names, or ("auto",): what this machine has, ("all",)
    precisions: tuple[str, ...] = ("all",)  # names, or ("all",): every precision each route offers
    input_specs: tuple[str, ...] = ()  # --input NAME:SHAPE:DTYPE[:LOW..HIGH] for your model files
    samples: int = 4
    threads: Optional[int] = None  # None: the machine's physical cores
    bench_seconds: float = 1.0
    bench_iters: int = 30
    batches: tuple[int, ...] = ()
    atol: Optional[float] = None  # with rtol: one elementwise bound instead of the precision profiles
    rtol: Optional[float] = None
    tvm_tune: int = 0
    #: `--toolchain PKG==VERSION`: routes touching PKG run with that version in an environment of its own.
    toolchains: tuple[str, ...] = ()
    #: `convcheck load`: MLPerf LoadGen settings (convcheck.validate.loadgen.LoadSettings, as a dict) run on
    #: every passing cell; None: no load test.
    load: Optional[dict[str, Any]] = None
    out: Optional[Path] = None  # None: runs/<run id>/

    def __post_init__(self) -> None:
        self._set("routes", _words(self.routes))
        self._set("devices", _words(self.devices) or ())
        self._set("precisions", _words(self.precisions) or ())
        self._set("input_specs", tuple(str(v) for v in self.input_specs or ()))
        from convcheck.toolchains import check_overrides

        self._set("toolchains", check_overrides(_words(self.toolchains) or ()))
        self._set("out", _path(self.out))
        if self.load is not None:
            from convcheck.validate.loadgen import LoadSettings

            given = self.load.to_dict() if isinstance(self.load, LoadSettings) else self.load
            if not isinstance(given, dict):
                raise ConvcheckError(f"load: give LoadSettings or a dict of its fields, not {type(given).__name__}")
            self._set("load", LoadSettings.from_dict(given).to_dict())
        _devices(self.devices, resolve=False), _precisions(self.precisions)  # usage errors before any work
        if (self.atol is None) != (self.rtol is None):
            raise ConvcheckError("--atol and --rtol go together: give both (e.g. --atol 1e-3 --rtol 1e-2)")
        self._set("batches", _batches(self.batches if self.batches is not None else ()))
        _at_least("samples", self.samples, 1, whole=True)
        _at_least("threads", self.threads, 1, whole=True, optional=True)
        _at_least("bench_seconds", self.bench_seconds, 0)
        _at_least("bench_iters", self.bench_iters, 1, whole=True)
        _at_least("tvm_tune", self.tvm_tune, 0, whole=True)
        _at_least("atol", self.atol, 0, optional=True)
        _at_least("rtol", self.rtol, 0, optional=True)

    def device_list(self) -> list[str]:
        return _devices(self.devices)

    def precision_list(self) -> list[str]:
        return _precisions(self.precisions)

    def load_settings(self) -> Any:
        """The LoadSettings to run on passing cells, or None."""
        from convcheck.validate.loadgen import LoadSettings

        return None if self.load is None else LoadSettings.from_dict(self.load)

    def tolerance(self) -> dict[str, float] | None:
        return None if self.atol is None else {"atol": self.atol, "rtol": self.rtol}  # type: ignore[dict-item]

    def resolved(self) -> Any:
        """These options with every path absolute (what a run stores)."""
        return dataclasses.replace(self, out=self.out.resolve() if self.out is not None else None)

    # Implemented by the two kinds of plan.
    def specs(self) -> list[Any]:
        raise NotImplementedError

    def references(self) -> dict[Any, str]:
        return {}

    size: ClassVar[str] = "full"


@dataclass(frozen=True, kw_only=True)
class MatrixOptions(_PlanOptions):
    """`convcheck matrix`: zoo models (and model files of yours) x routes x targets."""

    kind: ClassVar[str] = "matrix"
    #: Zoo model names; None: the whole zoo (or only `model_files`, when there are some); ("all",).
    models: Optional[tuple[str, ...]] = field(default=None, kw_only=False)
    model_files: tuple[str, ...] = ()  # your models, in any format `check` reads
    #: Beside model_files, one entry each: a .npz of example inputs (as CheckOptions.examples), or "" for none.
    model_examples: tuple[str, ...] = ()
    size: str = "full"  # type: ignore[misc]  # zoo model size: full or tiny

    def __post_init__(self) -> None:
        self._set("models", _words(self.models))
        self._set("model_files", tuple(str(v) for v in self.model_files or ()))
        self._set("model_examples", tuple(str(v) for v in self.model_examples or ()))
        if self.model_examples and len(self.model_examples) != len(self.model_files):
            raise ConvcheckError(f"model_examples has {len(self.model_examples)} entries for {len(self.model_files)} "
                                 "model_files: give one per file (\"\" for a file without examples)")
        if self.size not in ("full", "tiny"):
            raise ConvcheckError(f"unknown size {self.size!r}: use full or tiny")
        super().__post_init__()

    def specs(self) -> list[Any]:
        from convcheck.plan import select_models

        specs = select_models(None if self.models is None else ",".join(self.models)) \
            if self.models or not self.model_files else []
        if self.model_files:
            from convcheck.zoo.user_files import spec_for_model

            examples = self.model_examples or ("",) * len(self.model_files)
            specs += [spec_for_model(f, list(self.input_specs), None, examples=Path(e) if e else None)
                      for f, e in zip(self.model_files, examples)]
        return specs

    def resolved(self) -> MatrixOptions:
        return dataclasses.replace(super().resolved(), model_files=tuple(_resolved(f) for f in self.model_files),
                                   model_examples=tuple(_resolved(e) if e else "" for e in self.model_examples))


@dataclass(frozen=True, kw_only=True)
class CheckOptions(_PlanOptions):
    """`convcheck check MODEL`: one model of yours down every route that starts from its format."""

    kind: ClassVar[str] = "check"
    #: A model file (.onnx, .pt2, .pt/.ts, .keras, SavedModel folder, .tflite) or package.module:factory.
    model: Optional[str] = field(default=None, kw_only=False)
    source: Optional[str] = None  # for a .tflite you converted: the model it came from
    signature: Optional[str] = None  # for a SavedModel: the signature to check
    input_data: Optional[Path] = None  # --inputs: a .npz with one array per input name (every sample)
    #: --examples: a .npz of one example batch: the first sample, seeded draws like it after it.
    examples: Optional[Path] = None
    reference: str = "ort"  # for ONNX files: ort or onnx-reference

    def __post_init__(self) -> None:
        if not self.model:
            raise ConvcheckError("name the model to check: `convcheck check MODEL` (or finish a run with --resume RUN)")
        self._set("model", os.fspath(self.model))
        self._set("source", None if self.source is None else os.fspath(self.source))
        self._set("input_data", _path(self.input_data))
        self._set("examples", _path(self.examples))
        if self.input_data is not None and self.examples is not None:
            raise ConvcheckError("give --inputs (every sample) or --examples (the first sample, random ones like it "
                                 "after it), not both")
        super().__post_init__()
        from convcheck.routes import reference_choices
        from convcheck.types import Format

        choices = reference_choices(Format.ONNX)
        if self.reference not in choices:
            raise ConvcheckError(f"unknown --reference {self.reference!r}: use {' or '.join(choices)}")

    def specs(self) -> list[Any]:
        from convcheck.zoo.user_files import spec_for_model

        return [spec_for_model(self.model, list(self.input_specs), self.input_data,  # type: ignore[arg-type]
                               source=self.source, signature=self.signature, examples=self.examples)]

    def references(self) -> dict[Any, str]:
        from convcheck.routes import reference_choices
        from convcheck.types import Format

        return {Format.ONNX: reference_choices(Format.ONNX)[self.reference]}

    def resolved(self) -> CheckOptions:
        data = self.input_data.resolve() if self.input_data is not None and self.input_data.exists() else self.input_data
        examples = self.examples.resolve() if self.examples is not None and self.examples.exists() else self.examples
        return dataclasses.replace(super().resolved(), model=_resolved(self.model), source=_resolved(self.source),
                                   input_data=data, examples=examples)


@dataclass(frozen=True, kw_only=True)
class EngineOptions(_Options):
    """How a run computes its plan; may change on a resume."""

    kind: ClassVar[str] = "engine"
    executor: str = "local"  # local (worker processes), ray, inline (this process, debugging)
    jobs: Optional[int] = None  # None: what this machine can take
    timeout: float = 1800.0  # seconds one cell may take (status timeout)
    memory_limit: Optional[float] = None  # MiB per worker (status oom); None: 80% of memory over jobs
    ray_address: Optional[str] = None
    no_cache: bool = False
    retry_failed: bool = False
    max_artifact_mb: float = 20480.0  # a conversion writing more is refused (convert_error)

    def __post_init__(self) -> None:
        from convcheck.executors import executor_names

        names = executor_names()
        if self.executor not in names:
            raise ConvcheckError(f"unknown --executor {self.executor!r}: use {' or '.join(names)}")
        if self.ray_address and self.executor != "ray":
            raise ConvcheckError("--ray-address goes with --executor ray")
        _at_least("jobs", self.jobs, 1, whole=True, optional=True)
        _at_least("timeout", self.timeout, 1, finite=False)
        _at_least("memory_limit", self.memory_limit, 64, optional=True, finite=False)
        _at_least("max_artifact_mb", self.max_artifact_mb, 0.01, finite=False)


@dataclass(frozen=True, kw_only=True)
class ReportOptions(_Options):
    """What fails a run (exit code 1, a JUnit <failure>) and the lock-in weights; checked when made,
    so a typo never costs a whole run."""

    kind: ClassVar[str] = "report"
    #: Statuses, `failures`, `all` or `none`; None: every failure (missing_dep, no_device not).
    fail_on: Optional[tuple[str, ...]] = None
    lockin_weights: Optional[Path] = None  # a JSON file over convcheck/reports/data/lockin.json
    #: `--mlflow [URI]`: log one MLflow run per cell (convcheck.tracking); "default": MLFLOW_TRACKING_URI or
    #: ./mlflow.db. None: no tracking.
    mlflow: Optional[str] = None

    def __post_init__(self) -> None:
        from convcheck.reports.lockin import load_lockin_data

        if self.mlflow is not None:
            self._set("mlflow", os.fspath(self.mlflow))

        self._set("fail_on", _words(self.fail_on))
        self._set("lockin_weights", _path(self.lockin_weights))
        load_lockin_data(self.lockin_weights)
        self.statuses()

    def statuses(self) -> set[str]:
        from convcheck.reports.outputs import parse_fail_on

        return parse_fail_on(None if self.fail_on is None else ",".join(self.fail_on))


PlanOptions = Union[MatrixOptions, CheckOptions]
_KINDS: dict[str, type] = {"matrix": MatrixOptions, "check": CheckOptions}
