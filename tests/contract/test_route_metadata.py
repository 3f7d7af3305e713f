"""Every registered route declares what the rest of convcheck reads about it: lock-in facts, a
deployment profile that can consider it, and requirements its distribution documents.

Pure metadata (no framework is imported): this runs in the fast tier, so a new hop or runtime that
forgets one of them fails in the edit-run loop, not in a user's report ("no data: neutral").
"""

from __future__ import annotations

import functools
from importlib import metadata

import pytest
from packaging.requirements import Requirement as Declared
from packaging.utils import canonicalize_name

from convcheck.registry import converters, runtimes
from convcheck.routes import enumerate_routes
from convcheck.reports.lockin import load_lockin_data, score_route

ROUTES = enumerate_routes()
#: Factors whose data is static (from data/lockin.json or a plugin's `lockin`); fidelity is measured.
STATIC_FACTORS = ("format_openness", "runtime_diversity", "hardware_diversity", "reversibility", "toolchain_health")


@pytest.fixture(scope="module")
def lockin_data() -> dict:
    return load_lockin_data()


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_route_has_lockin_data(route, lockin_data):
    scored = score_route(route.id, route.source.value, list(route.hops), route.runtime, [], lockin_data)
    unknown = {name: f["evidence"] for name, f in scored["factors"].items()
               if name in STATIC_FACTORS and "no data" in f["evidence"]}
    assert not unknown, (f"{route.id}: the lock-in scorer has no data for {sorted(unknown)} ({unknown}); add the "
                         "hop/runtime's facts to reports/data/lockin.json (built-in) or its `lockin` attribute (plugin)")


def _declared(distribution: str) -> dict[str, set[str]]:
    """extra -> canonical distribution names `distribution` declares for it ("" = always), with extras
    that name other extras of the same distribution (`convcheck[torch,onnx]`) resolved."""
    raw: dict[str, set[str]] = {}
    nested: dict[str, set[str]] = {}
    for line in metadata.requires(distribution) or ():
        req = Declared(line)
        extra = ""
        if req.marker is not None:
            extra = next((e for e in _extras_of(distribution) if req.marker.evaluate({"extra": e})), "?")
        if canonicalize_name(req.name) == canonicalize_name(distribution):
            nested.setdefault(extra, set()).update(req.extras)
        else:
            raw.setdefault(extra, set()).add(canonicalize_name(req.name))
    resolved = {e: set(names) for e, names in raw.items()}
    for extra, others in nested.items():
        for other in others:
            resolved.setdefault(extra, set()).update(raw.get(other, set()))
    return resolved


def _extras_of(distribution: str) -> list[str]:
    return metadata.metadata(distribution).get_all("Provides-Extra") or []


@functools.lru_cache(maxsize=1)
def _providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _distribution_of(cls: type) -> str:
    top = cls.__module__.split(".")[0]
    found = _providers().get(top) or []
    assert found, f"{cls.__module__}: no installed distribution provides it"
    return found[0]


def _hop_and_runtime_classes(route) -> list[type]:
    return [converters.get(c) for c in route.converters] + [runtimes.get(route.runtime)]  # type: ignore[list-item]


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_route_requirements_are_documented(route):
    """Each package a hop or runtime needs is declared by the distribution that ships the class, in the
    extra the requirement names (the install hint `pip install 'convcheck[extra]'` must be true)."""
    for cls in _hop_and_runtime_classes(route):
        dist = _distribution_of(cls)
        declared = _declared(dist)
        for req in getattr(cls, "requires", ()):
            assert req.extra in _extras_of(dist) or req.extra == "", \
                f"{cls.__name__} requires {req.distribution} from extra {req.extra!r}, which {dist} does not offer"
            in_extra = declared.get(req.extra, set()) | declared.get("", set())
            assert canonicalize_name(req.distribution) in in_extra, \
                (f"{cls.__name__} requires {req.distribution}, but {dist}'s extra {req.extra!r} does not "
                 f"declare it (it declares {sorted(in_extra)})")


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_route_has_a_deploy_profile(route):
    """`convcheck audit --deploy NAME` can recommend the route on some target it runs on: a profile whose
    route patterns, devices and precisions take at least one of its cells (a pattern in
    reports/data/deploy_profiles.json, or the runtime's `deploy_profiles`)."""
    from convcheck.reports.audit_evidence import load_profiles, matches

    considering = sorted({name for name, prof in load_profiles().items() for device in route.devices
                          for precision in route.precisions
                          if matches({"route": route.id, "device": device, "precision": precision}, prof)})
    assert considering, (f"{route.id}: no deployment profile considers it on {route.devices} x {route.precisions}; "
                         "add a pattern to reports/data/deploy_profiles.json or name profiles in the runtime's "
                         "`deploy_profiles`")


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_route_metadata_is_well_formed(route):
    """What the pipeline, Ray placement and localisation read is declared with the right types."""
    runtime = runtimes.get(route.runtime)
    assert isinstance(getattr(runtime, "placement", {}), dict)
    factory = getattr(runtime, "onnx_intermediates", None)
    if factory is not None:
        from convcheck.registry import load_dotted  # localisers import their framework lazily, like hops

        assert callable(load_dotted(factory)), f"{runtime.__name__}.onnx_intermediates: {factory!r} is not callable"
    assert route.packages, f"{route.id}: no package declared at all (Route.packages is empty)"
