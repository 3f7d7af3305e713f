"""Running a plan: the planned cells through the cache, the store and an executor, into results.json."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from convcheck.cache import CellCache, cell_key
from convcheck.executors.inline import InlineExecutor
from convcheck.plan import PlannedCell, RunSettings
from convcheck.atomic import write_json_atomic
from convcheck.results import new_run, now_iso, summarize
from convcheck.types import Status


def run_cells(
    cells: list[PlannedCell],
    settings: RunSettings,
    out_dir: Path,
    run_id: str,
    on_cell_start: Callable[[PlannedCell], None] = lambda c: None,
    on_cell_done: Callable[[dict[str, Any]], None] = lambda c: None,
    executor: Any = None,
    cache: CellCache | None = None,
    store: Any = None,
    resume: bool = False,
    invocation: dict[str, Any] | None = None,
    on_env: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every planned cell (in this process unless an executor is given: convcheck.executors);
    results.json is rewritten (atomically) after each one. The toolchain environments the cells need
    are made first (`on_env` hears their progress): a cell's cache key holds its environment's versions."""
    cells, env_failed = with_envs(cells, settings, on_env)
    distributions = sorted({d for c in cells for d in c.route.packages})
    run_settings = {
        "models": sorted({c.spec.name for c in cells}),
        "routes": list(dict.fromkeys(c.route.id for c in cells)),
        "size": settings.size,
        "samples": settings.samples,
        "threads": settings.threads,
        "tolerance_override": settings.tolerance_override,
        "batches": list(settings.batches),
        "latency": asdict(settings.latency),
        "toolchains": list(settings.toolchains),
    }
    if invocation is not None:  # the command and plan options, for `--resume RUN` without them
        run_settings["invocation"] = invocation
    results = new_run(run_id, run_settings, distributions)
    results_path = out_dir / "results.json"
    write_json_atomic(results_path, results)
    done: dict[int, dict[str, Any]] = {}

    def finish(index: int, cell: dict[str, Any]) -> None:
        env = cells[index].env
        if env is not None:
            cell["toolchain"] = env.describe([*cells[index].route.packages, "numpy"])
            for note in (reference_overridden(cells[index], settings), relaxed_note(env, cells[index])):
                if note and note not in cell.get("warnings", []):
                    cell.setdefault("warnings", []).append(note)
        done[index] = cell
        results["cells"] = [done[i] for i in sorted(done)]  # plan order, whatever finished first
        results["summary"] = summarize(results["cells"])
        if store is not None:
            store.record_cell(run_id, cell)
            # results.json is the store's rendering: a resumed run's file holds the cells of both halves.
            write_json_atomic(results_path, _in_plan_order(store.document(run_id), cells))
        else:
            write_json_atomic(results_path, results)
        on_cell_done(cell)

    if store is not None:
        store.begin_run(results["run"])
    # Cells already finished in this run (--resume) or cached from an identical one are not computed.
    previous = store.finished_cells(run_id) if store is not None and resume else {}
    keys = {i: cell_key(p, settings) for i, p in enumerate(cells) if i not in env_failed} if cache is not None else {}
    todo = []
    for index, planned in enumerate(cells):
        if index in env_failed:  # its environment could not be made: missing_dep, never cached
            on_cell_start(planned)
            finish(index, env_failed[index])
            continue
        t = planned.target
        found = previous.get((planned.spec.name, planned.route.id, t.device, t.precision))
        if found is None and cache is not None:
            found = cache.get(keys[index])
            if found is not None:
                found = {**found, "cached": True}
        if found is not None:
            on_cell_start(planned)
            finish(index, found)
        else:
            todo.append(index)
    runner = executor or InlineExecutor(settings)
    for sub_index, cell in runner.run([cells[i] for i in todo], lambda i: on_cell_start(cells[todo[i]])):
        index = todo[sub_index]
        if cache is not None:
            cache.put(keys[index], cell)
            cell["cache_key"] = keys[index]
        finish(index, cell)
    results["run"]["finished"] = now_iso()
    if store is not None:
        store.finish_run(run_id, results["run"]["finished"])
        results = _in_plan_order(store.document(run_id), cells)
    write_json_atomic(results_path, results)
    return results


