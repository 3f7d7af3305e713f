"""The Python API: `convcheck.check(model, example_inputs)`, `convcheck.matrix(...)` (live models, paths,
zoo names: convcheck.api.live), `convcheck.run_matrix(options)`, `convcheck.resume(...)`.

What a run computes is a typed, frozen option object: `MatrixOptions` (zoo models, and your files,
down routes) or `CheckOptions` (one model file of yours). How it runs is `EngineOptions` (executor,
jobs, limits, cache) and what fails it is `ReportOptions` (--fail-on, lock-in weights); both may
differ on a resume, the plan may not. Every option object validates itself when it is made (a
`ConvcheckError` naming the option and the fix) and round-trips through `to_dict()`/`from_dict()`
(JSON-safe, with a version): a run stores its plan options' dict in the run store, and
`resume(run)` replays it, from Python and from `convcheck matrix|check --resume RUN` alike.

A run plans, runs (through the cache, the store and an executor), scores lock-in and writes every
output the CLI writes: results.json, matrix.md, matrix.html, junit.xml, models/*. It prints nothing;
`on_plan`, `on_cell_start` and `on_cell_done` let a caller draw progress. The `convcheck` CLI is a
thin layer over this module (convcheck/cli.py: it parses, calls, prints).

Importing this module imports no ML framework (tests/unit/test_api.py).
"""

from convcheck.api.audit import AuditPlan, AuditResult, audit, finish_audit, plan_audit
from convcheck.api.load import LoadPlan, load, plan_load
from convcheck.api.options import (OPTIONS_VERSION, CheckOptions, EngineOptions, MatrixOptions, PlanOptions,
                                   ReportOptions)
from convcheck.api.run import (CLI_FIELDS, RunInterrupted, RunResult, execute, load_document, options_for_resume,
                               plan_cells, render_run, resume, run_matrix, stored_options)
from convcheck.api.results import ConversionFailures
from convcheck.api.live import check, matrix

#: What check() and matrix() return (the name docs/python.md uses).
Results = RunResult

__all__ = ["AuditPlan", "AuditResult", "audit", "finish_audit", "plan_audit", "LoadPlan", "load", "plan_load", "CLI_FIELDS", "OPTIONS_VERSION", "CheckOptions", "EngineOptions", "MatrixOptions", "PlanOptions", "ReportOptions",
           "RunInterrupted", "RunResult", "Results", "ConversionFailures", "matrix", "check", "execute", "load_document", "options_for_resume", "plan_cells",
           "render_run", "resume", "run_matrix", "stored_options"]
