"""LiteRT (formerly TensorFlow Lite) interpreter from `ai-edge-litert`, CPU, XNNPACK as it applies by default.

Inputs are matched by name through the model's SignatureDef: the converters record declared name ->
signature key in the artifact (`input_map` / `output_map`) because the flatbuffer's own tensor names
(`serving_default_features:0`) and order are not the model's. A .tflite file without that metadata
is run with its signature keys as names.

The batch dimension is 1 in a tensor's `shape` and -1 in its `shape_signature`: the input is resized
to the feed's shape and the tensors re-allocated only when that shape changes, so that the latency
loop measures `invoke`, not allocation. `allocate_tensors` runs at activation because that is where
the interpreter refuses an op it has no kernel for (a Flex op: "Select TensorFlow op(s), included in
the given model, is(are) not supported by this interpreter"), which belongs to the load stage.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from convcheck.requirements import LITERT
from convcheck.types import Artifact, Format, Target
from convcheck.runtime import Runtime


class LitertRuntime(Runtime):
    name = "tflite"  # so that `keras/tflite` reads as one step: converted to and run as TFLite
    format = Format.TFLITE
    devices = ("cpu",)
    precisions = ("fp32", "fp16", "int8")  # the artifact carries the quantisation; the interpreter runs it
    requires = (LITERT,)
    summary = "LiteRT interpreter (ai-edge-litert), CPU with the default XNNPACK delegate"

    def activate_impl(self, artifact: Artifact) -> None:
        from ai_edge_litert.interpreter import Interpreter

        meta = artifact.metadata
        built_for = meta.get("precision")
        if built_for and built_for != self.target.precision:
            raise ValueError(f"the .tflite artifact was built for {built_for}, the cell runs {self.target.precision}")
        self.num_threads = self.threads or os.cpu_count() or 1
        self.interpreter = Interpreter(model_path=str(artifact.main_file), num_threads=self.num_threads,
                                       **self._interpreter_options())
        self.interpreter.allocate_tensors()
        signatures = self.interpreter.get_signature_list()
        self.signature = (meta.get("signature") or {}).get("key") or (
            "serving_default" if "serving_default" in signatures else next(iter(signatures), None))
        self.runner = None
        if self.signature is not None:
            runner = self.interpreter.get_signature_runner(self.signature)
            ins, outs = runner.get_input_details(), runner.get_output_details()
            # Tensor indices of a signature are per subgraph, and the interpreter's resize/set calls
            # address subgraph 0 only: a file with several signatures is run through its runner. With
            # one signature the runner is dropped: while it holds the interpreter, allocate_tensors and
            # invoke refuse ("There is at least 1 reference to internal data").
            self.runner = runner if len(signatures) > 1 else None
            del runner
        else:  # no SignatureDef (old converters): the flatbuffer's tensor names are the names
            ins = {d["name"]: d for d in self.interpreter.get_input_details()}
            outs = {d["name"]: d for d in self.interpreter.get_output_details()}
        input_map = {n: m["key"] for n, m in (meta.get("input_map") or {}).items()} or {k: k for k in ins}
        output_map = {n: m["key"] for n, m in (meta.get("output_map") or {}).items()} or {k: k for k in outs}
        for kind, mapping, found in (("input", input_map, ins), ("output", output_map, outs)):
            for name, key in mapping.items():
                if key not in found:
                    raise KeyError(f"{kind} {name!r} maps to {key!r}, which the .tflite signature does not have "
                                   f"({kind}s {sorted(found)})")
        self.input_names = list(input_map)
        self.output_names = list(output_map)
        self._inputs = [(n, input_map[n], ins[input_map[n]]["index"], ins[input_map[n]]["dtype"]) for n in input_map]
        self._outputs = [(n, output_map[n], outs[output_map[n]]["index"]) for n in output_map]
        self._shapes = {index: tuple(int(d) for d in ins[key]["shape"]) for _, key, index, _ in self._inputs}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        values = {n: np.ascontiguousarray(feeds[n], dtype=dtype) for n, _, _, dtype in self._inputs}
        if self.runner is not None:
            got = self.runner(**{key: values[n] for n, key, _, _ in self._inputs})
            return {n: np.array(got[key]) for n, key, _ in self._outputs}
        it = self.interpreter
        resized = False
        for name, _, index, _ in self._inputs:
            shape = values[name].shape
            if self._shapes[index] != shape:
                # strict: only the dimensions the model left dynamic (-1 in shape_signature) may change.
                it.resize_tensor_input(index, list(shape), strict=True)
                self._shapes[index] = shape
                resized = True
        if resized:
            it.allocate_tensors()
        for name, _, index, _ in self._inputs:
            it.set_tensor(index, values[name])
        it.invoke()
        # get_tensor returns a copy: the interpreter reuses its output buffers on the next invoke.
        return {n: it.get_tensor(index) for n, _, index in self._outputs}

    def deactivate_impl(self) -> None:
        self.runner = None
        del self.interpreter

    def _interpreter_options(self) -> dict[str, Any]:
        return {}

    delegate = "XNNPACK (default)"

    def describe(self) -> dict[str, Any]:
        import ai_edge_litert

        return {"threads": self.num_threads, "delegate": self.delegate, "signature": self.signature,
                "ai_edge_litert": getattr(ai_edge_litert, "__version__", None)}


class LitertReferenceRuntime(LitertRuntime):
    """LiteRT's reference kernels (`OpResolverType.BUILTIN_REF`: plain C++ loops, no XNNPACK): the
    reference of a .tflite file the user brings alone. Checking the file's default, XNNPACK-delegated
    run against it is `tflite/tflite`; its tf2onnx conversions are `tflite/onnx/...`."""

    name = "tflite_reference"
    precisions = ("fp32", "fp16", "int8")
    summary = "LiteRT interpreter with reference kernels (BUILTIN_REF, no XNNPACK) (reference)"
    reference_only = True
    reference_for = (Format.TFLITE,)
    delegate = "none (reference kernels)"

    def _interpreter_options(self) -> dict[str, Any]:
        from ai_edge_litert.interpreter import OpResolverType

        return {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF}

    #: The noise floor of a .tflite file: LiteRT's optimised builtin kernels (no delegate) against these
    #: reference kernels, two implementations of the same flatbuffer that are both right. Not XNNPACK:
    #: that is what `tflite/tflite` judges, and a floor taken from it would excuse it.
    noise_floor_label = "LiteRT optimised builtin kernels (no XNNPACK) vs reference kernels"

    @classmethod
    def noise_floor_runtime(cls, threads: int | None) -> "LitertRuntime":
        return LitertBuiltinRuntime(Target(cls.name, "cpu", "fp32"), threads)


class LitertBuiltinRuntime(LitertReferenceRuntime):
    """LiteRT's optimised builtin kernels without the default delegate (BUILTIN_WITHOUT_DEFAULT_DELEGATES):
    the second implementation a .tflite file's noise floor is measured with."""

    delegate = "none (optimised builtin kernels)"
    reference_for = ()  # only the noise floor's second implementation, never a reference

    def _interpreter_options(self) -> dict[str, Any]:
        from ai_edge_litert.interpreter import OpResolverType

        return {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
