"""OpenVINO on CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.requirements import OPENVINO
from convcheck.types import Artifact, Format
from convcheck.validate.runtimes.base import Runtime


class OpenvinoRuntime(Runtime):
    name = "openvino"
    format = Format.OPENVINO
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (OPENVINO,)
    summary = "OpenVINO CPU plugin, latency hint, one stream"

    def activate_impl(self, artifact: Artifact) -> None:
        import openvino as ov

        self.core = ov.Core()
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # Without this, CPUs with AMX / AVX512-BF16 run in bf16 by default: not an fp32 cell.
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        model = self.core.read_model(str(artifact.main_file))
        self.compiled = self.core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.input_names = [p.get_any_name() for p in self.compiled.inputs]
        self.output_ports = [(self._output_name(p, artifact), p) for p in self.compiled.outputs]

    @staticmethod
    def _output_name(port: Any, artifact: Artifact) -> str:
        declared = artifact.metadata.get("output_names") or []
        for name in declared:
            if name in port.get_names():
                return name
        return port.get_any_name()

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        results = self.request.infer({n: feeds[n] for n in self.input_names})
        return {name: np.array(results[port]) for name, port in self.output_ports}

    def deactivate_impl(self) -> None:
        del self.request, self.compiled, self.core

    def describe(self) -> dict[str, Any]:
        import openvino as ov

        return {"threads": self.threads, "device": "CPU", "hint": "LATENCY", "streams": 1,
                "inference_precision": "f32", "openvino": ov.get_version()}
