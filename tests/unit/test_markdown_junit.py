"""matrix.md, models/<page>.md and junit.xml rendered from results.json documents built here, hostile
strings included: the tables keep their shape, nothing a model names turns into markup, the XML parses."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from typing import Any

import jsonschema
import pytest

from convcheck.reports.junit import default_fail_on, render_junit
from convcheck.reports.markdown import ladder_states, md_escape, render_matrix_md, render_model_md
from convcheck.results import schema, summarize
from convcheck.types import Status

HOSTILE = "a|b<script>alert(1)</script>"
HOSTILE_OUTPUT = "out`put`\nname|*x*"
RUN_ID = "20261125-100000-abcd"


# --- documents -------------------------------------------------------------------------------------


def _stages(*names_ok: tuple[str, bool]) -> list[dict[str, Any]]:
    return [{"stage": name, "ok": ok, "seconds": 0.5} for name, ok in names_ok]


def make_cell(model: str, route: str, status: str = "pass", *, device: str = "cpu", precision: str = "fp32",
              message: str | None = None, stage: str | None = None, op: str | None = None,
              output: str = "logits", log: list[str] | None = None) -> dict[str, Any]:
    """A cell shaped like the pipeline's, for the statuses the tests need."""
    # Hops as the registry names them: every format after the source; ort and eager are runtimes only.
    hops = [h for h in route.split("/")[1:] if h not in ("ort", "eager")]
    ran = status in ("pass", "mismatch", "vacuous")
    convert_stages = [(f"convert:{h}", True) for h in hops]
    if ran:
        stages = _stages(("reference", True), *convert_stages, ("load", True), ("run", True),
                         ("compare", status == "pass"), ("benchmark", True))
    elif status in ("convert_error", "unsupported"):
        failing = stage or f"convert:{hops[-1]}"
        done = [(s, True) for s, _ in convert_stages if s != failing][: len(hops) - 1]
        stages = _stages(("reference", True), *done, (failing, False))
    elif status in ("runtime_error", "crashed", "timeout", "oom"):
        stages = _stages(("reference", True), *convert_stages, ("load", False))
    else:
        stages = []
    error = None if status == "pass" else {
        "kind": status, "message": message or f"{status} in a test",
        "stage": stage or {"mismatch": "compare", "vacuous": "compare", "missing_dep": "plan", "no_device": "plan",
                           "runtime_error": "load", "crashed": "load", "timeout": "load", "oom": "load",
                           "upstream_failed": "plan"}.get(status, f"convert:{hops[-1] if hops else 'x'}"),
        "op": op}
    parity = {
        "ok": status == "pass", "samples": 4, "worst_sample": 1,
        "tolerance": {"atol": 1e-4, "rtol": 1e-3, "check": "elementwise", "min_snr_db": None, "profile": precision},
        "max_abs": 2e-6 if status == "pass" else 0.25, "max_rel": 1e-4, "mean_abs": 1e-6, "rms": 1e-6,
        "cosine": 0.9999, "snr_db": 95.0, "psnr_db": 110.0, "top1_agreement": 1.0, "top5_agreement": None,
        "exact_match": None,
        "noise_floor": {"reference": "torch float64", "max_abs": 3e-7, "per_output": {output: {"max_abs": 3e-7}}},
        "min_passing": {"atol": 2e-6, "rtol": 1e-3, "snr_db": 95.0},
        "per_output": {output: {"shape": [32, 4], "dtype": "float32", "ok": status == "pass",
                                "max_abs": 2e-6 if status == "pass" else 0.25, "max_rel": 1e-4, "cosine": 0.9999,
                                "snr_db": 95.0,
                                **({} if status == "pass" else
                                   {"problem": f"sample 1: max_abs 0.25 <b>{output}</b>"})}},
    } if ran else None
    latency = {"p50": 1.5, "p90": 1.7, "p99": 2.5, "mean": 1.6, "stdev": 0.1, "min": 1.4, "max": 3.0, "n": 400,
               "warmup": 20, "batch": 32, "cv": 0.06, "noisy": False, "threads": 2,
               "timer_overhead_ms": 6e-5} if ran else None
    cell = {
        "model": model, "size": "tiny", "route": route, "source": route.split("/")[0], "steps": hops,
        "converters": [f"{h.title()}Converter" for h in hops], "runtime": route.split("/")[-1], "device": device,
        "precision": precision, "status": status, "error": error, "parity": parity, "latency_ms": latency,
        "timings_s": {"reference": 0.5, "convert": 0.5 if hops else None, "load": 0.5 if ran else None,
                      "first_inference": 0.01 if ran else None},
        "artifact_bytes": 3 * 1024 * 1024 if ran else None,
        "artifacts": [{"hop": h, "converter": f"{h.title()}Converter", "ok": True, "format": h, "seconds": 0.5,
                       "sha256": "ab" * 32, "bytes": 3 * 1024 * 1024, "path": f"/tmp/x/{h}",
                       "metadata": {"opset": 20, "producer": "pytorch 2.13"}} for h in hops] if ran else [],
        "stages": stages, "runtime_settings": {"threads": 2, "providers": ["CPUExecutionProvider"]} if ran else None,
        "memory_mb": {"rss_before_load": 300.0, "rss_after_load": 320.5, "rss_after_run": 321.0,
                      "process_peak_rss": 400.0, "gpu_peak": None} if ran else None,
        "warnings": [], "localization": None, "log": log or [],
    }
    if status == "mismatch":
        cell["localization"] = {"found": True, "method": "ort vs ort (no optimisations)", "node": "/conv1/Conv",
                                "op_type": "Conv", "output": "conv1_out", "max_abs_in": 0.0, "max_abs_out": 0.2,
                                "compared": 12, "seconds": 0.3, "summary": "error starts at Conv /conv1/Conv"}
    return cell


