"""`convcheck load`: real CLI processes converting real (tiny) zoo models and serving them under the real
MLPerf LoadGen. Runs are kept to fractions of a second (LoadGen's rules on a short run; the results say
they are not MLPerf-valid durations). The audit under load: tests/integration/test_reports_cli.py."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.framework
pytest.importorskip("mlperf_loadgen")

FAST = ("--size", "tiny", "--samples", "2", "--bench-seconds", "0.05", "--bench-iters", "3")
SHORT = ("--duration", "0.2", "--min-query-count", "50")


@pytest.fixture(scope="module")
def load_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("load") / "run"
    done = run_cli("load", "mlp_tabular", "--routes", "torch/onnx/ort,torch/openvino", "--scenario", "all",
                   "--latency-bound-ms", "20", "--capacity-trials", "2", *SHORT, *FAST, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def test_four_scenarios_on_every_passing_cell_with_loadgens_own_verdicts(load_run):
    from convcheck.results import schema

    jsonschema = pytest.importorskip("jsonschema")
    out, done = load_run
    document = json.loads((out / "results.json").read_text())
    jsonschema.validate(document, schema())
    cells = document["cells"]
    assert {c["route"] for c in cells} == {"torch/onnx/ort", "torch/openvino"}
    for cell in cells:
        assert cell["status"] == "pass"
        load = cell["load"]
        assert [r["scenario"] for r in load["runs"]] == ["single-stream", "multi-stream", "server", "offline"]
        for run in load["runs"]:
            # The verdict is the one LoadGen wrote in its own detail log, which is kept beside results.json.
            detail = out / load["logs"] / run["log"] / "mlperf_log_detail.txt"
            assert f'"result_validity", "value": "{"VALID" if run["valid"] else "INVALID"}"' in detail.read_text()
            assert run["achieved_qps"] > 0 and run["settings"]["min_duration_ms"] == 200
        assert all(r["valid"] for r in load["runs"] if r["scenario"] != "server"), load["runs"]
        assert load["capacity"]["latency_bound_ms"] == 20 and len(load["capacity"]["trials"]) == 2
        assert load["capacity"]["qps"] and load["capacity"]["qps"] > 0
        assert load["mlperf_duration"] is False and "not MLPerf-valid" in load["note"]
        assert any(s["stage"] == "loadgen" and s["ok"] for s in cell["stages"])
    assert "under load (MLPerf LoadGen)" in done.stdout and "capacity" in done.stdout
    html = (out / "matrix.html").read_text()
    assert 'id="load-sec"' in html and "p99 latency against QPS per route of mlp_tabular" in html
    page = (out / "models" / "mlp_tabular.md").read_text()
    assert "### Under load (MLPerf LoadGen)" in page and "| server |" in page
    assert "Under load (MLPerf LoadGen)" in (out / "models" / "mlp_tabular.html").read_text()


def test_a_finished_run_is_load_tested_again_in_a_run_of_its_own(load_run, tmp_path):
    out, _ = load_run
    again = tmp_path / "again"
    done = run_cli("load", str(out), "--routes", "torch/onnx/ort", "--scenario", "server", "--qps", "200", *SHORT,
                   "--out", str(again))
    assert done.returncode == 0, done.stderr[-3000:]
    cells = json.loads((again / "results.json").read_text())["cells"]
    assert [c["route"] for c in cells] == ["torch/onnx/ort"] and cells[0]["size"] == "tiny"  # the run's own plan
    (run,) = cells[0]["load"]["runs"]
    assert run["scenario"] == "server" and run["target_qps"] == 200 and run["target_from"] == "--qps"
    before = json.loads((out / "results.json").read_text())
    assert all(len(c["load"]["runs"]) == 4 for c in before["cells"])  # the first run's folder is untouched


@pytest.mark.parametrize("args, needle", [
    (("no_such_model_or_run",), "not a zoo model, a model file or a run"),
    (("mlp_tabular", "--scenario", "burst"), "--scenario 'burst'"),
    (("mlp_tabular", "--duration", "-1"), "--duration -1"),
    (("mlp_tabular", "--routes", "torch/onnx/nope"), "unknown route"),
])
def test_bad_load_requests_are_one_line_errors_before_any_work(args, needle, tmp_path):
    done = run_cli("load", *args, "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and needle in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()


def test_a_run_without_passing_cells_is_refused(tmp_path):
    out = tmp_path / "tensorrt"
    done = run_cli("matrix", "--models", "mlp_tabular", "--routes", "torch/onnx/tensorrt", *FAST, "--out", str(out))
    assert done.returncode in (0, 1), done.stderr[-2000:]
    refused = run_cli("load", str(out), "--out", str(tmp_path / "o"))
    assert refused.returncode == 2 and "no passing cell" in refused.stderr and "Traceback" not in refused.stderr
