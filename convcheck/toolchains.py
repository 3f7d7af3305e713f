"""Toolchain environments: which cells run in an interpreter of their own, with which packages.

Some converters cannot share an environment with the rest: litert-torch 0.10 pins xdsl 0.28, which
needs typing-extensions<4.13, while TVM's ffi needs >=4.13. And a platform team's first question,
"what breaks if we upgrade onnxruntime?", needs the same route run twice with two versions of one
package. Both are one mechanism:

- a hop or runtime declares a `Toolchain` (its own requirement set): every route through it runs in
  an environment made of that set plus the route's other packages, pinned to the versions this
  install has (so the only difference from the main environment is the toolchain itself);
- `--toolchain PKG==VERSION` (an *override*) puts every route that touches PKG in an environment where
  PKG is that version and everything else the route touches is pinned to this install's versions: an
  upgrade check changes one thing.

This module only decides *what* an environment holds (an `EnvSpec`, named by a digest); convcheck.envs
creates it with uv, and the executors run the cell's worker with its interpreter. The whole cell runs
there, reference included: the source framework is pinned to this install's version, so the reference
is the one the main environment computes (for a model whose reference runtime is itself overridden,
the cell says so in a warning).

Only the CPU build of torch that lies on this machine's disk can be installed into an environment:
any other torch release would pull a multi-GB CUDA build, so `--toolchain torch==...` is refused unless
the version is the installed one (or a wheel of it lies in pip's find-links folders).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from convcheck.environment import canonical
from convcheck.errors import ConvcheckError

if TYPE_CHECKING:
    from convcheck.routes import Route

#: Bump when what an environment holds or how it is made changes: old environments are then not reused.
ENV_FORMAT = 1

_OVERRIDE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")


def requirement_name(requirement: str) -> str:
    """The distribution a PEP 508 requirement string names (`litert-torch>=0.10,<0.11` -> litert-torch)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return canonical(match.group(1))


@dataclass(frozen=True)
class EnvSpec:
    """What one environment holds. Two cells with the same spec share one environment."""

    name: str  # `litert-torch`, `onnxruntime==1.31.0`: what the terminal and reports show
    requirements: tuple[str, ...]  # sorted PEP 508 strings
    imports: tuple[str, ...]  # modules imported after creation to prove the environment works
    overrides: tuple[str, ...] = ()  # the `--toolchain` strings this environment answers
    toolchains: tuple[str, ...] = field(default=())  # names of the declared toolchains it carries
    #: The fallback when uv cannot keep this install's versions beside the toolchain (openvino 2025.4 needs
    #: numpy<2.3): the same packages unpinned. The environment then says which versions moved and why.
    relaxed: tuple[str, ...] = field(default=())

    @property
    def digest(self) -> str:
        from convcheck.envs import install_source

        material = {
            "format": ENV_FORMAT,
            "python": list(sys.version_info[:3]),
            "machine": platform.machine(),
            "requirements": list(self.requirements),
            "convcheck": install_source(),
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "requirements": list(self.requirements), "imports": list(self.imports),
                "overrides": list(self.overrides), "toolchains": list(self.toolchains), "relaxed": list(self.relaxed)}


def parse_override(text: str) -> tuple[str, str]:
    """`--toolchain PKG==VERSION` -> (canonical distribution, `pkg==version`); a usage error otherwise."""
    match = _OVERRIDE.match(text or "")
    if not match:
        raise ConvcheckError(f"--toolchain {text!r}: write PKG==VERSION (e.g. --toolchain onnxruntime==1.31.0)")
    name, version = canonical(match.group(1)), match.group(2)
    if name == "torch":
        _check_torch(version)
    if name == "convcheck":
        raise ConvcheckError("--toolchain convcheck==...: convcheck itself is installed from this checkout into "
                             "every environment; compare convcheck versions with `convcheck diff` of two runs")
    return name, f"{name}=={version}"


def check_overrides(overrides: Iterable[str]) -> tuple[str, ...]:
    """Every `--toolchain` string parsed, one per distribution, each naming a package some route touches."""
    from convcheck.environment import known_packages

    known = {canonical(d) for d in known_packages()}
    seen: dict[str, str] = {}
    for text in overrides:
        name, requirement = parse_override(text)
        if name not in known:
            raise ConvcheckError(f"--toolchain {text!r}: no route touches {name!r}; override one of the packages "
                                 f"`convcheck doctor` lists (e.g. onnxruntime, openvino, tf2onnx, onnx)")
        if name in seen and seen[name] != requirement:
            raise ConvcheckError(f"--toolchain names {name} twice ({seen[name]} and {requirement}): give one version")
        seen[name] = requirement
    return tuple(seen.values())


def _check_torch(version: str) -> None:
    from convcheck.envs import find_links_wheels
    from convcheck.environment import package_version

    installed = package_version("torch")
    public = version.split("+")[0]
    if installed and installed.split("+")[0] == public:
        return
    if any(re.match(rf"torch-{re.escape(public)}(\+[^-]*)?-", w) for w in find_links_wheels()):
        return
    raise ConvcheckError(
        f"--toolchain torch=={version}: only a torch build that lies on this machine's disk can go into an "
        f"environment (installed: {installed or 'none'}; pip's find-links folders hold no torch {public} wheel): "
        "other torch releases would pull a multi-GB CUDA build from PyPI")


def env_for(route: "Route", overrides: tuple[str, ...] = (), load: bool = False) -> EnvSpec | None:
    """The environment a route's cells run in, or None for the main environment.

    A route gets one when a hop or its runtime declares a Toolchain, or when an override names a
    package it touches. Every other package the route touches is pinned to this install's version.
    `load`: the cells also run MLPerf LoadGen (`convcheck load`), so the environment has it too."""
    from convcheck.environment import package_version

    declared = route.toolchains
    touched = {canonical(d) for d in route.packages}
    applied = tuple(o for o in overrides if requirement_name(o) in touched)
    if not declared and not applied:
        return None
    wanted: dict[str, str] = {}
    for toolchain in declared:
        for requirement in toolchain.requirements:
            wanted[requirement_name(requirement)] = requirement
    for override in applied:
        wanted[requirement_name(override)] = override
    named = set(wanted)
    relaxed = dict(wanted)  # the same packages, this install's versions no longer required
    for req in route.all_requirements:
        for i, dist in enumerate(req.distributions):
            key = canonical(dist)
            if key in named or key in wanted:
                continue
            version = package_version(dist)
            if version:
                wanted[key], relaxed[key] = f"{key}=={version}", key
            elif i == 0:  # the primary distribution, not installed here: the environment takes any version
                wanted[key] = relaxed[key] = key
    for engine_package in ("numpy", *(("mlcommons-loadgen",) if load else ())):
        version = package_version(engine_package)
        if version and engine_package not in named:
            wanted[engine_package], relaxed[engine_package] = f"{engine_package}=={version}", engine_package
    imports = tuple(dict.fromkeys(req.import_check or req.module for req in route.all_requirements))
    name = "+".join([*(t.name for t in declared), *applied])
    return EnvSpec(name, tuple(sorted(wanted.values())), imports, applied, tuple(t.name for t in declared),
                   tuple(sorted(relaxed.values())))
