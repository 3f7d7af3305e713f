"""`convcheck audit`'s decision logic and renderers, on results documents built here.

Each test states a piece of evidence and checks the recommendation follows from it: the lowest
lock-in passing route within budget wins, failures and over-budget routes are never primary, the
fallback is on another runtime, unverified cells are never recommended, cost is computed right,
and strings from the document are escaped in every output format.
"""

from __future__ import annotations

import json
import math

import pytest

from convcheck.errors import ConvcheckError
from convcheck.reports import audit as A

CPU = A.profile("cpu-server")


def lockin(score: float) -> dict:
    """A lock-in block as convcheck.reports.lockin writes it: score reproducible from the factors."""
    v = score / 100
    return {"score": score, "factors": {"format_openness": {"weight": 0.5, "value": v, "evidence": "open format"},
                                        "reversibility": {"weight": 0.5, "value": v, "evidence": "can go back"}}}


def cell(route: str, status: str = "pass", *, runtime: str | None = None, device: str = "cpu",
         precision: str = "fp32", p50: float = 1.0, p99: float | None = None, batch: int = 1,
         score: float | None = None, model: str = "m", max_abs: float = 1e-7, snr: float = 120.0,
         message: str = "") -> dict:
    """One cell of results.json; only what the audit reads."""
    ran = status not in ("missing_dep", "no_device")
    c = {"model": model, "size": "full", "route": route, "source": route.split("/")[0],
         "runtime": runtime or route.split("/")[-1], "device": device, "precision": precision, "status": status,
         "error": None if status == "pass" else {"kind": status, "message": message or f"{status} happened",
                                                "stage": "run", "op": None},
         "parity": None, "latency_ms": None, "artifact_bytes": 1000}
    if ran and status not in ("convert_error", "unsupported"):
        check = "elementwise" if precision == "fp32" else "snr"
        c["parity"] = {"ok": status == "pass", "max_abs": max_abs, "snr_db": snr, "cosine": 0.999999,
                       "tolerance": {"profile": precision, "check": check, "atol": 1e-4, "rtol": 1e-3,
                                     "min_snr_db": None if check == "elementwise" else 20.0}}
        c["latency_ms"] = {"p50": p50, "p99": p99 if p99 is not None else p50 * 1.2, "batch": batch,
                           "threads": 2, "cv": 0.02, "noisy": False}
    if score is not None:
        c["lockin"] = lockin(score)
    return c


def doc(*cells: dict) -> dict:
    return {"schema_version": 1,
            "run": {"id": "r1", "finished": "2026-11-25T01:00:00+00:00", "convcheck_version": "0.1.0",
                    "host": {"cpu": "Test CPU", "cores": 2, "os": "Linux 6.1", "gpus": []},
                    "settings": {"size": "full"}},
            "cells": list(cells)}


def audit(document: dict, budget: float | None = None, price: float | None = None, traffic: float | None = None,
          prof: dict = CPU, model: str = "m") -> dict:
    return A.build_audit(document, model, prof, budget, price, traffic)


def primary_id(a: dict) -> str | None:
    p = a["recommendation"]["primary"]
    return p and p["id"]


def fallback_id(a: dict) -> str | None:
    f = a["recommendation"]["fallback"]
    return f and f["id"]


def test_lowest_lockin_passing_route_within_budget_wins() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=10, p50=5.0),
                  cell("torch/onnx/openvino", score=50, p50=1.0),
                  cell("torch/onnx/tvm", score=30, p50=2.0)), budget=50)
    assert primary_id(a) == "torch/onnx/ort [cpu fp32]"
    # the trail records why: the lock-in step dropped the faster routes
    step = a["recommendation"]["trail"][0]
    assert step["criterion"] == "lockin" and "torch/onnx/openvino [cpu fp32]" in step["dropped"]
    # the what-if says what speed would buy
    assert any(t["kind"] == "speed" and "torch/onnx/openvino" in t["effect"] for t in a["triggers"])


