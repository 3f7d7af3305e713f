"""results.json as JUnit XML (`junit.xml`): one test case per cell, so a CI system shows failures natively.

Layout (the de-facto schema Jenkins, GitLab and GitHub test reporters read):

    <testsuites name="convcheck" tests= failures= errors="0" skipped= time=>
      <testsuite name=MODEL tests= failures= errors="0" skipped= time= timestamp= hostname=>
        <properties> run id, convcheck version, host </properties>
        <testcase classname="convcheck.MODEL" name="ROUTE [DEVICE PRECISION]" time=SUM(stage seconds)>
          <failure message= type=STATUS>details</failure>  |  <skipped message=/>
          <system-out>the cell's log lines</system-out>

Every status in `fail_on` is a <failure>; every other status except `pass` is <skipped> with the status in
its message (by default: `missing_dep` and `no_device`, which are not failures of the route).
Strings from the document may hold anything a converter printed: characters XML 1.0 cannot carry
(NUL, the ESC of a coloured log) are removed first; ElementTree escapes the rest (`<`, `&`, `]]>`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from convcheck.reports.escaping import ANSI, clip
from convcheck.reports.status_groups import default_fail_on
from convcheck.types import Status

__all__ = ["case_name", "cell_seconds", "default_fail_on", "failure_body", "render_junit", "xml_text"]

#: Attribute messages are one line and short (CI tools print them in a list); the body has the rest.
MESSAGE_LIMIT = 300

# Everything outside XML 1.0's Char production: C0 controls but tab/LF/CR, lone surrogates (a JSON
# "\ud800" decodes to one), U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    """Any value as text XML 1.0 can carry."""
    return _NOT_XML.sub("", ANSI.sub("", "" if value is None else str(value)))


def _one_line(value: Any, limit: int = MESSAGE_LIMIT) -> str:
    return clip(" ".join(xml_text(value).split()), limit)


def case_name(cell: dict[str, Any]) -> str:
    """`torch/onnx/ort [cpu fp32]`: always with the target, so names are unique within a model."""
    return f"{cell.get('route', '?')} [{cell.get('device', '?')} {cell.get('precision', '?')}]"


def cell_seconds(cell: dict[str, Any]) -> float:
    """The time the cell spent: its stage seconds added up (stages not reached count nothing)."""
    total = 0.0
    for stage in cell.get("stages") or []:
        seconds = stage.get("seconds") if isinstance(stage, dict) else None
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
            total += float(seconds)
    return total


def _g(x: Any) -> str:
    return "—" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def failure_body(cell: dict[str, Any]) -> str:
    """What a CI reader needs to act on a failed cell without opening results.json."""
    err = cell.get("error") or {}
    lines = [f"status: {cell['status']}",
             f"stage: {err.get('stage', '?')}" + (f" (op {err['op']})" if err.get("op") else ""),
             f"message: {err.get('message', '')}"]
    converters = cell.get("converters") or []
    if converters:
        lines.append(f"converters: {' -> '.join(map(str, converters))}")
    p = cell.get("parity")
    if isinstance(p, dict):
        tol = p.get("tolerance") or {}
        bound = (f"min_snr_db {_g(tol.get('min_snr_db'))}" if tol.get("check") == "snr"
                 else f"atol {_g(tol.get('atol'))} rtol {_g(tol.get('rtol'))}")
        lines.append(f"parity: ok={p.get('ok')} max_abs {_g(p.get('max_abs'))} max_rel {_g(p.get('max_rel'))} "
                     f"cosine {_g(p.get('cosine'))} snr_db {_g(p.get('snr_db'))} (tolerance {bound}; "
                     f"worst sample {_g(p.get('worst_sample'))} of {_g(p.get('samples'))})")
        for name, stats in (p.get("per_output") or {}).items():
            if isinstance(stats, dict) and not stats.get("ok", True):
                lines.append(f"  output {name}: {stats.get('problem') or 'outside tolerance'}")
    loc = cell.get("localization")
    if isinstance(loc, dict):
        summary = loc.get("summary") or (loc.get("reason") and f"not found: {loc['reason']}")
        if summary:
            lines.append(f"localisation: {summary}")
    verdict = (cell.get("precheck") or {}).get("verdict")
    if verdict:
        lines.append(f"static check: {verdict}")
    for warning in cell.get("warnings") or []:
        lines.append(f"warning: {warning}")
    return xml_text("\n".join(lines))


def _properties(parent: ET.Element, run: dict[str, Any]) -> None:
    host = run.get("host") or {}
    props = ET.SubElement(parent, "properties")
    values = [
        ("convcheck.run_id", run.get("id")),
        ("convcheck.version", run.get("convcheck_version")),
        ("host.hostname", host.get("hostname")),
        ("host.cpu", host.get("cpu")),
        ("host.cores", host.get("cores")),
        ("host.gpus", ", ".join(map(str, host.get("gpus") or [])) or "none"),
        ("host.os", host.get("os")),
        ("host.python", host.get("python")),
    ]
    for name, value in values:
        if value is not None:
            ET.SubElement(props, "property", name=name, value=_one_line(value, 1000))


def _testcase(suite: ET.Element, cell: dict[str, Any], model: str, fail_on: set[str]) -> tuple[str, float]:
    """Add one cell; returns how it was reported (failure, skipped or passed) and its seconds."""
    seconds = cell_seconds(cell)
    case = ET.SubElement(suite, "testcase", classname=xml_text(f"convcheck.{model}"),
                         name=xml_text(case_name(cell)), time=f"{seconds:.3f}")
    status = str(cell.get("status"))
    err = cell.get("error") or {}
    if status in fail_on:
        message = f"{status} at {err.get('stage', '?')}: {err.get('message', '')}"
        failure = ET.SubElement(case, "failure", message=_one_line(message), type=xml_text(status))
        failure.text = failure_body(cell)
        outcome = "failure"
    elif status != Status.PASS.value:
        ET.SubElement(case, "skipped", message=_one_line(f"{status}: {err.get('message', status)}"))
        outcome = "skipped"
    else:
        outcome = "passed"
    log = [xml_text(line) for line in cell.get("log") or []]
    log += [xml_text(f"[convcheck warning] {w}") for w in cell.get("warnings") or []]
    if log:
        ET.SubElement(case, "system-out").text = "\n".join(log)
    return outcome, seconds


def render_junit(document: dict[str, Any], fail_on: set[str] | None = None) -> str:
    """junit.xml for one results.json: one <testsuite> per model, one <testcase> per cell."""
    fail_on = default_fail_on() if fail_on is None else set(fail_on)
    run = document.get("run") or {}
    cells = document.get("cells") or []
    root = ET.Element("testsuites", name="convcheck")
    totals = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
    by_model: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        by_model.setdefault(str(cell.get("model")), []).append(cell)
    for model, group in by_model.items():
        suite = ET.SubElement(root, "testsuite", name=xml_text(model))
        _properties(suite, run)
        counts = {"failure": 0, "skipped": 0, "passed": 0}
        seconds = 0.0
        for cell in group:
            outcome, spent = _testcase(suite, cell, model, fail_on)
            counts[outcome] += 1
            seconds += spent  # the exact sum, not the sum of rounded case times
        suite.set("tests", str(len(group)))
        suite.set("failures", str(counts["failure"]))
        suite.set("errors", "0")
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", f"{seconds:.3f}")
        if run.get("started"):
            suite.set("timestamp", xml_text(run["started"]))
        if (run.get("host") or {}).get("hostname"):
            suite.set("hostname", xml_text(run["host"]["hostname"]))
        totals["tests"] += len(group)
        totals["failures"] += counts["failure"]
        totals["skipped"] += counts["skipped"]
        totals["time"] += seconds
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    root.set("time", f"{totals['time']:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
