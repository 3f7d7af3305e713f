"""Every TVM cell says how its library was scheduled (untuned / tuned N / reused N), in the terminal
table, matrix.md, matrix.html and the model pages; other cells carry no tag."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from convcheck.reports.cell_view import TVM_LEGEND, headline, tvm_build_text
from convcheck.reports.markdown import render_matrix_md, render_model_md
from convcheck.reports.terminal import render
from tests.unit.test_markdown_junit import make_cell, make_document


def _tvm_cell(model: str, **meta: Any) -> dict[str, Any]:
    cell = make_cell(model, "torch/onnx/tvm")
    cell["artifacts"][-1]["metadata"] = {"pipeline": "parallel-vectorize", "tuned": False, **meta}
    return cell


UNTUNED = {}
TUNED = {"tuned": True, "tune_trials": 2000, "tune_state": "tuned", "tune_kernels": 20, "tune_kernels_reused": 0,
         "tune_trials_run": 2010, "tune_seconds": 1500.0}
REUSED = {**TUNED, "tune_state": "reused", "tune_reused": True, "tune_kernels_reused": 20, "tune_seconds": 0.2}


def test_headline_tags_tvm_cells_only():
    assert headline(_tvm_cell("a", **UNTUNED)) == "1.5 ms untuned"
    assert headline(_tvm_cell("a", **TUNED)) == "1.5 ms tuned 2000"
    assert headline(_tvm_cell("a", **REUSED)) == "1.5 ms reused 2000"
    assert headline(make_cell("a", "torch/onnx/ort")) == "1.5 ms"
    slow = _tvm_cell("a")
    slow["latency_ms"]["p50"] = 2288.0
    assert headline(slow) == "2.29 s untuned"  # seconds past 1000 ms, not 2.29e+03 ms


def test_build_sentences_name_the_state_and_budget():
    assert "untuned" in tvm_build_text(_tvm_cell("a")) and "--tvm-tune" in tvm_build_text(_tvm_cell("a"))
    assert "2000 trials" in tvm_build_text(_tvm_cell("a", **TUNED))
    assert "2010 candidates measured" in tvm_build_text(_tvm_cell("a", **TUNED))
    assert "records reused" in tvm_build_text(_tvm_cell("a", **REUSED))
    skipped = tvm_build_text(_tvm_cell("a", tune_skipped="no cuda device to time candidates on"))
    assert skipped.startswith("untuned") and "no cuda device" in skipped
    assert tvm_build_text(make_cell("a", "torch/onnx/ort")) is None


def test_kernels_that_kept_the_default_schedule_are_said():
    kept = {**TUNED, "tune_kept_default": ["fused_conv2d_add_relu", "mean"], "tune_compared_kernels": 20}
    assert "2 of 20 kernels kept the default schedule" in tvm_build_text(_tvm_cell("a", **kept))
    assert "kept the default" not in tvm_build_text(_tvm_cell("a", **TUNED))


def test_every_matrix_rendering_carries_the_tag_and_legend(tmp_path):
    from convcheck.reports.html import write_html_reports

    doc = make_document([_tvm_cell("m1"), _tvm_cell("m2", **TUNED), make_cell("m1", "torch/onnx/ort")])
    md = render_matrix_md(doc)
    assert "untuned" in md and "tuned 2000" in md and TVM_LEGEND.split(":")[0] in md

    out = io.StringIO()
    render(doc, Console(file=out, width=200))
    text = out.getvalue()
    assert "untuned" in text and "tuned 2000" in text and "tuning-free" in text

    write_html_reports(doc, tmp_path)
    html = (tmp_path / "matrix.html").read_text()
    assert "untuned" in html and "tuned 2000" in html and "tuning-free schedules" in html

    page = render_model_md(doc, "m2")
    assert "TVM build: tuned with MetaSchedule, 2000 trials" in page


def test_no_tvm_cell_no_legend():
    doc = make_document([make_cell("m1", "torch/onnx/ort")])
    assert "tuning-free" not in render_matrix_md(doc)
