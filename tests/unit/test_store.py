"""The SQLite run store: real files, real results.json documents checked against the shipped schema."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from convcheck.errors import ConvcheckError
from convcheck.results import new_run, schema
from convcheck.store import Store, store_path


def make_run(run_id: str, started: str = "2026-11-25T10:00:00+00:00") -> dict[str, Any]:
    """A results.json run object as run_cells starts it (real host and package facts)."""
    run = new_run(run_id, {"models": ["mlp_tabular"], "routes": ["torch/onnx/ort"], "size": "tiny",
                           "samples": 4, "threads": None}, ["onnxruntime"])["run"]
    run["started"] = started
    return run


def make_cell(model: str = "mlp_tabular", route: str = "torch/onnx/ort", device: str = "cpu",
              precision: str = "fp32", status: str = "pass", *, max_abs: float = 2e-6, p50: float = 10.0,
              cv: float = 0.02, noisy: bool = False, message: str | None = None) -> dict[str, Any]:
    """A cell with every field the schema requires, shaped like the pipeline's."""
    ran = status in ("pass", "mismatch")
    error = None if status == "pass" else {"kind": status, "message": message or f"{status} in a test",
                                           "stage": "compare" if ran else "convert:onnx", "op": None}
    parity = {
        "ok": status == "pass", "samples": 4, "worst_sample": 0,
        "tolerance": {"atol": 1e-4, "rtol": 1e-3, "check": "elementwise", "min_snr_db": None, "profile": precision},
        "max_abs": max_abs, "max_rel": max_abs * 10, "mean_abs": max_abs / 5, "rms": max_abs / 4,
        "cosine": 0.9999999, "snr_db": 95.0, "psnr_db": 110.0, "top1_agreement": 1.0, "top5_agreement": None,
        "noise_floor": {"reference": "float64", "max_abs": 3e-7, "per_output": {}},
        "min_passing": {"atol": max_abs, "rtol": 1e-3, "snr_db": 95.0},
        "per_output": {"logits": {"shape": [32, 4], "dtype": "float32", "ok": status == "pass",
                                  "max_abs": max_abs}},
    } if ran else None
    latency = {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.3, "mean": p50 * 1.02, "stdev": p50 * cv,
               "n": 200, "batch": 32, "cv": cv, "noisy": noisy, "threads": 2} if ran else None
    return {
        "model": model, "size": "tiny", "route": route, "source": route.split("/")[0],
        "steps": route.split("/")[1:-1], "converters": [], "runtime": route.split("/")[-1], "device": device,
        "precision": precision, "status": status, "error": error, "parity": parity, "latency_ms": latency,
        "timings_s": {"reference": 0.1, "convert": 0.5 if ran else None, "load": 0.05 if ran else None,
                      "first_inference": 0.01 if ran else None},
        "artifact_bytes": 123_456 if ran else None, "artifacts": [], "stages": [], "runtime_settings": None,
        "memory_mb": None, "warnings": [], "localization": None, "log": [],
    }


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(document)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "store.sqlite") as s:
        yield s


def test_default_path_is_under_convcheck_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCHECK_HOME", str(tmp_path / "home"))
    assert store_path() == tmp_path / "home" / "store.sqlite"
    with Store() as s:  # creates the folder and the schema
        assert s.path == store_path() and s.runs() == []
    with sqlite3.connect(store_path()) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_upsert_resume_document_and_runs(store):
    run = make_run("20261125-100000-aaaa")
    store.begin_run(run)
    a = make_cell("mlp_tabular")
    b = make_cell("resnet50", status="mismatch", max_abs=3e-2, message="logits: max_abs 0.03 exceeds atol")
    c = make_cell("bert_tiny", route="torch/onnx/openvino", status="convert_error")
    for cell in (a, b, c):
        store.record_cell(run["id"], cell)
    # Re-record the first cell with new content: still three cells, the new content, the same position.
    a2 = make_cell("mlp_tabular", p50=12.5)
    store.record_cell(run["id"], a2)
    store.record_cell(run["id"], a2)

    done = store.finished_cells(run["id"])
    assert set(done) == {("mlp_tabular", "torch/onnx/ort", "cpu", "fp32"),
                         ("resnet50", "torch/onnx/ort", "cpu", "fp32"),
                         ("bert_tiny", "torch/onnx/openvino", "cpu", "fp32")}
    assert done[("mlp_tabular", "torch/onnx/ort", "cpu", "fp32")]["latency_ms"]["p50"] == 12.5

    # A killed run: finished is null, and the document is still a valid results.json.
    doc = store.document(run["id"])
    validate(doc)
    assert doc["run"] == run  # every field of the run object survives the round trip
    assert [c["model"] for c in doc["cells"]] == ["mlp_tabular", "resnet50", "bert_tiny"]
    assert doc["cells"][0] == a2 and doc["cells"][1] == b
    assert doc["summary"] == {"pass": 1, "mismatch": 1, "convert_error": 1}
    assert list(doc) == ["schema_version", "run", "summary", "cells"]
    [listed] = store.runs()
    assert listed["finished"] is None and listed["cells"] == 3
    assert listed["summary"] == {"pass": 1, "mismatch": 1, "convert_error": 1}
    assert listed["settings"]["models"] == ["mlp_tabular"]

    # Resume: beginning the same id again keeps the cells (and the first start), updates the run row.
    resumed = dict(run, started="2026-11-25T11:00:00+00:00", settings={**run["settings"], "threads": 4})
    store.begin_run(resumed)
    assert len(store.finished_cells(run["id"])) == 3
    store.finish_run(run["id"], "2026-11-25T11:05:00+00:00")
    doc = store.document(run["id"])
    validate(doc)
    assert doc["run"]["started"] == run["started"] and doc["run"]["settings"]["threads"] == 4
    assert doc["run"]["finished"] == "2026-11-25T11:05:00+00:00"
    assert store.runs()[0]["finished"] == "2026-11-25T11:05:00+00:00"


