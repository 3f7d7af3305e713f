"""ONNX Runtime: CPU and CUDA execution providers, and the reference for a user's ONNX file."""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.errors import CellFailure
from convcheck.requirements import ONNX, ORT
from convcheck.types import Artifact, Format, Status
from convcheck.runtime import Runtime

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OrtRuntime(Runtime):
    name = "ort"
    format = Format.ONNX
    devices = ("cpu", "cuda")
    precisions = ("fp32",)
    requires = (ORT,)
    onnx_intermediates = "convcheck.validate.localize_onnx:ort_candidate"
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
        try:
            self.session = ort.InferenceSession(str(artifact.main_file), sess_options=opts, providers=self.providers)
        except Exception as exc:
            _refuse_old_opset(artifact, exc)  # say what it is, not only "no implementation for Add(1)"
            raise
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        bound = {n: _ort_feed(feeds[n]) for n in self.input_names}
        if not self._bfloat16_outputs:
            return dict(zip(self.output_names, self.session.run(self.output_names, bound)))
        # session.run cannot hand bfloat16 back as numpy ("No corresponding Numpy type"): OrtValues.
        values = self.session.run_with_ort_values(self.output_names, bound)
        return {n: _from_ort_value(v) for n, v in zip(self.output_names, values)}

    def fast_call(self, feeds: dict[str, np.ndarray]) -> Any:
        bound = {n: _ort_feed(feeds[n]) for n in self.input_names}
        run = self.session.run_with_ort_values if self._bfloat16_outputs else self.session.run
        names = self.output_names
        return lambda: run(names, bound)

    @property
    def _bfloat16_outputs(self) -> bool:
        return any(o.type == "tensor(bfloat16)" for o in self.session.get_outputs())

    def deactivate_impl(self) -> None:
        del self.session

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"threads": self.threads, "providers": self.session.get_providers(),
                "graph_optimization": self.optimization, "onnxruntime": ort.__version__}


def _ort_feed(value: np.ndarray) -> Any:
    """numpy has no bfloat16: an ml_dtypes array goes in as an OrtValue typed BFLOAT16 (ORT's numpy
    path refuses it: "Numpy_type 256 can't be converted to MLDataType")."""
    if value.dtype.name != "bfloat16":
        return value
    import onnxruntime as ort

    value = value if value.flags.c_contiguous else value.copy(order="C")  # keeps rank 0, unlike ascontiguousarray
    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(value, 16)  # TensorProto.BFLOAT16


def _from_ort_value(value: Any) -> np.ndarray:
    if value.data_type() != "tensor(bfloat16)":
        return value.numpy()
    import ctypes

    import ml_dtypes

    count = int(np.prod(value.shape())) if value.shape() else 1
    raw = np.frombuffer((ctypes.c_uint16 * count).from_address(value.data_ptr()), np.uint16).copy()
    return raw.view(ml_dtypes.bfloat16).reshape(value.shape())


#: The oldest default-domain opset ONNX Runtime implements.
ORT_MIN_OPSET = 7


def _refuse_old_opset(artifact: Artifact, exc: BaseException) -> None:
    import re

    import onnx

    model = onnx.load(str(artifact.main_file), load_external_data=False)
    opset = next((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")), None)
    if opset is not None and opset < ORT_MIN_OPSET:
        missing = re.search(r"Could not find an implementation for (\w+)\((\d+)\)", str(exc))
        kernel = f"has no kernel for {missing.group(1)}-{missing.group(2)}: " if missing else "cannot load it: "
        raise CellFailure(Status.UNSUPPORTED.value,
                          f"ONNX Runtime {kernel}the model uses ONNX opset {opset}, and ONNX Runtime supports opset "
                          f"{ORT_MIN_OPSET} and later (upgrade the file with onnx.version_converter.convert_version)",
                          "load", missing.group(1) if missing else f"opset {opset}") from exc


class Float64Mixin:
    """`fp64` precision for a reference runtime: the same graph recomputed in float64
    (convcheck.validate.onnx_fp64), the ONNX file's noise floor."""

    noise_floor_label = "the ONNX graph in float64"

    def activate_impl(self, artifact: Artifact) -> None:
        if self.target.precision != "fp64":  # type: ignore[attr-defined]
            super().activate_impl(artifact)  # type: ignore[misc]
            return
        from convcheck.validate.onnx_fp64 import Float64Graph

        self.fp64 = Float64Graph(artifact.main_file, self.threads)  # type: ignore[attr-defined]
        self.input_names = list(self.fp64.input_names)
        self.output_names = list(self.fp64.output_names)

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        if self.target.precision != "fp64":  # type: ignore[attr-defined]
            return super().infer_impl(feeds)  # type: ignore[misc]
        return self.fp64.run(feeds)

    def deactivate_impl(self) -> None:
        if self.target.precision == "fp64":  # type: ignore[attr-defined]
            del self.fp64
        else:
            super().deactivate_impl()  # type: ignore[misc]

    def describe(self) -> dict[str, Any]:
        if self.target.precision == "fp64":  # type: ignore[attr-defined]
            return {"threads": self.threads, "float64_engine": self.fp64.engine_name}  # type: ignore[attr-defined]
        return super().describe()  # type: ignore[misc]


class OrtReferenceRuntime(Float64Mixin, OrtRuntime):
    """The reference for a user's ONNX file: ORT on CPU with every graph optimisation off, so that
    `onnx/ort` (optimisations on, as deployed) is a real comparison."""

    name = "ort_reference"
    reference_for = (Format.ONNX,)
    reference_choice = "ort"
    #: ONNX Runtime runs opset 7 and later only; the ONNX spec's own evaluator runs every opset.
    reference_fallback = "onnx_reference"
    devices = ("cpu",)
    precisions = ("fp32", "fp64")
    summary = "ONNX Runtime CPU, graph optimisations off (reference)"
    optimization = "none"
    reference_only = True


class _OnnxEvaluator(Runtime):
    """The evaluator in float32 (the file as it is)."""

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


class OnnxReferenceEvaluatorRuntime(Float64Mixin, _OnnxEvaluator):
    """`onnx.reference.ReferenceEvaluator`: the ONNX spec's own Python implementation (slow, exact to
    the spec), chosen with `--reference onnx-reference`, and the fallback reference for files ONNX Runtime
    cannot load (opsets before 7). Its `fp64` runs the graph cast to float64 (it used to run the fp32
    graph again and record a floor of 0.0 that was never measured)."""

    name = "onnx_reference"
    format = Format.ONNX
    devices = ("cpu",)
    precisions = ("fp32", "fp64")
    requires = (ONNX,)
    summary = "onnx.reference evaluator (reference)"
    reference_only = True
    reference_for = (Format.ONNX,)  # registered after ort_reference: a choice, not the default
    reference_choice = "onnx-reference"


