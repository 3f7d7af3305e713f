"""`convcheck ecosystem refresh` on recorded PyPI responses (tests/data/pypi, trimmed by its trim.py from
pypi.org on 2026-12-07): recency and cadence as of the snapshot day, yanked releases inside the window, PyPI's
Inactive classifier as a deprecation beside the curated ones, packages PyPI did not answer for keeping their
figures, and lock-in scores reading the newest snapshot afterwards."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from convcheck.ecosystem import newest_snapshot, recorded, refresh, signals
from convcheck.errors import ConvcheckError

RECORDED = Path(__file__).parents[1] / "data" / "pypi"


def _doc(package: str) -> dict:
    return json.loads((RECORDED / f"{package}.json").read_text())


def test_signals_are_read_as_of_the_snapshot_day():
    past = signals(_doc("jax"), datetime.date(2026, 6, 1))
    # 0.10.1 (2026-05-20) was the newest stable release then; later uploads are not in a snapshot of that day
    assert (past["latest"], past["released"]) == ("0.10.1", "2026-05-20")
    assert past["cadence"] == {"releases_last_365_days": 14, "median_days_between_releases": 29}
    # 0.4.32 was yanked (uploaded 2024-09-11): inside the two-year window in June 2026, outside it in December
    assert [y["version"] for y in past["yanked"]] == ["0.4.32"]
    now = signals(_doc("jax"), datetime.date(2026, 12, 7))
    assert now["latest"] == "0.12.1" and now["yanked"] == []
    assert signals(_doc("ai-edge-torch"), datetime.date(2026, 12, 7))["inactive"] is True


def test_refresh_replaces_pypi_facts_keeps_curated_ones_and_unreachable_packages(tmp_path):
    curated = {"what": "renamed litert-torch", "severity": 0.5, "source": "https://example.org/migration"}
    data = {"snapshot": {"date": "2026-01-01", "note": "shipped", "sources": ["https://example.org/migration"]},
            "tools": {
                "jax.export": {"package": "jax", "latest": "0.4.0", "released": "2022-12-12", "deprecations": []},
                "ai-edge-torch": {"package": "ai-edge-torch", "latest": "0.1", "released": "2024-01-01",
                                  "deprecations": [curated, {"what": "old pypi note", "severity": 0.75,
                                                             "origin": "pypi"}]},
                "ort": {"package": "onnxruntime", "latest": "1.0", "released": "2020-01-01", "deprecations": []},
                "ghost": {"package": "not-recorded", "latest": "9.9", "released": "2025-05-05", "deprecations": []},
            }}
    done = refresh(data, recorded(RECORDED), datetime.date(2026, 12, 7), write=False)
    tools = done.data["tools"]
    assert (tools["jax.export"]["latest"], tools["jax.export"]["released"]) == ("0.12.1", "2026-11-18")
    assert tools["ort"]["cadence"]["releases_last_365_days"] == 14
    deps = tools["ai-edge-torch"]["deprecations"]
    assert deps[0] == curated and len(deps) == 2 and deps[1]["origin"] == "pypi" and "Inactive" in deps[1]["what"]
    assert tools["ghost"] == data["tools"]["ghost"] and "not-recorded" in done.unreachable
    assert ("jax.export", "0.4.0 (2022-12-12) -> 0.12.1 (2026-11-18)") in done.changes
    snap = done.data["snapshot"]
    assert snap["date"] == "2026-12-07" and snap["refreshed_from"] == "2026-01-01"
    assert "not-recorded" in snap["note"] and "https://pypi.org/pypi/jax/json" in snap["sources"]
    assert data["tools"]["jax.export"]["latest"] == "0.4.0"  # the input is not modified


def test_nothing_answered_is_one_line_and_writes_nothing(tmp_path):
    data = {"snapshot": {"date": "2026-01-01"}, "tools": {"x": {"package": "not-recorded", "latest": "1",
                                                                 "released": "2025-01-01"}}}
    with pytest.raises(ConvcheckError, match="PyPI answered for none of the 1 packages"):
        refresh(data, recorded(RECORDED), datetime.date(2026, 12, 7))
    with pytest.raises(ConvcheckError, match="--responses"):
        recorded(tmp_path / "missing")


def test_the_cli_writes_a_dated_snapshot_that_scoring_then_reads(cli, private_convcheck_home):
    from convcheck.reports.lockin import load_lockin_data

    assert newest_snapshot() is None and load_lockin_data()["snapshot"]["date"] == "2026-11-25"  # the shipped one
    proc = cli("ecosystem", "refresh", "--responses", str(RECORDED), "--date", "2026-12-07")
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "changed: jax" in proc.stdout and "kept the previous figures for torch" in proc.stdout
        written = private_convcheck_home / "ecosystem" / "lockin-2026-12-07.json"
        assert written.is_file() and newest_snapshot() == written
        data = load_lockin_data()
        assert data["snapshot"]["date"] == "2026-12-07" and data["tools"]["jax"]["latest"] == "0.12.1"
        status = cli("ecosystem", "status")
        assert "2026-12-07" in status.stdout and "lockin-2026-12-07.json" in status.stdout
        bad = cli("ecosystem", "refresh", "--responses", str(RECORDED), "--date", "7 Dec")
        assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    finally:  # the session's other tests score with the shipped snapshot
        for path in (private_convcheck_home / "ecosystem").glob("*.json"):
            path.unlink()