def with_envs(cells: list[PlannedCell], settings: RunSettings, on_env: Callable[[str], None] | None = None
              ) -> tuple[list[PlannedCell], dict[int, dict[str, Any]]]:
    """The cells with the toolchain environment each runs in (created now where missing), and the
    `missing_dep` cell of each whose environment could not be made, by index."""
    import dataclasses

    from convcheck.cells import skipped_cell
    from convcheck.toolchains import env_for

    by_route = {p.route.id: p.route for p in cells}  # a route's environment is the same for all its cells
    route_specs = {rid: env_for(route, settings.toolchains, load=settings.load is not None)
                   for rid, route in by_route.items()}
    specs = {i: route_specs[p.route.id] for i, p in enumerate(cells)}
    if not any(specs.values()):
        return cells, {}
    from convcheck.envs import EnvCreationError, ensure

    made: dict[str, Any] = {}
    failed: dict[int, dict[str, Any]] = {}
    out = list(cells)
    for index, spec in specs.items():
        if spec is None:
            continue
        digest = spec.digest
        if digest not in made:
            try:
                made[digest] = ensure(spec, on_env)[0]
            except EnvCreationError as exc:
                made[digest] = exc
                if on_env is not None:
                    on_env(f"environment {spec.name} could not be created: {exc}")
        env = made[digest]
        planned = cells[index]
        if isinstance(env, EnvCreationError):
            failed[index] = skipped_cell(
                planned.spec.name, planned.route, planned.target, settings.size, Status.MISSING_DEP,
                f"the toolchain environment {spec.name} ({', '.join(spec.requirements)}) could not be created: {env}",
                "fix the requirement, or `convcheck envs clear` and run again once the index is reachable")
        else:
            out[index] = dataclasses.replace(planned, env=env)
    return out, failed


def reference_overridden(planned: PlannedCell, settings: RunSettings) -> str | None:
    """The warning of a cell whose reference runtime is itself a package `--toolchain` overrides (a user's
    ONNX file judged against ONNX Runtime, with onnxruntime overridden): both sides ran that version."""
    from convcheck.environment import canonical
    from convcheck.registry import runtimes
    from convcheck.toolchains import requirement_name

    reference = settings.reference_runtime(planned.route.source)
    touched = {canonical(d) for r in getattr(runtimes.get(reference), "requires", ()) for d in r.distributions}
    hit = [o for o in planned.env.overrides if requirement_name(o) in touched]
    if not hit:
        return None
    hint = ("; --reference onnx-reference judges the file against the ONNX spec's evaluator instead"
            if planned.route.source.value == "onnx" else "")
    return f"the reference ({reference}) ran with {', '.join(hit)} too: an error both versions share cannot show{hint}"


def relaxed_note(env: Any, planned: PlannedCell) -> str | None:
    """The warning of a cell whose environment could not keep this install's versions of its other packages."""
    if not env.relaxed_because:
        return None
    from convcheck.environment import canonical, package_version

    from convcheck.toolchains import requirement_name

    asked = {requirement_name(o) for o in env.overrides}
    moved = [f"{d} {package_version(d)} -> {env.packages.get(canonical(d))}" for d in [*planned.route.packages, "numpy"]
             if canonical(d) not in asked and package_version(d)
             and env.packages.get(canonical(d)) not in (None, package_version(d))]
    return (f"the environment {env.name} could not keep this install's versions ({env.relaxed_because}); "
            f"it holds {', '.join(dict.fromkeys(moved)) or 'other versions'}: more than the toolchain changed")


def _in_plan_order(document: dict[str, Any], cells: list[PlannedCell]) -> dict[str, Any]:
    """The store keeps cells in the order they finished; results.json lists them as planned."""
    rank = {(p.spec.name, p.route.id, p.target.device, p.target.precision): i for i, p in enumerate(cells)}
    document["cells"].sort(key=lambda c: rank.get((c["model"], c["route"], c["device"], c["precision"]), len(rank)))
    return document


def exit_code(results: dict[str, Any], fail_on: set[str] | None = None) -> int:
    """0: no cell has a status in `fail_on` (default: every failure; missing_dep and no_device are
    stated reasons a cell could not run here, not failures); 1: some cell does."""
    if fail_on is None:
        return 1 if any(Status(c["status"]).is_failure for c in results["cells"]) else 0
    return 1 if any(c["status"] in fail_on for c in results["cells"]) else 0
