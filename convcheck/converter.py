"""The Converter contract: one hop `source Format -> target Format`.

A converter class declares, as class attributes, what the route graph needs without importing any
framework: its `hop` name (the segment in a route id), `source` and `target` formats and the
packages it `requires`. The heavy import happens inside `convert_impl`. The public `convert`
validates input and output (polygraphy's pattern: the public method checks, `*_impl` works).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from convcheck.types import Artifact, Format, Requirement, Target, Toolchain


@dataclass
class ConvertOptions:
    """Options every converter understands; converters subclass this with their own fields."""

    opset: int | None = None


@dataclass
class ConvertContext:
    """What a hop gets besides its input artifact: the model's declared inputs and a folder to write in."""

    workdir: Path
    input_specs: list[Any]  # list[convcheck.model_spec.InputSpec]
    output_names: list[str]
    example_feeds: dict[str, Any]  # name -> numpy array, one representative batch
    target: Target = field(default_factory=lambda: Target("?"))  # the cell's runtime, device, precision
    log: list[str] = field(default_factory=list)
    #: Pipeline-wide options a hop may read (e.g. "tvm_tune_trials", "cache_dir").
    settings: dict[str, Any] = field(default_factory=dict)


class Converter:
    hop: ClassVar[str]
    source: ClassVar[Format | None]  # None: any source (a hop that hands over a file the user already has)
    target: ClassVar[Format]
    requires: ClassVar[tuple[Requirement, ...]] = ()
    options_class: ClassVar[type[ConvertOptions]] = ConvertOptions
    summary: ClassVar[str] = ""
    #: True when the output depends on the cell's device/precision (a TensorRT engine built for fp16,
    #: TVM code compiled for cuda): the artifact is then shared only between cells of the same target.
    depends_on_target: ClassVar[bool] = False
    #: True for a hop that only starts a route from a model that comes in its source format (a user's
    #: .tflite to ONNX), never continues one (Keras -> TFLite -> ONNX when Keras -> ONNX exists).
    first_hop_only: ClassVar[bool] = False
    #: True for a hop that hands over a file the user already converted (`check m.tflite --source m.keras`):
    #: the route runs at that file's precision.
    passes_through: ClassVar[bool] = False
    #: A static check of this hop's *input* for when the hop's own package is missing here (TensorRT's op
    #: support list against the ONNX graph): a classmethod `(artifact) -> findings dict`, or None.
    precheck: ClassVar[Callable[[Artifact], dict[str, Any]] | None] = None
    #: The environment this hop/runtime runs in when its packages cannot live beside the rest (litert-torch's
    #: typing-extensions pin): routes through it run their cells with that environment's interpreter.
    toolchain: ClassVar[Toolchain | None] = None
    #: Lock-in facts this hop/runtime brings, in reports/data/lockin.json's own shape (e.g. {"step_formats":
    #: {"mlir": "stablehlo"}, "formats": {...}, "hop_tools": {...}, "tools": {...}}); the built-ins keep theirs
    #: in that file, a plugin declares them here. The route contract test fails on a route without any.
    lockin: ClassVar[dict[str, Any]] = {}

    def __init__(self, options: ConvertOptions | None = None) -> None:
        self.options = options or self.options_class()

    def convert(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        if self.source is not None and source.format is not self.source:
            raise TypeError(f"{type(self).__name__} takes {self.source.value}, got {source.format.value}")
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        out = self.convert_impl(source, ctx)
        out.metadata.setdefault("convert_seconds", time.perf_counter() - started)
        out.metadata.setdefault("converter", type(self).__name__)
        if out.format is not self.target:
            raise TypeError(f"{type(self).__name__} produced {out.format.value}, declared {self.target.value}")
        return out.seal()

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        raise NotImplementedError


def shared_intermediate(ctx: ConvertContext, source: Artifact, step: str, build: Callable[[Path], None]) -> Path:
    """A folder made by the part of a precision-dependent hop that does not depend on the precision (the
    float flatbuffer that fp16 and int8 then quantise, jax2tf's SavedModel): built once per source model
    and inputs in the run, then read by the hop's cells of the other precisions.

    It lives beside the cells' own folders in the model's artifact folder, named by a digest of the source
    and the declared inputs, and is built under a temporary name and renamed into place, so a cell never
    reads a half-written one (two workers may race; the loser's copy is dropped). Without a source digest
    (nothing to key on) the step is built in the cell's own folder, as if not shared.
    """
    import hashlib
    import os
    import shutil

    if not source.sha256:
        folder = ctx.workdir / step
        build(folder)
        return folder
    material = repr((step, source.sha256, ctx.input_specs,
                     sorted((k, v.shape, str(v.dtype)) for k, v in ctx.example_feeds.items())))
    folder = ctx.workdir.parent / f"shared-{step}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"
    if folder.is_dir():
        ctx.log.append(f"{step}: reused {folder.name} (built by this model's cell of another precision)")
        return folder
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        build(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        os.rename(partial, folder)
    except OSError:  # another worker renamed its copy first: same inputs, same content
        shutil.rmtree(partial, ignore_errors=True)
    return folder
