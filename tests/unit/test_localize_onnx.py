"""First-divergence localisation on real exports: a fault planted in one ONNX node must be named.

cnn_small (tiny) is exported once with the dynamo exporter; the planted fault scales the weight of
the second Conv node by 1.5, so that node is the first whose output differs while its input (the
first block's ReLU) still agrees.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convcheck.tolerance import Tolerance

pytestmark = pytest.mark.framework

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

TOL = Tolerance(1e-4, 1e-3)
FAULT_SCALE = 1.5


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The torch model, its feeds, its dynamo export and a copy with one Conv's weight scaled."""
    import onnx
    import torch
    from onnx import numpy_helper

    from convcheck.registry import models
    from convcheck.zoo.cnn_small import build_torch

    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    folder = tmp_path_factory.mktemp("localize")
    model = build_torch("tiny").eval()
    feeds = models.get("cnn_small").feeds(0, size="tiny")
    assert list(feeds) == ["image"] and feeds["image"].shape == (1, 3, 64, 64)
    original = folder / "model.onnx"
    torch.onnx.export(model, (torch.from_numpy(feeds["image"]),), str(original), input_names=["image"],
                      output_names=["logits"], dynamo=True)

    proto = onnx.load(str(original))  # pulls in model.onnx.data, which the dynamo exporter writes
    second_conv = [node for node in proto.graph.node if node.op_type == "Conv"][1]
    weight = next(init for init in proto.graph.initializer if init.name == second_conv.input[1])
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * FAULT_SCALE, weight.name))
    perturbed = folder / "perturbed.onnx"
    onnx.save_model(proto, str(perturbed), save_as_external_data=False)

    module_names = [name for name, _ in model.named_modules()]
    torch_convs = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Conv2d)]
    rewrites = {p.key: p.value for p in second_conv.metadata_props}.get("pkg.onnxscript.rewriter.rule_name", "")
    return {"model": model, "feeds": feeds, "original": original, "perturbed": perturbed,
            "node": second_conv.name, "weight": second_conv.input[1], "torch_conv": torch_convs[1],
            "after_conv": module_names[module_names.index(torch_convs[1]) + 1],
            "bn_fused": "FuseBatchNormIntoConv" in rewrites}


def _expected_module(exported: dict[str, Any]) -> str:
    """The torch module the faulty Conv node's output is: the Conv2d itself, or, when the exporter's
    optimiser folded the following BatchNorm2d into it, that BatchNorm2d (cnn_small: conv, bn, relu)."""
    return exported["after_conv"] if exported["bn_fused"] else exported["torch_conv"]


def test_export_fault_names_the_perturbed_conv_and_its_module(exported):
    from convcheck.validate.localize_export import localize_export

    result = localize_export(exported["model"], exported["perturbed"], exported["feeds"], TOL)

    assert result["found"] is True, result
    assert result["node"] == exported["node"]
    assert result["op_type"] == "Conv"
    assert result["torch_module"] == _expected_module(exported)
    assert result["torch_class"] == ("BatchNorm2d" if exported["bn_fused"] else "Conv2d")
    # The exporter names initializers after torch parameters: the weight points at the Conv2d.
    assert exported["weight"] == f"{exported['torch_conv']}.weight"
    assert exported["torch_conv"] in result["parameter_modules"]
    assert result["max_abs_in"] <= TOL.atol
    assert result["max_abs_out"] > 100 * TOL.atol
    assert result["compared"] >= 2  # the first block was compared, and agreed, before the fault


def test_clean_export_finds_nothing(exported):
    from convcheck.validate.localize_export import localize_export

    result = localize_export(exported["model"], exported["original"], exported["feeds"], TOL)

    assert result["found"] is False, result
    assert result["compared"] == result["matched"] > 0


def test_export_without_scope_metadata_says_why(exported, tmp_path):
    """A graph without the dynamo exporter's scopes (as the TorchScript exporter writes) is not
    guessed at."""
    import onnx

    from convcheck.validate.localize_export import localize_export

    proto = onnx.load(str(exported["perturbed"]))
    for node in proto.graph.node:
        del node.metadata_props[:]
    stripped = tmp_path / "stripped.onnx"
    onnx.save_model(proto, str(stripped))

    result = localize_export(exported["model"], stripped, exported["feeds"], TOL)

    assert result["found"] is False
    assert "pkg.torch.onnx.name_scopes" in result["reason"]