def make_document(cells: list[dict[str, Any]], lockin: bool = False) -> dict[str, Any]:
    doc = {
        "schema_version": 1,
        "run": {"id": RUN_ID, "started": "2026-11-25T10:00:00+00:00", "finished": "2026-11-25T10:05:00+00:00",
                "convcheck_version": "0.1.0",
                "host": {"hostname": "ci-box", "os": "Linux", "python": "3.11.7", "cpu": "Xeon", "cores": 2,
                         "memory_bytes": 8 * 1024 ** 3, "gpus": []},
                "packages": {"numpy": "2.4.6", "torch": "2.13.0+cpu", "onnxruntime": "1.32.0", "onnx": "1.23.2",
                             "apache-tvm": "0.27.0", "openvino": "2026.4.1"},
                "settings": {"models": sorted({c["model"] for c in cells}), "routes": [], "size": "tiny",
                             "samples": 4, "threads": 2}},
        "summary": summarize(cells),
        "cells": cells,
    }
    if lockin:
        factors = {
            "format_openness": {"weight": 2.0, "value": 0.0, "evidence": "ONNX is an open spec"},
            "runtime_diversity": {"weight": 1.0, "value": 0.2, "evidence": "4 runtimes load it"},
            "hardware_diversity": {"weight": 1.0, "value": 0.9, "evidence": "CUDA <only>"},
        }
        score = round(100 * sum(f["weight"] * f["value"] for f in factors.values())
                      / sum(f["weight"] for f in factors.values()), 1)
        doc["lockin"] = {"data_snapshot": {"date": "2026-11-01", "sources": []},
                         "weights": {k: f["weight"] for k, f in factors.items()},
                         "routes": {"torch/onnx/ort": {"score": score, "factors": factors}}}
        for c in cells:
            if c["route"] == "torch/onnx/ort":
                c["lockin"] = doc["lockin"]["routes"]["torch/onnx/ort"]
    return doc


