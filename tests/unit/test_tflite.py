"""TFLite / LiteRT: real conversions run by the LiteRT interpreter, with real parity at every precision,
the Flex ops of a Keras LSTM named as unsupported, and inputs and outputs matched by name."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.framework

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from convcheck.failures import classify  # noqa: E402
from convcheck.engine import run_cells  # noqa: E402
from convcheck.plan import plan  # noqa: E402
from convcheck.plan import RunSettings  # noqa: E402
from convcheck.registry import converters, models, runtimes  # noqa: E402
from convcheck.routes import enumerate_routes, select_routes  # noqa: E402
from convcheck.types import Artifact, Format, Target  # noqa: E402
from convcheck.validate.latency import LatencyConfig  # noqa: E402
from convcheck.tolerance import TOLERANCES  # noqa: E402
from tests.fakes.keras_models import LSTM_SPEC, LSTM_UNROLLED_SPEC, MULTI_IO_SPEC  # noqa: E402

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)
FLEX_OPS = ("TensorListReserve", "TensorListStack", "TensorListSetItem")


def _run(specs, route, precisions, tmp_path, size="tiny", samples=4):
    cells = plan(specs, select_routes(route), ["cpu"], precisions)
    results = run_cells(cells, RunSettings(tmp_path, size=size, samples=samples, latency=FAST), tmp_path, "t")
    return {(c["model"], c["precision"]): c for c in results["cells"]}


@pytest.fixture(scope="module")
def keras_cells(tmp_path_factory):
    """mlp_tabular and cnn_small (tiny) over keras/tflite at fp32, fp16 and int8, run once."""
    return _run([models.get("mlp_tabular"), models.get("cnn_small")], "keras/tflite", ["fp32", "fp16", "int8"],
                tmp_path_factory.mktemp("keras_tflite"))


def _logits(cell):
    assert cell["status"] == "pass", cell["error"]
    return cell["parity"], cell["parity"]["per_output"]["logits"], cell["artifacts"][-1]["metadata"]


@pytest.mark.parametrize("model", ["mlp_tabular", "cnn_small"])
def test_keras_fp32_matches(keras_cells, model):
    cell = keras_cells[(model, "fp32")]
    parity, logits, meta = _logits(cell)
    assert cell["route"] == "keras/tflite" and cell["reference"] == "keras"
    assert parity["samples"] == 4 and parity["max_abs"] < 1e-4
    assert logits["cosine"] > 0.999999 and logits["top1_agreement"] == 1.0
    assert meta["via"] == "tf.lite.TFLiteConverter.from_keras_model" and meta["quantization"] == "none"
    # TFLite renamed the input and the output; the artifact says which tensor is which declared name.
    name = {"mlp_tabular": "features", "cnn_small": "image"}[model]
    assert meta["input_map"][name]["tensor"] == f"serving_default_{name}:0"
    assert meta["output_map"]["logits"]["key"] == "output_0"
    assert set(meta["weights"]) <= {"float32", "int32"}
    assert cell["latency_ms"]["p50"] > 0 and cell["runtime_settings"]["threads"] >= 1


@pytest.mark.parametrize("model", ["mlp_tabular", "cnn_small"])
def test_keras_fp16_has_real_float16_error_within_profile(keras_cells, model):
    parity, logits, meta = _logits(keras_cells[(model, "fp16")])
    assert meta["weights"].get("float16", 0) > 0 and "float32" not in meta["weights"]
    # float16 weights: clearly above the fp32 error (1e-6), well inside the fp16 profile.
    assert 1e-5 < parity["max_abs"] < TOLERANCES["fp16"]["atol"]
    assert logits["cosine"] > 0.99999 and logits["top1_agreement"] == 1.0
    assert keras_cells[(model, "fp16")]["artifact_bytes"] < keras_cells[(model, "fp32")]["artifact_bytes"]


def test_keras_int8_quantises_the_cnn(keras_cells):
    parity, logits, meta = _logits(keras_cells[("cnn_small", "int8")])
    assert meta["weights"].get("int8", 0) >= 1
    assert 1e-4 < parity["max_abs"] < TOLERANCES["int8"]["atol"]
    assert logits["cosine"] > 0.9999 and logits["top1_agreement"] == 1.0


def test_keras_int8_leaves_a_tiny_mlp_in_float_and_says_so(keras_cells):
    """TF's dynamic-range quantisation skips weight tensors under 1024 elements: every one of the tiny
    MLP's. The cell passes at fp32 accuracy and its log says nothing was quantised."""
    cell = keras_cells[("mlp_tabular", "int8")]
    parity, _, meta = _logits(cell)
    assert "int8" not in meta["weights"] and parity["max_abs"] < 1e-4
    assert any("no weight tensor was quantised" in line for line in cell["log"])


def test_keras_int8_quantises_a_full_size_mlp(tmp_path):
    cell = _run([models.get("mlp_tabular")], "keras/tflite", ["int8"], tmp_path, size="full")[("mlp_tabular", "int8")]
    parity, logits, meta = _logits(cell)
    assert meta["weights"].get("int8", 0) == 3  # 30x256, 256x256, 256x128; the 128x4 head stays float
    assert 1e-3 < parity["max_abs"] < TOLERANCES["int8"]["atol"]
    assert logits["cosine"] > 0.999 and logits["top1_agreement"] >= 0.9


