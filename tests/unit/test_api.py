"""The Python API's option objects (convcheck.api): validation, to_dict/from_dict, the stored form a
resume reads (new and old), and that `convcheck.run_matrix` is looked up without importing a framework."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convcheck.api import (OPTIONS_VERSION, CheckOptions, EngineOptions, MatrixOptions, ReportOptions,
                           options_for_resume, stored_options)
from convcheck.errors import ConvcheckError
from tests.unit.test_lazy_imports import HEAVY


def test_options_normalise_their_values():
    options = MatrixOptions("mlp_tabular, cnn_small", routes="torch/onnx/ort", devices="cpu", batches="1,8,1",
                            out="runs/x", size="tiny")
    assert options.models == ("mlp_tabular", "cnn_small") and options.routes == ("torch/onnx/ort",)
    assert options.devices == ("cpu",) and options.batches == (1, 8) and options.out == Path("runs/x")
    assert MatrixOptions(models=["mlp_tabular"], batches=[2, 4]) == MatrixOptions("mlp_tabular", batches="2,4")
    assert options.device_list() == ["cpu"] and MatrixOptions().precision_list() == ["fp32", "fp16", "int8"]
    assert MatrixOptions().models is None and MatrixOptions().routes is None  # the zoo, every available route
    assert MatrixOptions(atol=1e-3, rtol=1e-2).tolerance() == {"atol": 1e-3, "rtol": 1e-2}
    with pytest.raises(dataclass_frozen_error()):
        options.samples = 3  # type: ignore[misc]


def dataclass_frozen_error() -> type[Exception]:
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError


@pytest.mark.parametrize("options", [
    MatrixOptions("mlp_tabular", routes="torch/onnx/ort,torch/openvino", devices="cpu", precisions="fp32,fp16",
                  samples=2, threads=3, bench_seconds=0.0, bench_iters=3, batches=(1, 8), atol=1e-3, rtol=1e-2,
                  tvm_tune=4, out=Path("/tmp/run"), size="tiny", model_files=["a.onnx"], input_specs=["x:1x3:float32"]),
    MatrixOptions(),
    CheckOptions("model.onnx", source="model.keras", signature="serving_default", input_data=Path("in.npz"),
                 input_specs=["x:1x3:float32:0..1"], reference="onnx-reference", routes="all", out="o"),
    EngineOptions(executor="inline", jobs=2, timeout=60.0, memory_limit=512.0, no_cache=True, retry_failed=True,
                  max_artifact_mb=1.5),
    EngineOptions(executor="ray", ray_address="auto"),
    ReportOptions(fail_on="mismatch,timeout"),
    ReportOptions(),
])
def test_options_round_trip_through_json(options):
    data = options.to_dict()
    assert data["version"] == OPTIONS_VERSION and data["kind"] == options.kind
    again = type(options).from_dict(json.loads(json.dumps(data, allow_nan=False)))
    assert again == options and again.to_dict() == data
    assert all(not isinstance(v, (tuple, Path)) for v in data.values())


@pytest.mark.parametrize("make, expected", [
    (lambda: MatrixOptions(size="huge"), "unknown size 'huge': use full or tiny"),
    (lambda: MatrixOptions(devices="tpu"), "unknown device 'tpu'"),
    (lambda: MatrixOptions(precisions="fp8"), "unknown precision 'fp8'"),
    (lambda: MatrixOptions(atol=1e-3), "--atol and --rtol go together"),
    (lambda: MatrixOptions(batches="1,x"), "--batch '1,x': give batch sizes"),
    (lambda: MatrixOptions(batches=[0]), "--batch [0]"),
    (lambda: MatrixOptions(samples=0), "--samples 0"),
    (lambda: MatrixOptions(bench_seconds=-1.0), "--bench-seconds -1.0"),
    (lambda: CheckOptions(), "name the model to check"),
    (lambda: CheckOptions("m.onnx", reference="tvm"), "unknown --reference 'tvm': use ort or onnx-reference"),
    (lambda: EngineOptions(executor="slurm"), "unknown --executor 'slurm'"),
    (lambda: EngineOptions(ray_address="auto"), "--ray-address goes with --executor ray"),
    (lambda: EngineOptions(timeout=0), "--timeout 0"),
    (lambda: ReportOptions(fail_on="mismatch,bogus"), "--fail-on 'bogus' is not a status"),
    (lambda: ReportOptions(lockin_weights="/nonexistent/w.json"), "--lockin-weights /nonexistent/w.json"),
    (lambda: MatrixOptions.from_dict({"modles": ["x"]}), "unknown option 'modles'"),
    (lambda: MatrixOptions.from_dict({"version": OPTIONS_VERSION + 1}), "upgrade convcheck"),
    (lambda: MatrixOptions.from_dict(CheckOptions("m.onnx").to_dict()), "'check' options, not 'matrix'"),
])
def test_a_bad_option_is_one_line_naming_it(make, expected):
    with pytest.raises(ConvcheckError) as caught:
        make()
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_run_functions_refuse_the_other_kind_of_options():
    import convcheck

    with pytest.raises(ConvcheckError, match="run_matrix takes MatrixOptions"):
        convcheck.run_matrix(CheckOptions("m.onnx"))
    with pytest.raises(ConvcheckError, match="check takes CheckOptions"):
        convcheck.check(MatrixOptions())


def _record(store_home: Path, run_id: str, invocation: dict | None) -> None:
    from convcheck.results import new_run
    from convcheck.store import Store

    settings = {"models": ["mlp_tabular"]} | ({"invocation": invocation} if invocation else {})
    with Store(store_home / "store.sqlite") as store:
        store.begin_run(new_run(run_id, settings, [])["run"])


def test_stored_options_read_the_new_and_the_old_form(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCHECK_HOME", str(tmp_path))
    new = MatrixOptions("mlp_tabular", routes="torch/onnx/ort", size="tiny", out=tmp_path / "a")
    _record(tmp_path, "20000101-000000-aaaa", {"command": "matrix", "options": new.to_dict()})
    assert stored_options("20000101-000000-aaaa") == ("20000101-000000-aaaa", "matrix", new)
    # What convcheck stored before the options existed: the CLI's own parameter names and strings.
    old = {"models_": "mlp_tabular", "routes_": "torch/onnx/ort", "out": str(tmp_path / "b"), "size": "tiny",
           "device": "auto", "precision": "all", "samples": 2, "threads": None, "bench_seconds": 0.3,
           "bench_iters": 3, "tvm_tune": 0, "atol": None, "rtol": None, "batch": None, "model_file": None,
           "input_": None}
    _record(tmp_path, "20000101-000001-bbbb", {"command": "matrix", "params": old})
    run_id, command, options = stored_options("20000101-000001-bbbb")
    assert command == "matrix" and options == MatrixOptions("mlp_tabular", routes="torch/onnx/ort", size="tiny",
                                                            samples=2, bench_seconds=0.3, bench_iters=3,
                                                            out=tmp_path / "b")
    _record(tmp_path, "20000101-000002-cccc", None)  # recorded before runs kept their plan at all
    assert stored_options("20000101-000002-cccc") == ("20000101-000002-cccc", None, None)


def test_a_resume_refuses_another_plan_or_another_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCHECK_HOME", str(tmp_path))
    stored = MatrixOptions("mlp_tabular", size="tiny", out=tmp_path / "a")
    _record(tmp_path, "20000101-000000-aaaa", {"command": "matrix", "options": stored.to_dict()})
    again = {"models": "mlp_tabular", "size": "tiny", "out": str(tmp_path / "a")}
    assert options_for_resume("latest", "matrix", again) == stored
    with pytest.raises(ConvcheckError, match=r"but --models cnn_small differs from it \(mlp_tabular\)"):
        options_for_resume("latest", "matrix", {"models": "cnn_small"}, {"models": "--models"})
    with pytest.raises(ConvcheckError, match="made by `convcheck matrix`"):
        options_for_resume("latest", "check")


def test_looking_up_the_api_imports_no_framework():
    code = ("import sys, convcheck; convcheck.run_matrix, convcheck.check, convcheck.resume, convcheck.MatrixOptions;"
            "convcheck.MatrixOptions('mlp_tabular', size='tiny'); convcheck.CheckOptions('m.onnx');"
            "convcheck.EngineOptions(); convcheck.ReportOptions();"
            f"print('HEAVY:' + ','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY:"
    with pytest.raises(AttributeError):
        import convcheck

        convcheck.no_such_name  # noqa: B018
