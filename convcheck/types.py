"""The vocabulary of DESIGN.md as types: Format, Status, Requirement, Artifact, Target, Cell."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


class Format(str):
    """What an artifact is: a string with one interned instance per name, so `fmt is Format.ONNX` holds.

    The built-in formats are class attributes (`Format.ONNX`); a plugin adds its own with
    `Format.register("stablehlo")` (then `Format.STABLEHLO`, `Format("stablehlo")`). An enum cannot be
    extended, which is why this is not one; it keeps the enum's surface (`.value`, `.name`, `Format(x)`).
    """

    _known: ClassVar[dict[str, "Format"]] = {}

    def __new__(cls, value: "str | Format") -> "Format":
        if isinstance(value, Format):
            return value
        try:
            return cls._known[value]
        except (KeyError, TypeError):
            known = ", ".join(cls._known)
            raise ValueError(f"{value!r} is not a known artifact format ({known}); a plugin that brings a new "
                             "format registers it with convcheck.types.Format.register") from None

    @classmethod
    def register(cls, value: str) -> "Format":
        """The format named `value`, created on first registration (idempotent: plugins may share one)."""
        if value in cls._known:
            return cls._known[value]
        if not value or not value.replace("_", "").isalnum() or value != value.lower():
            raise ValueError(f"format name {value!r}: use lower-case letters, digits and underscores")
        fmt = str.__new__(cls, value)
        cls._known[value] = fmt
        setattr(cls, value.upper(), fmt)
        return fmt

    @classmethod
    def all(cls) -> tuple["Format", ...]:
        return tuple(cls._known.values())

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.value.upper()

    def __repr__(self) -> str:
        return f"<Format.{self.name}: {self.value!r}>"

    def __str__(self) -> str:
        return self.value

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # A worker process unpickles a plugin's format before it imports the plugin: register on the way in.
        return (Format.register, (self.value,))

    # Declared for type checkers; created by register() below.
    TORCH: ClassVar["Format"]
    KERAS: ClassVar["Format"]
    SAVEDMODEL: ClassVar["Format"]
    TORCHSCRIPT: ClassVar["Format"]
    EXPORTED_PROGRAM: ClassVar["Format"]
    ONNX: ClassVar["Format"]
    TFLITE: ClassVar["Format"]
    COREML: ClassVar["Format"]
    OPENVINO: ClassVar["Format"]
    TVM: ClassVar["Format"]
    TENSORRT: ClassVar["Format"]
    PTE: ClassVar["Format"]  # an ExecuTorch program
    AOTI: ClassVar["Format"]  # an AOTInductor package (.pt2 of compiled kernels and weights)
    JAX: ClassVar["Format"]  # a JAX function (a Flax NNX module) built in code
    STABLEHLO: ClassVar["Format"]  # a StableHLO MLIR module (jax.export, iree-import-tf)
    TORCH_MLIR: ClassVar["Format"]  # an MLIR module in the torch dialect (iree-turbine), IREE's torch input


for _builtin in ("torch", "keras", "savedmodel", "torchscript", "exported_program", "onnx", "tflite", "coreml",
                 "openvino", "tvm", "tensorrt", "pte", "aoti", "jax", "stablehlo", "torch_mlir"):
    Format.register(_builtin)


class Status(str, enum.Enum):
    """The outcome of one cell. A failed cell is data, never an exception that stops the run."""

    PASS = "pass"
    MISMATCH = "mismatch"
    VACUOUS = "vacuous"  # the reference output carries no signal: the comparison proves nothing
    CONVERT_ERROR = "convert_error"
    RUNTIME_ERROR = "runtime_error"
    UNSUPPORTED = "unsupported"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    OOM = "oom"
    MISSING_DEP = "missing_dep"
    NO_DEVICE = "no_device"
    UPSTREAM_FAILED = "upstream_failed"
    #: A bug in convcheck itself, not a finding about the route: never cached, never scored.
    INTERNAL_ERROR = "internal_error"

    @property
    def is_failure(self) -> bool:
        """True for statuses that make `convcheck matrix` exit 1.

        missing_dep and no_device are stated reasons a cell could not run *here*, not failures of the
        route; pass is a pass. Everything else, vacuous included, needs a human to look.
        """
        return self not in (Status.PASS, Status.MISSING_DEP, Status.NO_DEVICE)


PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("cpu", "cuda", "ane")


@dataclass(frozen=True)
class Requirement:
    """A Python package a hop or runtime needs: `module` is checked with importlib without importing it."""

    module: str
    distribution: str
    extra: str
    #: What the user must know beyond `pip install 'convcheck[extra]'` (a known conflict, a vendor index).
    note: str = ""
    #: Other distributions that provide the same module or come with it (tensorflow beside
    #: tensorflow-cpu, onnxruntime-gpu): a report shows their versions for the routes that touch it.
    also: tuple[str, ...] = ()
    #: The module `convcheck doctor` imports to prove the package works, where `module` alone does not
    #: (ai_edge_litert's interpreter); "" means `module`.
    import_check: str = ""

    @property
    def distributions(self) -> tuple[str, ...]:
        return (self.distribution, *self.also)


@dataclass(frozen=True)
class Toolchain:
    """The environment a hop or runtime runs in, declared on its class (`toolchain = ...`): its own
    requirement set, installed with uv beside the route's other packages (convcheck.toolchains)."""

    name: str  # what users read: `litert-torch`
    requirements: tuple[str, ...]  # PEP 508 strings
    why: str = ""  # one line: why it cannot live in the main environment


