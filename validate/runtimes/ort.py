"""ONNX Runtime on CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.types import Artifact, Format, Requirement
from convcheck.validate.runtimes.base import Runtime

ORT = Requirement("onnxruntime", "onnxruntime", "onnx")


class OrtRuntime(Runtime):
    name = "ort"
    format = Format.ONNX
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (ORT,)
    summary = "ONNX Runtime, all graph optimisations on (as deployed)"
    #: ORT_ENABLE_ALL for the route; the user-ONNX reference uses ORT_DISABLE_ALL.
    optimization = "all"

    def activate_impl(self, artifact: Artifact) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[self.optimization]
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: warnings would interleave with the progress output
        self.session = ort.InferenceSession(
            str(artifact.main_file), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        values = self.session.run(self.output_names, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, values))

    def deactivate_impl(self) -> None:
        del self.session

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "threads": self.threads,
            "providers": ["CPUExecutionProvider"],
            "graph_optimization": self.optimization,
            "onnxruntime": ort.__version__,
        }
