"""The route graph: routes are enumerated from converter hops and runtimes, never listed by hand.

A route starts at a source format (what a model comes in), follows zero or more converter hops
without revisiting a format, and ends in a runtime that executes the last format. Its id is the
source, the hop names and the runtime joined by `/` (`torch/onnx/ort`); when the runtime has the
same name as the last hop (`torch/openvino` converted and run by OpenVINO) the name is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from convcheck.environment import devices as present_devices
from convcheck.environment import module_present
from convcheck.errors import ConvcheckError
from convcheck.registry import converters, did_you_mean, runtimes
from convcheck.types import Format, Requirement, Status, Toolchain

if TYPE_CHECKING:
    from convcheck.model_spec import ModelSpec


def sources() -> dict[Format, str]:
    """Source formats a model can come in -> the runtime that computes its reference by default: the first
    registered runtime that declares it in `Runtime.reference_for` (torch, keras, ort_reference for a user's
    ONNX file, savedmodel, tflite_reference for a user's .tflite), in registry order."""
    found: dict[Format, str] = {}
    for name, cls in runtimes.items():
        for fmt in getattr(cls, "reference_for", ()):
            found.setdefault(fmt, name)
    return found


def reference_choices(source: Format) -> dict[str, str]:
    """`--reference` names -> runtime registry names, for a source format with more than one reference."""
    return {cls.reference_choice: name for name, cls in runtimes.items()  # type: ignore[attr-defined]
            if source in getattr(cls, "reference_for", ()) and getattr(cls, "reference_choice", "")}


@dataclass(frozen=True)
class Route:
    id: str
    source: Format
    converters: tuple[str, ...]  # converter registry names, in hop order
    hops: tuple[str, ...]  # their hop names, as written in the id
    runtime: str  # runtime registry name (the id shows the runtime class's `name`)
    formats: tuple[Format, ...] = field(default=())  # every format along the way, source first

    @property
    def requires(self) -> tuple[Requirement, ...]:
        reqs: list[Requirement] = []
        for name in self.converters:
            reqs.extend(converters.get(name).requires)  # type: ignore[attr-defined]
        reqs.extend(runtimes.get(self.runtime).requires)  # type: ignore[attr-defined]
        return tuple(dict.fromkeys(reqs))

    @property
    def all_requirements(self) -> tuple[Requirement, ...]:
        """What its default reference runtime, its hops and its runtime require, in that order."""
        default = sources().get(self.source)
        reference = runtimes.get(default) if default else None
        return tuple(dict.fromkeys([*getattr(reference, "requires", ()), *self.requires]))

    @property
    def packages(self) -> tuple[str, ...]:
        """Every distribution the route touches, for the tool versions shown beside its figures: what
        its reference runtime, hops and runtime require (with the distributions that come with them)."""
        return tuple(dict.fromkeys(d for r in self.all_requirements for d in r.distributions))

    @property
    def toolchains(self) -> tuple[Toolchain, ...]:
        """The toolchain environments its hops and runtime declare (convcheck.toolchains): the route's
        cells run in an environment holding them all."""
        found = [getattr(converters.get(name), "toolchain", None) for name in self.converters]
        found.append(getattr(runtimes.get(self.runtime), "toolchain", None))
        return tuple(dict.fromkeys(t for t in found if t is not None))

    @property
    def devices(self) -> tuple[str, ...]:
        return runtimes.get(self.runtime).devices  # type: ignore[attr-defined]

    @property
    def precisions(self) -> tuple[str, ...]:
        return runtimes.get(self.runtime).precisions  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Availability:
    status: Status  # PASS stands for "available"
    reason: str = ""
    hint: str = ""

    @property
    def available(self) -> bool:
        return self.status is Status.PASS

    @property
    def label(self) -> str:
        return "available" if self.available else self.status.value


def route_id(source: Format, hops: tuple[str, ...], runtime: str) -> str:
    parts = [source.value, *hops]
    if not hops or hops[-1] != runtime:
        parts.append(runtime)
    return "/".join(parts)


@lru_cache(maxsize=1)
def enumerate_routes() -> tuple[Route, ...]:
    """Every route the registered converters and runtimes make, in registration order."""
    conv_classes = dict(converters.items())
    rt_classes = dict(runtimes.items())
    found: dict[str, Route] = {}

    def walk(source: Format, fmt: Format, chain: tuple[str, ...], formats: tuple[Format, ...]) -> None:
        hops = tuple(conv_classes[c].hop for c in chain)  # type: ignore[attr-defined]
        for rt_name, rt in rt_classes.items():
            if rt.format is not fmt or rt.reference_only:  # type: ignore[attr-defined]
                continue
            rid = route_id(source, hops, rt.name)  # type: ignore[attr-defined]
            if rid in found:
                raise RuntimeError(f"two routes share the id {rid!r}: rename a hop or runtime")
            found[rid] = Route(rid, source, chain, hops, rt_name, formats)
        for conv_name, conv in conv_classes.items():
            if conv.first_hop_only and chain:  # type: ignore[attr-defined]
                continue
            if conv.source is fmt and conv.target not in formats:  # type: ignore[attr-defined]
                walk(source, conv.target, chain + (conv_name,), formats + (conv.target,))  # type: ignore[attr-defined]

    for source in sources():
        walk(source, source, (), (source,))
    return tuple(found.values())


def availability(route: Route, device: str | None = None) -> Availability:
    """Can this route run here, on this device (None: on any device it supports)?

    Checks packages without importing them."""
    if device is None:
        found = [availability(route, d) for d in route.devices]
        return next((a for a in found if a.available), found[0])
    missing = [req for req in route.requires if not module_present(req.module)]
    if route.toolchains:
        # Its cells run in a toolchain environment that holds every package the route needs (created on
        # first use): what this interpreter lacks does not matter, only the tool that makes environments.
        from convcheck.envs import uv_command

        missing = [] if uv_command() is not None else [UV]
    host_reason = runtimes.get(route.runtime).host_unsupported()  # type: ignore[attr-defined]
    if host_reason:
        no_device = host_reason
    elif device not in route.devices:
        no_device = f"runtime {route.runtime} does not run on {device}"
    elif device not in present_devices():
        no_device = f"no {device} device on this machine"
    else:
        no_device = ""
    if missing:
        names = ", ".join(dict.fromkeys(r.distribution for r in missing))
        reason = f"{names} not installed" + (f", and {no_device}" if no_device else "")
        notes = " ".join(dict.fromkeys(r.note for r in missing if r.note))
        return Availability(Status.MISSING_DEP, reason, install_hint(missing) + (f" ({notes})" if notes else ""))
    if no_device:
        return Availability(Status.NO_DEVICE, no_device)
    return Availability(Status.PASS)


#: What makes toolchain environments (convcheck.envs); a core dependency, so missing only in odd installs.
UV = Requirement("uv", "uv", "", note="convcheck makes toolchain environments with uv")


def packages_for_route_id(route_id: str) -> tuple[str, ...]:
    """The distributions a registered route touches (Route.packages); () for a route this install does
    not know (a results document from a machine with another plugin)."""
    route = next((r for r in enumerate_routes() if r.id == route_id), None)
    if route is None:
        # Routes through a user's converted file (`onnx/given-tflite/tflite`) are made per model.
        return ()
    return route.packages


def install_hint(missing: list[Requirement]) -> str:
    """`pip install 'convcheck[extra,...]'` for convcheck's own extras; a requirement without an extra (a
    plugin's, which its own distribution installs) is named as the distribution to install."""
    extras = ",".join(dict.fromkeys(r.extra for r in missing if r.extra))
    plain = " ".join(dict.fromkeys(r.distribution for r in missing if not r.extra))
    parts = ([f"pip install 'convcheck[{extras}]'"] if extras else []) + ([f"pip install {plain}"] if plain else [])
    return " and ".join(parts)


def select_routes(spec: str | None, device: str | None = None, given: list[Route] | None = None) -> list[Route]:
    """Routes named by `--routes`: None -> every route available here; "all" -> every route.

    `given` routes (a user's own converted file) come first, and are the default when there are any."""
    routes = list(given or ()) + list(enumerate_routes())
    if spec is None:
        return [r for r in (given or routes) if availability(r, device).available]
    if spec.strip() == "all":
        return list(routes)
    by_id = {r.id: r for r in routes}
    chosen: list[Route] = []
    for name in (s.strip() for s in spec.split(",")):
        if not name:
            continue
        if name not in by_id:
            raise ConvcheckError(
                f"unknown route {name!r}{did_you_mean(name, list(by_id))} "
                "(list the routes with `convcheck routes`)"
            )
        if by_id[name] not in chosen:
            chosen.append(by_id[name])
    if not chosen:
        raise ConvcheckError("--routes is empty: name at least one route, or `all`")
    return chosen


def given_routes(spec: "ModelSpec") -> list[Route]:
    """Routes that run a user's already converted file (`check model.tflite --source model.keras`):
    from each of the model's sources, through the hop that hands the file over, to each runtime of
    the file's format (`keras/given-tflite/tflite`)."""
    found: list[Route] = []
    given_hops = {conv.target: name for name, conv in converters.items()  # type: ignore[attr-defined]
                  if getattr(conv, "passes_through", False)}
    for fmt in spec.given_artifacts:
        if fmt not in given_hops:
            raise ConvcheckError(f"convcheck cannot take an already converted {fmt.value} model")
        conv_name = given_hops[fmt]
        hop = converters.get(conv_name).hop  # type: ignore[attr-defined]
        for source in spec.sources:
            for rt_name, rt in runtimes.items():
                if rt.format is fmt and not rt.reference_only:  # type: ignore[attr-defined]
                    found.append(Route(route_id(source, (hop,), rt.name), source, (conv_name,), (hop,),  # type: ignore[attr-defined]
                                       rt_name, (source, fmt)))
    return found
