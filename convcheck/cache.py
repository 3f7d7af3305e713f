"""The content-addressed cell cache: a cell whose inputs have not changed is not computed again.

A cell's key covers everything its result depends on:
- the model's fingerprint (its code and every zoo module it imports, size and input declaration;
  a user's file: its bytes) and the user's own data (`--inputs`), if any;
- the route: every converter class (module and name) with its options, the runtime, the target;
- the run settings that change figures: samples, threads, latency config, tolerance override,
  batches, tuning trials, reference choice;
- the versions of every package the route touches (and numpy), and convcheck's own version;
- the source of convcheck's code the cell runs: its converters', runtime's and reference runtime's
  modules (with the convcheck modules they import) and the modules every verdict goes through
  (`VERDICT_MODULES`). A version number does not change while a checkout is edited: a converter fixed
  in place once kept serving the mismatches its broken predecessor had cached.
Editing a zoo block or a converter, upgrading onnxruntime or changing --samples therefore misses the cache;
re-running the same command hits it. Failures are cached like passes (a converter that fails today
fails tomorrow); `--retry-failed` runs them again, `--no-cache` ignores the cache entirely.

Entries are JSON files written to a temporary name and renamed into place, so a run killed mid-write
leaves no half entry that a later run trusts; an unreadable entry is treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convcheck.atomic import write_json_atomic
from convcheck.types import Status, digest_paths, module_sources
from convcheck.version import __version__

if TYPE_CHECKING:
    from convcheck.plan import PlannedCell, RunSettings

#: Bump when the cell format or the key's meaning changes: old entries then miss.
#: 4: fp16 cells are judged against the source's own fp16 floor (a cached fp16 verdict predates it).
CACHE_FORMAT = 4
#: Statuses that say something about this run's machine or limits, not about the route: never cached.
NOT_CACHED = (Status.CRASHED, Status.TIMEOUT, Status.OOM, Status.UPSTREAM_FAILED, Status.INTERNAL_ERROR)


#: convcheck modules every cell's verdict goes through, whatever its route.
VERDICT_MODULES = ("convcheck.compare", "convcheck.tolerance", "convcheck.reference", "convcheck.pipeline",
                   "convcheck.runtime", "convcheck.converter")


#: What a cell with a load test also runs (its `load` figures come from there).
LOAD_MODULES = ("convcheck.validate.loadgen",)


#: RunSettings fields that cannot change a cell's figures or verdict (where files go). Every other
#: field is in the key: a new setting is keyed by default, and tests/unit/test_cache_key.py fails
#: when a field is neither keyed nor listed here.
SETTINGS_NOT_KEYED = frozenset({"workdir", "artifact_cache_dir",
                                # keyed through the cell's environment instead (its resolved versions):
                                "toolchains"})
#: hop_settings entries that are locations, not options.
HOP_SETTINGS_NOT_KEYED = frozenset({"cache_dir"})
#: ModelSpec fields that do not change what a cell computes (text for people; the model's files are
#: keyed by their digest, not their path).
SPEC_NOT_KEYED = frozenset({"description", "files", "given_artifacts", "given_feeds", "builders"})


def cell_key(planned: "PlannedCell", settings: "RunSettings") -> str:
    """Everything a cell's result depends on, hashed. Built from the dataclasses' fields with an
    explicit exclusion list (not a hand-picked inclusion list): a user file's cell once kept its
    cached `pass` when --input changed its value range, because the input declaration was not in
    the key."""
    from dataclasses import fields

    from convcheck.environment import package_version
    from convcheck.registry import converters, runtimes

    spec, route, target = planned.spec, planned.route, planned.target
    convs = [converters.get(c) for c in route.converters]
    runtime = runtimes.get(route.runtime)
    distributions = sorted(set(route.packages) | {"numpy"})
    env = planned.env
    reference = settings.reference_runtime(route.source)
    run_settings = {f.name: _keyable(getattr(settings, f.name)) for f in fields(settings)
                    if f.name not in SETTINGS_NOT_KEYED}
    run_settings["hop_settings"] = {k: _keyable(v) for k, v in settings.hop_settings.items()
                                    if k not in HOP_SETTINGS_NOT_KEYED}
    declared = {f.name: _keyable(getattr(spec, f.name)) for f in fields(spec) if f.name not in SPEC_NOT_KEYED}
    material = {
        "format": CACHE_FORMAT,
        "convcheck": __version__,
        "fingerprint": spec.fingerprint(route.source, settings.size) if route.source in spec.builders
        else spec.source_artifact(route.source, settings.size).sha256,
        # What the cell actually feeds: the declared inputs of this source and size (shapes, dtypes,
        # value ranges), the user's data, and the number of samples drawn.
        "inputs": _keyable(spec.inputs_for(route.source, settings.size)),
        "samples_drawn": spec.sample_count(settings.samples),
        "given": _digest_feeds(spec.given_feeds),
        "given_artifacts": {f.value: digest_paths([p])[0] for f, p in spec.given_artifacts.items()},
        "builders": {f.value: b for f, b in spec.builders.items()},
        "spec": declared,
        "route": route.id,
        "converters": [f"{c.__module__}:{c.__qualname__}:{c.options_class()!r}" for c in convs],  # type: ignore[attr-defined]
        "runtime": f"{runtime.__module__}:{runtime.__qualname__}",  # type: ignore[attr-defined]
        "reference_runtime": reference,
        "code": code_digest(tuple(sorted({*(c.__module__ for c in convs), runtime.__module__, _module_of(reference),
                                          *VERDICT_MODULES, *(LOAD_MODULES if settings.load else ())}))),
        "target": target.id,
        "settings": run_settings,
        # A cell in a toolchain environment: the versions uv resolved there, and what it was asked for.
        "versions": {d: _env_version(env, d) if env is not None else package_version(d) for d in distributions},
        "env": None if env is None else {"requirements": list(env.requirements), "packages": env.packages},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _module_of(runtime_name: str | None) -> str:
    from convcheck.registry import runtimes

    return runtimes.get(runtime_name).__module__ if runtime_name else "convcheck.runtime"


@lru_cache(maxsize=256)
def code_digest(modules: tuple[str, ...]) -> str:
    """sha256 of the source of `modules` and of every convcheck module they import, recursively. A module
    without source on disk (a plugin registered in code) counts by name only."""
    seen = module_sources(modules, r"^\s*(?:from|import) (convcheck(?:\.\w+)+)")
    h = hashlib.sha256()
    for name in sorted(seen):
        h.update(name.encode() + b"\0" + seen[name].encode() + b"\0")
    return h.hexdigest()


def _env_version(env: Any, distribution: str) -> str | None:
    from convcheck.environment import canonical

    return env.packages.get(canonical(distribution))


def _keyable(value: Any) -> Any:
    """A JSON-able, order-stable rendering of a setting or declaration (dataclasses, enums, tuples,
    dicts with enum keys, paths)."""
    import dataclasses
    import enum

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _keyable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(_keyable(k)): _keyable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_keyable(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _digest_feeds(feeds: tuple[dict[str, Any], ...]) -> str | None:
    """The user's own data (--inputs) is part of what a cell computed on."""
    if not feeds:
        return None
    h = hashlib.sha256()
    for sample in feeds:
        for name in sorted(sample):
            h.update(name.encode() + str(sample[name].dtype).encode() + str(sample[name].shape).encode())
            h.update(sample[name].tobytes())
    return h.hexdigest()


