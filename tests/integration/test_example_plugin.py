"""The worked example plugin (tests/plugin_example, walked through in docs/extending.md) installed as
a real distribution and used through its entry points only: a new format, hop, runtime and zoo model
that convcheck lists, runs, scores and holds to the same route contract as its own routes.

The plugin is pip-installed (no dependencies, no build isolation: offline) into a folder of its own,
which the convcheck processes below find on PYTHONPATH; nothing is installed into the test venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.framework, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests" / "plugin_example"
PLUGIN_ROUTE = "torch/onnx/onnx_optimized/ort_offline"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(PLUGIN, source)  # the build writes build/ and *.egg-info: keep them out of the tree
    site = work / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "--target", str(site), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (next(site.glob("convcheck_example_plugin-*.dist-info")) / "entry_points.txt").exists()
    return site


def _run(site: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def test_the_plugin_registers_its_format_hop_runtime_and_model(plugin_site):
    convcheck = str(Path(sys.executable).with_name("convcheck"))
    routes = json.loads(_run(plugin_site, convcheck, "routes", "--json").stdout)
    ids = {r["route"] for r in routes}
    assert PLUGIN_ROUTE in ids and "onnx/onnx_optimized/ort_offline" in ids
    models = _run(plugin_site, convcheck, "models", "--json")
    assert "example_mlp" in models.stdout
    # Without the plugin on the path, none of it exists (nothing leaked into the test environment).
    assert PLUGIN_ROUTE not in _run(Path("/nonexistent"), convcheck, "routes", "--json").stdout


def test_the_plugin_route_runs_with_real_parity_and_is_scored_on_its_own_facts(plugin_site, tmp_path):
    convcheck = str(Path(sys.executable).with_name("convcheck"))
    out = tmp_path / "run"
    proc = _run(plugin_site, convcheck, "matrix", "--models", "example_mlp", "--routes", PLUGIN_ROUTE,
                "--size", "tiny", "--samples", "2", "--bench-seconds", "0", "--bench-iters", "3", "--no-cache",
                "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (cell,) = json.loads((out / "results.json").read_text())["cells"]
    assert cell["status"] == "pass", cell["error"]
    assert cell["parity"]["samples"] == 2 and cell["parity"]["max_abs"] < 1e-4
    assert [a["format"] for a in cell["artifacts"]] == ["onnx", "onnx_optimized"]
    assert "onnxruntime" in cell["packages"]
    evidence = " ".join(f["evidence"] for f in cell["lockin"]["factors"].values())
    assert "no data" not in evidence and "ONNX Runtime offline optimisation" in evidence


def test_the_plugin_passes_the_route_contract(plugin_site):
    """The same contract tests as the built-in routes, run with the plugin installed: its metadata
    (lock-in facts, a deployment profile, documented requirements) and a real conversion on cnn_small."""
    selected = [f"tests/contract/test_route_metadata.py::{test}[{route}]"
                for test in ("test_route_has_lockin_data", "test_route_requirements_are_documented",
                             "test_route_metadata_is_well_formed", "test_route_has_a_deploy_profile")
                for route in (PLUGIN_ROUTE, "onnx/onnx_optimized/ort_offline")]
    selected.append(f"tests/contract/test_routes_contract.py::test_route_passes_here_or_says_why_not[{PLUGIN_ROUTE}]")
    proc = _run(plugin_site, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selected)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(selected)} passed" in proc.stdout
