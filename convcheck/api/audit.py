"""`convcheck.audit(...)`: a portability audit of one model for a deployment target, from Python.

An audit is a run of the routes a deployment profile means (reports/data/deploy_profiles.json, plus
the runtimes that name the profile in `Runtime.deploy_profiles`), then the audit's decision engine
(convcheck.reports.audit) over its results: a primary route, a fallback, and what would change the
choice. `plan_audit` and `finish_audit` are the two halves, for a caller that runs the cells itself
(the CLI, to draw its progress bar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from convcheck.api.options import CheckOptions, EngineOptions, MatrixOptions, PathLike, PlanOptions, ReportOptions
from convcheck.api.run import CellDone, CellStart, RunResult, execute
from convcheck.errors import ConvcheckError


@dataclass(frozen=True)
class AuditPlan:
    options: PlanOptions
    spec: Any  # convcheck.model_spec.ModelSpec
    profile: dict[str, Any]
    deploy: str
    #: The decision memo's inputs: weighted criteria (audit_criteria.Criterion; None: the ranking rule),
    #: the cost-of-ownership horizon, the traffic's yearly growth and the user's migration cost estimate.
    criteria: Optional[list[Any]] = None
    horizon_years: float = 3.0
    growth: float = 0.0
    migration_cost: Optional[float] = None


@dataclass(frozen=True)
class AuditResult:
    run: RunResult
    audit: dict[str, Any]  # audit.json
    files: dict[str, Path] = field(default_factory=dict)  # audit.json, audit.md, audit.html

    @property
    def primary(self) -> Optional[dict[str, Any]]:
        return self.audit["recommendation"].get("primary")

    @property
    def fallback(self) -> Optional[dict[str, Any]]:
        return self.audit["recommendation"].get("fallback")

    @property
    def exit_code(self) -> int:
        """0 when a route is recommended, 1 when none can be (as `convcheck audit` exits)."""
        return 0 if self.primary else 1


def plan_audit(model: str, deploy: str, *, size: str = "full", input_specs: Iterable[str] = (),
               input_data: PathLike | None = None, out: PathLike | None = None, samples: int = 4,
               threads: int | None = None, bench_seconds: float = 1.0, bench_iters: int = 30,
               latency_budget_ms: float | None = None, traffic: float | None = None,
               price_per_hour: float | None = None, load_duration_s: float = 5.0,
               capacity_trials: int = 6, criteria: PathLike | None = None, horizon_years: float = 3.0,
               growth: float = 0.0, migration_cost: float | None = None) -> AuditPlan:
    """The run an audit needs: `model` is a zoo model name or a model file as `check` takes it.

    With a latency budget and traffic (or a price), every passing cell is also served under MLPerf
    LoadGen: the Server scenario at the traffic, with p99 held to the budget, decides eligibility, and
    the highest QPS that keeps p99 within the budget (the capacity search) gives instances and cost."""
    from fnmatch import fnmatch

    from convcheck.registry import models as zoo
    from convcheck.reports.audit import profile as deploy_profile
    from convcheck.routes import enumerate_routes, given_routes

    prof = deploy_profile(deploy)
    weighted = None
    if criteria is not None:  # a bad criteria file is a usage error before any cell runs
        from convcheck.reports.audit_criteria import load_criteria

        weighted = load_criteria(criteria)
    for name, value, low, strict in (("horizon-years", horizon_years, 0.0, True), ("growth", growth, -0.99, False),
                                     ("migration-cost", migration_cost, 0.0, False)):
        if value is None:
            continue
        number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        if not number or (value <= low if strict else value < low):
            raise ConvcheckError(f"--{name} {value!r}: give a number {'over' if strict else 'at least'} {low:g}"
                                 + (" (a yearly rate: 0.2 is 20%)" if name == "growth" else ""))
    if size not in ("full", "tiny"):
        raise ConvcheckError(f"unknown size {size!r}: use full or tiny")
    input_specs = tuple(input_specs or ())
    if model in zoo.names() and not Path(model).exists():
        spec = zoo.get(model)
        if input_specs or input_data:
            raise ConvcheckError("--input/--inputs are for your own model files; zoo models bring their inputs")
        cls: type = MatrixOptions
        what: dict[str, Any] = {"models": (model,), "size": size}
    else:
        from convcheck.zoo.user_files import spec_for_model

        spec = spec_for_model(model, list(input_specs), Path(input_data) if input_data else None)
        cls, what = CheckOptions, {"model": model, "input_specs": input_specs, "input_data": input_data}
    candidates = [r for r in [*given_routes(spec), *enumerate_routes()]  # type: ignore[attr-defined]
                  if r.source in spec.sources and any(fnmatch(r.id, pattern) for pattern in prof["routes"])]
    if not candidates:
        raise ConvcheckError(f"no route of the {deploy} profile starts from {spec.name}'s formats "  # type: ignore[attr-defined]
                             f"({', '.join(f.value for f in spec.sources)})")  # type: ignore[attr-defined]
    load = None
    if latency_budget_ms is not None and (traffic or price_per_hour is not None):
        from convcheck.validate.loadgen import LoadSettings

        load = LoadSettings(scenarios=("server",) if traffic else (), target_rows_per_s=traffic or None,
                            latency_bound_ms=latency_budget_ms, duration_s=load_duration_s,
                            capacity_trials=capacity_trials).to_dict()
    options = cls(**what, routes=[r.id for r in candidates], devices=prof["devices"], precisions=prof["precisions"],
                  out=out, samples=samples, threads=threads, bench_seconds=bench_seconds, bench_iters=bench_iters,
                  load=load)
    return AuditPlan(options, spec, prof, deploy, weighted, float(horizon_years), float(growth),
                     None if migration_cost is None else float(migration_cost))


def finish_audit(run: RunResult, plan: AuditPlan, latency_budget_ms: float | None = None,
                 price_per_hour: float | None = None, traffic: float | None = None) -> AuditResult:
    """The decision over a finished run, written beside its reports (audit.json, .md, .html)."""
    from convcheck.atomic import write_text_atomic
    from convcheck.reports.audit import build_audit, render_audit_html, render_audit_md
    from convcheck.atomic import write_json_atomic

    found = build_audit(run.results, plan.spec.name, plan.profile, latency_budget_ms, price_per_hour, traffic,
                        criteria=plan.criteria, horizon_years=plan.horizon_years, growth_per_year=plan.growth,
                        migration_cost_usd=plan.migration_cost)
    files = {name: run.out_dir / name for name in ("audit.json", "audit.md", "audit.html")}
    write_json_atomic(files["audit.json"], found)
    write_text_atomic(files["audit.md"], render_audit_md(found))
    write_text_atomic(files["audit.html"], render_audit_html(found))
    if run.tracking is not None:  # --mlflow: the decision beside the cells it was made from
        from convcheck.tracking import log_files

        primary = (found.get("recommendation") or {}).get("primary") or {}
        log_files(run.tracking, f"audit {plan.spec.name} for {plan.deploy}", list(files.values()),
                  {"convcheck.audit": plan.deploy, "recommended": str(primary.get("id") or "none")})
    return AuditResult(run, found, files)


def audit(model: str, deploy: str, *, latency_budget_ms: float | None = None, price_per_hour: float | None = None,
          traffic: float | None = None, engine: EngineOptions | None = None, lockin_weights: PathLike | None = None,
          mlflow: str | None = None,
          on_plan: Callable[[list[Any]], None] | None = None, on_cell_start: CellStart | None = None,
          on_cell_done: CellDone | None = None, **plan_options: Any) -> AuditResult:
    """Audit `model` (a zoo name or your file) for `deploy` (cpu-server, nvidia-gpu, apple, mobile,
    edge-cpu): run its routes, then recommend. `plan_options` are plan_audit's (size, input_specs,
    input_data, out, samples, threads, bench_seconds, bench_iters, load_duration_s, capacity_trials,
    criteria, horizon_years, growth, migration_cost)."""
    plan = plan_audit(model, deploy, latency_budget_ms=latency_budget_ms, traffic=traffic,
                      price_per_hour=price_per_hour, **plan_options)
    run = execute(plan.options, engine, ReportOptions(fail_on="none", lockin_weights=lockin_weights, mlflow=mlflow),
                  command="audit", specs=[plan.spec], extra={"deploy": deploy}, on_plan=on_plan,
                  on_cell_start=on_cell_start, on_cell_done=on_cell_done)
    return finish_audit(run, plan, latency_budget_ms, price_per_hour, traffic)