def zoo_document(lockin: bool = False) -> dict[str, Any]:
    """Three models (one with a hostile name) x five routes, every kind of outcome."""
    cells = [
        make_cell("mlp", "torch/onnx/ort"),
        make_cell("mlp", "torch/onnx/tvm", "convert_error", stage="convert:tvm",
                  message="InternalError: shape_of | expects\na tensor", log=["\x1b[31mERROR\x1b[0m bad\x00 byte"]),
        make_cell("mlp", "torch/onnx/ort", "mismatch", precision="fp16"),
        make_cell("mlp", "torch/onnx/tensorrt", "missing_dep", device="cuda",
                  message="tensorrt not installed; pip install 'convcheck[tensorrt]'"),
        make_cell("cnn", "torch/onnx/ort"),
        make_cell("cnn", "torch/onnx/tvm", "unsupported", stage="convert:tvm", op="LSTM",
                  message="op LSTM is not supported"),
        make_cell("cnn", "torch/onnx/ort", "pass", precision="fp16"),
        make_cell("cnn", "torch/onnx/tensorrt", "missing_dep", device="cuda",
                  message="tensorrt not installed; pip install 'convcheck[tensorrt]'"),
        make_cell("cnn", "torch/eager", "no_device", device="cuda", message="no cuda device on this machine"),
        make_cell(HOSTILE, "torch/onnx/ort", "mismatch", output=HOSTILE_OUTPUT,
                  message="out: max_abs 0.25 <script>alert(2)</script> ]]> `rm -rf` | *bold*\nsecond line"),
        make_cell(HOSTILE, "torch/onnx/tvm", "vacuous", message="reference output is constant"),
        make_cell(HOSTILE, "torch/onnx/tensorrt", "missing_dep", device="cuda",
                  message="tensorrt not installed; pip install 'convcheck[tensorrt]'"),
        make_cell(HOSTILE, "torch/eager", "no_device", device="cuda", message="no cuda device on this machine"),
        make_cell(HOSTILE, "torch/onnx/ort", "crashed", precision="fp16", message="worker died (signal 11)"),
    ]
    return make_document(cells, lockin=lockin)


# --- helpers ---------------------------------------------------------------------------------------

_PIPE = re.compile(r"(?<!\\)\|")


def tables(markdown: str) -> list[list[list[str]]]:
    """The GFM tables of a page: rows of cells, split on unescaped pipes (as GFM splits them)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in _PIPE.split(line.strip())[1:-1]])
        elif current:
            found.append(current)
            current = []
    return found


def section(markdown: str, title: str) -> str:
    start = markdown.index(f"## {title}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start: end if end != -1 else None]


def to_html(markdown: str) -> str:
    """Render as a permissive renderer would: raw HTML passed through, GFM tables on."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)


# --- md_escape -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("a|b", r"a\|b"),
    ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
    ("`code` *b* _i_ [l](u) # h", r"\`code\` \*b\* \_i\_ \[l\](u) \# h"),
    ("back\\slash", "back\\\\slash"),
    ("two\nlines\r\nthree", "two lines three"),
    ("\x1b[31mred\x1b[0m\x00", "red"),
    ("- item", r"\- item"),
    ("1. item", r"1\. item"),
    ("&lt;", "&amp;lt;"),
    ("0.054 ms", "0.054 ms"),
])
def test_md_escape_neutralises_markdown_and_html(raw, expected):
    assert md_escape(raw) == expected


def test_md_escape_clips_before_escaping_with_an_ellipsis():
    out = md_escape("x|" * 100, limit=11)
    assert out.endswith("…") and out.count("|") == 5 and out.count("\\|") == 5
    assert md_escape(None) == "—"


# --- matrix.md -------------------------------------------------------------------------------------


def test_matrix_has_one_row_per_route_target_and_one_column_per_model():
    doc = zoo_document()
    md = render_matrix_md(doc)
    matrix = tables(md)[0]
    models = list(dict.fromkeys(c["model"] for c in doc["cells"]))
    header, _, *rows = matrix
    assert len(header) == 1 + len(models)
    assert [r[0] for r in rows] == ["torch/onnx/ort", "torch/onnx/tvm", "torch/onnx/ort \\[cpu fp16\\]",
                                    "torch/onnx/tensorrt \\[cuda fp32\\]", "torch/eager \\[cuda fp32\\]"]
    assert all(len(row) == len(header) for row in matrix), "a string from the document split a row"
    # The mlp column: pass with its p50, convert_error, the mismatch's max_abs, missing_dep.
    assert [row[1] for row in rows] == ["✔ 1.5 ms", "✘ convert\\_error", "✘ max\\_abs 0.25",
                                        "– missing\\_dep", ""]
    assert header[1] == "[mlp](models/mlp.md)"


