"""User mistakes: one line naming the thing and the fix, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, expected", [
    (["matrix", "--routes", "torch/onx/ort"], "did you mean 'torch/onnx/ort'"),
    (["matrix", "--models", "mlp_tabulr"], "did you mean 'mlp_tabular'"),
    (["matrix", "--size", "huge"], "unknown size 'huge'"),
    (["matrix", "--precision", "fp8"], "unknown precision 'fp8'"),
    (["matrix", "--device", "tpu"], "unknown device 'tpu'"),
])
def test_usage_errors_exit_2_with_one_line(cli, tmp_path, args, expected):
    out = tmp_path / "out"
    proc = cli(*args, "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1
    assert not out.exists()


def test_unknown_option_is_a_usage_error(cli):
    proc = cli("matrix", "--modles", "x")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_out_pointing_at_a_file_is_refused(cli, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    proc = cli("matrix", "--models", "mlp_tabular", "--out", str(f))
    assert proc.returncode == 2 and "is a file" in proc.stderr
    assert f.read_text() == "keep me"


def test_version_and_help(cli):
    from convcheck import __version__

    assert cli("--version").stdout.strip() == f"convcheck {__version__}"
    helptext = cli("--help").stdout
    for command in ("routes", "models", "doctor", "matrix"):
        assert command in helptext


def test_routes_lists_availability(cli):
    import json

    rows = json.loads(cli("routes", "--json").stdout)
    ort = next(r for r in rows if r["route"] == "torch/onnx/ort")
    assert ort["status"] == "available" and ort["converters"] == ["OnnxFromTorch"]
    assert {r["status"] for r in rows} <= {"available", "missing_dep", "no_device"}
    on_cuda = json.loads(cli("routes", "--device", "cuda", "--json").stdout)
    assert all(r["status"] != "available" or "cuda" in r["devices"] for r in on_cuda)
