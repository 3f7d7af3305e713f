"""The real mlp_tabular x torch/onnx/ort cell, through the CLI, checked against the schema and for sense."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from convcheck.results import schema


pytestmark = [pytest.mark.framework, pytest.mark.slow]

@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("run")
    proc = run_cli("matrix", "--models", "mlp_tabular", "--routes", "torch/onnx/ort,torch/onnx_legacy/ort",
                   "--out", str(out), "--bench-seconds", "0.3")
    return proc, out


def test_cli_exits_0_and_prints_the_table(real_run):
    proc, out = real_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mlp_tabular" in proc.stdout and "torch/onnx/ort" in proc.stdout
    assert "✔" in proc.stdout and "ms" in proc.stdout
    assert str(out / "results.json") in proc.stdout.replace("\n", "")


def test_results_validate_against_the_shipped_schema(real_run):
    _, out = real_run
    results = json.loads((out / "results.json").read_text())
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(results)
    assert results["run"]["finished"] is not None
    assert results["summary"] == {"pass": 2}
    assert {"torch", "onnx", "onnxruntime", "numpy"} <= set(results["run"]["packages"])
    assert results["run"]["host"]["cores"] >= 1


def test_figures_make_sense(real_run):
    _, out = real_run
    results = json.loads((out / "results.json").read_text())
    for cell in results["cells"]:
        assert cell["status"] == "pass" and cell["error"] is None
        p = cell["parity"]
        # A faithful fp32 conversion of a small MLP: rounding-level differences, but not bit-identical
        # evidence of "never compared" (the reference and the ORT output are different computations).
        assert 0 < p["max_abs"] < 1e-4
        assert p["cosine"] > 0.99999
        assert p["top1_agreement"] == 1.0
        assert p["samples"] == 4 and p["per_output"]["logits"]["shape"] == [32, 4]
        assert p["min_passing"]["atol"] <= p["tolerance"]["atol"]
        lat = cell["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert lat["n"] >= 30 and lat["batch"] == 32
        t = cell["timings_s"]
        assert t["convert"] > 0 and t["load"] > 0 and t["first_inference"] > 0
        # Against this cell's own figures, not a wall-clock bound (the ms figure: benchmarks/timing_figures.py):
        # one steady-state call of a 30-feature MLP costs less than creating its ORT session.
        assert lat["p50"] < 1000 * t["load"], f"p50 {lat['p50']} ms vs load {t['load']} s: was the session timed?"
        assert cell["artifact_bytes"] > 100_000  # the full MLP has ~110k float weights
        assert [s["stage"] for s in cell["stages"]] == [
            "reference", f"convert:{cell['steps'][0]}", "load", "run", "compare", "benchmark"]
    dynamo = next(c for c in results["cells"] if c["route"] == "torch/onnx/ort")
    assert dynamo["steps"] == ["onnx"] and dynamo["converters"] == ["OnnxFromTorch"]
    art = dynamo["artifacts"][0]
    assert art["metadata"]["exporter"] == "dynamo" and len(art["sha256"]) == 64
    folder = Path(art["path"])
    assert folder.is_relative_to(out)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["model.onnx", "model.onnx.data"]  # the external weights travel with the model
