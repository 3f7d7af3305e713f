"""The decision memo: weighted criteria over constructed candidate sets where the weights decide, the
sensitivity answer worked out by hand, cost-of-ownership curves from capacity, price, traffic and growth,
and a memo that never recommends an unverified or failed route."""

from __future__ import annotations

import math

import pytest

from convcheck.errors import ConvcheckError
from convcheck.reports import audit as A
from convcheck.reports.audit_criteria import Criterion, load_criteria, score, sensitivity
from convcheck.reports.audit_tco import curve
from tests.unit.test_audit import CPU, cell, doc

LAT = Criterion("latency", "p99_ms", "lower", "ratio", 0.5)
LOCK = Criterion("lock-in", "lockin_score", "lower", "range", 0.5, best=0.0, worst=100.0)


def _audit(document: dict, criteria=None, **kw) -> dict:
    return A.build_audit(document, "m", CPU, kw.pop("budget", 10.0), kw.pop("price", None), kw.pop("traffic", None),
                         criteria=criteria, **kw)


def _two_routes() -> dict:
    # ort: fast (p99 1.2 ms) but more locked (40); openvino: slower (p99 2.4 ms) but portable (10)
    return doc(cell("torch/onnx/ort", p50=1.0, score=40), cell("torch/onnx/openvino", p50=2.0, score=10))


def test_the_weights_decide_and_the_scores_trace_to_the_figures():
    fast_first = _audit(_two_routes(), [Criterion("latency", "p99_ms", "lower", "ratio", 0.8), LOCK])
    portable_first = _audit(_two_routes(), [Criterion("latency", "p99_ms", "lower", "ratio", 0.2), LOCK])
    assert fast_first["memo"]["primary"]["id"] == "torch/onnx/ort [cpu fp32]"
    assert portable_first["memo"]["primary"]["id"] == "torch/onnx/openvino [cpu fp32]"
    rows = {r["id"]: r for r in fast_first["criteria"]["matrix"]["rows"]}
    ov = rows["torch/onnx/openvino [cpu fp32]"]["cells"]
    # ratio: the best p99 (1.2) over this one's (2.4) = 0.5; range: (100 - 10) / 100 = 0.9
    assert ov["latency"]["figure"] == pytest.approx(2.4) and ov["latency"]["score"] == pytest.approx(0.5)
    assert ov["lock-in"]["figure"] == 10 and ov["lock-in"]["score"] == pytest.approx(0.9)
    # total = 100 * (0.8 * 0.5 + 0.5 * 0.9) / 1.3
    assert rows["torch/onnx/openvino [cpu fp32]"]["total"] == pytest.approx(100 * (0.4 + 0.45) / 1.3)
    assert rows["torch/onnx/ort [cpu fp32]"]["total"] == pytest.approx(100 * (0.8 * 1.0 + 0.5 * 0.6) / 1.3)
    # the contingency runs on another runtime
    assert fast_first["memo"]["contingency"]["id"] == "torch/onnx/openvino [cpu fp32]"


def test_sensitivity_is_the_hand_worked_smallest_flip():
    matrix = score([{"id": "a", "route": "a", "runtime": "x", "precision": "fp32", "latency": {"p99": 1.0, "p50": 1.0},
                     "lockin": {"score": 40.0}},
                    {"id": "b", "route": "b", "runtime": "y", "precision": "fp32", "latency": {"p99": 2.0, "p50": 2.0},
                     "lockin": {"score": 10.0}}],
                   [Criterion("latency", "p99_ms", "lower", "ratio", 0.8), LOCK])
    # scores: a = (1, 0.6), b = (0.5, 0.9). a leads: 0.8*1 + 0.5*0.6 = 1.1 > 0.8*0.5 + 0.5*0.9 = 0.85.
    # b overtakes when Σ w_i (s_b - s_a) > 0, i.e. -0.5 w_lat + 0.3 w_lock > 0:
    #   w_lock past 0.8 * 0.5 / 0.3 = 4/3 (change +0.8333), or w_lat below 0.5 * 0.3 / 0.5 = 0.3 (change -0.5).
    sens = sensitivity(matrix)
    assert sens["leader"] == "a"
    by = {f["criterion"]: f for f in sens["flips"]}
    assert by["lock-in"]["weight_to"] == pytest.approx(4 / 3) and by["lock-in"]["change"] == pytest.approx(0.8333, abs=1e-4)
    assert by["latency"]["weight_to"] == pytest.approx(0.3) and by["latency"]["change"] == pytest.approx(-0.5)
    assert sens["smallest"]["criterion"] == "latency" and sens["smallest"]["candidate"] == "b"
    # and it is right: just past the tie point b leads, just before it a still does
    for w_lat, leader in ((0.3 - 1e-6, "b"), (0.3 + 1e-6, "a")):
        again = score(_cands_ab(), [Criterion("latency", "p99_ms", "lower", "ratio", w_lat), LOCK])
        assert again["rows"][0]["id"] == leader


def _cands_ab() -> list[dict]:
    return [{"id": "a", "route": "a", "runtime": "x", "precision": "fp32", "latency": {"p99": 1.0}, "lockin": {"score": 40.0}},
            {"id": "b", "route": "b", "runtime": "y", "precision": "fp32", "latency": {"p99": 2.0}, "lockin": {"score": 10.0}}]


def test_a_dominant_candidate_cannot_be_flipped():
    matrix = score([{"id": "a", "route": "a", "runtime": "x", "precision": "fp32", "latency": {"p99": 1.0},
                     "lockin": {"score": 5.0}},
                    {"id": "b", "route": "b", "runtime": "y", "precision": "fp32", "latency": {"p99": 2.0},
                     "lockin": {"score": 50.0}}], [LAT, LOCK])
    assert sensitivity(matrix)["flips"] == [] and "no change of one weight" in sensitivity(matrix)["note"]


