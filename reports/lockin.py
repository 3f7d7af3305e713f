"""Lock-in risk score of a route: 0 (portable) to 100 (locked), reproducible from its breakdown.

score = round(100 * sum(weight * value) / sum(weight), 1) over six named factors, each value in
0..1 (1 = most locked) with the evidence behind it. Static facts (governance, runtimes, vendors,
reversibility, tool releases and deprecations) and the weights live in `data/lockin.json`, dated
and sourced; `--lockin-weights FILE` deep-merges a user's JSON over them. Only the fidelity factor
comes from the run itself. Standard library only: reports must load without any ML framework.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from collections import Counter
from importlib import resources
from pathlib import Path

from convcheck.errors import ConvcheckError
from convcheck.reports.cell_view import verified_by

FACTORS = ("format_openness", "runtime_diversity", "hardware_diversity", "reversibility", "fidelity",
           "toolchain_health")
NOT_RUN = ("missing_dep", "no_device")  # could not run here: neither a success nor a failure
NEUTRAL = 0.5  # what we say about a factor we know nothing about


def plugin_lockin_data() -> dict:
    """The lock-in facts registered hops and runtimes bring with them (`Converter.lockin`,
    `Runtime.lockin`: fragments in data/lockin.json's own shape), merged in registry order. A plugin's
    route is then scored on its facts, not counted neutral for want of them. Loading the classes
    imports no framework (their heavy imports sit inside convert/activate)."""
    from convcheck.registry import converters, runtimes

    merged: dict = {}
    for registry in (converters, runtimes):
        for _, cls in registry.loadable_items():
            fragment = getattr(cls, "lockin", None)
            if fragment:
                merged = _deep_merge(merged, fragment)
    return merged


def load_lockin_data(override: Path | None = None) -> dict:
    """The shipped (or newest refreshed) facts and weights over the facts plugins declare, with a user's JSON file deep-merged
    over both (the shipped file wins over a plugin: a plugin adds what the file does not know)."""
    from convcheck.ecosystem import newest_snapshot

    # `convcheck ecosystem refresh` writes a dated copy with PyPI's current maintenance signals; the newest one
    # scores. Without one (offline, never refreshed) the shipped snapshot does.
    refreshed = newest_snapshot()
    shipped = json.loads(refreshed.read_text("utf-8")) if refreshed is not None else \
        json.loads(resources.files("convcheck.reports").joinpath("data/lockin.json").read_text("utf-8"))
    data = _deep_merge(plugin_lockin_data(), shipped)
    if override is None:
        return data
    where = f"--lockin-weights {override}"
    try:
        user = json.loads(Path(override).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConvcheckError(f"{where}: cannot read it ({exc.strerror or exc}); pass an existing JSON file") \
            from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        raise ConvcheckError(f"{where}: not valid JSON ({exc}); fix the file, e.g. "
                             '{"weights": {"fidelity": 0.3}}') from None
    if not isinstance(user, dict):
        raise ConvcheckError(f'{where}: expected a JSON object such as {{"weights": {{"fidelity": 0.3}}}}')
    unknown = sorted(set(user) - set(data))
    if unknown:  # a typo ("weight") would otherwise be ignored silently
        raise ConvcheckError(f"{where}: unknown key {unknown[0]!r}; use one of: {', '.join(sorted(data))}")
    weights = user.get("weights", {})
    if not isinstance(weights, dict):
        raise ConvcheckError(f'{where}: "weights" must be an object of factor -> number')
    for name, weight in weights.items():
        if name not in FACTORS:
            raise ConvcheckError(f"{where}: unknown factor {name!r}; use one of: {', '.join(FACTORS)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight < 0:
            raise ConvcheckError(f"{where}: weight of {name} is {weight!r}; use a number >= 0")
    merged = _deep_merge(data, user)
    try:  # dates are the one kind of fact the scorer parses: check them here, not mid-report
        for day in [merged["snapshot"]["date"], *(t["released"] for t in merged["tools"].values())]:
            datetime.date.fromisoformat(day)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConvcheckError(f"{where}: bad or missing date ({exc}); write dates as YYYY-MM-DD") from None
    if sum(float(merged["weights"][f]) for f in FACTORS) <= 0:
        raise ConvcheckError(f"{where}: the weights add up to 0; give at least one factor a positive weight")
    return merged


def _deep_merge(base: dict, over: dict) -> dict:
    """Objects merge key by key; anything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) \
            else copy.deepcopy(value)
    return out