def test_lockin_near_tie_is_broken_by_latency() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=10, p50=5.0), cell("torch/openvino", score=13, p50=1.0)))
    assert primary_id(a) == "torch/openvino [cpu fp32]"  # within 5 points: speed decides
    assert any(t["kind"] == "lock-in" and "torch/onnx/ort" in t["effect"] for t in a["triggers"])


def test_faster_mismatching_route_is_not_recommended() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=30, p50=5.0),
                  cell("torch/onnx/openvino", "mismatch", score=0, p50=0.1, max_abs=0.5)))
    assert primary_id(a) == "torch/onnx/ort [cpu fp32]"
    assert fallback_id(a) is None
    bad = next(c for c in a["candidates"] if c["route"] == "torch/onnx/openvino")
    assert bad["verified"] and not bad["eligible"] and bad["parity"]["verdict"] == "fail"
    md = A.render_audit_md(a)
    assert "Failed here (never recommended)" in md and "torch/onnx/openvino" in md.split("Failed here")[1]


def test_over_budget_route_is_not_primary() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=0, p50=60.0, p99=80.0),
                  cell("torch/onnx/tvm", score=40, p50=10.0, p99=20.0)), budget=50)
    assert primary_id(a) == "torch/onnx/tvm [cpu fp32]"
    ort = next(c for c in a["candidates"] if c["route"] == "torch/onnx/ort")
    assert not ort["eligible"] and "over budget" in ort["ineligible_reason"]
    assert ort["latency"]["within_budget"] is False
    # it is still the fallback, with the caveat that it is over the budget
    assert fallback_id(a) == "torch/onnx/ort [cpu fp32]"
    assert "over the latency budget" in a["recommendation"]["fallback"]["caveat"]
    # and the budget at which the choice flips is named from the evidence
    assert any(t["condition"] == "the latency budget rises to 80.0 ms" and "torch/onnx/ort" in t["effect"]
               for t in a["triggers"])


def test_fallback_uses_another_runtime() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=0, p50=1.0),
                  cell("torch/onnx_legacy/ort", score=2, p50=1.0),  # ranks second, but shares ort
                  cell("torch/onnx/tvm", score=40, p50=3.0)))
    assert primary_id(a) == "torch/onnx/ort [cpu fp32]"
    assert fallback_id(a) == "torch/onnx/tvm [cpu fp32]"
    assert a["recommendation"]["fallback"]["caveat"] == ""


def test_fallback_on_the_same_runtime_carries_the_caveat() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=0), cell("torch/onnx_legacy/ort", score=2),
                  cell("torch/onnx/tvm", "missing_dep", score=40)))
    assert fallback_id(a) == "torch/onnx_legacy/ort [cpu fp32]"
    caveat = a["recommendation"]["fallback"]["caveat"]
    assert "same runtime" in caveat and "torch/onnx/tvm" in caveat  # says why no other runtime


def test_unverified_cells_are_listed_and_never_recommended() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=30, p50=2.0),
                  cell("torch/onnx/openvino", "no_device", score=0, message="no cuda device on this machine"),
                  cell("torch/onnx/tvm", "missing_dep", score=0,
                       message="tvm not installed; pip install 'convcheck[tvm]'")))
    assert primary_id(a) == "torch/onnx/ort [cpu fp32]"
    assert fallback_id(a) is None
    assert [c["route"] for c in a["candidates"]] == ["torch/onnx/ort"]
    unverified = {c["route"]: c for c in a["unverified"]}
    assert set(unverified) == {"torch/onnx/openvino", "torch/onnx/tvm"}
    assert not any(c["eligible"] for c in unverified.values())
    assert unverified["torch/onnx/tvm"]["needs"] == "pip install 'convcheck[tvm]'"
    assert any(t["kind"] == "unverified" and "torch/onnx/tvm" in t["effect"] for t in a["triggers"])
    md = A.render_audit_md(a)
    assert "torch/onnx/tvm" in md.split("## Unverified here")[1]


