"""ONNX Runtime: CPU and CUDA execution providers, and the reference for a user's ONNX file."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.errors import CellFailure
from convcheck.requirements import ONNX, ORT
from convcheck.types import Artifact, Format, Status
from convcheck.validate.runtimes.base import Runtime

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OrtRuntime(Runtime):
    name = "ort"
    format = Format.ONNX
    devices = ("cpu", "cuda")
    precisions = ("fp32",)
    requires = (ORT,)
    summary = "ONNX Runtime, all graph optimisations on (as deployed)"
    optimization = "all"

    def activate_impl(self, artifact: Artifact) -> None:
        import onnxruntime as ort

        provider = PROVIDERS[self.target.device]
        if provider not in ort.get_available_providers():
            # The CPU wheel has no CUDA provider: a missing package, not a missing device.
            raise CellFailure(Status.MISSING_DEP.value,
                              f"onnxruntime {ort.__version__} has no {provider} "
                              f"(available: {', '.join(ort.get_available_providers())}); "
                              "pip install onnxruntime-gpu in place of onnxruntime", "load")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[self.optimization]
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: warnings would interleave with the progress output
        self.providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(artifact.main_file), sess_options=opts, providers=self.providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        values = self.session.run(self.output_names, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, values))

    def fast_call(self, feeds: dict[str, np.ndarray]) -> Any:
        run, names, bound = self.session.run, self.output_names, {n: feeds[n] for n in self.input_names}
        return lambda: run(names, bound)

    def deactivate_impl(self) -> None:
        del self.session

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"threads": self.threads, "providers": self.session.get_providers(),
                "graph_optimization": self.optimization, "onnxruntime": ort.__version__}


class OrtReferenceRuntime(OrtRuntime):
    """The reference for a user's ONNX file: ORT on CPU with every graph optimisation off, so that
    `onnx/ort` (optimisations on, as deployed) is a real comparison."""

    name = "ort_reference"
    devices = ("cpu",)
    summary = "ONNX Runtime CPU, graph optimisations off (reference)"
    optimization = "none"
    reference_only = True


class OnnxReferenceEvaluatorRuntime(Runtime):
    """`onnx.reference.ReferenceEvaluator`: the ONNX spec's own Python implementation (slow, exact to
    the spec), chosen with `--reference onnx-reference`."""

    name = "onnx_reference"
    format = Format.ONNX
    devices = ("cpu",)
    precisions = ("fp32", "fp64")
    requires = (ONNX,)
    summary = "onnx.reference evaluator (reference)"
    reference_only = True

    def activate_impl(self, artifact: Artifact) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(str(artifact.main_file))  # loads external data from beside the file
        self.evaluator = ReferenceEvaluator(model)
        initializers = {i.name for i in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in initializers]
        self.output_names = [o.name for o in model.graph.output]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        values = self.evaluator.run(None, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, values))
