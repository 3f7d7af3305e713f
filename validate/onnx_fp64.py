"""An ONNX graph recomputed in float64: the noise floor of a user's ONNX file.

Every float32 tensor of the graph (inputs, outputs, initializers, Constant values, Cast targets,
the dtype attributes of generator ops) becomes float64, in every subgraph; float16/bfloat16 casts
are kept, because rounding to half precision is part of the function the graph computes. The result
runs in ONNX Runtime where it has float64 kernels for every op, else in the ONNX spec's own
evaluator. What the fp32 reference differs from it by is the error the source itself makes, which no
route is blamed for (validate/parity.py raises the bound to noise_floor_factor x that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Attributes that name an element type an op produces.
_DTYPE_ATTRIBUTES = ("to", "dtype", "output_dtype")
#: A graph whose float64 form cannot be serialised for ONNX Runtime (protobuf's 2 GiB limit).
_MAX_PROTO_BYTES = 2**31 - 2**20


def to_float64(model: Any) -> Any:
    """A copy of `model` (onnx.ModelProto, weights loaded) computing in float64 instead of float32."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    _graph_to_float64(out.graph)
    return out


def _graph_to_float64(graph: Any) -> None:
    import onnx
    from onnx import TensorProto

    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        _value_info_to_float64(vi)
    for init in graph.initializer:
        _tensor_to_float64(init)
    for sparse in graph.sparse_initializer:
        _tensor_to_float64(sparse.values)
    for node in graph.node:
        for attr in node.attribute:
            if attr.name in _DTYPE_ATTRIBUTES and attr.type == onnx.AttributeProto.INT and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
            if attr.type == onnx.AttributeProto.TENSOR:
                _tensor_to_float64(attr.t)
            for t in attr.tensors:
                _tensor_to_float64(t)
            if attr.type == onnx.AttributeProto.GRAPH:
                _graph_to_float64(attr.g)
            for g in attr.graphs:
                _graph_to_float64(g)


def _value_info_to_float64(vi: Any) -> None:
    from onnx import TensorProto

    t = vi.type
    while True:  # tensors directly, or inside sequences/optionals
        if t.HasField("tensor_type"):
            if t.tensor_type.elem_type == TensorProto.FLOAT:
                t.tensor_type.elem_type = TensorProto.DOUBLE
            return
        if t.HasField("sequence_type"):
            t = t.sequence_type.elem_type
        elif t.HasField("optional_type"):
            t = t.optional_type.elem_type
        else:
            return


def _tensor_to_float64(tensor: Any) -> None:
    from onnx import TensorProto, numpy_helper

    if tensor.data_type != TensorProto.FLOAT:
        return
    array = numpy_helper.to_array(tensor).astype(np.float64)
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))


class Float64Graph:
    """An ONNX file's float64 twin, ready to run: `run(feeds)` takes the fp32 feeds."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnx

        model = onnx.load(str(path))  # weights too: they are converted
        self.float_inputs = {i.name for i in model.graph.input
                             if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
        initializers = {i.name for i in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in initializers]
        self.output_names = [o.name for o in model.graph.output]
        self.model = to_float64(model)
        self.engine, self.why_not_ort = self._open(threads)

    def _open(self, threads: int | None) -> tuple[Any, str | None]:
        """ONNX Runtime when it has a float64 kernel for every op (fast), else the ONNX evaluator."""
        size = self.model.ByteSize()
        why = None
        if size < _MAX_PROTO_BYTES:
            try:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                opts.log_severity_level = 3
                if threads:
                    opts.intra_op_num_threads = threads
                session = ort.InferenceSession(self.model.SerializeToString(), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
                return ("ort", session), None
            except Exception as exc:  # noqa: BLE001 - no double kernel for some op: the evaluator has them
                why = " ".join(str(exc).split())[:200]
        else:
            why = f"the float64 graph is {size / 2**30:.1f} GiB, over protobuf's 2 GiB"
        from onnx.reference import ReferenceEvaluator

        return ("evaluator", ReferenceEvaluator(self.model)), why

    @property
    def engine_name(self) -> str:
        return "onnxruntime" if self.engine[0] == "ort" else "onnx.reference"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        given = {n: (np.asarray(feeds[n]).astype(np.float64) if n in self.float_inputs else feeds[n])
                 for n in self.input_names}
        kind, engine = self.engine
        values = engine.run(self.output_names if kind == "ort" else None, given)
        return dict(zip(self.output_names, values))
