"""Does `convcheck check` tell the truth on models whose right answers are known?

The onnx wheel ships backend test models with inputs and expected outputs
(`onnx/backend/test/data/<suite>/`). For every case this benchmark writes the inputs as an .npz, runs
the real CLI

    convcheck check CASE/model.onnx --inputs case.npz --routes onnx/ort,onnx/openvino,onnx/tvm
                    --out DIR --bench-seconds 0.05 --bench-iters 5 --no-cache

(a fresh CONVCHECK_HOME per case under a temporary folder), reads DIR/results.json, and measures:
- judged cells (status pass or mismatch) against cells that reached no verdict, with the reasons
  (status + first 100 characters of the error message) tallied;
- tracebacks: the CLI printed "Traceback", exited with a code other than 0/1/2, or a cell's status is
  `internal_error` / its message says "internal error"; refusals (exit 2) listed apart with the message;
- contradictions with the expected outputs. For each judged cell the converted artifact it records is
  run again here, with convcheck's own runtime classes, on the case inputs, and so is the reference
  the cell records (ORT with optimisations off, or the ONNX spec's evaluator where convcheck fell
  back to it: ORT has no opset-6 kernels for many ops). A route within rtol=atol=1e-3 of the
  expected outputs, or at least as close to them as the reference is (max_abs <= 1.5 x the
  reference's + 1e-7), should pass; otherwise it must not. A pass that must not pass, or a
  mismatch that should pass, is a contradiction.

Layouts: `test_x/model.onnx` + `test_data_set_0/{input,output}_i.pb` (pytorch-converted,
pytorch-operator, simple). `light/` holds flat `light_x.onnx` + `light_x_output_0.pb` and no inputs:
onnx's own backend runner feeds those models `arange(n).reshape(shape) / n` (float32, unknown dims
1), so the same input is rebuilt here; a non-float input is skipped with a counted reason. `real/`
holds only data.json files that point at the `light/` models: skipped, counted. String tensors are
written as numpy str arrays (onnx reads them as object arrays, which an .npz holds only pickled).

    .venv/bin/python benchmarks/oracle.py [--suites simple,light] [--cases PATTERN] [--limit N]
                                          [--jobs 2] [--keep DIR] [--json summary.json]

A full run (every suite, 149 cases, --jobs 2) took 23 minutes on this 2-core machine, shared with
other work; the nine light/ models are a third of it (TVM builds of 224x224 networks).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROUTES = ("onnx/ort", "onnx/openvino", "onnx/tvm")
RTOL = ATOL = 1e-3
#: "At least as close as the reference": a little slack, since a faithful route and the reference
#: differ by reassociated sums on either side of the expected value.
REF_SLACK, REF_FLOOR = 1.5, 1e-7
JUDGED = ("pass", "mismatch")
CASE_TIMEOUT_S = 1800.0  # the CLI's own per-cell --timeout is 1800 s: a case may hold three such cells
EVAL_TIMEOUT_S = 900.0


@dataclass
class Case:
    suite: str
    name: str
    model: Path
    #: One array per non-initializer graph input, in graph order; None when the case is skipped.
    inputs: dict[str, np.ndarray] | None = None
    expected: list[np.ndarray] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


# -- the cases ---------------------------------------------------------------------------------------
def data_root() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data"


def graph_io(model_path: Path) -> tuple[list[Any], list[str]]:
    """The graph's non-initializer inputs (ValueInfoProto, in order) and its output names."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in inits], [o.name for o in model.graph.output]


def load_pb(path: Path) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    arr = numpy_helper.to_array(onnx.load_tensor(str(path)))
    if arr.dtype == object and all(isinstance(x, str) for x in arr.flat):
        # onnx gives string tensors as object arrays, which an .npz holds only pickled (and convcheck
        # loads with allow_pickle=False); numpy's own str dtype is what `--inputs` documents for text.
        arr = arr.astype(str)
    return arr


