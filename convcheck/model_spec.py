"""How a zoo model is declared: as data next to its code.

A `ModelSpec` holds everything convcheck needs to know without building the model: inputs (names,
shapes, dtypes, value ranges, dynamic axes), outputs, task, sizes and one builder per source
framework (a lazy dotted path, so listing the zoo imports no framework).
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.registry import load_dotted
from convcheck.types import Artifact, Format, digest_paths


@dataclass(frozen=True)
class InputSpec:
    """One model input. `shape` uses the spec's batch size at axis 0 when `dynamic_axes` names it."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    # Value range: "normal" draws N(mean=low, std=high); "uniform" draws in [low, high); "int" draws
    # integers in [low, high) (token ids below the vocabulary size, category codes); "mask" gives each
    # row ones then zeros along the last axis, its valid length a fraction in [low, high] of the axis
    # (the padding pattern of a real attention mask).
    distribution: str = "normal"
    low: float = 0.0
    high: float = 1.0
    dynamic_axes: dict[int, str] = field(default_factory=dict)

    def sample(self, rng: np.random.Generator, batch: int | None = None) -> np.ndarray:
        shape = list(self.shape)
        if batch is not None and 0 in self.dynamic_axes:
            shape[0] = batch
        if self.distribution == "normal":
            arr = rng.normal(self.low, self.high, size=shape)
        elif self.distribution == "uniform":
            arr = rng.uniform(self.low, self.high, size=shape)
        elif self.distribution == "int":
            arr = rng.integers(int(self.low), int(self.high), size=shape)
        elif self.distribution == "mask":
            length = shape[-1]
            valid = rng.integers(max(1, round(self.low * length)), round(self.high * length) + 1,
                                 size=(*shape[:-1], 1))
            arr = np.arange(length) < valid
        else:
            raise ValueError(f"input {self.name!r}: unknown distribution {self.distribution!r}")
        return arr.astype(self.dtype)

    def describe(self) -> str:
        dims = [self.dynamic_axes.get(i, str(d)) for i, d in enumerate(self.shape)]
        return f"{self.name}:{'x'.join(dims)}:{self.dtype}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    task: str  # "classifier" outputs get top-k agreement; "regression", "embedding", "segmentation", ...
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    builders: dict[Format, str] = field(default_factory=dict)  # framework -> "module:function(size) -> model"
    sizes: tuple[str, ...] = ("full", "tiny")
    batch: int = 1  # the batch each parity sample and latency figure uses
    #: A user's model file per format (`convcheck check model.onnx`), instead of a builder.
    files: dict[Format, Path] = field(default_factory=dict)
    #: Files that belong with the model file (ONNX external data), hashed with it.
    file_members: tuple[str, ...] = ()
    #: The user's own inputs (`--inputs data.npz`): used instead of seeded samples.
    given_feeds: tuple[dict[str, np.ndarray], ...] = ()
    #: True when `given_feeds` are examples (a factory's), not data: seeded samples follow them.
    given_are_examples: bool = False
    #: Inputs of a twin that differ from `inputs` (a Keras CNN takes NHWC where its torch twin takes NCHW).
    source_inputs: dict[Format, tuple[InputSpec, ...]] = field(default_factory=dict)
    #: Inputs of a size that differ from `inputs` (token ids below the tiny model's smaller vocabulary).
    size_inputs: dict[str, tuple[InputSpec, ...]] = field(default_factory=dict)
    #: A user's model loaded by a builder (a .pt2, .keras or TorchScript file, a `module:factory`): the
    #: builder is called with this instead of a size, and the model's fingerprint is that file's digest.
    builder_arg: str = ""
    #: Per-output tolerance overrides, per precision: {"fp32": {"logits": {"atol": 1e-3, "rtol": 1e-2}}}.
    #: Data, so no `if model == ...` branch ever decides a verdict; say in the model's docstring why.
    tolerances: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: The SavedModel signature the model is called through (a user's SavedModel folder).
    signature: str = ""
    #: A user's already converted file (`check model.tflite --source model.keras`), run as it is and
    #: compared against the source: format -> file.
    given_artifacts: dict[Format, Path] = field(default_factory=dict)
    #: The precision a user's already converted model computes in (a .tflite with int8 weights): routes
    #: that run the file as it is plan only that precision.
    precision: str = ""

    @property
    def sources(self) -> tuple[Format, ...]:
        return tuple(self.builders) + tuple(f for f in self.files if f not in self.builders)

    def sample_count(self, requested: int) -> int:
        """The user's data is used as given; examples and seeded samples follow --samples."""
        return len(self.given_feeds) if self.given_feeds and not self.given_are_examples else requested

    def inputs_for(self, fmt: Format | None, size: str | None = None) -> tuple[InputSpec, ...]:
        if fmt is not None and fmt in self.source_inputs:
            return self.source_inputs[fmt]
        return self.size_inputs.get(size, self.inputs) if size is not None else self.inputs

    def feeds(self, seed: int, batch: int | None = None, fmt: Format | None = None,
              size: str | None = None) -> dict[str, np.ndarray]:
        """One sample: the user's own data when given, else seeded draws from each input's range."""
        if self.given_feeds and (seed < len(self.given_feeds) or not self.given_are_examples):
            return self.given_feeds[seed % len(self.given_feeds)]
        rng = np.random.default_rng(seed)
        return {spec.name: spec.sample(rng, batch or self.batch) for spec in self.inputs_for(fmt, size)}

    def source_artifact(self, fmt: Format, size: str) -> Artifact:
        if fmt in self.files:
            path = self.files[fmt]
            sha, size = _digest_file(path, self.file_members, _mtime_ns(path))
            meta = {"model": self.name, "user_file": True, "members": list(self.file_members)}
            if self.signature:
                meta["signature"] = self.signature
            return Artifact(format=fmt, path=path, sha256=sha, bytes=size, metadata=meta)
        if fmt not in self.builders:
            raise ValueError(f"model {self.name!r} has no {fmt.value} source")
        if self.builder_arg:
            return Artifact(format=fmt, path=None, sha256=self.fingerprint(fmt, size),
                            metadata={"model": self.name, "size": self.builder_arg, "builder": self.builders[fmt],
                                      "user_model": self.builder_arg})
        if size not in self.sizes:
            raise ValueError(f"model {self.name!r} has no size {size!r} (sizes: {', '.join(self.sizes)})")
        return Artifact(
            format=fmt,
            path=None,
            metadata={"model": self.name, "size": size, "builder": self.builders[fmt]},
            sha256=self.fingerprint(fmt, size),
        )

    def fingerprint(self, fmt: Format, size: str) -> str:
        """Identifies the model's code, size and input declaration (weights are seeded by the code)."""
        if self.builder_arg and Path(self.builder_arg).exists():
            digest, _ = _digest_file(Path(self.builder_arg), (), _mtime_ns(Path(self.builder_arg)))
            return digest
        builder = load_dotted(self.builders[fmt])
        h = hashlib.sha256(_zoo_sources(inspect.getmodule(builder).__name__).encode())  # type: ignore[union-attr]
        h.update(repr((self.name, size, self.inputs_for(fmt, size), self.outputs, self.batch)).encode())
        return h.hexdigest()


@lru_cache(maxsize=64)
def _zoo_sources(module_name: str) -> str:
    """The builder's module and every zoo module it imports (shared blocks, init helpers), so that
    editing a shared block changes the fingerprint of every model built with it."""
    from convcheck.types import module_sources

    seen = module_sources((module_name,), r"from (convcheck\.zoo\.\w+) import")
    return "".join(seen[n] for n in sorted(seen))


def _mtime_ns(path: Path) -> int:
    """A file's modification time; a folder's (a SavedModel) is its newest file's: rewriting
    variables/ in place does not touch the folder's own mtime."""
    if path.is_dir():
        return max((p.stat().st_mtime_ns for p in path.rglob("*")), default=path.stat().st_mtime_ns)
    return path.stat().st_mtime_ns


@lru_cache(maxsize=32)
def _digest_file(path: Path, members: tuple[str, ...], mtime_ns: int) -> tuple[str, int]:
    """A user's model file and its members, hashed once per modification (a large model is GBs)."""
    return digest_paths([path, *(path.parent / m for m in members)])


@lru_cache(maxsize=8)
def _build(builder_path: str, size_or_arg: str) -> Any:
    return load_dotted(builder_path)(size_or_arg)  # type: ignore[operator]


def materialize(artifact: Artifact) -> Any:
    """The framework object behind an in-memory source artifact (built once per process)."""
    meta = artifact.metadata
    return _build(meta["builder"], meta["size"])
