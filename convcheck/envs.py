"""Toolchain environments on disk: created with uv on first use, reused, listed, cleared.

An environment lives in `$CONVCHECK_HOME/envs/<digest>` (`CONVCHECK_ENVS` moves the folder alone),
the digest naming what it holds (convcheck.toolchains.EnvSpec). It is complete only once its
manifest, `convcheck-env.json`, exists: the manifest is written last, atomically, after uv installed
everything and every module the routes need imported in it. A run that dies mid-creation leaves a
folder without a manifest, which the next run deletes and makes again; it is never trusted.

Creation holds an exclusive lock on `<digest>.lock` (flock): two runs that need the same new
environment at once create it once, the second waits and then reuses it. A failed creation (the
resolver finds no solution, a wheel is missing, a module does not import) is an `EnvCreationError`
whose message is uv's own; the half environment is removed and the next run tries again.

uv is given this machine's pip configuration (index URLs, find-links, constraint files), so an
environment takes the same packages pip would (UV_INDEX_STRATEGY=unsafe-best-match: without it uv
stops at the first index that has a package, where pip takes the best version of all of them).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from convcheck.atomic import write_json_atomic
from convcheck.environment import canonical, package_version
from convcheck.paths import home

MANIFEST = "convcheck-env.json"
#: Seconds a uv call may take (a cold environment downloads a few GB on a slow link).
UV_TIMEOUT_S = 3600.0
Progress = Callable[[str], None]


class EnvCreationError(Exception):
    """An environment could not be made: the message is what uv (or the failing import) said."""


@dataclass(frozen=True)
class Env:
    """A complete environment: its interpreter and what uv resolved into it."""

    digest: str
    name: str
    path: Path
    packages: dict[str, str]  # canonical distribution -> version, as `uv pip freeze` reports them
    requirements: tuple[str, ...]
    created: str
    create_seconds: float
    overrides: tuple[str, ...] = ()  # the `--toolchain PKG==VERSION` strings it answers
    #: Why it does not hold this install's versions of the route's other packages (uv's message), or "".
    relaxed_because: str = ""

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def describe(self, distributions: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
        """What a cell records of the environment it ran in (results.json `toolchain`)."""
        wanted = {canonical(d) for d in distributions}
        return {"env": self.digest, "name": self.name, "requirements": list(self.requirements),
                "overrides": list(self.overrides), "relaxed_because": self.relaxed_because or None,
                "packages": {d: v for d, v in sorted(self.packages.items()) if not wanted or d in wanted}}


def envs_dir() -> Path:
    if os.environ.get("CONVCHECK_ENVS"):
        return Path(os.environ["CONVCHECK_ENVS"]).expanduser()
    return home() / "envs"


def uv_command() -> list[str] | None:
    """How to call uv: the `uv` package's binary (a convcheck dependency), else one on PATH."""
    try:
        import uv

        return [uv.find_uv_bin()]
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        return [found] if found else None


@functools.lru_cache(maxsize=1)
def install_source() -> str:
    """How convcheck itself goes into an environment: an editable checkout (`-e DIR`: the environment runs
    this very code), the file or folder it was installed from, or `convcheck==VERSION` from an index."""
    from importlib import metadata

    from convcheck.version import __version__

    try:
        dist = metadata.distribution("convcheck")
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError):
        direct = None
    if direct and str(direct.get("url", "")).startswith("file://"):
        path = direct["url"][len("file://"):]
        return f"-e {path}" if (direct.get("dir_info") or {}).get("editable") else path
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "convert").is_dir():
        return f"-e {checkout}"  # run from a checkout that pip never installed (PYTHONPATH)
    return f"convcheck=={__version__}"


@functools.lru_cache(maxsize=1)
def _pip_config() -> dict[str, list[str]]:
    """pip's configuration as `pip config list` prints it (every file and PIP_* variable merged)."""
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1].strip()
        found.setdefault(name, []).extend(value.strip().strip("'\"").split())
    for var, name in (("PIP_INDEX_URL", "index-url"), ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
                      ("PIP_FIND_LINKS", "find-links"), ("PIP_CONSTRAINT", "constraint")):
        if os.environ.get(var):
            found[name] = os.environ[var].split()
    return found