def test_only_unverified_gives_no_recommendation() -> None:
    a = audit(doc(cell("torch/onnx/tensorrt", "missing_dep", device="cuda", score=0)),
              prof=A.profile("nvidia-gpu"))
    rec = a["recommendation"]
    assert rec["primary"] is None and rec["fallback"] is None
    assert "unverified" in rec["none_reason"]
    assert a["unverified"][0]["needs"].startswith("an NVIDIA GPU (CUDA)")
    assert "No recommendation" in A.render_audit_md(a)


def test_nothing_passing_gives_no_recommendation_with_what_failed() -> None:
    a = audit(doc(cell("torch/onnx/ort", "mismatch", score=0, message="logits: max_abs 3 exceeds atol"),
                  cell("torch/onnx/tvm", "unsupported", score=10, message="op LSTM is not supported")))
    rec = a["recommendation"]
    assert rec["primary"] is None
    assert "torch/onnx/ort [cpu fp32]: mismatch: logits: max_abs 3 exceeds atol" in rec["none_reason"]
    assert "op LSTM is not supported" in rec["none_reason"]


def test_everything_over_budget_names_the_fastest() -> None:
    a = audit(doc(cell("torch/onnx/ort", p50=90, p99=120), cell("torch/onnx/tvm", p50=70, p99=100)), budget=50)
    assert a["recommendation"]["primary"] is None
    assert "torch/onnx/tvm [cpu fp32]" in a["recommendation"]["none_reason"]
    assert "100" in a["recommendation"]["none_reason"]


def test_cost_per_million_and_instances() -> None:
    # 8 rows per call at p50 2 ms: 4000 inferences/s; $0.36/h -> $0.0001/s -> $0.025 per million
    a = audit(doc(cell("torch/onnx/ort", p50=2.0, batch=8, score=0)), price=0.36, traffic=10_000)
    c = a["candidates"][0]
    assert c["throughput"]["per_s"] == pytest.approx(4000.0)
    assert c["cost"]["per_million_usd"] == pytest.approx(0.36 / 3600 / 4000 * 1e6) == pytest.approx(0.025)
    assert c["cost"]["instances"] == 3  # ceil(10000 / 4000)
    assert c["cost"]["monthly_usd"] == pytest.approx(3 * 0.36 * 730)
    assert "one process per instance" in a["pricing"]["assumption"]
    md = A.render_audit_md(a)
    assert "$0.025" in md


def test_throughput_from_batch_sweep_respects_the_budget() -> None:
    c = cell("torch/onnx/ort", p50=1.0, batch=1)
    c["batches"] = {"per_batch": [
        {"batch": 1, "latency_ms": {"p50": 1.0, "p99": 1.5}, "throughput_per_s": 1000.0},
        {"batch": 8, "latency_ms": {"p50": 4.0, "p99": 5.0}, "throughput_per_s": 2000.0},
        {"batch": 64, "latency_ms": {"p50": 20.0, "p99": 30.0}, "throughput_per_s": 3200.0},
        {"batch": 128, "error": "fixed shape"}]}
    a = audit(doc(c), budget=10, price=1.0)
    tput = a["candidates"][0]["throughput"]
    assert tput["batch"] == 8 and tput["per_s"] == 2000.0  # batch 64 is faster but over the 10 ms budget


def test_fp32_preferred_until_the_budget_needs_int8() -> None:
    edge = A.profile("edge-cpu")
    cells = (cell("keras/tflite", precision="fp32", p50=4.0, p99=5.0, score=20),
             cell("keras/tflite", precision="int8", p50=1.0, p99=1.5, score=20, snr=30.0, max_abs=0.04))
    relaxed = audit(doc(*cells), budget=50, prof=edge)
    assert primary_id(relaxed) == "keras/tflite [cpu fp32]"
    assert any(t["kind"] == "precision" and "int8" in t["effect"] for t in relaxed["triggers"])
    tight = audit(doc(*cells), budget=2, prof=edge)
    assert primary_id(tight) == "keras/tflite [cpu int8]"
    back = [t for t in tight["triggers"] if t["kind"] == "precision"]
    assert back and "5.00 ms" in back[0]["effect"]  # what fp32 would need