class CellCache:
    def __init__(self, folder: Path, enabled: bool = True, retry_failed: bool = False) -> None:
        self.folder = folder / "cells"
        self.enabled = enabled
        self.retry_failed = retry_failed

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        try:
            cell = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None  # absent, or unreadable: a miss, never an error
        if self.retry_failed and Status(cell["status"]).is_failure:
            return None
        return cell

    def put(self, key: str, cell: dict[str, Any]) -> None:
        if not self.enabled or Status(cell["status"]) in NOT_CACHED:
            return
        # Atomic: a reader sees the old entry or the new one, never half (a write cut short stays a
        # temporary file, which no reader opens).
        write_json_atomic(self._path(key), {k: v for k, v in cell.items() if k not in ("cached", "cache_key")},
                          indent=None)


def info(folder: Path) -> dict[str, Any]:
    """What the cache folder holds: entries, bytes, and the oldest/newest entry."""
    files = [p for p in (folder / "cells").rglob("*.json")] if (folder / "cells").exists() else []
    other = [p for p in folder.rglob("*") if p.is_file() and "cells" not in p.relative_to(folder).parts[:1]] \
        if folder.exists() else []
    return {"folder": str(folder), "cells": len(files), "cell_bytes": sum(p.stat().st_size for p in files),
            "other_files": len(other), "other_bytes": sum(p.stat().st_size for p in other)}


def clear(folder: Path) -> int:
    """Remove every cached cell (and tuning records); returns how many cells were removed."""
    removed = info(folder)["cells"]
    if folder.exists():
        shutil.rmtree(folder)
    return removed
