"""The installed packages a cell's route touches: the tool versions shown beside its figures.

A cell names the distributions its route touches (`cell["packages"]`, from `Route.packages`); a
document from before that field gets them from this install's route registry, by route id (none for a
route this install does not know). They are matched against the run's `run.packages` (installed name
-> version) by one rule: the same name, or the name followed by a `-` or `+` part (`apache-tvm` also
shows `apache-tvm-ffi`). numpy is always shown: every route passes its arrays through it. A cell that
ran in a toolchain environment carries that environment's versions, which replace the run's.
"""

from __future__ import annotations

from typing import Any

from convcheck.environment import canonical

ALWAYS = ("numpy",)


def route_distributions(cell: dict[str, Any]) -> tuple[str, ...]:
    """The distribution names the cell's route touches (from the cell, else from the route registry)."""
    named = cell.get("packages")
    if isinstance(named, (list, tuple)):
        return tuple(str(p) for p in named)
    from convcheck.routes import packages_for_route_id  # the registry: loaded only for older documents

    return tuple(packages_for_route_id(str(cell.get("route", ""))))


def matches(installed: str, wanted: str) -> bool:
    """`installed` is `wanted`, or `wanted` followed by a `-`/`+` part (apache-tvm -> apache-tvm-ffi)."""
    return installed == wanted or installed.startswith(wanted + "-") or installed.startswith(wanted + "+")


def installed_for(document: dict[str, Any], cell: dict[str, Any]) -> dict[str, str]:
    """What was installed where the cell ran: the run's packages, overlaid by the versions of the toolchain
    environment the cell ran in (`cell["toolchain"]["packages"]`, convcheck.toolchains), if any."""
    installed = dict((document.get("run") or {}).get("packages") or {})
    own = (cell.get("toolchain") or {}).get("packages") or {}
    if own:
        installed = {k: v for k, v in installed.items() if canonical(k) not in own}
        installed.update(own)
    return installed


def relevant_packages(document: dict[str, Any], cell: dict[str, Any]) -> dict[str, str]:
    """The package versions the cell's route touches where it ran, numpy always (none when none is recorded)."""
    installed = installed_for(document, cell)
    wanted = set(route_distributions(cell)) | set(ALWAYS)
    return {name: v for name, v in installed.items() if any(matches(name, w) for w in wanted)}


def packages_or_all(document: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    """`relevant_packages`, or every recorded package when nothing but numpy matches (a route this
    install does not know: better every version than none)."""
    installed = installed_for(document, cell)
    picked = relevant_packages(document, cell)
    return picked if len(picked) > 1 or not installed else dict(installed)