def test_falls_back_to_a_saved_model_export(tmp_path, monkeypatch):
    import tensorflow as tf

    def refuse(model):
        raise RuntimeError("from_keras_model refused (test)")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_keras_model", staticmethod(refuse))
    cell = _run([models.get("cnn_small")], "keras/tflite", ["fp32"], tmp_path, samples=2)[("cnn_small", "fp32")]
    parity, logits, meta = _logits(cell)
    assert meta["via"] == "keras export(tf_saved_model) + tf.lite.TFLiteConverter.from_saved_model"
    assert parity["max_abs"] < 1e-4 and logits["top1_agreement"] == 1.0
    assert any("from_keras_model refused (test)" in line for line in cell["log"])


def test_keras_lstm_needs_flex_and_is_unsupported(tmp_path):
    cells = _run([LSTM_SPEC], "keras/tflite", ["fp32"], tmp_path, samples=2)
    cell = cells[("keras_lstm", "fp32")]
    assert cell["status"] == "unsupported", cell["error"]
    assert cell["error"]["stage"] == "convert:tflite" and cell["error"]["op"] == "TensorListReserve"
    assert all(op in cell["error"]["message"] for op in FLEX_OPS)
    assert "Select TF ops (Flex)" in cell["error"]["message"]
    assert any("Flex ops: " in line for line in cell["log"])


def test_keras_lstm_unrolled_converts_to_builtins(tmp_path):
    cells = _run([LSTM_UNROLLED_SPEC], "keras/tflite", ["fp32"], tmp_path, samples=2)
    parity, logits, meta = _logits(cells[("keras_lstm_unrolled", "fp32")])
    assert parity["max_abs"] < 1e-4 and logits["top1_agreement"] == 1.0
    assert not any(op.startswith("Flex") for op in meta["ops"])


def test_inputs_and_outputs_are_matched_by_name(tmp_path):
    """TFLite reorders this model's input and output tensors, and two heads have the same shape."""
    cells = _run([MULTI_IO_SPEC], "keras/tflite", ["fp32"], tmp_path, samples=2)
    cell = cells[("keras_multi_io", "fp32")]
    assert cell["status"] == "pass", cell["error"]
    meta = cell["artifacts"][-1]["metadata"]
    assert {n: m["key"] for n, m in meta["output_map"].items()} == {
        "zeta": "output_0", "alpha": "output_1", "mid": "output_2"}
    for name in ("zeta", "alpha", "mid"):
        assert cell["parity"]["per_output"][name]["max_abs"] < 1e-4


def test_interpreter_refusing_flex_ops_is_unsupported(tmp_path):
    """A .tflite that carries Flex ops (converted with SELECT_TF_OPS) fails at load, named."""
    import contextlib
    import io

    import tensorflow as tf

    from convcheck.validate.runtimes.litert import LitertRuntime
    from tests.fakes.keras_models import build_lstm_classifier

    converter = tf.lite.TFLiteConverter.from_keras_model(build_lstm_classifier("tiny"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    converter._experimental_lower_tensor_list_ops = False
    with contextlib.redirect_stdout(io.StringIO()):
        (tmp_path / "model.tflite").write_bytes(converter.convert())
    runtime = LitertRuntime(Target("tflite"))
    with pytest.raises(RuntimeError) as raised:
        runtime.activate(Artifact(Format.TFLITE, tmp_path, {"entry": "model.tflite"}))
    assert "Select TensorFlow op(s)" in str(raised.value)
    failure = classify(raised.value, "load")
    assert failure.status == "unsupported" and failure.op == "TensorListReserve"


def test_runtime_resizes_the_batch_and_runs_a_file_without_metadata(keras_cells):
    """A bare .tflite: its signature keys are the names; the batch follows the feed."""
    import numpy as np

    from convcheck.validate.runtimes.litert import LitertRuntime

    folder = keras_cells[("mlp_tabular", "fp32")]["artifacts"][-1]["path"]
    runtime = LitertRuntime(Target("tflite"), threads=1)
    runtime.activate(Artifact(Format.TFLITE, Path(folder), {"entry": "model.tflite"}))
    assert runtime.input_names == ["features"] and runtime.output_names == ["output_0"]
    rng = np.random.default_rng(0)
    for batch in (5, 32, 5):
        out = runtime.infer({"features": rng.normal(size=(batch, 30)).astype("float32")})["output_0"]
        assert out.shape == (batch, 4)
    # Each result is a copy: the next invoke must not overwrite it.
    first = runtime.infer({"features": np.ones((2, 30), "float32")})["output_0"]
    second = runtime.infer({"features": np.zeros((2, 30), "float32")})["output_0"]
    assert not np.array_equal(first, second)
    runtime.deactivate()


def test_torch_tflite(tmp_path):
    pytest.importorskip("litert_torch", reason="litert-torch is not installed: the torch/tflite route is "
                                              "missing_dep here (it cannot share an environment pinned to "
                                              "typing-extensions>=4.14: litert-converter pins xdsl==0.28.0, "
                                              "which needs typing-extensions<4.13)")
    cells = _run([models.get("mlp_tabular"), models.get("cnn_small")], "torch/tflite", ["fp32", "int8"], tmp_path)
    for model in ("mlp_tabular", "cnn_small"):
        parity, logits, meta = _logits(cells[(model, "fp32")])
        assert cells[(model, "fp32")]["reference"] == "torch"
        assert parity["max_abs"] < 1e-4 and logits["top1_agreement"] == 1.0
        assert meta["via"] == "litert_torch.convert" and meta["output_map"]["logits"]["key"] == "output_0"
        parity, logits, meta = _logits(cells[(model, "int8")])
        assert meta["weights"].get("int8", 0) >= 1
        assert 1e-4 < parity["max_abs"] < TOLERANCES["int8"]["atol"] and logits["cosine"] > 0.999