def _present(location: str) -> bool:
    """A file:// index or a find-links folder that does not exist here would fail uv: pip ignores them."""
    if location.startswith("file://"):
        return Path(location[len("file://"):]).exists()
    if "://" in location:
        return True
    return Path(location).exists()


def uv_environment() -> dict[str, str]:
    """Environment variables that make uv install what pip would on this machine."""
    config = _pip_config()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k == "UV_CACHE_DIR"}
    env["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    env["UV_NO_CONFIG"] = "1"  # a uv.toml of the user's or a pyproject nearby must not change the environment
    env["UV_PYTHON_DOWNLOADS"] = "never"
    if config.get("index-url"):
        env["UV_DEFAULT_INDEX"] = config["index-url"][0]
    extra = [u for u in config.get("extra-index-url", []) if _present(u)]
    if extra:
        env["UV_INDEX"] = " ".join(extra)
    links = [u for u in config.get("find-links", []) if _present(u)]
    if links:
        env["UV_FIND_LINKS"] = ",".join(links)
    return env


def find_links_wheels() -> list[str]:
    """Wheel file names in pip's find-links folders (where this machine keeps its torch build)."""
    names: list[str] = []
    for location in _pip_config().get("find-links", []):
        folder = Path(location[len("file://"):] if location.startswith("file://") else location)
        if folder.is_dir():
            names.extend(p.name for p in folder.glob("*.whl"))
    return names


def _constraints() -> list[str]:
    """pip's constraint files (the machine's torch cap) and this install's torch build: an environment
    never takes another torch (any other release is a multi-GB CUDA build)."""
    lines: list[str] = []
    for location in _pip_config().get("constraint", []):
        with contextlib.suppress(OSError):
            lines.extend(ln for ln in Path(location).read_text().splitlines() if ln.strip() and not ln.startswith("#"))
    torch = package_version("torch")
    if torch:
        lines = [ln for ln in lines if not ln.replace(" ", "").startswith("torch<") and
                 not ln.replace(" ", "").startswith("torch=")] + [f"torch=={torch}"]
    return lines


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load(path: Path, digest: str) -> Env | None:
    try:
        data = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if data.get("digest") != digest or not (path / "bin" / "python").exists():
        return None
    return Env(digest, data["name"], path, dict(data["packages"]), tuple(data["requirements"]), data["created"],
               float(data.get("create_seconds") or 0.0), tuple((data.get("spec") or {}).get("overrides") or ()),
               str(data.get("relaxed_because") or ""))


def ensure(spec: Any, progress: Progress | None = None) -> tuple[Env, bool]:
    """The environment for `spec`, created now if it does not exist: (env, created by this call).

    Raises EnvCreationError with the resolver's (or the failing import's) message."""
    say = progress or (lambda line: None)
    digest = spec.digest
    path = envs_dir() / digest
    with _locked(envs_dir() / f"{digest}.lock"):
        env = _load(path, digest)
        if env is not None:
            _touch(path)
            return env, False
        if path.exists():  # a half environment (a run died creating it): never trusted
            shutil.rmtree(path, ignore_errors=True)
        try:
            env = _create(spec, path, say)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        _touch(path)
        return env, True


def _create(spec: Any, path: Path, say: Progress) -> Env:
    uv = uv_command()
    if uv is None:
        raise EnvCreationError("uv is not installed (pip install uv): convcheck makes toolchain environments with it")
    started = time.monotonic()
    env = uv_environment()
    say(f"creating environment {spec.name} ({path.name}) with uv")
    _run([*uv, "venv", "--quiet", "--python", sys.executable, str(path)], env, say)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="convcheck-constraints-", delete=False) as fh:
        fh.write("\n".join(_constraints()) + "\n")
        constraints = fh.name
    relaxed_because = ""
    try:
        source = install_source().split(" ", 1)
        say(f"installing {', '.join(spec.requirements)} and convcheck")
        install = [*uv, "pip", "install", "--python", str(path / "bin" / "python"), "--constraint", constraints, *source]
        try:
            _run([*install, *spec.requirements], env, say)
        except EnvCreationError as exc:
            if not spec.relaxed or tuple(spec.relaxed) == tuple(spec.requirements):
                raise
            # This install's versions cannot sit beside the toolchain (openvino 2025.4 needs numpy<2.3): let uv
            # choose them, and say so in every cell of the environment.
            relaxed_because = str(exc)
            say(f"this install's versions do not fit ({exc}); trying {', '.join(spec.relaxed)}")
            try:
                _run([*install, *spec.relaxed], env, say)
            except EnvCreationError as again:
                raise EnvCreationError(f"{exc}; without this install's versions: {again}") from None
    finally:
        os.unlink(constraints)
    say(f"checking that {', '.join(spec.imports) or 'convcheck'} import in it")
    check = "import convcheck.executors.env_worker\n" + "".join(f"import {m}\n" for m in spec.imports)
    _run([str(path / "bin" / "python"), "-c", check], {**os.environ, "PYTHONNOUSERSITE": "1"}, say,
         what="an import in the new environment")
    packages = _freeze(uv, path, env)
    from convcheck.results import now_iso

    seconds = round(time.monotonic() - started, 1)
    write_json_atomic(path / MANIFEST, {
        "digest": path.name, "name": spec.name, "spec": spec.to_dict(), "requirements": list(spec.requirements),
        "packages": packages, "created": now_iso(), "create_seconds": seconds, "python": sys.version.split()[0],
        "relaxed_because": relaxed_because,
    })
    say(f"environment {spec.name} ready in {seconds:.1f} s")
    loaded = _load(path, path.name)
    assert loaded is not None
    return loaded