def score_route(route_id: str, source: str, steps: list[str], runtime: str, cells: list[dict],
                data: dict) -> dict:
    """{"score", "factors"} of one route; `cells` are that route's cells in this run."""
    # Formats counted: the artifacts the route produces. The source is left out, because the user
    # keeps it whatever route they pick, except where the route deploys the source itself (no steps:
    # torch/eager, onnx/ort, tflite/tflite), where it is the deployed artifact.
    pieces = [(step, data["step_formats"].get(step)) for step in steps] or \
             [(source, data["source_formats"].get(source))]
    final_piece, final_key = pieces[-1]
    final = data["formats"].get(final_key or "")
    factors = {
        "format_openness": _format_openness(pieces, data),
        "runtime_diversity": _diversity(final, final_piece, "runtimes", "runtime", data),
        "hardware_diversity": _diversity(final, final_piece, "hardware_vendors", "hardware vendor", data),
        "reversibility": _reversibility(final, final_piece, data),
        "fidelity": _fidelity(cells, steps),
        "toolchain_health": _toolchain(source, steps, runtime, data),
    }
    weights = {name: float(data["weights"][name]) for name in FACTORS}
    out = {}
    for name in FACTORS:
        factor = factors[name]
        out[name] = {"weight": weights[name], "value": round(factor.pop("value"), 4), **factor}
    # The score is computed from the rounded values it reports, so anyone can redo the sum.
    score = round(100 * sum(f["weight"] * f["value"] for f in out.values()) / sum(weights.values()), 1)
    return {"score": score, "factors": out}


def _unknown(what: str) -> dict:
    return {"value": NEUTRAL, "evidence": f"no data for {what} (a plugin's format?): counted as neutral {NEUTRAL}"}


def _format_openness(pieces: list[tuple[str, str | None]], data: dict) -> dict:
    # Worst, not mean: rebuilding or updating the deployed model needs every link of the chain,
    # so a route is as open as its least open format (an ONNX hop does not make an engine open).
    classes = data["scoring"]["governance"]
    rated = []
    for piece, key in pieces:
        fmt = data["formats"].get(key or "")
        if fmt is None or fmt.get("governance") not in classes:
            rated.append((NEUTRAL, f"{piece}: no data for its format"))
        else:
            gov = fmt["governance"]
            text = f"{fmt['name']}, {classes[gov]['meaning']} ({fmt.get('steward', '?')})"
            rated.append((classes[gov]["value"], text))
    value, worst = max(rated, key=lambda r: r[0])
    others = [text for _, text in rated if text != worst]
    tail = f"; also on the route: {'; '.join(others)}" if others else ""
    return {"value": value, "evidence": f"least open format on the route: {worst}{tail}"}


def _diversity(fmt: dict | None, piece: str, field: str, noun: str, data: dict) -> dict:
    if fmt is None or not fmt.get(field):
        return _unknown(f"the final artifact of {piece!r}")
    names = fmt[field]
    sat = max(2, int(data["scoring"]["diversity_saturation"]))
    value = min(1.0, max(0.0, 1 - (len(names) - 1) / (sat - 1)))
    plural = noun + ("s" if len(names) != 1 else "")
    tied = f"; tied to {fmt['tied_to']}" if fmt.get("tied_to") and field == "runtimes" else ""
    return {"value": value,
            "evidence": f"final artifact {fmt['name']}: {len(names)} {plural} ({', '.join(names)}){tied}"}


