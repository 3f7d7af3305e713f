"""Small hand-built ONNX files whose right verdict is known (the probe set of the verdicts issue).

Each builder writes one file and returns its path. Weights are seeded; shapes are small except where
the case is about magnitude (a 2048x1024 MatMul).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _save(graph: Any, path: Path, opset: int = 17) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9 if opset >= 7 else 3
    onnx.save(model, str(path))
    return path


def _f32(name: str, shape: list[int]) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def tiny_cast_roundtrip(path: Path) -> Path:
    """y = Cast<f32>(Cast<f16>(x * 1e-7)): values near fp16's subnormal range, so the casts change
    them by tens of percent. A runtime that drops the casts computes another function (mismatch)."""
    from onnx import TensorProto, helper

    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [1e-7])
    nodes = [helper.make_node("Mul", ["x", "scale"], ["small"]),
             helper.make_node("Cast", ["small"], ["half"], to=TensorProto.FLOAT16),
             helper.make_node("Cast", ["half"], ["y"], to=TensorProto.FLOAT)]
    return _save(helper.make_graph(nodes, "cast_roundtrip", [_f32("x", [1, 64])], [_f32("y", [1, 64])], [scale]),
                 path)


def large_matmul(path: Path) -> Path:
    """A 2048x1024 MatMul with weights x20: outputs in the hundreds, fp32 summation error ~1e-3 in
    absolute terms. A faithful runtime must pass."""
    from onnx import helper, numpy_helper

    w = (np.random.default_rng(0).normal(size=(1024, 2048)) * 20).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    return _save(helper.make_graph(nodes, "big_matmul", [_f32("x", [4, 1024])], [_f32("y", [4, 2048])],
                                   [numpy_helper.from_array(w, "w")]), path)


def offset_layernorm(path: Path) -> Path:
    """LayerNorm(x + 1000) over 256 features: the mean subtraction cancels, so the fp32 source itself
    errs by ~1e-4 against float64. A faithful runtime must pass (the noise floor says why)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [helper.make_tensor("offset", TensorProto.FLOAT, [], [1000.0]),
             numpy_helper.from_array(rng.normal(1.0, 0.1, size=256).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.normal(0.0, 0.1, size=256).astype(np.float32), "beta")]
    nodes = [helper.make_node("Add", ["x", "offset"], ["shifted"]),
             helper.make_node("LayerNormalization", ["shifted", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5)]
    return _save(helper.make_graph(nodes, "offset_ln", [_f32("x", [2, 256])], [_f32("y", [2, 256])], inits), path)


def greater_than_zero(path: Path) -> Path:
    """y = Greater(x, 0) on three values: one sample may be all True; the output still follows x."""
    from onnx import TensorProto, helper

    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [helper.make_node("Greater", ["x", "zero"], ["y"])]
    return _save(helper.make_graph(nodes, "greater", [_f32("x", [1, 3])],
                                   [helper.make_tensor_value_info("y", TensorProto.BOOL, [1, 3])], [zero]), path)


def tiny_scale(path: Path) -> Path:
    """y = x * 1e-9: small, not constant."""
    from onnx import TensorProto, helper

    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [1e-9])
    nodes = [helper.make_node("Mul", ["x", "scale"], ["y"])]
    return _save(helper.make_graph(nodes, "tiny", [_f32("x", [1, 16])], [_f32("y", [1, 16])], [scale]), path)


def log_with_nans(path: Path) -> Path:
    """y = Log(x): NaN wherever x < 0. A route that reproduces the NaNs computes the same function."""
    from onnx import helper

    nodes = [helper.make_node("Log", ["x"], ["y"])]
    return _save(helper.make_graph(nodes, "log", [_f32("x", [1, 32])], [_f32("y", [1, 32])]), path)


def ignores_input(path: Path) -> Path:
    """y = x * 0 + c: the output never depends on the input."""
    from onnx import TensorProto, helper

    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    c = helper.make_tensor("c", TensorProto.FLOAT, [1, 4], [0.5, -1.0, 2.0, 3.0])
    nodes = [helper.make_node("Mul", ["x", "zero"], ["z"]), helper.make_node("Add", ["z", "c"], ["y"])]
    return _save(helper.make_graph(nodes, "const", [_f32("x", [1, 4])], [_f32("y", [1, 4])], [zero, c]), path)


def merged_input_names(path: Path) -> Path:
    """x -> Reshape (no-op) -> Cast (no-op) -> MatMul: OpenVINO folds both and the input tensor takes
    their output names (`/Cast_output_0`)."""
    from onnx import TensorProto, helper, numpy_helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 4])
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["/Reshape_output_0"]),
             helper.make_node("Cast", ["/Reshape_output_0"], ["/Cast_output_0"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["/Cast_output_0", "w"], ["y"])]
    return _save(helper.make_graph(nodes, "merge", [_f32("x", [1, 4])], [_f32("y", [1, 3])], [shape, w]), path)


def opset1_add(path: Path) -> Path:
    """y = x + b at opset 1, which ONNX Runtime does not implement (it starts at opset 7)."""
    from onnx import helper, numpy_helper

    b = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(2, 4), "b")
    nodes = [helper.make_node("Add", ["x", "b"], ["y"])]
    # IR version 3 wants every initializer listed among the graph's inputs too.
    return _save(helper.make_graph(nodes, "old", [_f32("x", [2, 4]), _f32("b", [2, 4])], [_f32("y", [2, 4])], [b]),
                 path, opset=1)


def unknown_custom_op(path: Path) -> Path:
    """y = Frobnicate(x) in a custom domain no runtime here implements: neither ONNX Runtime nor the
    ONNX evaluator (its fallback) can compute the reference."""
    from onnx import helper

    import onnx

    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "custom_op", [_f32("x", [1, 4])], [_f32("y", [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path