def test_matrix_renders_as_one_html_table_of_the_same_shape():
    doc = zoo_document()
    html = to_html(render_matrix_md(doc))
    first = html[html.index("<table>"): html.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", first, flags=re.S)
    assert len(rows) == 1 + 5
    assert {len(re.findall(r"<t[hd][ >]", r)) for r in rows} == {1 + 3}


def test_failing_cells_listed_first_worst_kind_first_one_line_each():
    doc = zoo_document()
    md = render_matrix_md(doc)
    assert md.index("## Failures") < md.index("## Could not run here") < md.index("## Legend")
    lines = [ln for ln in section(md, "Failures").splitlines() if ln.startswith("- ")]
    failing = [c for c in doc["cells"] if Status(c["status"]).is_failure]
    assert len(lines) == len(failing) == 6
    statuses = [next(s.value for s in Status if f" {s.value.replace('_', chr(92) + '_')} at " in ln) for ln in lines]
    order = [s.value for s in Status]
    assert statuses == sorted(statuses, key=order.index)  # mismatch before vacuous before convert_error ...
    assert statuses[:2] == ["mismatch", "mismatch"]
    assert "convert\\_error at convert:tvm: InternalError: shape\\_of \\| expects a tensor" in md
    assert "(op LSTM)" in md


def test_could_not_run_here_is_grouped_by_route_not_listed_per_cell():
    md = render_matrix_md(zoo_document())
    lines = [ln for ln in section(md, "Could not run here").splitlines() if ln.startswith("- ")]
    assert len(lines) == 2
    trt = next(ln for ln in lines if "tensorrt" in ln)
    assert "3 cells, 3 models" in trt and "missing\\_dep" in trt and "pip install" in trt
    assert "2 cells" in next(ln for ln in lines if "eager" in ln)


def test_hostile_model_name_is_escaped_everywhere_and_never_markup():
    doc = zoo_document()
    md = render_matrix_md(doc)
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "a\\|b&lt;script&gt;" in md
    html = to_html(md)
    assert "<script" not in html
    assert "alert(1)" in html  # shown as text
    # The link to its page is a safe relative path.
    assert "(models/a_b_script_alert_1___script_.md)" in md


def test_link_parameter_names_the_model_pages():
    md = render_matrix_md(zoo_document(), link=lambda m: f"page-{len(m)}")
    assert "[mlp](models/page-3.md)" in md and "[cnn](models/page-3.md)" in md
    # The HTML report's naming (with its extension) gives the same names to the Markdown pages.
    html_named = render_matrix_md(zoo_document(), link=lambda m: f"{m} x.html")
    assert "[mlp](models/mlp%20x.md)" in html_named


def test_lockin_per_route_with_top_factors_and_a_dash_without():
    with_lockin = render_matrix_md(zoo_document(lockin=True))
    block = section(with_lockin, "Lock-in per route")
    row = next(r for r in tables(block)[0][2:] if r[0] == "torch/onnx/ort")
    assert row[1] == "27.5"  # 100 x (2 x 0 + 1 x 0.2 + 1 x 0.9) / 4
    assert row[2].startswith("hardware\\_diversity 0.90 (w 1)")  # weighs most: 1 x 0.9
    assert "— (this run was not scored for lock-in)" in render_matrix_md(zoo_document())


def test_environment_lists_host_and_package_versions():
    env = section(render_matrix_md(zoo_document()), "Environment")
    assert "- host: ci-box" in env and "- memory: 8.0 GiB" in env and "- gpus: none" in env
    assert ["onnxruntime", "1.32.0"] in tables(env)[0]


def test_unfinished_run_says_so():
    doc = zoo_document()
    doc["run"]["finished"] = None
    assert "**not finished**" in render_matrix_md(doc)


# --- models/<page>.md ------------------------------------------------------------------------------


def test_model_page_ladder_parity_latency_memory_artifacts_versions():
    doc = zoo_document(lockin=True)
    md = render_model_md(doc, "mlp")
    ort = section(md, "✔ torch/onnx/ort — pass")
    assert ("**Stages:** ✔ exported (0.5 s) → ✔ converted (same hop) → ✔ loaded (0.5 s) → ✔ ran (0.5 s) "
            "→ ✔ compared (0.5 s) → ✔ benchmarked (0.5 s)") in ort
    per_output = next(t for t in tables(ort) if t[0][0] == "output")
    assert per_output[0] == ["output", "shape", "dtype", "max_abs", "max_rel", "cosine", "snr_db", "noise floor",
                             "ok", "problem"]
    assert per_output[2][:5] == ["logits", "32×4", "float32", "2e-06", "0.0001"]
    assert "noise floor: source fp32 vs torch float64: max_abs 3e-07" in ort
    latency = next(t for t in tables(ort) if t[0][0] == "p50")
    assert latency[2] == ["1.5 ms", "1.7 ms", "2.5 ms", "1.6 ms", "1.4 ms", "400", "6.0%", "32", "2"]
    assert "320.5 MiB" in ort and "Final artifact: 3.0 MiB." in ort
    assert "opset 20, producer pytorch 2.13" in ort
    assert "- packages: numpy 2.4.6, onnx 1.23.2, onnxruntime 1.32.0, torch 2.13.0+cpu" in ort  # not tvm, openvino
    lockin = next(t for t in tables(ort) if t[0][0] == "factor")
    assert ["hardware\\_diversity", "1", "0.90", "CUDA &lt;only&gt;"] in lockin
    assert "Score 27.5 / 100" in ort
    # The score is per route: the fp16 target points to the fp32 section's breakdown.
    fp16 = section(md, "✘ torch/onnx/ort \\[cpu fp16\\] — mismatch")
    assert "Lock-in: score 27.5 / 100 — the route's breakdown is [above](#torch-onnx-ort-cpu-fp32)." in fp16


def test_tool_versions_come_from_the_cells_packages_by_one_matching_rule():
    cell = make_cell("m", "torch/onnx/tvm")
    cell["packages"] = ["torch", "onnx", "apache-tvm"]
    doc = make_document([cell])
    doc["run"]["packages"].update({"apache-tvm-ffi": "0.1.0", "apache-tvmx": "9", "torchvision": "0.28"})
    versions = section(render_model_md(doc, "m"), "✔ torch/onnx/tvm — pass")
    assert ("- packages: apache-tvm 0.27.0, apache-tvm-ffi 0.1.0, numpy 2.4.6, onnx 1.23.2, torch 2.13.0+cpu"
            in versions)  # not apache-tvmx, torchvision, onnxruntime or openvino
    unknown = make_cell("m", "x/unknown/ort")
    assert "- packages: numpy 2.4.6\n" in render_model_md(make_document([unknown]), "m")


def test_model_page_says_where_a_cell_stopped_and_why():
    doc = zoo_document()
    md = render_model_md(doc, "mlp")
    tvm = section(md, "✘ torch/onnx/tvm — convert\\_error")
    assert ("✔ exported (0.5 s) → ✘ converted (0.5 s) → · loaded → · ran → · compared → · benchmarked"
            in tvm)
    assert "Stopped at **convert:tvm**: InternalError: shape\\_of \\| expects a tensor" in tvm
    assert "- ERROR bad byte" in tvm  # the coloured log line, colour codes and NUL removed
    mismatch = section(md, "✘ torch/onnx/ort \\[cpu fp16\\] — mismatch")
    assert "✘ compared (0.5 s) → ✔ benchmarked" in mismatch
    assert "Failed at **compare** (the later stages still ran)" in mismatch
    assert "**error starts at Conv /conv1/Conv**" in mismatch and "- op_type: Conv" in mismatch
    trt = section(md, "– torch/onnx/tensorrt \\[cuda fp32\\] — missing\\_dep")
    assert "Not run on this machine (missing\\_dep): tensorrt not installed" in trt


def test_ladder_states_for_eager_two_hop_failure_and_a_crash():
    eager = make_cell("m", "torch/eager", "no_device", device="cuda")
    assert [m for _, m, _ in ladder_states(eager)] == ["–", "–", "·", "·", "·", "·"]
    two_hops = make_cell("m", "torch/onnx/openvino/ort", "convert_error", stage="convert:openvino")
    assert [m for _, m, _ in ladder_states(two_hops)] == ["✔", "✘", "·", "·", "·", "·"]
    crashed = make_cell("m", "torch/onnx/ort", "crashed")
    assert [m for _, m, _ in ladder_states(crashed)] == ["✔", "✔", "✘", "·", "·", "·"]


def test_hostile_names_on_the_model_page_keep_every_table_intact():
    md = render_model_md(zoo_document(), HOSTILE)
    assert md.startswith("# a\\|b&lt;script&gt;alert(1)&lt;/script&gt; — convcheck run")
    assert "<script>" not in md and "<b>" not in md
    for table in tables(md):
        assert len({len(row) for row in table}) == 1, table
    per_output = next(t for t in tables(md) if t[0][0] == "output")
    assert per_output[2][0] == "out\\`put\\` name\\|\\*x\\*"  # backticks, newline, pipe, stars all neutral
    html = to_html(md)
    assert "<script" not in html and "<code>" not in html and "<em>x</em>" not in html
    assert "\\]\\]&gt;" in md  # the message's CDATA terminator is just text


def test_documents_without_lockin_parity_latency_or_optional_fields_render():
    bare = {"schema_version": 1, "run": {"id": RUN_ID}, "summary": {},
            "cells": [{"model": "m", "route": "torch/onnx/ort", "status": "pass"},
                      {"model": "m", "route": "torch/onnx/tvm", "status": "convert_error",
                       "error": {"kind": "convert_error", "message": "boom", "stage": "convert:tvm"}},
                      {"model": "m", "route": "keras/tflite", "status": "no_device"}]}
    md = render_matrix_md(bare)
    assert "3 cells: 1 pass, 1 convert\\_error, 1 no\\_device" in md and "✔ pass" in md
    page = render_model_md(bare, "m")
    assert "Parity, latency, memory: — (the converted model did not run)." in page
    assert "Lock-in: — (not scored in this run)." in page
    assert "_No cells for this model" in render_model_md(bare, "absent")
    assert "junit" not in page and ET.fromstring(render_junit(bare).encode()).get("tests") == "3"


def test_full_document_is_schema_valid():
    """The documents these tests render are the documents convcheck writes."""
    doc = zoo_document(lockin=True)
    jsonschema.Draft202012Validator(schema()).validate(doc)


# --- junit.xml -------------------------------------------------------------------------------------


def parse(xml: str) -> ET.Element:
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(xml.encode("utf-8"))


def test_junit_one_suite_per_model_one_case_per_cell_counts_match_statuses():
    doc = zoo_document()
    root = parse(render_junit(doc))
    assert root.tag == "testsuites" and root.get("tests") == str(len(doc["cells"]))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["mlp", "cnn", HOSTILE]
    for suite in suites:
        cells = [c for c in doc["cells"] if c["model"] == suite.get("name")]
        cases = suite.findall("testcase")
        assert len(cases) == len(cells) == int(suite.get("tests"))
        failing = [c for c in cells if Status(c["status"]).is_failure]
        not_here = [c for c in cells if c["status"] in ("missing_dep", "no_device")]
        assert int(suite.get("failures")) == len(failing) == len(suite.findall("testcase/failure"))
        assert int(suite.get("skipped")) == len(not_here) == len(suite.findall("testcase/skipped"))
        assert suite.get("errors") == "0"
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props["convcheck.run_id"] == RUN_ID and props["convcheck.version"] == "0.1.0"
        assert props["host.hostname"] == "ci-box"
        for case, cell in zip(cases, cells):
            assert case.get("classname") == f"convcheck.{cell['model']}"
            assert case.get("name") == f"{cell['route']} [{cell['device']} {cell['precision']}]"
            assert float(case.get("time")) == pytest.approx(0.5 * len(cell["stages"]), abs=1e-3)
    assert int(root.get("failures")) == sum(Status(c["status"]).is_failure for c in doc["cells"])


def test_junit_failure_carries_type_message_and_details():
    root = parse(render_junit(zoo_document()))
    case = root.find("testsuite[@name='mlp']/testcase[@name='torch/onnx/ort [cpu fp16]']")
    failure = case.find("failure")
    assert failure.get("type") == "mismatch"
    assert failure.get("message").startswith("mismatch at compare:")
    assert "parity: ok=False max_abs 0.25" in failure.text and "localisation: error starts at Conv" in failure.text
    skipped = root.find("testsuite[@name='cnn']/testcase[@name='torch/eager [cuda fp32]']/skipped")
    assert skipped.get("message") == "no_device: no cuda device on this machine"


def test_junit_strips_control_characters_and_keeps_hostile_text_as_text():
    doc = zoo_document()
    doc["cells"][0]["log"] = ["\x1b[1;33mWARN\x1b[0m nul\x00 here", "bell\x07 and ]]> and <tag>", "\ud800lone"]
    doc["cells"][0]["model"] = "mlp\x00\x1b"
    root = parse(render_junit(doc))
    out = root.find("testsuite/testcase/system-out").text
    assert out.splitlines() == ["WARN nul here", "bell and ]]> and <tag>", "lone"]
    hostile = root.find(f"testsuite[@name='{HOSTILE}']")
    message = hostile.find("testcase/failure").get("message")
    assert "<script>alert(2)</script> ]]>" in message and "\n" not in message


def test_fail_on_moves_statuses_between_failure_and_skipped():
    doc = zoo_document()
    assert default_fail_on() == {s.value for s in Status if s.is_failure}
    only_mismatch = parse(render_junit(doc, fail_on={"mismatch"}))
    failures = only_mismatch.findall(".//failure")
    assert {f.get("type") for f in failures} == {"mismatch"} and len(failures) == 2
    convert = only_mismatch.find("testsuite[@name='mlp']/testcase[@name='torch/onnx/tvm [cpu fp32]']/skipped")
    assert convert is not None and convert.get("message").startswith("convert_error: ")
    assert only_mismatch.get("skipped") == str(len(doc["cells"]) - 2 - sum(c["status"] == "pass" for c in doc["cells"]))
    strict = parse(render_junit(doc, fail_on=default_fail_on() | {"missing_dep", "no_device"}))
    assert strict.get("skipped") == "0"
    assert strict.get("failures") == str(sum(c["status"] != "pass" for c in doc["cells"]))


def test_junit_does_not_mutate_the_document():
    doc = zoo_document(lockin=True)
    before = copy.deepcopy(doc)
    render_junit(doc)
    render_matrix_md(doc)
    render_model_md(doc, "mlp")
    assert doc == before


def test_batch_sweep_variants_and_static_check_render_on_the_model_page():
    doc = zoo_document()
    cell = doc["cells"][0]
    cell["batches"] = {"per_batch": [{"batch": 1, "latency_ms": {"p50": 0.2}, "throughput_per_s": 5000.0},
                                     {"batch": 8, "error": "built for one shape | <fixed>"}]}
    cell["variants"] = {"untuned": {"parity": {"ok": True, "max_abs": 1e-6}, "latency_ms": {"p50": 3.0}}}
    trt = next(c for c in doc["cells"] if c["model"] == "mlp" and c["status"] == "missing_dep")
    trt["precheck"] = {"ops": {"Gemm": 2}, "unsupported": ["Erfc"], "opset": 20,
                       "verdict": "1 op type is not in TensorRT's list: Erfc"}
    trt["error"]["message"] += " Static check: 1 op type is not in TensorRT's list: Erfc"
    md = render_model_md(doc, "mlp")
    batch = next(t for t in tables(md) if t[0][0] == "batch")
    assert batch[2] == ["1", "0.2 ms", "5000", ""] and batch[3][3] == "built for one shape \\| &lt;fixed&gt;"
    assert ["untuned", "3 ms", "1e-06", "✔"] in next(t for t in tables(md) if t[0][0] == "variant")
    assert "- unsupported ops: Erfc" in md
    # In matrix.md the verdict is taken out of the shared reason and the flagged cell is named.
    line = next(ln for ln in section(render_matrix_md(doc), "Could not run here").splitlines() if "tensorrt" in ln)
    assert ". Static check: 0 of 1 clean; flagged: mlp (cuda fp32)" in line and "3 cells" in line
