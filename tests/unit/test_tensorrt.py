"""TensorRT: the static ONNX op check (runs anywhere) and real engine build + run (CUDA GPU + tensorrt only)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from convcheck.converter import ConvertContext
from convcheck.convert.tensorrt_from_onnx import EngineFromOnnx, _parse_failure, _profile
from convcheck.errors import CellFailure
from convcheck.types import Artifact, Format, Status, Target
from convcheck.validate.runtimes.tensorrt import TensorrtRuntime
from convcheck.validate.tensorrt_support import check_onnx_graph, load_support_list
from convcheck.model_spec import InputSpec

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

SUPPORT = load_support_list()


# -- tiny models ---------------------------------------------------------------------------------
def _tiny_cnn():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5), torch.nn.Softmax(dim=-1),
    ).eval()


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory):
    """(model, folder holding model.onnx): the torch dynamo exporter, dynamic batch, as the onnx hop does."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    model = _tiny_cnn()
    folder = tmp_path_factory.mktemp("cnn") / "onnx"
    folder.mkdir()
    torch.onnx.export(model, (torch.zeros(2, 3, 16, 16),), str(folder / "model.onnx"), dynamo=True,
                      input_names=["x"], output_names=["y"], dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    return model, folder


def _save(model, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _graph_model(nodes, opset: int = 18, extra_opsets=(), functions=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    graph = helper.make_graph(nodes, "g", [x], [y])
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


# -- (a) the static check on real ONNX files ------------------------------------------------------
@pytest.mark.framework
def test_dynamo_export_of_a_cnn_is_all_supported(cnn_onnx):
    _, folder = cnn_onnx
    report = check_onnx_graph(folder / "model.onnx")
    assert report["ops"], report
    assert "Conv" in report["ops"]
    assert report["unsupported"] == [], report
    assert report["custom_domains"] == []
    assert report["opset_supported"] is True
    assert SUPPORT["min_opset"] <= report["opset"] <= SUPPORT["max_opset"]
    assert report["verdict"].startswith("All ")
    assert report["list"] == {k: SUPPORT[k] for k in ("source", "tensorrt_version", "retrieved")}


def test_unsupported_custom_and_subgraph_ops_are_reported(tmp_path):
    # Unique and Det are "N" in TensorRT's list; Det hides in an If branch, MyOp is a custom-domain op.
    assert SUPPORT["ops"]["Unique"]["supported"] is False
    assert SUPPORT["ops"]["Det"]["supported"] is False
    then_branch = helper.make_graph([helper.make_node("Det", ["x"], ["d"])], "then", [],
                                    [helper.make_tensor_value_info("d", TensorProto.FLOAT, [])])
    else_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])], "else", [],
                                    [helper.make_tensor_value_info("r", TensorProto.FLOAT, [2, 2])])
    nodes = [
        helper.make_node("Unique", ["x"], ["u"]),
        helper.make_node("MyOp", ["x"], ["m"], domain="com.example"),
        helper.make_node("ReduceMax", ["x"], ["c"], keepdims=0),
        helper.make_node("Cast", ["c"], ["cond"], to=TensorProto.BOOL),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
    ]
    path = _save(_graph_model(nodes, extra_opsets=[("com.example", 1)]), tmp_path / "m.onnx")
    report = check_onnx_graph(path)
    assert report["unsupported"] == ["Det", "Unique"]
    assert report["custom_domains"] == ["com.example"]
    assert report["ops"]["com.example::MyOp"] == 1
    assert report["ops"]["Relu"] == 1 and report["ops"]["If"] == 1  # subgraph ops counted
    assert "If" in report["restricted"] and "ReduceMax" in report["restricted"]
    assert "Det" in report["verdict"] and "com.example" in report["verdict"]
    assert report["verdict"].startswith(f"TensorRT {SUPPORT['tensorrt_version']} is likely to reject")


