"""Kill a run with SIGKILL half-way and resume it; two runs at once on one cache and store; a planted
regression shown by `convcheck diff`. Real CLI processes, real workers, real exports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.fault, pytest.mark.framework]

ROUTES = "torch/onnx/ort,torch/onnx/openvino,torch/openvino,torch/onnx_legacy/ort,torch/onnx_legacy/openvino"
ARGS = ["--models", "mlp_tabular", "--routes", ROUTES, "--size", "tiny", "--samples", "2", "--bench-seconds",
        "0.3", "--bench-iters", "3"]


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, CONVCHECK_HOME=str(home), COLUMNS="200", PYTHONPATH=str(REPO))


def _matrix(home: Path, out: Path, *extra: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "convcheck", "matrix", *ARGS, "--out", str(out), *extra]
    if wait:
        return subprocess.run(cmd, env=_env(home), capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
    return subprocess.Popen(cmd, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _cells(out: Path) -> list[dict]:
    try:
        return json.loads((out / "results.json").read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.mark.slow
def test_a_run_killed_half_way_resumes_without_redoing_or_duplicating(tmp_path):
    home, out = tmp_path / "home", tmp_path / "run"
    proc = _matrix(home, out, wait=False)
    deadline = time.monotonic() + 300
    while len(_cells(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, mid-cell, no clean-up
    proc.wait()
    before = {c["route"]: c for c in _cells(out)}
    assert 2 <= len(before) < 5, "the kill should land half-way"
    # Every entry a later run could trust is whole (a write cut short stays a `.tmp-` file, never read).
    entries = [p for p in (home / "cache" / "cells").rglob("*.json") if not p.name.startswith(".tmp-")]
    assert len(entries) >= len(before) - 1
    for entry in entries:
        json.loads(entry.read_text())

    # `--resume RUN` alone: the run's own plan (models, routes, size, out folder) comes from the store.
    done = subprocess.run([sys.executable, "-m", "convcheck", "matrix", "--resume", "latest"], env=_env(home),
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _cells(out)
    assert sorted(c["route"] for c in after) == sorted(ROUTES.split(","))  # each cell exactly once
    for cell in after:
        if cell["route"] in before:  # finished before the kill: taken from the store, not recomputed
            assert cell["latency_ms"] == before[cell["route"]]["latency_ms"]
        assert cell["status"] == "pass", cell["error"]
    runs = subprocess.run([sys.executable, "-m", "convcheck", "runs"], env=_env(home), capture_output=True,
                          text=True, timeout=120)
    assert runs.stdout.count("2026") >= 1 and "unfinished" not in runs.stdout


@pytest.mark.slow
def test_two_runs_at_once_on_one_cache_and_store_both_finish_and_agree(tmp_path):
    home = tmp_path / "home"
    first, second = (_matrix(home, tmp_path / name, wait=False) for name in ("a", "b"))
    assert first.wait(timeout=600) == 0 and second.wait(timeout=600) == 0
    a, b = _cells(tmp_path / "a"), _cells(tmp_path / "b")
    assert [(c["route"], c["status"]) for c in a] == [(c["route"], c["status"]) for c in b]
    assert all(c["status"] == "pass" for c in a)
    # a third run is served from the cache both filled: nothing recomputed
    third = _matrix(home, tmp_path / "c")
    assert third.returncode == 0 and all(c.get("cached") for c in _cells(tmp_path / "c"))


def test_diff_shows_a_planted_regression(tmp_path, monkeypatch, fresh_routes):
    from convcheck.engine import run_cells
    from convcheck.plan import plan
    from convcheck.plan import RunSettings
    from convcheck.registry import converters, models
    from convcheck.routes import enumerate_routes, select_routes
    from convcheck.store import Store
    from convcheck.validate.latency import LatencyConfig
    from tests.fakes import planted

    monkeypatch.setenv("CONVCHECK_HOME", str(tmp_path / "home"))
    fast = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)

    def run(run_id: str) -> None:
        cells = plan([models.get("mlp_tabular")], select_routes("torch/onnx/ort,torch/openvino"), ["cpu"], ["fp32"])
        with Store() as store:
            run_cells(cells, RunSettings(tmp_path / run_id, size="tiny", samples=2, latency=fast),
                       tmp_path / run_id, run_id, store=store)

    run("before")

    class ScaledUnderTheSameName(planted.ScaledWeightOnnxFromTorch):
        hop = "onnx"  # the upgrade that broke the exporter: same route, new behaviour

    # Swap the loaded class only: unregistering would move the entry to the end of the registry and
    # change the route graph's order for every later test.
    converters.get("onnx_from_torch")
    monkeypatch.setitem(converters._loaded, "onnx_from_torch", ScaledUnderTheSameName)
    enumerate_routes.cache_clear()
    run("after")
    monkeypatch.undo()
    enumerate_routes.cache_clear()
    assert converters.get("onnx_from_torch").__name__ == "OnnxFromTorch"
    proc = subprocess.run([sys.executable, "-m", "convcheck", "diff", "before", "after"],
                          env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "torch/onnx/ort" in proc.stdout and "mismatch" in proc.stdout
    # The untouched route may at most show latency noise, never a status or parity change.
    assert not [ln for ln in proc.stdout.splitlines() if "torch/openvino" in ln and ("status" in ln or "parity" in ln)]


def _workers_of(home: Path) -> list[int]:
    """Live processes started with this test's CONVCHECK_HOME (the run's workers inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if f"CONVCHECK_HOME={home}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_keeps_what_finished_and_says_how_to_resume(tmp_path):
    home, out = tmp_path / "home", tmp_path / "run"
    cmd = [sys.executable, "-m", "convcheck", "matrix", *ARGS, "--out", str(out)]
    # A shell starts a background job (`make test &`, `nohup`) with SIGINT ignored, and an ignored signal
    # stays ignored across exec: the run would then rightly shrug Ctrl-C off. The run under test is a
    # foreground one, so it starts with SIGINT at its default whatever this pytest process inherited.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(cmd, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 300
    while not _cells(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends the whole foreground group on Ctrl-C
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "--resume" in stderr and "interrupted" in stderr
    document = json.loads((out / "results.json").read_text())  # valid, holding what finished
    kept = document["cells"]
    assert 1 <= len(kept) < 5 and all(c["status"] == "pass" for c in kept)
    assert document["run"]["finished"] is None
    assert not _workers_of(home), "a worker outlived the interrupted run"
    # The same command line with --resume finishes it: every cell once, the kept ones not recomputed.
    done = _matrix(home, out, "--resume", document["run"]["id"])
    assert done.returncode == 0, done.stderr[-2000:]
    after = {c["route"]: c for c in _cells(out)}
    assert sorted(after) == sorted(ROUTES.split(","))
    for cell in kept:
        assert after[cell["route"]]["latency_ms"] == cell["latency_ms"]


@pytest.mark.slow
def test_resume_refuses_a_different_plan(tmp_path):
    home, out = tmp_path / "home", tmp_path / "run"
    assert _matrix(home, out).returncode == 0
    other = subprocess.run([sys.executable, "-m", "convcheck", "matrix", "--resume", "latest", "--models",
                            "cnn_small"], env=_env(home), capture_output=True, text=True, timeout=120)
    assert other.returncode == 2
    assert "--models" in other.stderr and "Traceback" not in other.stderr


@pytest.mark.slow
def test_a_check_beside_a_matrix_on_one_cache_and_store(tmp_path):
    """Two different commands writing the same store and cache at once: both finish, nothing corrupt."""
    import sqlite3

    import torch

    from convcheck.zoo.mlp_tabular import build_torch

    home = tmp_path / "home"
    onnx_file = tmp_path / "mine" / "model.onnx"
    onnx_file.parent.mkdir()
    torch.onnx.export(build_torch("tiny").eval(), (torch.randn(2, 30),), str(onnx_file), input_names=["features"],
                      output_names=["logits"], dynamic_axes={"features": {0: "batch"}}, dynamo=False)
    matrix = _matrix(home, tmp_path / "m", wait=False)
    check = subprocess.Popen([sys.executable, "-m", "convcheck", "check", str(onnx_file), "--routes",
                              "onnx/ort,onnx/openvino", "--samples", "2", "--bench-seconds", "0.3", "--out",
                              str(tmp_path / "c")], env=_env(home), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert check.wait(timeout=600) == 0, check.stderr.read()[-2000:]
    assert matrix.wait(timeout=600) == 0
    assert [c["status"] for c in _cells(tmp_path / "c")] == ["pass", "pass"]
    assert all(c["status"] == "pass" for c in _cells(tmp_path / "m")) and len(_cells(tmp_path / "m")) == 5
    with sqlite3.connect(home / "store.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM runs WHERE finished IS NOT NULL").fetchone()[0] == 2
    for entry in (home / "cache" / "cells").rglob("*.json"):
        json.loads(entry.read_text())


@pytest.mark.slow
def test_an_artifact_over_the_disk_bound_is_refused_and_deleted(tmp_path):
    home, out = tmp_path / "home", tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "convcheck", "matrix", "--models", "mlp_tabular", "--routes",
                           "torch/onnx/ort", "--samples", "1", "--bench-seconds", "0.1", "--max-artifact-mb", "0.1",
                           "--out", str(out)], env=_env(home), capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    cell, = _cells(out)
    assert cell["status"] == "convert_error" and "--max-artifact-mb" in cell["error"]["message"]
    assert not list((out / "artifacts").rglob("*.onnx"))  # deleted, and not cached either