def _reversibility(fmt: dict | None, piece: str, data: dict) -> dict:
    classes = data["scoring"]["reversibility"]
    rev = (fmt or {}).get("reversibility") or {}
    if rev.get("class") not in classes:
        return _unknown(f"the final artifact of {piece!r}")
    how = [f"back to {', '.join(rev['to'])} with {rev['tool']}"] if rev.get("to") and rev.get("tool") else []
    how += [rev["note"]] if rev.get("note") else []
    return {"value": classes[rev["class"]]["value"],
            "evidence": f"final artifact {fmt['name']} [{rev['class']}]: "
                        + "; ".join(how or [classes[rev["class"]]["meaning"]])}


def _converted_only(cell: dict, steps: list[str]) -> bool:
    """A cell that could not run here but whose every hop converted (Core ML off macOS)."""
    hops = [s for s in cell.get("stages") or []
            if isinstance(s, dict) and str(s.get("stage")).startswith("convert:")]
    hops = hops or [a for a in cell.get("artifacts") or [] if isinstance(a, dict)]
    return bool(steps) and len(hops) >= len(steps) and all(h.get("ok") for h in hops)


def _fidelity(cells: list[dict], steps: list[str]) -> dict:
    # value = 1 - conversion rate x parity pass rate. Cells that could not run here (missing_dep,
    # no_device) are left out, except that a conversion they completed still counts as one: leaving
    # them out entirely would keep only the failed conversions of a no_device route (selection bias).
    # vacuous cells, failures of the source model itself (stage reference) and convcheck's own bugs
    # (internal_error) say nothing about the route.
    attempted = converted = ran = passed = stand_in = 0
    ops: set[str] = set()
    static_ops: set[str] = set()
    not_run: Counter = Counter()
    for cell in cells:
        status, err = cell.get("status"), cell.get("error") if isinstance(cell.get("error"), dict) else {}
        if status in ("vacuous", "internal_error") or err.get("stage") == "reference":
            continue
        if status in NOT_RUN:
            not_run[status] += 1
            precheck = cell.get("precheck") if isinstance(cell.get("precheck"), dict) else {}
            static_ops.update(str(op) for op in precheck.get("unsupported") or [])
            if _converted_only(cell, steps):
                attempted, converted = attempted + 1, converted + 1
            continue
        attempted += 1
        if err.get("op"):
            ops.add(str(err["op"]))
        stage = str(err.get("stage") or "")
        if stage.startswith("convert") or stage == "plan":
            continue
        converted, ran, passed = converted + 1, ran + 1, passed + (status == "pass")
        stand_in += verified_by(cell) is not None
    skipped = ", ".join(f"{n} {s}" for s, n in sorted(not_run.items()))
    static = f"; TensorRT/Core ML static checks flag: {', '.join(sorted(static_ops))}" if static_ops else ""
    met = f"; unsupported ops met: {', '.join(sorted(ops))}" if ops else ""
    if attempted == 0:
        why = skipped or "no cells of this route in the run"
        return {"value": NEUTRAL, "measured": False,
                "evidence": f"fidelity: not measured on this host ({why}): counted as neutral {NEUTRAL}{static}"}
    rate_c = converted / attempted
    if ran == 0:
        return {"value": 1 - rate_c * NEUTRAL, "measured": False,
                "evidence": f"fidelity: {converted}/{attempted} cells converted; parity not measured on this host "
                            f"({skipped or 'none ran'}): counted as {NEUTRAL}{met}{static}"}
    failed_convert = attempted - converted
    parts = [f"fidelity: {passed}/{ran + failed_convert} cells passed in this run"]
    if failed_convert:
        parts.append(f" ({failed_convert} failed to convert)")
    if converted > ran:
        parts.append(f"; {converted - ran} more converted but could not run here ({skipped})")
    if stand_in:
        parts.append(f"; {stand_in} of the {ran} run by convcheck's MIL reference executor (the Core ML program's "
                     "semantics, not Apple's runtime)")
    return {"value": 1 - rate_c * passed / ran, "measured": True, "evidence": "".join(parts) + met + static}


