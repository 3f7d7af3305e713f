"""The options `convcheck matrix`, `check` and `audit` share: declared once, with their help text
(the values are checked by the API's option classes, convcheck.api.options, not here)."""

from __future__ import annotations

import typer

DEVICE_OPT = typer.Option("auto", "--device", help="Comma-separated devices (cpu, cuda), `auto` (the devices "
                          "this machine has) or `all` (cells on absent devices are recorded as no_device).")
PRECISION_OPT = typer.Option("all", "--precision", help="Comma-separated precisions (fp32, fp16, int8), or `all`: "
                             "every precision each route offers (TFLite fp16/int8, TensorRT fp16, Core ML fp16).")
SAMPLES_OPT = typer.Option(4, "--samples", min=1, help="Seeded input samples compared per cell; the worst counts.")
THREADS_OPT = typer.Option(None, "--threads", min=1, help="Intra-op threads for every runtime (default: the "
                           "machine's physical cores, recorded with every figure).")
ATOL_OPT = typer.Option(None, "--atol", min=0.0, help="Judge every output elementwise with this absolute tolerance "
                        "instead of the precision's profile (fp32: elementwise 1e-4/1e-3; fp16, int8: SNR). "
                        "Give --rtol with it.")
RTOL_OPT = typer.Option(None, "--rtol", min=0.0, help="Relative tolerance that goes with --atol.")
EXECUTOR_OPT = typer.Option("local", "--executor", help="local: cells run in worker processes (a crash, hang or "
                            "runaway memory costs one cell, not the run); ray: as tasks on a Ray cluster (--ray-address; "
                            "without one, a local Ray instance); inline: in this process (debugging).")
RAY_ADDRESS_OPT = typer.Option(None, "--ray-address", help="With --executor ray: the cluster to join (e.g. "
                               "ray://head:10001 or auto); default: start a local Ray instance for this run.")
JOBS_OPT = typer.Option(None, "--jobs", min=1, help="Worker processes at once (default: what this machine can take; "
                        "1 here when every runtime already uses all cores).")
TIMEOUT_OPT = typer.Option(1800.0, "--timeout", min=1.0, help="Seconds one cell may take before its worker is stopped "
                           "(status timeout).")
MEMORY_OPT = typer.Option(None, "--memory-limit", min=64.0, help="MiB of resident memory one worker may use before it "
                          "is stopped (status oom; default: 80% of the machine's memory over --jobs).")
NO_CACHE_OPT = typer.Option(False, "--no-cache", help="Compute every cell, ignoring (and not filling) the cell cache.")
RETRY_OPT = typer.Option(False, "--retry-failed", help="Compute again the cells the cache holds as failed.")
RESUME_OPT = typer.Option(None, "--resume", metavar="RUN", help="Finish a killed or interrupted run (its id, a unique "
                          "prefix, or `latest`) with its own models, routes and settings: cells it finished are "
                          "kept, the rest are computed. Engine options (--jobs, --timeout, ...) may change.")
BATCH_OPT = typer.Option(None, "--batch", help="Comma-separated batch sizes, e.g. 1,8,32: latency and throughput "
                         "per batch where the model's batch axis is dynamic.")
BENCH_SECONDS_OPT = typer.Option(1.0, "--bench-seconds", min=0.0, help="Minimum timed duration per cell, after warm-up.")
BENCH_ITERS_OPT = typer.Option(30, "--bench-iters", min=1, help="Minimum timed iterations per cell.")
TVM_TUNE_OPT = typer.Option(0, "--tvm-tune", min=0, metavar="TRIALS",
                            help="MetaSchedule tuning trials for TVM cells (0: untuned). The tuning database is "
                            "cached per model and target; tuned and untuned latency are both recorded.")
TOOLCHAIN_OPT = typer.Option(None, "--toolchain", metavar="PKG==VERSION",
                             help="Upgrade check: run the routes that touch PKG with that version, in a toolchain "
                             "environment of its own (everything else pinned to this install's versions), e.g. "
                             "--toolchain onnxruntime==1.31.0; repeatable. Compare with a run without it by "
                             "`convcheck diff`. torch: only the build on this machine's disk.")
OUT_OPT = typer.Option(None, "--out", help="Output folder (default: runs/<run id>/).")
FAIL_ON_OPT = typer.Option(None, "--fail-on", metavar="STATUS,...", help="Statuses that make the exit code 1 and "
                           "a JUnit <failure>: status names, `failures` (default: mismatch, vacuous, convert_error, "
                           "unsupported, runtime_error, crashed, timeout, oom, upstream_failed, internal_error), `all`, or `none`. "
                           "missing_dep and no_device (could not run here) fail only when named.")
LOCKIN_WEIGHTS_OPT = typer.Option(None, "--lockin-weights", metavar="FILE", help="A JSON file overriding the lock-in "
                                  "score's weights and facts (see convcheck/reports/data/lockin.json).")
MLFLOW_OPT = typer.Option(None, "--mlflow", metavar="[URI]",
                          help="Log one MLflow run per cell (params: model, route, target, package versions; metrics: "
                          "parity, latency, memory, lock-in; tag: status; artifacts: the cell and its model's report) "
                          "in an experiment named after the run. URI: sqlite:///path.db, a folder, or a server; "
                          "alone: $MLFLOW_TRACKING_URI, else ./mlflow.db (`mlflow ui` in this folder shows it). "
                          "Needs mlflow-skinny, sqlalchemy and alembic (the `mlflow` extra of convcheck).")
MAX_ARTIFACT_OPT = typer.Option(20480.0, "--max-artifact-mb", min=0.01, help="A conversion that writes more than "
                                "this many MiB is refused (convert_error) and its output deleted: a model or "
                                "converter must not fill the disk.")
DRY_RUN_OPT = typer.Option(False, "--dry-run", help="Print the plan (cells and the stage tasks they share) and exit "
                           "without running anything.")
