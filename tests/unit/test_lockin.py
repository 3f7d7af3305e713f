"""Lock-in score: reproducible from its breakdown, a defensible ranking, fidelity counted honestly,
overrides that merge and fail loudly, plugin routes that do not crash, idempotent re-scoring."""

from __future__ import annotations

import copy
import datetime
import json
import subprocess
import sys
from typing import Any

import pytest

from convcheck.errors import ConvcheckError
from convcheck.reports.lockin import FACTORS, load_lockin_data, score_document, score_route

# A slice of a real full-zoo run (results_full.json of 2026-11-25): per route, its shape and its cells
# as (status, error stage, op, how many). The statuses and ops are the ones that run produced.
ROUTES: dict[str, tuple[str, list[str], str, list[tuple[str, str | None, str | None, int]]]] = {
    "torch/eager": ("torch", [], "eager", [("no_device", "plan", None, 2)]),
    "torch/onnx/ort": ("torch", ["onnx"], "ort", [("pass", None, None, 3)]),
    "torch/onnx_legacy/ort": ("torch", ["onnx_legacy"], "ort", [("pass", None, None, 3)]),
    "torch/onnx/openvino": ("torch", ["onnx", "openvino"], "openvino", [("pass", None, None, 3)]),
    "torch/onnx/tvm": ("torch", ["onnx", "tvm"], "tvm", [("pass", None, None, 2),
                                                         ("unsupported", "convert:tvm", "LSTM", 1)]),
    "torch/onnx/tensorrt": ("torch", ["onnx", "tensorrt"], "tensorrt", [("missing_dep", "plan", None, 2)]),
    "torch/exported_program/tvm": ("torch", ["exported_program", "tvm"], "tvm", [
        ("pass", None, None, 2), ("mismatch", "compare", None, 1),
        ("unsupported", "convert:tvm", "scatter_add.default", 1)]),
    "torch/coreml": ("torch", ["coreml"], "coreml", [("no_device", "plan", None, 3),
                                                     ("convert_error", "convert:coreml", None, 1)]),
    "keras/onnx/ort": ("keras", ["onnx"], "ort", [("pass", None, None, 2),
                                                  ("unsupported", "convert:onnx", "Erfc", 1)]),
    "keras/tflite": ("keras", ["tflite"], "tflite", [
        ("pass", None, None, 3), ("mismatch", "compare", None, 1),
        ("unsupported", "convert:tflite", "TensorListReserve", 1)]),
    "onnx/ort": ("onnx", [], "ort", [("pass", None, None, 2)]),
    "tflite/tflite": ("tflite", [], "tflite", [("pass", None, None, 1)]),
    "keras/given-tflite/tflite": ("keras", ["given-tflite"], "tflite", [("pass", None, None, 1)]),
}


def make_cell(route: str, status: str, stage: str | None, op: str | None, i: int) -> dict[str, Any]:
    source, steps, runtime, _ = ROUTES.get(route, (route.split("/")[0], route.split("/")[1:-1],
                                                    route.split("/")[-1], []))
    # A cell that could not run here still converted on a Core ML route (precheck), as in the real run.
    converted = status == "pass" or stage in ("compare", "run") or (status == "no_device" and runtime == "coreml")
    return {
        "model": f"model_{i}", "route": route, "source": source, "steps": list(steps), "runtime": runtime,
        "device": "cuda" if runtime in ("eager", "tensorrt") else "cpu", "precision": "fp32", "status": status,
        "error": None if status == "pass" else {"kind": status, "message": f"{status} <b>|`x`", "stage": stage,
                                                 "op": op},
        "stages": [{"stage": f"convert:{s}", "ok": True, "seconds": 0.1} for s in steps] if converted else [],
    }


def make_document(routes: dict = ROUTES) -> dict[str, Any]:
    cells = [make_cell(route, status, stage, op, i)
             for route, (_, _, _, groups) in routes.items()
             for status, stage, op, n in groups for i in range(n)]
    return {"schema_version": 1, "run": {"id": "20261125-000000-test"}, "summary": {}, "cells": cells}


@pytest.fixture(scope="module")
def data() -> dict:
    return load_lockin_data()


@pytest.fixture
def scored(data) -> dict[str, Any]:
    return score_document(make_document(), data)


def recompute(lockin: dict[str, Any]) -> float:
    factors = lockin["factors"]
    return round(100 * sum(f["weight"] * f["value"] for f in factors.values())
                 / sum(f["weight"] for f in factors.values()), 1)


def test_every_score_is_the_weighted_sum_of_its_breakdown(scored, data):
    routes = scored["lockin"]["routes"]
    assert set(routes) == set(ROUTES)
    for route, lockin in routes.items():
        assert list(lockin["factors"]) == list(FACTORS), route
        assert 0 <= lockin["score"] <= 100 and lockin["score"] == recompute(lockin), route
        for name, factor in lockin["factors"].items():
            assert 0 <= factor["value"] <= 1, (route, name)
            assert isinstance(factor["evidence"], str) and len(factor["evidence"]) > 20, (route, name)
    for cell in scored["cells"]:  # every cell carries its route's score
        assert cell["lockin"] == routes[cell["route"]]
    assert scored["lockin"]["weights"] == data["weights"]
    assert scored["lockin"]["data_snapshot"]["date"] == "2026-11-25"
    assert any("pypi.org" in s for s in scored["lockin"]["data_snapshot"]["sources"])