def _run(cmd: list[str], env: dict[str, str], say: Progress, what: str = "uv") -> None:
    """Run a step, streaming its stderr lines to `say`; on failure raise with the tool's own message."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, text=True, cwd=str(envs_dir()))
    lines: list[str] = []
    deadline = time.monotonic() + UV_TIMEOUT_S
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            lines.append(line)
            say(line)
        if time.monotonic() > deadline:
            proc.kill()
            raise EnvCreationError(f"{what} ran over {UV_TIMEOUT_S:.0f} s")
    if proc.wait() != 0:
        raise EnvCreationError(_failure_message(lines, what))


def _failure_message(lines: list[str], what: str) -> str:
    """uv's reason in one readable line: the resolver's `because ...` chain, or the last error lines."""
    useful = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith(("Using ", "Resolved "))]
    if what == "uv":
        start = next((i for i, ln in enumerate(useful) if ln.startswith(("×", "error:", "Because", "╰─▶"))), None)
        if start is not None:
            useful = useful[start:]
    text = " ".join(ln.lstrip("×╰─▶ ").strip() for ln in useful[-12:])
    return f"{what} failed: {text or 'no output'}"


def _freeze(uv: list[str], path: Path, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run([*uv, "pip", "freeze", "--python", str(path / "bin" / "python")], env=env,
                         capture_output=True, text=True, timeout=300, check=False).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            found[canonical(name)] = version.strip()
    from convcheck.version import __version__

    found.setdefault("convcheck", __version__)
    return found


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        (path / ".last-used").touch()


def _size_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def list_envs() -> list[dict[str, Any]]:
    """Every environment folder: complete ones with their packages, sizes and last use, half ones marked."""
    folder = envs_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir()):
        env = _load(path, path.name)
        last = path / ".last-used"
        found.append({
            "digest": path.name, "name": env.name if env else None, "complete": env is not None,
            "path": str(path), "bytes": _size_bytes(path), "packages": env.packages if env else {},
            "requirements": list(env.requirements) if env else [], "created": env.created if env else None,
            "last_used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(last.stat().st_mtime))
            if last.exists() else None,
        })
    return found


def clear(names: list[str] | None = None) -> tuple[int, int]:
    """Remove environments (all, or those whose digest or name is in `names`): (how many, bytes freed).
    Each is removed under its lock, so one being created by a running run is waited for, not torn."""
    removed, freed = 0, 0
    for entry in list_envs():
        if names and entry["digest"] not in names and entry["name"] not in names:
            continue
        with _locked(envs_dir() / f"{entry['digest']}.lock"):
            shutil.rmtree(entry["path"], ignore_errors=True)
        with contextlib.suppress(OSError):
            (envs_dir() / f"{entry['digest']}.lock").unlink()
        removed += 1
        freed += entry["bytes"]
    return removed, freed