def test_fallback_and_what_ifs_stay_with_the_primarys_source() -> None:
    a = audit(doc(cell("torch/onnx/ort", score=0), cell("keras/onnx/tvm", score=30)))
    assert primary_id(a) == "torch/onnx/ort [cpu fp32]"
    assert fallback_id(a) is None  # a keras route needs another model file: no fallback for this one
    assert any(t["kind"] == "source" and "keras/onnx/tvm" in t["effect"] for t in a["triggers"])


def test_without_lockin_the_criterion_is_skipped_and_said() -> None:
    a = audit(doc(cell("torch/onnx/ort", p50=5.0), cell("torch/onnx/tvm", p50=1.0)))
    assert primary_id(a) == "torch/onnx/tvm [cpu fp32]"
    assert not a["lockin"]["scored"] and "not scored" in a["lockin"]["note"]
    assert "skipped" in a["recommendation"]["trail"][0]["note"]
    assert "not scored" in A.render_audit_md(a)


def test_near_budget_trigger() -> None:
    a = audit(doc(cell("torch/onnx/ort", p50=40, p99=48, score=0), cell("torch/onnx/tvm", p50=20, p99=30,
                                                                        score=40)), budget=50)
    assert primary_id(a) == "torch/onnx/ort [cpu fp32]"
    assert any(t["kind"] == "margin" and "96" in t["condition"] for t in a["triggers"])


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(ConvcheckError) as err:
        A.profile("toaster")
    message = str(err.value)
    assert "\n" not in message and "toaster" in message
    for name in ("cpu-server", "nvidia-gpu", "apple", "mobile"):
        assert name in message


def test_unknown_model_is_a_usage_error() -> None:
    with pytest.raises(ConvcheckError, match="no cells for model 'other'"):
        audit(doc(cell("torch/onnx/ort")), model="other")


def test_profiles_are_complete_data() -> None:
    profiles = A.load_profiles()
    assert {"cpu-server", "nvidia-gpu", "apple", "mobile"} <= set(profiles)
    for name, prof in profiles.items():
        assert prof["name"] == name and prof["why"] and prof["description"]
        assert prof["routes"] and prof["devices"] and prof["precisions"]
        assert set(prof["rank_by"]) <= set(A.CRITERIA), name
        assert all(p["reason"] for p in prof["preferences"])
    assert A._matches({"route": "torch/onnx/ort", "device": "cpu", "precision": "fp32"}, profiles["cpu-server"])
    assert not A._matches({"route": "keras/tflite", "device": "cpu", "precision": "fp32"}, profiles["cpu-server"])
    assert A._matches({"route": "torch/onnx/tensorrt", "device": "cuda", "precision": "fp16"},
                      profiles["nvidia-gpu"])


def test_hostile_strings_are_escaped_and_json_is_strict() -> None:
    evil = "<script>alert(1)</script>|`x`\n# h ]]>"
    cells = [cell("torch/onnx/ort", model=evil, score=0),
             cell("torch/onnx/tvm", "mismatch", model=evil, message=evil),
             cell("torch/onnx/openvino", "missing_dep", model=evil, message=evil)]
    cells[0]["latency_ms"]["mean"] = math.nan  # non-finite figures must not reach the JSON
    cells[0]["parity"]["snr_db"] = math.inf
    cells[0]["warnings"] = [evil]
    a = audit(doc(*cells), budget=10, price=0.1, model=evil)
    json.dumps(a, allow_nan=False)
    page = A.render_audit_html(a)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "default-src 'none'" in page and "http" not in page.split("</head>")[1]
    md = A.render_audit_md(a)
    assert "<script" not in md and "&lt;script&gt;" in md
    assert "\\|" in md and "\\`x\\`" in md
    for section in md.split("\n## ")[1:]:  # every table row keeps its header's column count
        rows = [line.replace("\\|", "") for line in section.splitlines() if line.startswith("|")]
        assert all(row.count("|") == rows[0].count("|") for row in rows), section
    title = md.splitlines()[0]
    assert title.startswith("# Portability audit: ") and "\n" not in title


