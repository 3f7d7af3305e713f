"""The tuning-free TVM CPU build's kernels, with real TVM on hand-built ONNX graphs.

Each test pins one mechanism that measured slow before it (docs/engine.md, "TVM figures"):
ReLU6 must not send the activation back to NCHW, a 24-channel conv must vectorise on a 16-lane
target, a 7-wide map must get a register tile, epilogues are one pass, and exp/sigmoid/erf/softmax
use TVM's vectorisable kernels while still computing the same values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.framework]

#: A 16-lane (AVX-512) CPU whatever this host is: the schedule is inspected, never run, for it.
AVX512 = {"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 2}


def _conv_clip_onnx(cout: int, hw: int, opset: int = 17) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((cout, 8, 1, 1)).astype("float32"), "w1"),
             numpy_helper.from_array(rng.standard_normal((cout, cout, 3, 3)).astype("float32") * 0.1, "w2"),
             numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]) if opset >= 11 else
             helper.make_node("Clip", ["c"], ["r"], min=0.0, max=6.0),  # opset 1-10: the bounds are attributes
             helper.make_node("Conv", ["r", "w2"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "conv_relu6_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, hw, hw])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, hw, hw])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _prepared(model: Any, target_dict: dict[str, Any]) -> tuple[Any, Any]:
    import tvm
    from tvm.relax.frontend.onnx import from_onnx

    from convcheck.convert.tvm_onnx_ops import relax_clip
    from convcheck.convert.tvm_schedule import prepare

    with relax_clip():
        mod = from_onnx(model)  # the graph declares static shapes
    target = tvm.target.Target(target_dict)
    return prepare(mod, target), target


def _kernels(prepared: Any) -> list[str]:
    return sorted(gv.name_hint for gv in prepared.get_global_vars() if gv.name_hint != "main")


def _scheduled(prepared: Any, target: Any) -> dict[str, str]:
    from convcheck.convert.tvm_schedule import default_schedule

    with target:
        mod = default_schedule(target)(prepared.clone())
    return {gv.name_hint: mod[gv].script() for gv in mod.get_global_vars() if gv.name_hint != "main"}


def test_relu6_keeps_channels_last_and_fuses_into_the_conv():
    from convcheck.convert.tvm_schedule import make_target

    prepared, _ = _prepared(_conv_clip_onnx(16, 14), make_target("cpu", {}))
    kernels = _kernels(prepared)
    # Only the model's own input and output layout changes are transposes; the clip is the conv's epilogue.
    assert not [k for k in kernels if "transpose" in k and ("maximum" in k or "minimum" in k)], kernels
    assert any("conv2d" in k and "maximum" in k and "minimum" in k for k in kernels), kernels


@pytest.mark.parametrize("opset", [17, 10])
def test_relu6_onnx_matches_onnxruntime(opset: int):
    import onnxruntime as ort
    import tvm
    from tvm import relax

    from convcheck.convert.tvm_build import compile_module
    from convcheck.convert.tvm_schedule import make_target

    model = _conv_clip_onnx(16, 14, opset)
    prepared, target = _prepared(model, make_target("cpu", {}))
    x = (np.random.default_rng(1).standard_normal((1, 8, 14, 14)) * 4).astype("float32")
    vm = relax.VirtualMachine(compile_module(prepared, target), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_24_channel_conv_vectorises_on_a_16_lane_target():
    prepared, target = _prepared(_conv_clip_onnx(24, 14), AVX512)
    conv = next(s for name, s in _scheduled(prepared, target).items() if name.startswith("fused_conv2d"))
    # 24 is not a multiple of 16: the rule takes 8 lanes rather than leaving the kernel scalar.
    assert "T.vectorized(T.int64(8))" in conv, conv


def test_7_wide_map_gets_a_register_tile():
    prepared, target = _prepared(_conv_clip_onnx(32, 7), AVX512)
    conv = next(s for name, s in _scheduled(prepared, target).items() if name.startswith("fused_conv2d"))
    assert "T.unroll(T.int64(7))" in conv, conv  # 7 has no factor in (8, 4, 2): the tile is 7 rows


def test_epilogue_is_one_pass():
    prepared, target = _prepared(_conv_clip_onnx(32, 14), AVX512)
    conv = next(s for name, s in _scheduled(prepared, target).items() if "maximum" in name)
    # conv, then one block for bias + max + min (was one block per op), and no copy of the input.
    blocks = [ln for ln in conv.splitlines() if ln.strip().startswith("with T.sblock(")]
    assert len(blocks) == 3, conv  # the init, the update and the fused epilogue
    assert "pad_temp" not in conv.split("conv2d_nhwc")[0]


@pytest.mark.parametrize("op,attrs", [("Exp", {}), ("Sigmoid", {}), ("Tanh", {}), ("Erf", {}), ("Gelu", {}),
                                      ("Gelu", {"approximate": "tanh"}), ("Softmax", {})])
def test_fast_math_is_vector_code_computing_the_same_values(op: str, attrs: dict[str, str]):
    import onnxruntime as ort
    import tvm
    from onnx import TensorProto, helper
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from convcheck.convert.tvm_build import compile_module
    from convcheck.convert.tvm_schedule import make_target, prepare

    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], op,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 256])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    target = tvm.target.Target(make_target("cpu", {}))
    prepared = prepare(from_onnx(model), target)
    assert any("fast" in k for k in _kernels(prepared)), _kernels(prepared)  # was tirx exp: one expf per element
    data = np.random.default_rng(2).uniform(-12, 12, (64, 256)).astype("float32")
    got = relax.VirtualMachine(compile_module(prepared, target), tvm.cpu())["main"](tvm.runtime.tensor(data)).numpy()
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": data})[0]
    # ONNX Runtime's MLAS approximates these too: the two agree to a few float32 ulps of the output's scale.
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * float(np.abs(want).max()))


def test_attention_scores_with_a_prime_token_count_are_padded_and_exact():
    import onnxruntime as ort
    import tvm
    from onnx import TensorProto, helper
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from convcheck.convert.tvm_build import compile_module
    from convcheck.convert.tvm_schedule import make_target, prepare

    # scores = q @ k^T over 197 tokens (ViT): the output's columns are a computed operand's, prime.
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), helper.make_node("MatMul", ["q", "kt"], ["s"])],
        "scores", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 197, 64]) for n in ("q", "k")],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [3, 197, 197])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    target = tvm.target.Target(make_target("cpu", {}))
    prepared = prepare(from_onnx(model), target)
    assert any("pad" in k for k in _kernels(prepared)), _kernels(prepared)
    rng = np.random.default_rng(3)
    q, k = (rng.standard_normal((3, 197, 64)).astype("float32") for _ in range(2))
    vm = relax.VirtualMachine(compile_module(prepared, target), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(q), tvm.runtime.tensor(k)).numpy()
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"q": q, "k": k})[0]
    assert got.shape == (3, 197, 197)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_tuned_kernel_slower_than_its_default_schedule_is_not_shipped(monkeypatch: pytest.MonkeyPatch):
    """The tuned build takes each kernel's faster schedule, timed for real, from the untuned build's own
    scheduled module (no second scheduling pass). The database lookup is stood in for: one "record" is a
    deliberately slow schedule (the unscheduled scalar loop, marked scheduled), one is the default itself."""
    import onnxruntime as ort
    import tvm
    from onnx import TensorProto, helper, numpy_helper
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from convcheck.convert import tvm_tuning
    from convcheck.convert.tvm_build import lower_module, schedule_module
    from convcheck.convert.tvm_schedule import make_target, prepare

    rng = np.random.default_rng(4)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Sigmoid", ["h"], ["s"]),
         helper.make_node("MatMul", ["s", "w2"], ["y"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 128])],
        [numpy_helper.from_array(rng.standard_normal((256, 256)).astype("float32") * 0.1, "w"),
         numpy_helper.from_array(rng.standard_normal((256, 128)).astype("float32") * 0.1, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    target = tvm.target.Target(make_target("cpu", {}))
    prepared = prepare(from_onnx(model), target)
    scheduled = schedule_module(prepared, target)
    kernels = [gv.name_hint for gv, f in prepared.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]
    slow, same = kernels[0], kernels[1]

    def fake_records(mod: Any, target: Any, database: Any) -> Any:
        tuned = mod.clone()
        tuned[slow] = mod[slow].with_attr("tirx.is_scheduled", True)
        tuned[same] = scheduled[same]
        return tuned

    monkeypatch.setattr(tvm_tuning, "apply_database", fake_records)
    log: list[str] = []
    chosen, report = tvm_tuning.faster_of_tuned_and_default(prepared, scheduled, target, None, log)
    assert report["tune_compared_kernels"] == 2
    assert slow in report["tune_kept_default"]
    tvm.ir.assert_structural_equal(chosen[slow], scheduled[slow])
    assert all(chosen[k].attrs.get("tirx.is_scheduled", False) for k in kernels)  # nothing left unscheduled
    data = rng.standard_normal((64, 256)).astype("float32")
    got = relax.VirtualMachine(lower_module(chosen, target), tvm.cpu())["main"](tvm.runtime.tensor(data)).numpy()
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": data})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