def test_ranking_is_defensible(scored):
    s = {route: v["score"] for route, v in scored["lockin"]["routes"].items()}
    assert s["onnx/ort"] < 10 and s["torch/onnx/ort"] < 10
    assert s["torch/onnx/ort"] < s["torch/onnx_legacy/ort"]  # the deprecated exporter costs something
    assert s["torch/onnx/ort"] < s["keras/tflite"] < s["torch/onnx/openvino"] < s["torch/coreml"]
    assert s["torch/onnx/tensorrt"] > 80 and s["torch/onnx/tensorrt"] == max(s.values())
    trt = scored["lockin"]["routes"]["torch/onnx/tensorrt"]["factors"]
    assert "1 runtime (TensorRT (NVIDIA))" in trt["runtime_diversity"]["evidence"]
    assert "TensorRT version" in trt["runtime_diversity"]["evidence"]
    assert "1 hardware vendor (NVIDIA)" in trt["hardware_diversity"]["evidence"]
    assert trt["format_openness"]["value"] == 1.0 and trt["reversibility"]["value"] == 1.0


def test_fidelity_counts_cells_that_ran_and_names_unsupported_ops(scored):
    routes = scored["lockin"]["routes"]
    fid = routes["keras/onnx/ort"]["factors"]["fidelity"]
    assert fid["value"] == pytest.approx(1 / 3, abs=1e-4) and fid["measured"] is True
    assert "2/3 cells passed in this run (1 failed to convert)" in fid["evidence"]
    assert "unsupported ops met: Erfc" in fid["evidence"]
    fid = routes["torch/exported_program/tvm"]["factors"]["fidelity"]
    assert fid["value"] == pytest.approx(0.5) and "2/4 cells passed" in fid["evidence"]
    assert "scatter_add.default" in fid["evidence"]
    assert routes["torch/onnx/ort"]["factors"]["fidelity"]["value"] == 0


def test_fidelity_not_measured_here_is_neutral_and_marked(scored):
    fid = scored["lockin"]["routes"]["torch/onnx/tensorrt"]["factors"]["fidelity"]
    assert fid["value"] == 0.5 and fid["measured"] is False
    assert fid["evidence"].startswith("fidelity: not measured on this host (2 missing_dep)")
    # Core ML off macOS: 3 of 4 converted, none ran. Counting only the cells that "tried" would keep
    # the one conversion failure alone (0/1); the completed conversions count, parity stays neutral.
    fid = scored["lockin"]["routes"]["torch/coreml"]["factors"]["fidelity"]
    assert fid["measured"] is False and fid["value"] == pytest.approx(1 - 0.75 * 0.5)
    assert "3/4 cells converted" in fid["evidence"]


def test_vacuous_and_reference_failures_do_not_count(data):
    cells = [make_cell("torch/onnx/ort", "pass", None, None, 0),
             make_cell("torch/onnx/ort", "vacuous", "compare", None, 1),
             make_cell("torch/onnx/ort", "runtime_error", "reference", None, 2)]
    fid = score_route("torch/onnx/ort", "torch", ["onnx"], "ort", cells, data)["factors"]["fidelity"]
    assert fid["value"] == 0 and "1/1 cells passed" in fid["evidence"]


def test_unknown_plugin_route_is_scored_neutrally(data):
    cells = [make_cell("torch/myformat/myruntime", "pass", None, None, 0)]
    result = score_route("torch/myformat/myruntime", "torch", ["myformat"], "myruntime", cells, data)
    f = result["factors"]
    assert f["format_openness"]["value"] == 0.5 and "myformat: no data" in f["format_openness"]["evidence"]
    for name in ("runtime_diversity", "hardware_diversity", "reversibility"):
        assert f[name]["value"] == 0.5 and "no data for the final artifact of 'myformat'" in f[name]["evidence"]
    assert "no data" in f["toolchain_health"]["evidence"]
    assert result["score"] == recompute(result)
    # an unknown source format, and a known step after it
    result = score_route("paddle/onnx/ort", "paddle", ["onnx"], "ort", [], data)
    assert result["factors"]["format_openness"]["value"] == 0.0  # the produced ONNX is known
    assert "no data" in result["factors"]["toolchain_health"]["evidence"]  # paddle>onnx is not


def test_scoring_is_idempotent_and_rescoring_replaces(data, tmp_path):
    doc = make_document()
    once = copy.deepcopy(score_document(doc, data))
    assert score_document(doc, data) == once
    heavy = tmp_path / "weights.json"
    heavy.write_text(json.dumps({"weights": {"fidelity": 10}}))
    rescored = score_document(doc, load_lockin_data(heavy))
    assert rescored["lockin"]["weights"]["fidelity"] == 10
    assert all(c["lockin"]["factors"]["fidelity"]["weight"] == 10 for c in rescored["cells"])