def test_audit_markdown_escapes_as_strongly_as_the_matrix() -> None:
    """audit.md goes through matrix.md's escape: names holding table pipes, emphasis, HTML, code, line
    breaks, strike-through, math, list markers, colour codes or a bidi override stay plain text."""
    from convcheck.reports.escaping import md_escape

    pytest.importorskip("markdown_it")
    from tests.unit.test_markdown_junit import tables, to_html

    model = "- 1. m|*b* <script>alert(1)</script> `x`\n~~s~~ $y$ \x1b[31mred\u202e"
    route = "torch/a|*b*<script>x</script>`c`\nd~~e~~$f$/ort"  # still matches the profile's */ort
    cells = [cell(route, model=model, score=10, message=model),
             cell("torch/onnx/openvino", "mismatch", model=model, score=20, message=f"{model} | {route}"),
             cell("torch/onnx/tvm", "missing_dep", model=model, message=f"{route}; pip install 'x[y]'")]
    a = audit(doc(*cells), budget=10, price=0.5, traffic=10, model=model)
    assert a["recommendation"]["primary"]["route"] == route
    md = A.render_audit_md(a)
    assert md.splitlines()[0] == f"# Portability audit: {md_escape(model)} → cpu-server"
    assert md_escape(route) in md and route not in md
    for raw in ("<script", "\x1b", "\u202e", "~~", "$y$", "`x`", "*b*", "m|"):
        assert raw not in md, raw
    for table in tables(md):  # every row of every table keeps its header's column count
        assert len({len(row) for row in table}) == 1, table
    html = to_html(md)
    for markup in ("<script", "<em>", "<code>", "<del>", "<s>"):
        assert markup not in html, markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "$y$" in html  # shown as text, not math


# -- under load (MLPerf LoadGen evidence in the cells) -------------------------------------------------------
def served(c: dict, *, traffic_rows: float, bound: float, server_valid: bool, server_p99: float,
           capacity: float | None, rows: int = 1) -> dict:
    """The cell as `convcheck load`/the audit's load run leaves it: a Server run at the traffic, the capacity."""
    c["load"] = {
        "error": None, "sut": {"rows_per_sample": rows}, "mlperf_duration": False,
        "settings": {"duration_s": 0.5, "latency_bound_ms": bound},
        "runs": [{"scenario": "server", "valid": server_valid, "target_qps": traffic_rows / rows,
                  "target_rows_per_s": traffic_rows, "latency_bound_ms": bound, "achieved_qps": traffic_rows / rows,
                  "p50": server_p99 / 3, "p99": server_p99,
                  "invalid_reason": None if server_valid else "Reduce target QPS to improve latency."}],
        "capacity": {"qps": capacity, "latency_bound_ms": bound, "trials": [{}, {}], "lowest_invalid_qps": None,
                     "why_none": None if capacity else f"no QPS tried kept p99 within {bound:g} ms"},
        "curve": [{"target_qps": traffic_rows / rows, "achieved_qps": traffic_rows / rows, "p50": server_p99 / 3,
                   "p99": server_p99, "valid": server_valid}]}
    return c