def test_runtime_fault_names_the_perturbed_conv(exported):
    from convcheck.validate.localize_onnx import localize_runtime, ort_candidate

    candidate = ort_candidate(exported["perturbed"], exported["feeds"])
    result = localize_runtime(exported["original"], exported["feeds"], candidate, TOL)

    assert result["found"] is True, result
    assert result["node"] == exported["node"]
    assert result["op_type"] == "Conv"
    assert result["max_abs_in"] <= TOL.atol
    assert result["inputs_compared_directly"] is True


def test_openvino_on_the_original_graph_finds_nothing(exported):
    pytest.importorskip("openvino")
    from convcheck.validate.localize_onnx import localize_runtime, openvino_candidate

    candidate = openvino_candidate(exported["original"], exported["feeds"])
    result = localize_runtime(exported["original"], exported["feeds"], candidate, TOL)

    assert result["found"] is False, result
    assert result["compared"] > 0  # OpenVINO exposed intermediates: "nothing" is not "nothing compared"


def test_small_batches_give_the_same_answer(exported):
    from convcheck.validate.localize_export import localize_export
    from convcheck.validate.localize_onnx import localize_runtime, ort_candidate

    whole = localize_export(exported["model"], exported["perturbed"], exported["feeds"], TOL)
    batched = localize_export(exported["model"], exported["perturbed"], exported["feeds"], TOL, batch=2)
    assert batched["found"] is True
    assert (batched["node"], batched["torch_module"]) == (whole["node"], whole["torch_module"])
    assert np.isclose(batched["max_abs_out"], whole["max_abs_out"])

    candidate = ort_candidate(exported["perturbed"], exported["feeds"])
    runtime = localize_runtime(exported["original"], exported["feeds"], candidate, TOL, batch=2)
    assert runtime["found"] is True and runtime["node"] == exported["node"]
    # The walk stopped at the fault: the tensors after it were never exposed.
    assert runtime["requested"] < len(_node_outputs(exported["original"]))


def _node_outputs(path: Path) -> list[str]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return [out for node in proto.graph.node for out in node.output]


def test_import_loads_no_framework():
    code = ("import convcheck.validate.localize_onnx, sys; "
            "print([m for m in ('torch', 'onnxruntime', 'onnx', 'openvino') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_inline_weights_over_the_limit_run_from_external_data(exported, monkeypatch):
    """A graph with embedded weights past INLINE_BYTES_LIMIT is rewritten with external data into a
    temporary folder (the copy with extra outputs must stay under protobuf's 2 GB): same answer."""
    from convcheck.validate import localize_onnx

    monkeypatch.setattr(localize_onnx, "INLINE_BYTES_LIMIT", 0)
    graph = localize_onnx._load_graph(exported["perturbed"])
    assert graph.workdir is not None and (graph.folder / "model.onnx.data").is_file()

    candidate = localize_onnx.ort_candidate(exported["original"], exported["feeds"])
    result = localize_onnx.localize_runtime(exported["perturbed"], exported["feeds"], candidate, TOL)
    assert result["found"] is True and result["node"] == exported["node"]


def test_external_data_through_a_file_beside_it_on_older_onnxruntime(exported, monkeypatch):
    """ONNX Runtime before 1.21 cannot find external data for a model given as bytes: the copy with
    extra outputs then goes through a file beside the data, removed once the session holds it."""
    from convcheck.validate import localize_onnx

    monkeypatch.setattr(localize_onnx, "ORT_BYTES_WITH_EXTERNAL_DATA", (999, 0))
    before = sorted(exported["original"].parent.iterdir())
    candidate = localize_onnx.ort_candidate(exported["perturbed"], exported["feeds"])
    result = localize_onnx.localize_runtime(exported["original"], exported["feeds"], candidate, TOL, batch=4)
    assert result["found"] is True and result["node"] == exported["node"]
    assert sorted(exported["original"].parent.iterdir()) == before