def test_override_weights_move_the_score(data, tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"weights": {"fidelity": 2.0, "toolchain_health": 0}}))
    merged = load_lockin_data(path)
    assert merged["weights"]["fidelity"] == 2.0
    assert merged["weights"]["reversibility"] == data["weights"]["reversibility"]  # the others are kept
    base = score_document(make_document(), data)["lockin"]["routes"]["keras/onnx/ort"]
    moved = score_document(make_document(), merged)["lockin"]["routes"]["keras/onnx/ort"]
    assert moved["score"] > base["score"] and moved["score"] == recompute(moved)
    assert moved["factors"]["toolchain_health"]["weight"] == 0


def test_override_facts_deep_merge(data, tmp_path):
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"formats": {"onnx": {"governance": "proprietary"}}}))
    merged = load_lockin_data(path)
    assert merged["formats"]["onnx"]["runtimes"] == data["formats"]["onnx"]["runtimes"]  # the rest is kept
    f = score_route("onnx/ort", "onnx", [], "ort", [], merged)["factors"]
    assert f["format_openness"]["value"] == 1.0


@pytest.mark.parametrize("content, expected", [
    (None, "cannot read"),
    ("<folder>", "cannot read"),
    ('{"snapshot": {"date": "last Tuesday"}}', "bad or missing date"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"weights": {"portability": 1}}', "unknown factor 'portability'"),
    ('{"weights": {"fidelity": -1}}', "use a number >= 0"),
    ('{"weights": {"fidelity": "high"}}', "use a number >= 0"),
    ('{"weights": {"fidelity": true}}', "use a number >= 0"),
    ('{"weights": [1]}', "must be an object"),
    ('{"weight": {"fidelity": 1}}', "unknown key 'weight'"),
    ('{"weights": {"format_openness": 0, "runtime_diversity": 0, "hardware_diversity": 0, "reversibility": 0,'
     ' "fidelity": 0, "toolchain_health": 0}}', "add up to 0"),
])
def test_bad_override_names_the_file_and_the_fix(tmp_path, content, expected):
    path = tmp_path / "my-weights.json"
    if content == "<folder>":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConvcheckError) as info:
        load_lockin_data(path)
    message = str(info.value)
    assert "my-weights.json" in message and expected in message and "\n" not in message


def test_documents_without_steps_are_scored_like_current_ones(data):
    doc = make_document()
    old = copy.deepcopy(doc)
    for cell in old["cells"]:
        del cell["steps"]
    new_scores = {r: v["score"] for r, v in score_document(doc, data)["lockin"]["routes"].items()}
    old_scores = {r: v["score"] for r, v in score_document(old, data)["lockin"]["routes"].items()}
    assert old_scores == new_scores


def test_scored_document_still_matches_the_schema(data):
    pytest.importorskip("jsonschema")
    from tests.unit.test_store import make_cell as full_cell, make_run, validate
    from convcheck.results import summarize

    cells = [full_cell("a"), full_cell("b", status="mismatch"), full_cell("c", route="torch/onnx/tvm")]
    doc = {"schema_version": 1, "run": make_run("20261125-100000-aaaa"), "summary": summarize(cells),
           "cells": cells}
    validate(score_document(doc, data))


def test_data_file_is_complete_and_dated(data):
    assert set(data["weights"]) == set(FACTORS) and all(w > 0 for w in data["weights"].values())
    snapshot = datetime.date.fromisoformat(data["snapshot"]["date"])
    for fmt in ("pytorch", "keras", "savedmodel", "onnx", "pt2", "openvino_ir", "tvm_module", "tensorrt_engine",
                "tflite", "mlpackage"):
        fact = data["formats"][fmt]
        assert fact["governance"] in data["scoring"]["governance"] and fact["steward"] and fact["source"], fmt
        assert fact["reversibility"]["class"] in data["scoring"]["reversibility"] and fact["runtimes"], fmt
        assert fact["hardware_vendors"], fmt
    assert set(data["step_formats"].values()) | set(data["source_formats"].values()) <= set(data["formats"])
    used = {t for tools in [*data["hop_tools"].values(), *data["runtime_tools"].values()] for t in tools}
    assert used <= set(data["tools"])
    for name, tool in data["tools"].items():
        assert datetime.date.fromisoformat(tool["released"]) <= snapshot and "pypi.org" in tool["source"], name
        assert all(0 < d["severity"] <= 1 and d["source"] for d in tool["deprecations"]), name
    said = json.dumps(data["tools"])
    for fact in ("Relay", "tvmc", "litert-torch", "LiteRT", "TorchScript", "BuilderFlag.FP16"):
        assert fact in said


def test_module_imports_no_ml_framework():
    code = ("import sys, convcheck.reports.lockin as l; l.load_lockin_data(); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'onnx', 'onnxruntime', 'openvino', 'tvm', "
            "'coremltools', 'tensorrt', 'keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