@dataclass(frozen=True)
class Target:
    """Where a converted model runs: runtime + device + precision."""

    runtime: str
    device: str = "cpu"
    precision: str = "fp32"

    @property
    def id(self) -> str:
        return f"{self.runtime}:{self.device}:{self.precision}"


@dataclass
class Artifact:
    """A file or folder on disk with its format, digest and metadata.

    Multi-file artifacts (an ONNX model with external weights, a SavedModel) are folders and are
    hashed and moved as one. `path` is None only for an in-memory source model (a zoo model built
    from code), which is then described by `metadata` and rebuilt deterministically where needed.
    """

    format: Format
    path: Path | None
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    bytes: int | None = None

    def seal(self) -> "Artifact":
        """Compute digest and size from what is on disk (a file with its listed `members`, e.g. an
        ONNX model and its external-data files, counts as one)."""
        if self.path is not None:
            members = [self.path.parent / m for m in self.metadata.get("members", ())]
            self.sha256, self.bytes = digest_paths([self.path, *members])
        return self

    @property
    def main_file(self) -> Path:
        """The file a runtime opens: the path itself, or the folder's declared entry file."""
        if self.path is None:
            raise ValueError(f"{self.format.value} artifact has no file on disk")
        entry = self.metadata.get("entry")
        return self.path / entry if entry else self.path


def module_sources(roots: tuple[str, ...], imports: str) -> dict[str, str]:
    """The source of the modules `roots` and of every module they import, recursively, where `imports`
    (a regex, searched per line, group 1: the module name) picks which imports to follow. A module
    without source on disk (a plugin registered in code) counts as ''. For digests of code: the zoo's
    model fingerprints, the cache keys' `code`."""
    import importlib
    import inspect
    import re

    seen: dict[str, str] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        try:
            seen[name] = inspect.getsource(importlib.import_module(name))
        except (OSError, TypeError, ImportError):
            seen[name] = ""
            continue
        pending += re.findall(imports, seen[name], flags=re.M)
    return seen


def digest_paths(paths: list[Path]) -> tuple[str, int]:
    """sha256 and total size of files and folders (a folder: relative names and contents, sorted)."""
    h = hashlib.sha256()
    total = 0
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            h.update((f.relative_to(path).as_posix() if f != path else f.name).encode() + b"\0")
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
                    total += len(chunk)
    return h.hexdigest(), total


@dataclass(frozen=True)
class Cell:
    """(model, route, target): the unit of the matrix."""

    model: str
    route: str
    target: Target

    @property
    def id(self) -> str:
        return f"{self.model} {self.route} {self.target.device}:{self.target.precision}"