def test_a_missing_figure_scores_zero_and_says_so_and_an_absent_one_is_dropped():
    cands = [{"id": "a", "route": "a", "runtime": "x", "precision": "fp32", "latency": {"p99": 1.0}, "lockin": None},
             {"id": "b", "route": "b", "runtime": "y", "precision": "fp32", "latency": {"p99": 1.0},
              "lockin": {"score": 10.0}}]
    matrix = score(cands, [LAT, LOCK, Criterion("cost", "tco_usd", "lower", "ratio", 0.3)])
    a = next(r for r in matrix["rows"] if r["id"] == "a")
    assert a["cells"]["lock-in"] == {"figure": None, "score": 0.0, "points": 0.0, "note": "not measured: scores 0"}
    assert [d["criterion"] for d in matrix["dropped"]] == ["cost"] and "--price-per-hour" in matrix["dropped"][0]["why"]
    assert [c["name"] for c in matrix["criteria"]] == ["latency", "lock-in"]


def test_the_memo_never_recommends_an_unverified_or_failed_route():
    document = doc(cell("torch/onnx/ort", "mismatch", p50=0.1, score=0),  # fastest and most portable, but wrong
                   cell("torch/onnx/tvm", "missing_dep", score=0, message="pip install 'convcheck[tvm]'"),
                   cell("torch/onnx/openvino", p50=5.0, score=60))
    a = _audit(document, load_criteria("default"))
    assert a["memo"]["primary"]["id"] == "torch/onnx/openvino [cpu fp32]"
    ids = [r["id"] for r in a["criteria"]["matrix"]["rows"]]
    assert ids == ["torch/onnx/openvino [cpu fp32]"]  # only eligible routes are scored
    assert any("torch/onnx/tvm" in n for n in a["memo"]["not_verified"])
    md, html = A.render_audit_md(a), A.render_audit_html(a)
    assert md.index("## Decision memo") < md.index("## Candidates verified") and "Decision memo" in html
    memo = md[md.index("## Decision memo"):md.index("## Weighted criteria")]
    assert "Primary: torch/onnx/openvino" in memo and "tvm" not in memo.split("Not verified here")[0]
    assert "torch/onnx/ort" not in memo.split("Not verified here")[0]


def test_cost_of_ownership_follows_capacity_price_traffic_and_growth():
    cand = {"throughput": {"per_s": 100.0, "basis": "batch 1 / p50 10 ms"}, "lockin": {"score": 50.0}}
    flat = curve(cand, 3.0, 0.10, 250.0, 0.0, None)
    # 250/s over 100/s per instance: 3 instances, 36 months of 730 h at $0.10
    assert flat["instances_first"] == flat["instances_last"] == 3
    assert flat["serving_usd"] == pytest.approx(3 * 0.10 * 730 * 36) and flat["migration_exposure_usd"] is None
    assert flat["next_instance_at_per_s"] == 300.0 and len(flat["points"]) == 37
    grown = curve(cand, 3.0, 0.10, 250.0, 1.0, 20000.0)  # traffic doubles every year
    assert grown["instances_last"] == math.ceil(250 * 2 ** (35 / 12) / 100)
    assert grown["migration_exposure_usd"] == pytest.approx(10000.0)
    assert grown["total_usd"] == pytest.approx(grown["serving_usd"] + 10000.0)
    assert curve(cand, 3.0, None, 250.0, 0.0, None) is None and curve({"throughput": None}, 3, 0.1, 1, 0, None) is None


def test_the_audit_carries_curves_and_the_cost_criterion_reads_them():
    document = _two_routes()
    a = _audit(document, load_criteria("default"), price=0.10, traffic=500.0)
    curves = a["tco"]["curves"]
    assert set(curves) == {"torch/onnx/ort [cpu fp32]", "torch/onnx/openvino [cpu fp32]"}
    ort = curves["torch/onnx/ort [cpu fp32]"]
    assert ort["capacity_per_s"] == pytest.approx(1000.0)  # batch 1 / p50 1 ms
    rows = {r["id"]: r for r in a["criteria"]["matrix"]["rows"]}
    assert rows["torch/onnx/ort [cpu fp32]"]["cells"]["cost"]["figure"] == pytest.approx(ort["total_usd"])
    html = A.render_audit_html(a)
    assert "<svg" in html and "Cost of ownership" in html and "<script" not in html
    assert "Sensitivity" in A.render_audit_md(a)


@pytest.mark.parametrize("text, expected", [
    ("criteria: []", "expected `criteria:`"),
    ("criteria:\n  - {name: x, figure: speed, weight: 1}", "reads figure 'speed'"),
    ("criteria:\n  - {name: x, figure: p99_ms, direction: up, weight: 1}", "direction 'up'"),
    ("criteria:\n  - {name: x, figure: p99_ms, normalise: target, weight: 1}", "give `target`"),
    ("criteria:\n  - {name: x, figure: p99_ms, weight: -1}", "needs a weight >= 0"),
    ("criteria:\n  - {name: x, figure: p99_ms, weight: 1, colour: red}", "unknown key 'colour'"),
    ("criteria:\n  - {name: x, figure: p99_ms, weight: 0}", "add up to 0"),
    ("criteria: [", "not valid YAML"),
])
def test_a_bad_criteria_file_is_one_line(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConvcheckError, match=expected):
        load_criteria(path)


def test_the_default_criteria_load_and_are_documented():
    crits = load_criteria("default")
    assert [c.name for c in crits] == ["latency", "fidelity", "cost", "lock-in", "toolchain health", "memory"]
    assert all(c.weight > 0 for c in crits)
