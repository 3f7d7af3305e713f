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
from typing import Any

import numpy as np

from convcheck.registry import load_dotted
from convcheck.types import Artifact, Format


@dataclass(frozen=True)
class InputSpec:
    """One model input. `shape` uses the spec's batch size at axis 0 when `dynamic_axes` names it."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    # Value range: "normal" draws N(mean=low, std=high); "uniform" draws in [low, high); "int" draws
    # integers in [low, high) (token ids below the vocabulary size, category codes).
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
    builders: dict[Format, str]  # source framework -> "module:function(size) -> model"
    sizes: tuple[str, ...] = ("full", "tiny")
    batch: int = 1  # the batch each parity sample and latency figure uses

    @property
    def sources(self) -> tuple[Format, ...]:
        return tuple(self.builders)

    def feeds(self, seed: int, batch: int | None = None) -> dict[str, np.ndarray]:
        """One seeded sample: a dict input name -> array."""
        rng = np.random.default_rng(seed)
        return {spec.name: spec.sample(rng, batch or self.batch) for spec in self.inputs}

    def source_artifact(self, fmt: Format, size: str) -> Artifact:
        if fmt not in self.builders:
            raise ValueError(f"model {self.name!r} has no {fmt.value} source")
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
        builder = load_dotted(self.builders[fmt])
        source = inspect.getsource(inspect.getmodule(builder))  # type: ignore[arg-type]
        h = hashlib.sha256(source.encode())
        h.update(repr((self.name, size, self.inputs, self.outputs, self.batch)).encode())
        return h.hexdigest()


@lru_cache(maxsize=8)
def _build(builder_path: str, size: str) -> Any:
    return load_dotted(builder_path)(size)  # type: ignore[operator]


def materialize(artifact: Artifact) -> Any:
    """The framework object behind an in-memory source artifact (built once per process)."""
    meta = artifact.metadata
    return _build(meta["builder"], meta["size"])
