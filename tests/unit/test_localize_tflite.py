"""First-divergence localisation on keras/tflite: a fault planted in one Keras layer after conversion is
named, a faithful conversion is not blamed, and the module imports no framework until it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.framework

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from convcheck.registry import models  # noqa: E402
from convcheck.types import Format  # noqa: E402
from convcheck.validate.localize_tflite import localize_tflite  # noqa: E402
from convcheck.tolerance import Tolerance  # noqa: E402

TOL = Tolerance.for_precision("fp32")
#: What "within fp32 rounding" means for these unit-scale layers (the profile's bound is relative to
#: each tensor's scale: atol_rel x peak |ref|).
FP32_NOISE = 1e-4


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> tuple[Any, Path, dict[str, np.ndarray]]:
    """cnn_small (tiny) in Keras, its fp32 .tflite, and one sample keyed by the declared input name."""
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    from convcheck.zoo.cnn_small import build_keras

    model = build_keras("tiny")
    spec = models.get("cnn_small")
    declared = spec.inputs_for(Format.KERAS, "tiny")
    assert [s.name for s in declared] == [t.name for t in model.inputs] == ["image"]
    assert tuple(model.inputs[0].shape[1:]) == declared[0].shape[1:] == (64, 64, 3)
    path = tmp_path_factory.mktemp("localize") / "model.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return model, path, spec.feeds(0, fmt=Format.KERAS, size="tiny")


def _perturbed(model: Any, layer_name: str, path: Path, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """Localise with one layer's kernel scaled by 1.5 in Keras only (the .tflite keeps the original)."""
    layer = model.get_layer(layer_name)
    saved = layer.get_weights()
    layer.set_weights([saved[0] * 1.5, *saved[1:]])
    try:
        # The input map as convcheck records it: declared name -> signature key.
        return localize_tflite(model, path, feeds, {"image": "image"}, TOL)
    finally:
        layer.set_weights(saved)


def _names(model: Any, cls: str) -> list[str]:
    """Layer names by class, in order: Keras numbers auto-named layers per process (`conv2d_6` when
    other tests built models first), so the tests never spell them."""
    return [layer.name for layer in model.layers if type(layer).__name__ == cls]


def test_planted_fault_in_fused_conv_is_named(cnn):
    model, path, feeds = cnn
    conv, norm, relu = (_names(model, c) for c in ("Conv2D", "BatchNormalization", "ReLU"))
    result = _perturbed(model, conv[1], path, feeds)
    assert result["found"] is True, result
    # conv -> batch norm -> relu is one CONV_2D with a fused ReLU: the tensor is the ReLU's output, and
    # the error can start anywhere in the group; its first layer is the one named.
    assert result["layer"] == conv[1] and result["keras_class"] == "Conv2D"
    assert result["tensor_layer"] == relu[1]
    assert result["span"] == [conv[1], norm[1], relu[1]]
    assert result["inputs_from"] == [relu[0]] and result["compared"] == 2
    # What enters the group agrees within tolerance; what leaves it is off by the order of the activations.
    assert result["max_abs_in"] <= FP32_NOISE
    assert result["max_abs_out"] > 0.1
    assert result["propagates"] is True and result["downstream_layer"] == relu[2]
    assert result["tolerance"]["atol"] == TOL.atol and result["tolerance"]["rtol"] == TOL.rtol
    json.dumps(result, allow_nan=False)


def test_planted_fault_in_output_layer_is_matched_through_the_signature(cnn):
    # The converter renames the model output (StatefulPartitionedCall_1:0): the SignatureDef says it is logits.
    model, path, feeds = cnn
    result = _perturbed(model, "logits", path, feeds)
    assert result["found"] is True, result
    assert result["layer"] == result["tensor_layer"] == "logits" and result["keras_class"] == "Dense"
    assert result["inputs_from"] == _names(model, "GlobalAveragePooling2D")
    assert result["max_abs_in"] <= FP32_NOISE < result["max_abs_out"]
    assert result["propagates"] is None  # nothing downstream of the output


def test_faithful_conversion_is_not_blamed(cnn):
    model, path, feeds = cnn
    result = localize_tflite(model, path, feeds, None, TOL)
    assert result["found"] is False, result
    assert "within tolerance" in result["reason"]
    # Conv+BN+ReLU groups have one tensor each: fewer compared layers than layers, all of them agreeing.
    assert 3 <= result["compared"] == result["matched"] < len(model.layers) - 1
    assert result["max_abs"] <= FP32_NOISE
    json.dumps(result, allow_nan=False)


def test_missing_feed_is_a_reason_not_an_exception(cnn):
    model, path, feeds = cnn
    result = localize_tflite(model, path, {"pixels": feeds["image"]}, None, TOL)
    assert result["found"] is False and "no feed for input 'image'" in result["reason"]


def test_import_loads_no_framework():
    script = ("import sys\nimport convcheck.validate.localize_tflite\n"
              "print('HEAVY:' + ','.join(m for m in ('tensorflow', 'keras', 'ai_edge_litert') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "HEAVY:", f"importing the module loaded {proc.stdout.strip()[6:]}"