def test_under_load_the_server_scenario_decides_not_the_single_call_p99():
    # Both are fast alone (p99 2 ms); under 100/s only b's p99 stays within 10 ms, and a cannot be scaled out.
    a = served(cell("m/x/ort", p50=1.0, p99=2.0, score=0.0), traffic_rows=100, bound=10.0, server_valid=False,
               server_p99=40.0, capacity=None)
    b = served(cell("m/y/openvino", p50=1.5, p99=2.0, score=30.0), traffic_rows=100, bound=10.0,
               server_valid=True, server_p99=4.0, capacity=500.0)
    out = audit(doc(a, b), budget=10.0, price=1.0, traffic=100.0)
    by_id = {c["id"]: c for c in out["candidates"]}
    assert out["recommendation"]["primary"]["route"] == "m/y/openvino"  # despite its higher lock-in
    assert not by_id["m/x/ort [cpu fp32]"]["eligible"]
    assert "over budget under load" in by_id["m/x/ort [cpu fp32]"]["ineligible_reason"]
    step = out["recommendation"]["trail"][0]
    assert step["criterion"] == "eligibility" and step["dropped"] == ["m/x/ort [cpu fp32]"]
    assert out["budget"]["under_load"]
    # Cost from the capacity: 500 queries/s of 1 row, not 1000 / p50.
    chosen = by_id["m/y/openvino [cpu fp32]"]
    assert chosen["throughput"]["per_s"] == 500.0 and chosen["throughput"]["measured_under_load"]
    assert chosen["cost"]["per_million_usd"] == pytest.approx(1.0 / 3600 / 500 * 1e6)
    assert chosen["cost"]["instances"] == 1
    assert "Under load (MLPerf LoadGen)" in A.render_audit_md(out)
    assert "p99 latency against QPS" in A.render_audit_html(out)


def test_a_route_one_instance_cannot_carry_is_eligible_at_the_instances_its_capacity_needs():
    a = served(cell("m/x/ort", score=0.0, batch=4), traffic_rows=4000, bound=10.0, server_valid=False,
               server_p99=80.0, capacity=300.0, rows=4)  # 1,200 rows/s per instance
    out = audit(doc(a), budget=10.0, price=2.0, traffic=4000.0)
    (c,) = out["candidates"]
    assert c["eligible"] and c["cost"]["instances"] == 4  # ceil(4000 / 1200)
    assert "so 4 instances" in c["eligibility_basis"]
    assert "needing more than one instance" in out["recommendation"]["trail"][0]["note"]


def test_load_figures_under_another_traffic_or_bound_are_not_this_audits_evidence():
    a = served(cell("m/x/ort", p50=1.0, p99=2.0, score=0.0), traffic_rows=100, bound=10.0, server_valid=False,
               server_p99=40.0, capacity=None)
    out = audit(doc(a), budget=20.0, price=1.0, traffic=100.0)  # the load ran with a 10 ms bound
    (c,) = out["candidates"]
    assert c["served"] is None and c["eligible"]  # judged by its p99 per call, and said so
    assert c["eligibility_basis"].startswith("p99 per call") and not out["budget"]["under_load"]
    assert not c["throughput"].get("measured_under_load")


def _tvm(c: dict, **meta) -> dict:
    c["artifacts"] = [{"hop": "onnx", "format": "onnx", "metadata": {}},
                      {"hop": "tvm", "format": "tvm", "metadata": {"pipeline": "parallel-vectorize", **meta}}]
    return c


def test_an_untuned_tvm_figure_is_never_compared_without_saying_so() -> None:
    untuned = audit(doc(cell("torch/onnx/ort", score=10, p50=5.0),
                        _tvm(cell("torch/onnx/tvm", score=30, p50=20.0), tuned=False)), budget=50)
    note = next(n for n in untuned["notes"] if n.startswith("TVM latency is an untuned build"))
    assert "torch/onnx/tvm [cpu fp32]" in note and "--tvm-tune" in note
    tuned = audit(doc(cell("torch/onnx/ort", score=10, p50=5.0),
                      _tvm(cell("torch/onnx/tvm", score=30, p50=4.0), tuned=True, tune_trials=500,
                           tune_state="tuned")), budget=50)
    assert not any(n.startswith("TVM latency") for n in tuned["notes"])
    assert not any(n.startswith("TVM latency") for n in audit(doc(cell("torch/onnx/ort")), budget=50)["notes"])
