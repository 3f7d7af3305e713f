from __future__ import annotations

import ast
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
    from convcheck.envs import envs_dir

    home = tmp_path_factory.mktemp("convcheck-home")
    saved = {k: os.environ.get(k) for k in ("CONVCHECK_HOME", "CONVCHECK_ENVS")}
    # Toolchain environments are installs, not results: the tests share the user's (`make matrix` made them),
    # so a session pays for each at most once. Tests of environment creation use a folder of their own.
    os.environ["CONVCHECK_ENVS"] = str(envs_dir())
    os.environ["CONVCHECK_HOME"] = str(home)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value



# --- Test tiers -------------------------------------------------------------------------------------
# `make test-fast` sets CONVCHECK_TEST_TIER=fast and selects FAST_TIER: the pure-Python logic tests.
# In that tier a test that imports an ML framework (itself, through convcheck, or in a Python subprocess
# it starts) fails, naming the module: mark it `framework` (or `slow`/`fault`) and the tier stays fast.
FAST_TIER = "not framework and not fault and not slow"
TIER_MARKERS = ("framework", "fault", "slow")
HEAVY_FRAMEWORKS = ("torch", "tensorflow", "keras", "tf_keras", "onnxruntime", "openvino", "tvm", "ai_edge_litert",
                    "tflite_runtime", "coremltools", "ray", "jax", "tensorrt", "litert_torch", "tf2onnx")
IN_FAST_TIER = os.environ.get("CONVCHECK_TEST_TIER") == "fast"

# Put first on a subprocess's sys.path (PYTHONPATH) in the fast tier: when a Python subprocess exits, it logs
# the frameworks it imported, with the test that started it (os._exit too: a forked worker never runs atexit).
_SUBPROCESS_GUARD = r"""
import atexit, os, sys

def _log_frameworks(_heavy={heavy!r}):
    log = os.environ.get("CONVCHECK_TEST_FRAMEWORK_LOG")
    found = [m for m in _heavy if m in sys.modules]
    if log and found:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        try:
            with open(log, "a") as f:
                f.writelines(test + "\t" + m + "\t" + " ".join(sys.argv[:3]) + "\n" for m in found)
        except OSError:
            pass

def _exit_logged(code, _exit=os._exit):
    _log_frameworks()
    _exit(code)

atexit.register(_log_frameworks)
os._exit = _exit_logged
"""


def _frameworks_loaded() -> set[str]:
    return {m for m in HEAVY_FRAMEWORKS if m in sys.modules}


def _module_tier_markers(path: Path) -> set[str]:
    """The tier markers a test file's module-level `pytestmark` names, read without importing the file."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Attribute) and sub.attr in TIER_MARKERS:
                    found.add(sub.attr)
    return found


def pytest_configure(config):
    if not IN_FAST_TIER:
        return
    if not config.option.markexpr:
        config.option.markexpr = FAST_TIER
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="convcheck-tier-guard-"))
    (folder / "sitecustomize.py").write_text(_SUBPROCESS_GUARD.format(heavy=tuple(HEAVY_FRAMEWORKS)))
    config._framework_guard = folder
    os.environ["CONVCHECK_TEST_FRAMEWORK_LOG"] = str(folder / "imports.log")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)


def pytest_unconfigure(config):
    folder = getattr(config, "_framework_guard", None)
    if folder is not None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def pytest_ignore_collect(collection_path, config):
    # The fast tier does not even import a module that its `pytestmark` puts in another tier: importing
    # it is what costs (TensorFlow at module level is seconds), and it would load a framework before
    # the first test, blinding the guard below.
    if IN_FAST_TIER and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        if _module_tier_markers(collection_path):
            return True
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    if not (IN_FAST_TIER and isinstance(collector, pytest.Module)):
        yield
        return
    before = _frameworks_loaded()
    outcome = yield
    new = _frameworks_loaded() - before
    report = outcome.get_result()
    if new and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = (f"{collector.nodeid} imports {', '.join(sorted(new))} at module level, in the fast tier: "
                           "give the module `pytestmark = pytest.mark.framework`")


@pytest.hookimpl(tryfirst=True)  # before the fixtures are set up: they import too
def pytest_runtest_setup(item):
    if IN_FAST_TIER:
        item._frameworks_at_setup = _frameworks_loaded()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if not IN_FAST_TIER or call.when != "teardown":
        return
    report = outcome.get_result()
    new = _frameworks_loaded() - getattr(item, "_frameworks_at_setup", set())
    found = [f"{name} (in this process)" for name in sorted(new)]
    log = Path(os.environ.get("CONVCHECK_TEST_FRAMEWORK_LOG", "/nonexistent"))
    if log.is_file():
        for line in log.read_text().splitlines():
            test, _, rest = line.partition("\t")
            module, _, argv = rest.partition("\t")
            if test == item.nodeid:
                found.append(f"{module} (in a subprocess: {argv})")
    if found:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} is in the fast tier ({FAST_TIER}) but imported "
                           f"{'; '.join(dict.fromkeys(found))}: mark it `@pytest.mark.framework` "
                           "(or its module `pytestmark = pytest.mark.framework`)")