def folder_case(suite: str, folder: Path) -> Case:
    """`test_x/model.onnx` with `test_data_set_0/input_i.pb` (input i = i-th non-initializer input)."""
    case = Case(suite, folder.name, folder / "model.onnx")
    data = folder / "test_data_set_0"
    if not case.model.is_file():
        case.skip = "no model.onnx"
        return case
    try:
        inputs, case.output_names = graph_io(case.model)
        pbs = sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        outs = sorted(data.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        if not pbs and inputs:
            case.skip = "layout without inputs: no test_data_set_0/input_*.pb"
            return case
        if len(pbs) != len(inputs):
            case.skip = f"{len(pbs)} input .pb files for {len(inputs)} graph inputs"
            return case
        if len(outs) != len(case.output_names):
            case.skip = f"{len(outs)} output .pb files for {len(case.output_names)} graph outputs"
            return case
        case.inputs = {vi.name: load_pb(p) for vi, p in zip(inputs, pbs)}
        case.expected = [load_pb(p) for p in outs]
    except Exception as exc:  # noqa: BLE001 - an unreadable case is a counted skip, not a stop
        case.skip = f"unreadable test data: {type(exc).__name__}: {str(exc)[:80]}"
    return case


def light_case(model: Path) -> Case:
    """`light_x.onnx` + `light_x_output_0.pb`: rebuild the input onnx's runner feeds these models."""
    case = Case("light", model.stem, model)
    try:
        inputs, case.output_names = graph_io(model)
        outs = [model.with_name(f"{model.stem}_output_{i}.pb") for i in range(len(case.output_names))]
        if not all(p.is_file() for p in outs):
            case.skip = "light layout without expected outputs"
            return case
        case.inputs = {}
        for vi in inputs:
            # onnx.backend.test.runner.Runner.generate_dummy_data(random=False): float32 only.
            if vi.type.tensor_type.elem_type != 1:
                case.inputs, case.skip = None, "light layout without inputs, and a non-float input to rebuild"
                return case
            shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
            n = int(np.prod(shape))
            case.inputs[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
        case.expected = [load_pb(p) for p in outs]
    except Exception as exc:  # noqa: BLE001
        case.inputs, case.skip = None, f"unreadable test data: {type(exc).__name__}: {str(exc)[:80]}"
    return case


def discover(root: Path, suites: list[str]) -> list[Case]:
    cases: list[Case] = []
    for suite in suites:
        folder = root / suite
        if not folder.is_dir():
            cases.append(Case(suite, "*", folder, skip="no such suite in this onnx wheel"))
        elif suite == "light":
            cases += [light_case(p) for p in sorted(folder.glob("light_*.onnx"))]
        else:
            for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
                if not (sub / "model.onnx").exists() and (sub / "data.json").exists():
                    # data.json names a light/ model: the same model, already a light/ case.
                    cases.append(Case(suite, sub.name, sub, skip="data.json only: points at a light/ model "
                                                                 "(run there)"))
                else:
                    cases.append(folder_case(suite, sub))
    return cases


# -- one case: the CLI, then the oracle ---------------------------------------------------------------
def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("convcheck")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "convcheck"]


def run_case(case: Case, work: Path) -> dict[str, Any]:
    """Run `convcheck check` on the case, then the oracle on its judged cells. Never raises."""
    folder = work / re.sub(r"[^A-Za-z0-9_.-]", "_", case.id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    npz, out = folder / "case.npz", folder / "out"
    assert case.inputs is not None
    np.savez(npz, **case.inputs)
    np.savez(folder / "expected.npz", **{str(i): a for i, a in enumerate(case.expected)})
    env = dict(os.environ, CONVCHECK_HOME=str(folder / "home"), COLUMNS="200", NO_COLOR="1")
    cmd = [*cli_command(), "check", str(case.model), "--inputs", str(npz), "--routes", ",".join(ROUTES),
           "--out", str(out), "--bench-seconds", "0.05", "--bench-iters", "5", "--no-cache"]
    record: dict[str, Any] = {"case": case.id, "command": " ".join(cmd), "cells": [], "problems": []}
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CASE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, stdout, stderr = None, _text(exc.stdout), _text(exc.stderr)
    record["seconds"], record["rc"] = time.perf_counter() - started, rc
    (folder / "cli.log").write_text(f"$ {' '.join(cmd)}\nrc={rc}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    if rc is None:
        record["problems"].append({"kind": "traceback", "what": f"CLI still running after {CASE_TIMEOUT_S:.0f} s",
                                   "text": _tail(stdout + stderr)})
    elif rc == 2:
        # A refused input: one line on stderr naming the thing and the fix (README, exit codes).
        record["refusal"] = _last_line(stderr) or _last_line(stdout)
    elif rc not in (0, 1):
        record["problems"].append({"kind": "traceback", "what": f"exit code {rc}", "text": _tail(stdout + stderr)})
    if "Traceback" in stdout + stderr:
        record["problems"].append({"kind": "traceback", "what": "the CLI printed a Traceback",
                                   "text": _traceback_excerpt(stdout + stderr)})
    results = out / "results.json"
    if rc in (0, 1):
        try:
            cells = json.loads(results.read_text())["cells"]
        except Exception as exc:  # noqa: BLE001
            record["problems"].append({"kind": "traceback", "what": f"exit {rc} but results.json unreadable",
                                       "text": f"{type(exc).__name__}: {exc}"})
            cells = []
        record["cells"] = [classify_cell(c) for c in cells]
        judged = [(c, r) for c, r in zip(cells, record["cells"]) if r["judged"]]
        if judged:
            evaluate_judged(case, folder, judged, record)
    return record


def classify_cell(cell: dict[str, Any]) -> dict[str, Any]:
    error = cell.get("error") or {}
    message = str(error.get("message") or "")
    parity = cell.get("parity") or {}
    problems = [o.get("problem") for o in (parity.get("per_output") or {}).values() if o.get("problem")]
    return {
        "route": cell.get("route"), "status": cell.get("status"), "judged": cell.get("status") in JUDGED,
        "stage": error.get("stage"), "reason": f"{cell.get('status')}: {message[:100]}",
        "internal": cell.get("status") == "internal_error" or "internal error" in message.lower(),
        "message": message,
        "warnings": list(cell.get("warnings") or []),
        "parity": {"max_abs": parity.get("max_abs"), "snr_db": parity.get("snr_db"),
                   "problem": problems[0] if problems else None} if parity else None,
    }


def evaluate_judged(case: Case, folder: Path, judged: list[tuple[dict, dict]], record: dict[str, Any]) -> None:
    """Run each judged cell's artifact and the reference on the case inputs, in a child process: a
    runtime that crashes must cost this case's oracle, not the benchmark."""
    job = {"model": str(case.model), "inputs": str(folder / "case.npz"), "expected": str(folder / "expected.npz"),
           "output_names": case.output_names,
           "cells": [{"route": c["route"], "runtime": c["runtime"], "device": c.get("device", "cpu"),
                      "precision": c.get("precision", "fp32"), "artifact": (c.get("artifacts") or [None])[-1],
                      # The runtime the cell was compared with: ort_reference, unless convcheck chose
                      # another (onnx_reference where ORT cannot run the file, e.g. opset 6).
                      "reference": c.get("reference") or "ort_reference"}
                     for c, _ in judged]}
    (folder / "oracle_job.json").write_text(json.dumps(job))
    result_path = folder / "oracle_result.json"
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--evaluate",
                               str(folder / "oracle_job.json"), str(result_path)],
                              capture_output=True, text=True, timeout=EVAL_TIMEOUT_S, stdin=subprocess.DEVNULL)
        found = json.loads(result_path.read_text()) if proc.returncode == 0 else None
        failure = None if found else f"oracle exit {proc.returncode}: {_tail(proc.stderr, 400)}"
    except subprocess.TimeoutExpired:
        found, failure = None, f"oracle still running after {EVAL_TIMEOUT_S:.0f} s"
    for i, (_, summary) in enumerate(judged):
        if found is None:
            summary["oracle"] = {"error": failure}
            continue
        mine = found["cells"][i]
        summary["oracle"] = verdict(summary["status"], mine, found["references"][mine["reference"]])
        summary["oracle"]["reference"] = mine["reference"]


def verdict(status: str, route: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Apply the rule: within tolerance of expected, or as close as the reference, should pass."""
    out: dict[str, Any] = {"route_err": route.get("max_abs"), "route_close": route.get("close"),
                           "ref_err": ref.get("max_abs"), "ref_close": ref.get("close"),
                           "route_error": route.get("error"), "ref_error": ref.get("error")}
    if route.get("error"):
        out["expectation"] = "unknown"  # the oracle could not run the route's artifact
        return out
    near_ref = ref.get("max_abs") is not None and route["max_abs"] <= REF_SLACK * ref["max_abs"] + REF_FLOOR
    if route["close"] or near_ref:
        out["expectation"] = "should pass"
    elif ref.get("max_abs") is None:
        out["expectation"] = "unknown"  # outside tolerance, but no reference to say whether it does worse
    else:
        out["expectation"] = "must not pass"
    out["contradiction"] = ((status == "pass" and out["expectation"] == "must not pass")
                            or (status == "mismatch" and out["expectation"] == "should pass"))
    return out


# -- the oracle's child process ------------------------------------------------------------------------
def evaluate(job_path: Path, result_path: Path) -> None:
    """Compare the reference's and each cell's own outputs with the expected outputs."""
    from convcheck.types import Artifact, Format

    job = json.loads(job_path.read_text())
    feeds = dict(np.load(job["inputs"], allow_pickle=False))
    expected_npz = np.load(job["expected"], allow_pickle=False)
    expected = [expected_npz[str(i)] for i in range(len(job["output_names"]))]
    model = Artifact(Format.ONNX, Path(job["model"]))
    result: dict[str, Any] = {"references": {}, "cells": []}
    for name in sorted({c["reference"] for c in job["cells"]}):
        result["references"][name] = outputs_vs_expected(name, "cpu", "fp32", model, feeds, job["output_names"],
                                                         expected)
    for cell in job["cells"]:
        rec = cell["artifact"]
        # onnx/ort has no hop: the route's artifact is the user's model itself (pipeline.source_artifact).
        art = (Artifact(Format(rec["format"]), Path(rec["path"]), rec.get("metadata") or {}) if rec else model)
        found = outputs_vs_expected(cell["runtime"], cell["device"], cell["precision"], art, feeds,
                                    job["output_names"], expected)
        result["cells"].append({**found, "reference": cell["reference"]})
    result_path.write_text(json.dumps(result))


def outputs_vs_expected(runtime_name: str, device: str, precision: str, artifact: Any, feeds: dict[str, np.ndarray],
                        names: list[str], expected: list[np.ndarray]) -> dict[str, Any]:
    from convcheck.registry import runtimes
    from convcheck.types import Target

    try:
        rt = runtimes.get(runtime_name)(Target(runtime_name, device, precision), threads=None)
        rt.activate(artifact)
        try:
            got = rt.infer(feeds)
        finally:
            rt.deactivate()
    except Exception as exc:  # noqa: BLE001 - reported with the cell
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    if all(n in got for n in names):
        actual = [got[n] for n in names]
    elif len(got) == len(names):
        actual = list(got.values())  # names differ (a runtime renamed them): the declared order still holds
    else:
        return {"error": f"outputs {sorted(got)} for expected {names}"}
    errs = [max_abs_and_close(a, e) for a, e in zip(actual, expected)]
    return {"max_abs": max(e for e, _ in errs) if errs else 0.0, "close": all(c for _, c in errs)}


def max_abs_and_close(actual: np.ndarray, expected: np.ndarray) -> tuple[float, bool]:
    """max |a - e| and whether |a - e| <= atol + rtol |e| everywhere; NaN/Inf must match exactly."""
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        return math.inf, False
    if a.dtype.kind in "OUS" or e.dtype.kind in "OUS":
        # Text (StringNormalizer): right or wrong. bytes and str are the same text here.
        text = [[x.decode() if isinstance(x, bytes) else str(x) for x in v.flat] for v in (a, e)]
        return (0.0, True) if text[0] == text[1] else (math.inf, False)
    a, e = a.astype(np.float64), e.astype(np.float64)
    same = (a == e) | (np.isnan(a) & np.isnan(e))  # equal infinities and NaN where NaN is expected
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where one side is infinite: handled below
        diff = np.where(same, 0.0, np.abs(a - e))
        diff = np.where(np.isnan(diff), math.inf, diff)
        close = bool(np.all(same | (diff <= ATOL + RTOL * np.abs(np.where(np.isfinite(e), e, 0.0)))))
    return (float(diff.max()) if diff.size else 0.0), close


# -- text helpers ----------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _tail(text: str, chars: int = 1200) -> str:
    return text[-chars:].strip()


def _traceback_excerpt(text: str) -> str:
    """From the first 'Traceback' to the exception line that ends it."""
    start = text.find("Traceback")
    lines = text[start:].splitlines()
    end = next((i for i, ln in enumerate(lines[1:], 1) if ln and not ln.startswith((" ", "\t"))), len(lines) - 1)
    return "\n".join(lines[: end + 1][-12:])


# -- the summary -----------------------------------------------------------------------------------
def summarise(cases: list[Case], records: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    cells = [(r["case"], c) for r in records for c in r["cells"]]
    judged = [(k, c) for k, c in cells if c["judged"]]
    evaluated = [(k, c) for k, c in judged if "expectation" in (c.get("oracle") or {})]
    # A vacuous cell says "this comparison proves nothing"; the oracle confirms it where the case's own
    # expected outputs are constant too (the light/ models ship with their weights replaced by constants).
    constant = {c.id for c in cases if c.expected and all(np.asarray(e).size and np.all(np.asarray(e) ==
                                                                                          np.asarray(e).flat[0])
                                                          for e in c.expected)}
    vacuous = [(k, c) for k, c in cells if c["status"] == "vacuous"]
    return {
        "cases_found": len(cases),
        "cases_skipped": dict(Counter(c.skip for c in cases if c.skip).most_common()),
        "cases_run": len(records),
        "cli_seconds": round(sum(r["seconds"] for r in records), 1),
        "exit_codes": dict(Counter(str(r["rc"]) for r in records).most_common()),
        "cells": len(cells),
        "statuses": dict(Counter(c["status"] for _, c in cells).most_common()),
        "judged": len(judged),
        "judged_share": round(len(judged) / len(cells), 4) if cells else None,
        "not_judged": len(cells) - len(judged),
        "vacuous_confirmed": sum(1 for k, _ in vacuous if k in constant),
        "vacuous_unconfirmed": [{"case": k, "route": c["route"], "message": c["message"]}
                                for k, c in vacuous if k not in constant],
        "not_judged_by_status_stage": dict(Counter(f"{c['status']} at {c['stage']}" for _, c in cells
                                                   if not c["judged"]).most_common()),
        "not_judged_reasons": dict(Counter(c["reason"] for _, c in cells if not c["judged"]).most_common()),
        "tracebacks": [{"case": r["case"], **p} for r in records for p in r["problems"] if p["kind"] == "traceback"],
        "internal_errors": [{"case": k, "route": c["route"], "status": c["status"], "message": c["message"]}
                            for k, c in cells if c["internal"]],
        "refusals": [{"case": r["case"], "message": r["refusal"]} for r in records if r.get("refusal") is not None],
        "oracle": {
            "evaluated": len(evaluated),
            "expectations": dict(Counter(f"{c['status']}, {c['oracle']['expectation']}" for _, c in evaluated)
                                 .most_common()),
            "errors": [{"case": k, "route": c["route"], **{x: c["oracle"].get(x) for x in
                                                         ("error", "route_error", "ref_error")}}
                       for k, c in judged if (c.get("oracle") or {}).get("error")
                       or (c.get("oracle") or {}).get("route_error")],
            "ref_errors": sorted({f"{k} ({c['oracle']['reference']}: {c['oracle']['ref_error']})" for k, c in judged
                                  if (c.get("oracle") or {}).get("ref_error")}),
        },
        "contradictions": [{"case": k, "route": c["route"], "status": c["status"], "parity": c["parity"],
                            "explained": [w for w in c.get("warnings") or [] if "documented" in w],
                            **{x: c["oracle"][x] for x in ("expectation", "route_err", "route_close", "reference",
                                                           "ref_err", "ref_close")}}
                           for k, c in evaluated if c["oracle"].get("contradiction")],
        "wall_seconds": round(wall, 1),
    }


def print_summary(s: dict[str, Any], top: int) -> None:
    print("\n=== oracle summary")
    print(f"cases found {s['cases_found']}, skipped {sum(s['cases_skipped'].values())}, run {s['cases_run']} "
          f"(exit codes {s['exit_codes']})")
    for reason, n in s["cases_skipped"].items():
        print(f"  skipped {n:4d}  {reason}")
    print(f"cells {s['cells']}: judged {s['judged']} ({100 * (s['judged_share'] or 0):.1f}%), not judged "
          f"{s['not_judged']}   statuses {s['statuses']}")
    print(f"vacuous cells whose expected outputs are constant too (the verdict agrees with the oracle): "
          f"{s['vacuous_confirmed']}; vacuous without that confirmation: {len(s['vacuous_unconfirmed'])}")
    for t in s["vacuous_unconfirmed"]:
        print(f"  {t['case']} {t['route']}: {t['message'][:160]}")
    print("not judged, by status and stage:")
    for key, n in s["not_judged_by_status_stage"].items():
        print(f"  {n:4d}  {key}")
    reasons = s["not_judged_reasons"]
    print(f"not judged, by reason ({len(reasons)} distinct; top {min(top, len(reasons))}):")
    for reason, n in list(reasons.items())[:top]:
        print(f"  {n:4d}  {reason}")
    print(f"tracebacks: {len(s['tracebacks'])}")
    for t in s["tracebacks"]:
        print(f"  {t['case']}: {t['what']}\n    " + t["text"].replace("\n", "\n    "))
    print(f"internal errors: {len(s['internal_errors'])}")
    for t in s["internal_errors"]:
        print(f"  {t['case']} {t['route']} {t['status']}: {t['message'][:200]}")
    print(f"refusals (exit 2): {len(s['refusals'])}")
    for t in s["refusals"]:
        print(f"  {t['case']}: {t['message'][:300]}")
    o = s["oracle"]
    print(f"oracle: {o['evaluated']} judged cells checked against the expected outputs; "
          f"(status, expectation): {o['expectations']}")
    for t in o["errors"]:
        print(f"  oracle could not run {t['case']} {t['route']}: {t['error'] or t['route_error']}")
    if o["ref_errors"]:
        print("  the reference failed on:\n    " + "\n    ".join(o["ref_errors"]))
    print(f"contradictions: {len(s['contradictions'])}")
    for t in s["contradictions"]:
        p = t["parity"] or {}
        print(f"  {t['case']} {t['route']}: {t['status']} but {t['expectation']}; cell max_abs={p.get('max_abs')} "
              f"snr_db={p.get('snr_db')} problem={p.get('problem')}; route vs expected {_fmt(t['route_err'])}"
              f" (within 1e-3: {t['route_close']}), reference ({t['reference']}) vs expected {_fmt(t['ref_err'])}"
              + (f"\n    explained by the cell: {t['explained'][0]}" if t["explained"] else "\n    NOT explained"))
    unexplained = [t for t in s["contradictions"] if not t["explained"]]
    print(f"contradictions the cell does not explain: {len(unexplained)}")
    print(f"wall time {s['wall_seconds']:.0f} s (CLI time summed over cases {s['cli_seconds']:.0f} s)")


def _jsonable(value: Any) -> Any:
    """Strict JSON: an infinite error (a wrong shape) is written as the string "inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="pytorch-converted,pytorch-operator,simple,light,real",
                        help="comma list of folders under onnx/backend/test/data")
    parser.add_argument("--cases", default="", help="only cases whose suite/name contains this")
    parser.add_argument("--limit", type=int, default=0, help="at most this many cases (after --cases)")
    parser.add_argument("--jobs", type=int, default=2, help="CLI processes at once")
    parser.add_argument("--keep", type=Path, help="keep every case's npz, CLI log and output folder here")
    parser.add_argument("--json", type=Path, help="write the summary (and every case's record) here")
    parser.add_argument("--top", type=int, default=40, help="not-judged reasons to print")
    parser.add_argument("--evaluate", nargs=2, type=Path, help=argparse.SUPPRESS)  # the oracle's child process
    args = parser.parse_args()
    if args.evaluate:
        evaluate(*args.evaluate)
        return 0
    try:
        import onnx  # noqa: F401
    except ImportError:
        print("oracle: onnx is not installed (pip install 'convcheck[onnx]'); nothing to check")
        return 0
    root = data_root()
    if not root.is_dir():
        print(f"oracle: this onnx wheel ships no backend test data ({root}); nothing to check")
        return 0
    started = time.perf_counter()
    cases = [c for c in discover(root, args.suites.split(",")) if args.cases in c.id]
    if args.limit:
        cases = cases[: args.limit]
    runnable = [c for c in cases if not c.skip]
    work = args.keep or Path(tempfile.mkdtemp(prefix="convcheck-oracle-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{len(cases)} cases ({len(runnable)} runnable) from {root}, routes {','.join(ROUTES)}, "
          f"--jobs {args.jobs}, work in {work}", flush=True)
    records: list[dict[str, Any]] = []
    try:
        # Threads are enough: each one waits on a `convcheck` process (and then an oracle process).
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            # Biggest models first (TVM compiles dominate: light/densenet121 takes minutes), so that the
            # small cases fill the other slot instead of the slow ones finishing alone at the end.
            order = sorted(runnable, key=lambda c: -c.model.stat().st_size)
            futures = {pool.submit(run_case, c, work): c for c in order}
            for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                rec = fut.result()
                records.append(rec)
                tally = Counter(c["status"] for c in rec["cells"])
                flags = [f"{len(rec['problems'])} problem(s)"] if rec["problems"] else []
                flags += ["refused"] if rec.get("refusal") is not None else []
                flags += ["CONTRADICTION"] if any((c.get("oracle") or {}).get("contradiction")
                                                  for c in rec["cells"]) else []
                print(f"[{i}/{len(runnable)}] {rec['case']}: exit {rec['rc']}, {dict(tally)} "
                      f"{' '.join(flags)} ({rec['seconds']:.1f} s)", flush=True)
                if not args.keep:
                    shutil.rmtree(work / re.sub(r"[^A-Za-z0-9_.-]", "_", rec["case"]), ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    records.sort(key=lambda r: r["case"])
    summary = summarise(cases, records, time.perf_counter() - started)
    print_summary(summary, args.top)
    if args.json:
        args.json.write_text(json.dumps(_jsonable({**summary, "records": records}), indent=1, default=str,
                                        allow_nan=False))
        print(f"summary: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
