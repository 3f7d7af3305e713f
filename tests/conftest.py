from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real `convcheck` entry point in a subprocess, as a user would."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "convcheck", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def fresh_routes():
    """Clear the route-graph cache around a test that registers extra converters or runtimes."""
    from convcheck.routes import enumerate_routes

    enumerate_routes.cache_clear()
    yield
    enumerate_routes.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def private_convcheck_home(tmp_path_factory):
    """Every test, and every CLI it starts, keeps its cache and run store in a folder of this session:
    a test must compute what it checks, not read a cell cached by an earlier test run."""
    home = tmp_path_factory.mktemp("convcheck-home")
    saved = os.environ.get("CONVCHECK_HOME")
    os.environ["CONVCHECK_HOME"] = str(home)
    yield home
    if saved is None:
        os.environ.pop("CONVCHECK_HOME", None)
    else:
        os.environ["CONVCHECK_HOME"] = saved