def test_a_cell_of_an_unknown_run_is_refused(store):
    with pytest.raises(ValueError, match="begin_run"):
        store.record_cell("nope", make_cell())
    with pytest.raises(ValueError, match="not in the store"):
        store.finish_run("nope", "2026-11-25T11:05:00+00:00")
    with pytest.raises(ConvcheckError, match="not in the store"):
        store.document("nope")


def test_runs_newest_first_and_resolve(store):
    with pytest.raises(ConvcheckError, match="no runs"):
        store.resolve("latest")
    for run_id, started in (("20261125-100000-aaaa", "2026-11-25T09:00:00+00:00"),
                            ("20261125-110000-bbbb", "2026-11-25T10:00:00+00:00"),
                            ("20261125-110000-cccc", "2026-11-25T10:00:30+00:00")):
        store.begin_run(make_run(run_id, started))
    assert [r["id"] for r in store.runs()] == ["20261125-110000-cccc", "20261125-110000-bbbb",
                                               "20261125-100000-aaaa"]
    assert store.resolve("latest") == "20261125-110000-cccc"
    assert store.resolve("previous") == "20261125-110000-bbbb"
    assert store.resolve("20261125-10") == "20261125-100000-aaaa"
    assert store.resolve("20261125-110000-bbbb") == "20261125-110000-bbbb"
    for ref, words in (("20261125-11", "ambiguous"), ("zzz", "unknown run 'zzz'"), ("", "unknown run")):
        with pytest.raises(ConvcheckError) as err:
            store.resolve(ref)
        message = str(err.value)
        assert words in message and "\n" not in message
        assert "20261125-110000-cccc" in message  # it names the choices
    assert "latest" in message and "previous" in message


def _writer(path: str, run_id: str, barrier: Any, results: Any) -> None:
    """One of two processes writing the same store at once: open, begin a run, record 50 cells."""
    try:
        barrier.wait(timeout=60)
        with Store(Path(path)) as store:  # both open (and maybe create) the file at the same instant
            store.begin_run(make_run(run_id))
            for i in range(50):
                store.record_cell(run_id, make_cell(f"model_{i:02d}", p50=1.0 + i))
        results.put((run_id, "ok"))
    except BaseException as exc:  # reported to the parent, which fails the test with it
        results.put((run_id, f"{type(exc).__name__}: {exc}"))


def test_two_processes_write_one_store_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    path = tmp_path / "shared" / "store.sqlite"
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), run_id, barrier, results))
             for run_id in ("20261125-120000-1111", "20261125-120000-2222")]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert outcomes == {"20261125-120000-1111": "ok", "20261125-120000-2222": "ok"}
    assert [p.exitcode for p in procs] == [0, 0]
    with Store(path) as store:
        assert sorted(r["cells"] for r in store.runs()) == [50, 50]
        for run_id in outcomes:
            doc = store.document(run_id)
            validate(doc)
            assert [c["model"] for c in doc["cells"]] == [f"model_{i:02d}" for i in range(50)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 100


def test_a_store_from_a_newer_convcheck_is_refused(tmp_path):
    path = tmp_path / "store.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ConvcheckError, match="newer convcheck"):
        Store(path)


def test_a_pass_without_latency_is_valid_only_when_it_says_why(store):
    """Core ML cells on the MIL reference executor pass without latency, and say why; any other pass
    without latency is an invalid document."""
    run = make_run("20261202-100000-aaaa")
    store.begin_run(run)
    silent = make_cell(route="torch/coreml")
    silent["latency_ms"] = None
    store.record_cell(run["id"], silent)
    with pytest.raises(jsonschema.ValidationError, match="latency_ms|anyOf|not valid"):
        validate(store.document(run["id"]))
    explained = dict(silent, warnings=["no latency: the cell ran on convcheck's MIL reference executor, not Core ML"])
    store.record_cell(run["id"], explained)
    validate(store.document(run["id"]))
