"""What machine and which packages a figure was measured with. Reads files and metadata only:
no framework is imported here, so `convcheck doctor` and the report header stay fast."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
from typing import Any

#: What the engine itself runs on, whatever the routes: shown by `doctor` before the routes' packages.
ENGINE_PACKAGES: tuple[str, ...] = ("numpy",)
#: Optional engine packages shown after them (the Ray executor, MLPerf LoadGen for `convcheck load`, the CLI).
ENGINE_EXTRAS: tuple[str, ...] = ("ray", "mlcommons-loadgen", "typer", "rich")


def known_requirements() -> list[Any]:
    """Every Requirement a registered hop or runtime declares (plugins' too), in registry order; a plugin
    whose module fails to import is left out (doctor must still report on everything else)."""
    from convcheck.registry import converters, runtimes

    found: dict[Any, None] = {}
    for registry in (converters, runtimes):
        for _, cls in registry.loadable_items():
            found.update(dict.fromkeys(getattr(cls, "requires", ())))
    return list(found)


def known_packages() -> tuple[str, ...]:
    """The distributions `doctor` reports, in the order shown: the engine's, then every distribution
    a registered hop or runtime declares (read from the classes, never a list kept by hand)."""
    routes = [d for req in known_requirements() for d in req.distributions]
    return tuple(dict.fromkeys([*ENGINE_PACKAGES, *routes, *ENGINE_EXTRAS]))


def canonical(distribution: str) -> str:
    """PEP 503 name: `Ai_Edge.LiteRT` and `ai-edge-litert` are one distribution."""
    import re

    return re.sub(r"[-_.]+", "-", distribution).lower()


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def module_present(module: str) -> bool:
    """True if `module` can be imported; does not import it (nor run its package __init__)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def packages(distributions: tuple[str, ...] | list[str] | None = None) -> dict[str, str]:
    """Installed versions of `distributions` (default: every known one)."""
    wanted = known_packages() if distributions is None else distributions
    return {d: v for d in wanted if (v := package_version(d)) is not None}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=1)
def gpus() -> tuple[str, ...]:
    """CUDA GPUs as named by the driver (nvidia-smi), without importing torch or any framework."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ()
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(line.strip() for line in out.stdout.splitlines() if line.startswith("GPU "))


def devices() -> tuple[str, ...]:
    """Devices present on this machine in convcheck's vocabulary."""
    found = ["cpu"]
    if gpus():
        found.append("cuda")
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        found.append("ane")
    return tuple(found)


def host() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "gpus": list(gpus()),
    }


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (what ORT uses by default)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{topology}/physical_package_id") as pkg, open(f"{topology}/core_id") as core:
                cores.add((pkg.read().strip(), core.read().strip()))
        except OSError:
            cores.add(("?", str(cpu)))
    return max(len(cores), 1)