def _route_tools(source: str, steps: list[str], runtime: str, data: dict) -> list[str | None]:
    """Tool names the route depends on, in order; None for a hop nothing is known about."""
    tools: list[str | None] = []
    prev = data["source_formats"].get(source) or source
    for step in steps:
        hop = data["hop_tools"].get(f"{prev}>{step}", data["hop_tools"].get(f"*>{step}"))
        tools.extend(hop if hop is not None else [None])
        prev = data["step_formats"].get(step) or step
    tools.extend(data["runtime_tools"].get(runtime, [None]))
    return list(dict.fromkeys(tools))


def _toolchain(source: str, steps: list[str], runtime: str, data: dict) -> dict:
    # Worst tool, for the same reason as format openness: a rebuild needs every tool on the route.
    snapshot = datetime.date.fromisoformat(data["snapshot"]["date"])
    fresh, stale = data["scoring"]["staleness_days"]["fresh"], data["scoring"]["staleness_days"]["stale"]
    rated = []
    for name in _route_tools(source, steps, runtime, data):
        tool = data["tools"].get(name or "")
        if tool is None:
            rated.append((NEUTRAL, f"no data for {'a hop' if name is None else name} of the route: neutral"))
            continue
        days = (snapshot - datetime.date.fromisoformat(tool["released"])).days
        staleness = min(1.0, max(0.0, (days - fresh) / max(1, stale - fresh)))
        deps = tool.get("deprecations") or []
        severity = max((float(d["severity"]) for d in deps), default=0.0)
        text = f"{name} {tool['latest']} released {tool['released']} ({days} days before the snapshot)"
        cadence = tool.get("cadence") or {}  # a refreshed snapshot (convcheck ecosystem refresh) has these
        if cadence.get("releases_last_365_days") is not None:
            text += f", {cadence['releases_last_365_days']} stable releases in the year before it"
        if tool.get("yanked"):
            text += f", yanked: {', '.join(y['version'] for y in tool['yanked'])}"
        text += "".join(f"; {d['what']} (severity {d['severity']})" for d in deps)
        rated.append((max(staleness, severity), text))
    value, worst = max(rated, key=lambda r: r[0])
    others = [text.split(" (")[0] for _, text in rated if text != worst]
    tail = f". Also: {'; '.join(others)}" if others else ""
    return {"value": value, "evidence": f"weakest tool: {worst}{tail} (snapshot {data['snapshot']['date']})"}


def _route_shape(cell: dict, data: dict) -> tuple[str, list[str], str]:
    """source, steps, runtime of a cell; older documents may lack steps, so rebuild them from the id."""
    parts = str(cell.get("route", "")).split("/")
    source = cell.get("source") or parts[0]
    runtime = cell.get("runtime") or parts[-1]
    if isinstance(cell.get("steps"), list):
        return source, [str(s) for s in cell["steps"]], runtime
    # The id appends the runtime unless the last hop has its name (torch/onnx/tvm). So the last part is
    # no hop when it is no step name (ort, eager) or would turn a format into itself (tflite/tflite).
    steps = parts[1:]
    made = data["step_formats"].get(steps[-1]) if steps else None
    before = data["step_formats"].get(steps[-2]) if len(steps) > 1 else data["source_formats"].get(source)
    if steps and (made is None or made == before):
        steps = steps[:-1]
    return source, steps, runtime


def score_document(document: dict, data: dict) -> dict:
    """Score every route of a results.json document, in place; re-scoring replaces the old scores."""
    groups: dict[str, list[dict]] = {}
    for cell in document.get("cells") or []:
        groups.setdefault(str(cell.get("route", "")), []).append(cell)
    routes = {}
    for route_id, cells in groups.items():
        source, steps, runtime = _route_shape(cells[0], data)
        routes[route_id] = score_route(route_id, source, steps, runtime, cells, data)
        for cell in cells:
            cell["lockin"] = copy.deepcopy(routes[route_id])
    document["lockin"] = {
        "data_snapshot": {"date": data["snapshot"]["date"], "sources": list(data["snapshot"].get("sources", []))},
        "weights": {name: float(data["weights"][name]) for name in FACTORS},
        "routes": routes,
    }
    return document
