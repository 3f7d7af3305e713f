"""OpenVINO on CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.requirements import OPENVINO
from convcheck.types import Artifact, Format
from convcheck.runtime import Runtime


class OpenvinoRuntime(Runtime):
    name = "openvino"
    format = Format.OPENVINO
    devices = ("cpu",)
    precisions = ("fp32",)
    requires = (OPENVINO,)
    onnx_intermediates = "convcheck.validate.localize_onnx:openvino_candidate"
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
        #: What a cell must know to read this runtime's figures (documented deviations).
        self.notes: list[str] = []
        if any(p.get_element_type() == ov.Type.f64 for p in list(model.inputs) + list(model.outputs)):
            self.notes.append("OpenVINO's CPU plugin has no float64 inference precision (documented: f32, bf16, f16), so float64 "
                              "tensors are computed in float32: values "
                              "outside float32's range or below its smallest subnormal (1.4e-45) are not reproduced")
        self.compiled = self.core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.input_names = self._input_names(self.compiled.inputs, artifact)
        self.output_ports = [(self._output_name(p, artifact), p) for p in self.compiled.outputs]

    @staticmethod
    def _input_names(ports: list[Any], artifact: Artifact) -> list[str]:
        """The declared name of each input port, in port order. Not `get_any_name()`: when OpenVINO
        folds a no-op Reshape/Cast/Squeeze behind an input, the input tensor takes that node's output
        names too (`/Cast_output_0`), and get_any_name answers with whichever sorts first. A port
        that carries a declared name is that input; otherwise ports follow the declaration's order
        (convert_model keeps the ONNX graph's input order)."""
        declared = list(artifact.metadata.get("input_names") or [])
        names: list[str | None] = [next((n for n in declared if n in p.get_names()), None) for p in ports]
        if None in names and len(declared) == len(ports):
            unclaimed = iter(n for n in declared if n not in names)
            names = [n if n is not None else next(unclaimed) for n in names]
        return [n if n is not None else p.get_any_name() for n, p in zip(names, ports)]

    @staticmethod
    def _output_name(port: Any, artifact: Artifact) -> str:
        declared = artifact.metadata.get("output_names") or []
        for name in declared:
            if name in port.get_names():
                return name
        return port.get_any_name()

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        # Bound by port index: the names are ours (the declaration's), not necessarily OpenVINO's.
        results = self.request.infer({i: _ov_feed(feeds[n]) for i, n in enumerate(self.input_names)})
        return {name: np.array(results[port]) for name, port in self.output_ports}

    def deactivate_impl(self) -> None:
        del self.request, self.compiled, self.core

    def describe(self) -> dict[str, Any]:
        import openvino as ov

        return {"threads": self.threads, "device": "CPU", "hint": "LATENCY", "streams": 1,
                "inference_precision": "f32", "openvino": ov.get_version(), "notes": list(self.notes)}


def _ov_feed(value: np.ndarray) -> Any:
    """An ml_dtypes bfloat16 array, which InferRequest.infer misreads (it returned 1e-12 for x^2), as a
    bf16 Tensor over the same bits."""
    if value.dtype.name != "bfloat16":
        return value
    import openvino as ov

    bits = np.ascontiguousarray(value).view(np.uint16).reshape(value.shape)
    return ov.Tensor(bits, ov.Shape(list(value.shape)), ov.Type.bf16)
