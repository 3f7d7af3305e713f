"""Toolchain environments for real: made with uv from this machine's indexes, raced, broken, reused, and
the cells in them judged like any other (convcheck.envs, convcheck.executors.env_worker).

The environments of the upgrade check live in the shared folder (tests/conftest.py), so a CI run makes
each once; the creation tests use folders of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convcheck.environment import package_version
from convcheck.envs import MANIFEST, clear, ensure, list_envs
from convcheck.executors import Limits
from convcheck.executors.local import LocalExecutor
from convcheck.engine import run_cells
from convcheck.plan import RunSettings, plan
from convcheck.registry import converters, models
from convcheck.routes import select_routes
from convcheck.toolchains import EnvSpec
from convcheck.validate.latency import LatencyConfig
from tests.conftest import run_cli
from tests.fakes import planted

pytestmark = [pytest.mark.slow]

FAST = LatencyConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=3, min_seconds=0.0)
#: An onnxruntime release PyPI has for this Python, older than the one `make setup` installs.
OLDER_ORT = "1.31.0"

_RACE = """
import json
from convcheck.envs import ensure
from convcheck.toolchains import EnvSpec
env, created = ensure(EnvSpec("race", ("six",), ("six",)))
print(json.dumps({"created": created, "digest": env.digest, "path": str(env.path)}))
"""


def test_two_runs_that_need_the_same_new_environment_create_it_once(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "envs"
    monkeypatch.setenv("CONVCHECK_ENVS", str(folder))
    env = dict(os.environ, CONVCHECK_ENVS=str(folder))
    racers = [subprocess.Popen([sys.executable, "-c", _RACE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL) for _ in range(2)]
    answers = []
    for racer in racers:
        out, err = racer.communicate(timeout=900)
        assert racer.returncode == 0, err[-2000:]
        answers.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(a["created"] for a in answers) == [False, True]  # one made it, the other waited and reused it
    assert len({a["digest"] for a in answers}) == 1
    path = Path(answers[0]["path"])
    check = subprocess.run([str(path / "bin" / "python"), "-c", "import six, convcheck.executors.env_worker"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    (entry,) = list_envs()
    assert entry["complete"] and entry["name"] == "race" and entry["packages"]["six"]

    # A run that died mid-creation leaves no manifest: the folder is not trusted, it is made again.
    (path / MANIFEST).unlink()
    assert list_envs()[0]["complete"] is False
    again, created = ensure(EnvSpec("race", ("six",), ("six",)))
    assert created and again.path == path and (path / MANIFEST).exists()
    removed, freed = clear()
    assert removed == 1 and freed > 0
    assert not [p for p in folder.iterdir() if p.is_dir()]


@pytest.mark.framework
def test_a_requirement_uv_cannot_resolve_is_missing_dep_with_its_message(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "envs"
    monkeypatch.setenv("CONVCHECK_ENVS", str(folder))
    cells = plan([models.get("mlp_tabular")], select_routes("torch/onnx/ort,torch/openvino"), ["cpu"], ["fp32"])
    settings = RunSettings(tmp_path, size="tiny", samples=2, latency=FAST, toolchains=("onnxruntime==0.0.1",))
    heard: list[str] = []
    results = run_cells(cells, settings, tmp_path, "broken", executor=LocalExecutor(settings, jobs=1),
                        on_env=heard.append)
    ort, openvino = results["cells"]
    assert ort["status"] == "missing_dep", ort["error"]
    message = ort["error"]["message"]
    assert "onnxruntime==0.0.1" in message and "uv failed" in message and "unsatisfiable" in message, message
    assert openvino["status"] == "pass"  # the override does not touch it
    assert any("could not be created" in line for line in heard)
    assert not [p for p in folder.iterdir() if p.is_dir()]  # no half environment left for a later run


@pytest.mark.framework
def test_an_upgrade_that_needs_other_versions_runs_and_says_what_else_moved(tmp_path: Path) -> None:
    """openvino 2025.4 needs numpy<2.3: the environment cannot keep this install's numpy, so uv picks one,
    and the cell says which versions moved beside the one asked for (a controlled experiment it is not)."""
    cells = plan([models.get("mlp_tabular")], select_routes("torch/openvino"), ["cpu"], ["fp32"])
    settings = RunSettings(tmp_path, size="tiny", samples=2, latency=FAST, toolchains=("openvino==2025.4.0",))
    (cell,) = run_cells(cells, settings, tmp_path, "relaxed", executor=LocalExecutor(settings, jobs=1))["cells"]
    assert cell["status"] == "pass", cell["error"]
    assert cell["runtime_settings"]["openvino"].startswith("2025.4.0")
    assert "numpy" in cell["toolchain"]["relaxed_because"]
    (note,) = [w for w in cell["warnings"] if "could not keep this install's versions" in w]
    assert f"numpy {package_version('numpy')} -> {cell['toolchain']['packages']['numpy']}" in note
    assert "openvino 2026" not in note  # the version asked for is not "moved"


@pytest.fixture
def planted_routes(fresh_routes):
    for name, cls in (("segv", planted.SegfaultingExporter), ("hang", planted.HangingExporter)):
        converters.register_object(f"_planted_{name}", cls)
    yield
    for name in ("segv", "hang"):
        converters.unregister(f"_planted_{name}")


@pytest.mark.framework
@pytest.mark.fault
def test_cells_in_an_environment_are_judged_and_its_dead_workers_cost_one_cell(planted_routes, tmp_path) -> None:
    """The upgrade-check environment (onnxruntime OLDER_ORT): a real cell passes with that version, a worker
    that segfaults or hangs there costs its cell, as in the main interpreter."""
    routes = "torch/onnx/ort,torch/onnx_segv/ort,torch/onnx_hang/ort,torch/openvino"
    cells = plan([models.get("mlp_tabular")], select_routes(routes), ["cpu"], ["fp32"])
    settings = RunSettings(tmp_path, size="tiny", samples=2, latency=FAST, toolchains=(f"onnxruntime=={OLDER_ORT}",))
    # 60 s: the real cells' workers start a fresh interpreter in the environment and import torch there;
    # 25 s timed the real torch/onnx/ort cell out on a loaded CI machine. The hang costs the full bound.
    executor = LocalExecutor(settings, jobs=1, limits=Limits(timeout_s=60, memory_mb=4096))
    results = run_cells(cells, settings, tmp_path, "env-faults", executor=executor)
    by_route = {c["route"]: c for c in results["cells"]}
    ort = by_route["torch/onnx/ort"]
    assert ort["status"] == "pass", ort["error"]
    assert ort["runtime_settings"]["onnxruntime"] == OLDER_ORT  # measured by that version, not this install's
    assert ort["toolchain"]["packages"]["onnxruntime"] == OLDER_ORT
    assert ort["toolchain"]["name"] == f"onnxruntime=={OLDER_ORT}"
    assert by_route["torch/onnx_segv/ort"]["status"] == "crashed"
    assert "SIGSEGV" in by_route["torch/onnx_segv/ort"]["error"]["message"]
    assert by_route["torch/onnx_hang/ort"]["status"] == "timeout"
    assert by_route["torch/openvino"]["status"] == "pass" and "toolchain" not in by_route["torch/openvino"]
    assert not executor.workers


@pytest.mark.framework
def test_an_onnxruntime_upgrade_check_and_its_diff_from_the_command_line(tmp_path: Path) -> None:
    base = ["matrix", "--models", "mlp_tabular", "--routes", "torch/onnx/ort,torch/openvino", "--size", "tiny",
            "--samples", "2", "--bench-iters", "5", "--bench-seconds", "0"]
    first = run_cli(*base, "--out", str(tmp_path / "base"), cwd=tmp_path, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_cli(*base, "--toolchain", f"onnxruntime=={OLDER_ORT}", "--out", str(tmp_path / "upgrade"),
                     cwd=tmp_path, timeout=900)
    assert second.returncode == 0, second.stdout + second.stderr
    doc = json.loads((tmp_path / "upgrade" / "results.json").read_text())
    assert doc["run"]["settings"]["toolchains"] == [f"onnxruntime=={OLDER_ORT}"]
    ort = next(c for c in doc["cells"] if c["route"] == "torch/onnx/ort")
    assert ort["toolchain"]["packages"]["onnxruntime"] == OLDER_ORT and ort["status"] == "pass"
    diff = run_cli("diff", "previous", "latest", cwd=tmp_path)
    assert diff.returncode in (0, 1), diff.stderr
    installed = json.loads((tmp_path / "base" / "results.json").read_text())["run"]["packages"]["onnxruntime"]
    assert f"onnxruntime {installed} -> {OLDER_ORT} in 1 cell" in diff.stdout, diff.stdout
    # The per-model report names the version the cell ran with.
    page = (tmp_path / "upgrade" / "models" / "mlp_tabular.md").read_text()
    assert OLDER_ORT in page