def test_loop_body_and_local_functions_are_walked(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Unique", ["v_in"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)],
    )
    # A model-local function: its call is not an op TensorRT must know, its body's ops are.
    fn = helper.make_function("local", "Double", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", 18)])
    nodes = [
        helper.make_node("Double", ["x"], ["x2"], domain="local"),
        helper.make_node("Loop", ["", "", "x2"], ["y"], body=body),
    ]
    path = _save(_graph_model(nodes, extra_opsets=[("local", 1)], functions=[fn]), tmp_path / "m.onnx")
    report = check_onnx_graph(path)
    assert report["unsupported"] == ["Unique"]
    assert report["custom_domains"] == []
    assert report["ops"]["Add"] == 1 and "local::Double" not in report["ops"]


@pytest.mark.parametrize("delta", [1, -1])
def test_opset_outside_the_parser_range_is_flagged(tmp_path, delta):
    opset = SUPPORT["max_opset"] + 1 if delta > 0 else SUPPORT["min_opset"] - 1
    path = _save(_graph_model([helper.make_node("Relu", ["x"], ["y"])], opset=opset), tmp_path / "m.onnx")
    report = check_onnx_graph(path)
    assert report["opset"] == opset
    assert report["opset_supported"] is False
    assert report["unsupported"] == []
    assert f"opset {opset}" in report["verdict"]


@pytest.mark.framework
def test_precheck_reads_the_artifact_without_tensorrt(cnn_onnx):
    _, folder = cnn_onnx
    script = (
        "import sys; from pathlib import Path\n"
        "from convcheck.convert.tensorrt_from_onnx import EngineFromOnnx\n"
        "from convcheck.types import Artifact, Format\n"
        f"r = EngineFromOnnx.precheck(Artifact(Format.ONNX, Path({str(folder)!r}), {{'entry': 'model.onnx'}}))\n"
        "assert r['unsupported'] == [], r\n"
        "print('LOADED', 'tensorrt' in sys.modules, 'polygraphy' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED False False" in proc.stdout


def test_precheck_rejects_other_formats():
    with pytest.raises(TypeError):
        EngineFromOnnx.precheck(Artifact(Format.TENSORRT, Path("x.engine")))


# -- (b) the shipped list --------------------------------------------------------------------------
def test_support_list_provenance_and_common_ops():
    assert SUPPORT["source"].startswith("https://github.com/onnx/onnx-tensorrt/")
    assert SUPPORT["retrieved"] == "2026-11-24"
    assert SUPPORT["tensorrt_version"].startswith("10.")
    assert isinstance(SUPPORT["max_opset"], int) and SUPPORT["min_opset"] < SUPPORT["max_opset"]
    ops = SUPPORT["ops"]
    assert len(ops) >= 150
    for op in ("Conv", "Gemm", "MatMul", "Relu", "Softmax", "LayerNormalization", "Add", "Mul", "Reshape",
               "Transpose", "Concat", "BatchNormalization", "MaxPool", "GlobalAveragePool", "Sigmoid", "Gelu"):
        assert ops[op]["supported"] is True, op
    for name, entry in ops.items():
        assert set(entry) == {"supported", "types", "restrictions"}, name
        assert isinstance(entry["supported"], bool)
        assert not entry["supported"] or entry["types"], f"{name}: supported without types"
        assert entry["restrictions"] is None or isinstance(entry["restrictions"], str)


# -- converter pieces that need no GPU ------------------------------------------------------------
def _fake_net(*inputs: tuple[str, tuple[int, ...]]):
    tensors = [SimpleNamespace(name=n, shape=s) for n, s in inputs]
    return SimpleNamespace(num_inputs=len(tensors), get_input=tensors.__getitem__)


def test_profile_covers_the_networks_dynamic_axes(tmp_path):
    pytest.importorskip("polygraphy")
    specs = [InputSpec("ids", (4, 128), dtype="int64", dynamic_axes={0: "batch", 1: "seq"}),
             InputSpec("fixed", (4, 3))]
    feeds = {"ids": np.zeros((4, 128), np.int64), "fixed": np.zeros((4, 3), np.float32)}
    ctx = ConvertContext(tmp_path, specs, ["y"], feeds)
    profile, shapes = _profile(_fake_net(("ids", (-1, -1)), ("fixed", (4, 3))), ctx, dynamic_max=32)
    assert shapes == {"ids": {"min": [1, 1], "opt": [4, 128], "max": [32, 128]}}
    assert list(profile) == ["ids"]
    # A symbolic axis the spec does not declare still gets a range; a missing example is an error.
    with pytest.raises(ValueError, match="no example"):
        _profile(_fake_net(("other", (-1, 3))), ctx, dynamic_max=32)


def test_parse_failure_names_the_unsupported_op(tmp_path):
    path = _save(_graph_model([helper.make_node("Unique", ["x"], ["y"])]), tmp_path / "m.onnx")
    log = "[E] In node 0 with name:  and operator: Unique (importFallbackPluginImporter): UNSUPPORTED_NODE: ...\n"
    failure = _parse_failure(path, log, RuntimeError("Could not parse ONNX correctly"))
    assert isinstance(failure, CellFailure)
    assert failure.status == Status.UNSUPPORTED.value and failure.op == "Unique"
    ok = _save(_graph_model([helper.make_node("Relu", ["x"], ["y"])]), tmp_path / "ok.onnx")
    failure = _parse_failure(ok, "", RuntimeError("Could not parse ONNX correctly"))
    assert failure.status == Status.CONVERT_ERROR.value


def test_runtime_declares_cuda_only():
    assert TensorrtRuntime.devices == ("cuda",)
    with pytest.raises(ValueError):
        TensorrtRuntime(Target("tensorrt", "cpu", "fp32"))


# -- (c) real TensorRT on a CUDA GPU ---------------------------------------------------------------
def _need_gpu() -> None:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (its wheels need NVIDIA's index and a GPU)")
    pytest.importorskip("polygraphy")
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no CUDA GPU (nvidia-smi not found)")


def _build(cnn_onnx, tmp_path: Path, precision: str) -> Artifact:
    _, folder = cnn_onnx
    x = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32)
    ctx = ConvertContext(tmp_path, [InputSpec("x", (2, 3, 16, 16), dynamic_axes={0: "batch"})], ["y"], {"x": x},
                         target=Target("tensorrt", "cuda", precision))
    return EngineFromOnnx().convert(Artifact(Format.ONNX, folder, {"entry": "model.onnx"}), ctx)


@pytest.mark.framework
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_build(cnn_onnx, tmp_path, precision):
    _need_gpu()
    art = _build(cnn_onnx, tmp_path, precision)
    assert art.format is Format.TENSORRT and art.main_file.name == "model.engine"
    assert art.main_file.stat().st_size > 0 and art.sha256
    meta = art.metadata
    assert meta["precision"] == precision and meta["tensorrt"]
    assert meta["input_names"] == ["x"] and meta["output_names"] == ["y"]
    assert meta["profiles"] == [{"x": {"min": [1, 3, 16, 16], "opt": [2, 3, 16, 16], "max": [32, 3, 16, 16]}}]


@pytest.mark.framework
@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-4), ("fp16", 1e-2)])
def test_runner_parity_with_torch(cnn_onnx, tmp_path, precision, atol):
    _need_gpu()
    import torch

    model, _ = cnn_onnx
    art = _build(cnn_onnx, tmp_path, precision)
    runtime = TensorrtRuntime(Target("tensorrt", "cuda", precision))
    runtime.activate(art)
    try:
        rng = np.random.default_rng(1)
        feeds = [rng.normal(size=(b, 3, 16, 16)).astype(np.float32) for b in (2, 1, 2)]
        outs = [runtime.infer({"x": f})["y"] for f in feeds]  # kept across calls: must not alias buffers
        described = runtime.describe()
    finally:
        runtime.deactivate()
    for f, got in zip(feeds, outs):
        with torch.no_grad():
            want = model(torch.from_numpy(f)).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    assert described["precision"] == precision and described["tensorrt"]
