"""`convcheck check` on broken and hostile files (the corpus of tests/data/make_bad_corpus.py, built once
per module): a clean one-line refusal (exit 2) or an honest status per cell (exit 0/1), never a
traceback; no pickle payload runs; nothing outside the model's folder is opened; the run store and
the cell cache stay readable afterwards.

Where strace works, each case with sentinels runs under `strace -f -e trace=open,openat` and the test
asserts no process opened them; elsewhere the refusal itself is the proof (each sentinel holds a
valid weight blob, so a run that read it would go on).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.framework, pytest.mark.slow]

_spec = importlib.util.spec_from_file_location("make_bad_corpus", REPO / "tests" / "data" / "make_bad_corpus.py")
corpus_module = importlib.util.module_from_spec(_spec)
sys.modules["make_bad_corpus"] = corpus_module  # dataclasses look the module up while loading
_spec.loader.exec_module(corpus_module)  # type: ignore[union-attr]

FAST = ("--samples", "1", "--bench-seconds", "0.05", "--bench-iters", "3")
RAN: list[str] = []  # the cases this module ran (the store/cache test checks after them)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bad") / "corpus"
    return {case.name: case for case in corpus_module.build_corpus(root)}


@functools.lru_cache(maxsize=1)
def _strace() -> str | None:
    found = shutil.which("strace")
    if not found:
        return None
    try:
        ok = subprocess.run([found, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if ok.returncode == 0 else None  # ptrace may be forbidden in a container


def _run(case, args: list[str], trace: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The CLI (as run_cli runs it); under strace when the case has sentinels: the lines that opened one."""
    strace = _strace() if case.sentinels else None
    if strace is None:
        return run_cli(*args, timeout=300), []
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")  # as run_cli
    proc = subprocess.run([strace, "-f", "-qq", "-e", "trace=open,openat", "-o", str(trace), sys.executable, "-m",
                           "convcheck", *args], capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL)
    opened = []
    for line in trace.read_text(errors="replace").splitlines():
        m = re.search(r'open(?:at)?\((?:[^,]*, )?"([^"]*)".*\) = (-?\d+)', line)
        if m and int(m.group(2)) >= 0 and any(m.group(1).endswith("/" + s.name) for s in case.sentinels):
            opened.append(line.strip())
    return proc, opened


def _refusal_problems(case, proc: subprocess.CompletedProcess, out: Path) -> list[str]:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    problems = []
    if proc.returncode != 2:
        problems.append(f"exit {proc.returncode}, not 2")
    if len(lines) != 1:
        problems.append(f"stderr has {len(lines)} non-empty lines, not 1")
    first = lines[0] if lines else ""
    refusal = next((ln for ln in lines if ln.startswith("error:")), "")
    if not first.startswith("error:"):
        problems.append("stderr does not start with 'error:'")
    if refusal and case.named not in refusal:
        problems.append(f"the error does not name {case.named}")
    if refusal and case.mentions and not re.search(case.mentions, refusal, re.IGNORECASE):
        problems.append(f"the error does not say what is wrong (/{case.mentions}/)")
    if out.exists():
        problems.append("--out was created")
    return problems


def _status_problems(case, proc: subprocess.CompletedProcess, out: Path) -> list[str]:
    from convcheck.results import schema
    from convcheck.types import Status

    if proc.returncode not in (0, 1):
        return [f"exit {proc.returncode}, not 0/1"]
    results = out / "results.json"
    if not results.is_file():
        return ["no results.json"]
    document = json.loads(results.read_text())
    problems = []
    try:
        import jsonschema

        jsonschema.validate(document, schema())
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 - jsonschema.ValidationError, reported as a problem
        problems.append(f"results.json does not match its schema: {str(exc).splitlines()[0]}")
    known = {s.value for s in Status}
    cells = document.get("cells", [])
    if not cells:
        problems.append("no cells")
    for cell in cells:
        if cell.get("status") not in known:
            problems.append(f"cell {cell.get('route')}: unknown status {cell.get('status')!r}")
        if cell.get("route") != case.route:
            problems.append(f"cell {cell.get('route')}: not the route asked for ({case.route})")
    return problems


def _describe(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return (f"exit {proc.returncode}; stderr {len(lines)} lines; first: {lines[0][:300] if lines else ''!r}; "
            f"last: {lines[-1][:300] if lines else ''!r}")


@pytest.mark.slow
@pytest.mark.parametrize("name", corpus_module.CASE_NAMES)
def test_bad_input_is_refused_or_gets_an_honest_status(corpus, name, tmp_path):
    case = corpus[name]
    out = tmp_path / "out"
    args = ["check", str(case.path), *case.args, "--out", str(out), *FAST, "--routes", case.route]
    proc, opened = _run(case, args, tmp_path / "strace.log")
    RAN.append(name)

    problems = []
    if case.marker is not None and case.marker.exists():
        problems.append(f"the payload ran: {case.marker} exists")
    if opened:
        problems.append(f"opened a file outside the model's folder: {opened[0]}")
    if "Traceback" in proc.stderr + proc.stdout:
        problems.append("a traceback was printed")
    if case.expect == "refused" or (case.expect == "either" and proc.returncode == 2):
        problems += _refusal_problems(case, proc, out)
    else:
        problems += _status_problems(case, proc, out)
    assert not problems, f"{name} ({case.why}): {'; '.join(problems)}\n{_describe(proc)}"


def test_no_payload_ran(corpus):
    """After every case: no marker anywhere in the corpus's markers folder."""
    if not RAN:
        pytest.skip("run with the corpus cases: this checks what they left behind")
    markers = next(iter(corpus.values())).path.parents[1] / "markers"
    assert not any(markers.iterdir()), f"a payload ran: {sorted(p.name for p in markers.iterdir())}"


def test_the_store_and_cache_are_unharmed():
    """After every case: the SQLite store passes its integrity check and still lists runs, and every
    cached cell is whole JSON."""
    if not RAN:
        pytest.skip("run with the corpus cases: this checks what they left behind")
    home = Path(os.environ["CONVCHECK_HOME"])
    store = home / "store.sqlite"
    if store.exists():
        db = sqlite3.connect(store)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            db.close()
        proc = run_cli("runs")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    cells = home / "cache" / "cells"
    for entry in (p for p in cells.rglob("*") if p.is_file()) if cells.exists() else ():
        try:
            json.loads(entry.read_text())
        except ValueError as exc:
            pytest.fail(f"cache entry {entry} is not JSON: {exc}")
