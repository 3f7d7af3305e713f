"""The Runtime contract, after polygraphy's runners: activate / infer / deactivate.

The public methods validate (activation state, input names, output types); the `*_impl` methods
do the work and are what a new runtime implements. Class attributes describe capabilities so the
route graph can be built without importing the framework.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np

from convcheck.types import Artifact, Format, Requirement, Target, Toolchain


class Runtime:
    name: ClassVar[str]
    format: ClassVar[Format]
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    requires: ClassVar[tuple[Requirement, ...]] = ()
    summary: ClassVar[str] = ""
    #: A runtime that only computes references (PyTorch eager on CPU, ORT with optimisations off)
    #: never ends a route.
    reference_only: ClassVar[bool] = False
    #: Source formats this runtime computes reference outputs for: the formats a model can come in (a
    #: route starts at each). The first runtime registered for a format is its default reference; the
    #: others are `--reference` choices, named by `reference_choice`.
    reference_for: ClassVar[tuple[Format, ...]] = ()
    reference_choice: ClassVar[str] = ""
    #: Registry name of the runtime that computes the reference when this one cannot load the model
    #: (and the cell says so).
    reference_fallback: ClassVar[str | None] = None
    #: Ray resources a cell of this runtime needs where the cluster offers them (Core ML: a node started
    #: with `--resources='{"macos": 1}'`); a CUDA device asks for a GPU on its own.
    placement: ClassVar[dict[str, float]] = {}
    #: Where the runtime can run an ONNX graph exposing its intermediate tensors (for localising a
    #: mismatch node by node): the dotted path of a candidate factory `(onnx_path, feeds) -> candidate`
    #: (convcheck.validate.localize_onnx); None: it exposes none.
    onnx_intermediates: ClassVar[str | None] = None
    #: Deployment profiles (reports/data/deploy_profiles.json, `convcheck audit --deploy NAME`) that take
    #: this runtime's routes as candidates beside the routes their patterns name: how a plugin's runtime
    #: enters a profile without editing the shipped file.
    deploy_profiles: ClassVar[tuple[str, ...]] = ()
    #: What this machine can still check of an artifact it cannot execute (Core ML off macOS): a
    #: classmethod `(artifact, spec, reference) -> findings dict`, or None.
    static_check: ClassVar[Callable[..., dict[str, Any]] | None] = None
    #: The noise floor, for a runtime used as a reference: by default it runs the source in float64 where
    #: "fp64" is among its precisions; a runtime with no float64 mode names another implementation of its
    #: format to measure against instead (a classmethod `(threads) -> Runtime`, LiteRT's builtin kernels),
    #: and how the floor is labelled in reports.
    noise_floor_runtime: ClassVar[Callable[[int | None], "Runtime"] | None] = None
    noise_floor_label: ClassVar[str | None] = None
    #: The environment this hop/runtime runs in when its packages cannot live beside the rest (litert-torch's
    #: typing-extensions pin): routes through it run their cells with that environment's interpreter.
    toolchain: ClassVar[Toolchain | None] = None
    #: Lock-in facts this hop/runtime brings, in reports/data/lockin.json's own shape (e.g. {"step_formats":
    #: {"mlir": "stablehlo"}, "formats": {...}, "hop_tools": {...}, "tools": {...}}); the built-ins keep theirs
    #: in that file, a plugin declares them here. The route contract test fails on a route without any.
    lockin: ClassVar[dict[str, Any]] = {}

    @classmethod
    def host_unsupported(cls) -> str | None:
        """Why this machine cannot execute this runtime at all (Core ML off macOS), or None.

        Must not import the framework: `convcheck routes` calls it."""
        return None

    def __init__(self, target: Target, threads: int | None = None) -> None:
        if target.device not in self.devices:
            raise ValueError(f"runtime {self.name} does not run on {target.device}")
        self.target = target
        self.threads = threads
        self.active = False
        self.input_names: list[str] = []
        #: Set by a runtime whose timings would not be the deployed runtime's (a reference executor that
        #: stands in for Core ML off macOS): why. The cell then records no latency, and says so.
        self.no_latency: str | None = None

    def activate(self, artifact: Artifact) -> None:
        if artifact.format is not self.format:
            raise TypeError(f"runtime {self.name} runs {self.format.value}, got {artifact.format.value}")
        self.activate_impl(artifact)
        self.active = True

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.active:
            raise RuntimeError(f"runtime {self.name} used before activate()")
        missing = set(self.input_names) - set(feeds)
        if missing:
            raise KeyError(f"runtime {self.name}: no value for input(s) {sorted(missing)}")
        outputs = self.infer_impl(feeds)
        return {k: np.asarray(v) for k, v in outputs.items()}

    def timed_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """A zero-argument call of the model on `feeds` for the latency loop: checked once here, so
        the loop times the runtime, not convcheck's input checks and output conversion."""
        self.infer(feeds)  # validates names and runs once; raises what infer would
        return self.fast_call(feeds)

    def fast_call(self, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
        """What a runtime can do cheaper than `infer_impl` per call (ORT: bind the feed dict once)."""
        return lambda: self.infer_impl(feeds)

    def deactivate(self) -> None:
        if self.active:
            self.deactivate_impl()
        self.active = False

    # What a runtime implements.
    def activate_impl(self, artifact: Artifact) -> None:
        raise NotImplementedError

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        """Release sessions and memory; the default drops references."""

    def describe(self) -> dict[str, Any]:
        """Settings recorded with every latency figure (threads, providers, ...)."""
        return {"threads": self.threads}

    def second_opinion(self, feeds: list[dict[str, np.ndarray]]) -> tuple[str, list[dict[str, np.ndarray]]] | None:
        """Another executor's outputs for the same artifact on the same feeds, judged beside the cell's own
        (`cell["cross_check"]`), never instead of it: Core ML on macOS also runs convcheck's MIL executor,
        so the report says whether the program's semantics and Apple's runtime agree. None: no other."""
        return None
