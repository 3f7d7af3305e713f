"""The cell cache key covers everything that can change a cell's figures or verdict.

Regression: a user's ONNX file gathered from a 5-row table was cached as `pass` with
`--input ids:1x6:int64:0..5`, and the same `pass` was served for `0..1000` (out-of-range ids), because
the key held the file's digest but not the input declaration.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from convcheck.cache import HOP_SETTINGS_NOT_KEYED, SETTINGS_NOT_KEYED, SPEC_NOT_KEYED, cell_key
from convcheck.plan import PlannedCell
from convcheck.plan import RunSettings
from convcheck.routes import select_routes
from convcheck.types import Target
from convcheck.validate.latency import LatencyConfig
from convcheck.validate.loadgen import LoadSettings
from convcheck.model_spec import InputSpec


def _table_model(path: Path, rows: int = 5) -> Path:
    import onnx
    from onnx import TensorProto, helper

    table = helper.make_tensor("table", TensorProto.FLOAT, [rows, 4],
                               np.arange(rows * 4, dtype=np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)], "gather",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 4])], [table])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> Path:
    return _table_model(tmp_path_factory.mktemp("table") / "table.onnx")


def _key(spec, settings: RunSettings, route: str = "onnx/ort") -> str:
    (chosen,) = select_routes(route)
    return cell_key(PlannedCell(spec, chosen, Target(chosen.runtime)), settings)


def _spec(path: Path, inputs: list[str] = (), npz: Path | None = None):
    from convcheck.zoo.user_model import spec_from_onnx

    return spec_from_onnx(path, list(inputs), npz)


def test_input_value_range_changes_the_key(table_file: Path, tmp_path: Path) -> None:
    settings = RunSettings(workdir=tmp_path)
    small = _key(_spec(table_file, ["ids:1x6:int64:0..5"]), settings)
    large = _key(_spec(table_file, ["ids:1x6:int64:0..1000"]), settings)
    assert small != large
    assert small == _key(_spec(table_file, ["ids:1x6:int64:0..5"]), settings)  # and it is stable


def test_user_data_changes_the_key(table_file: Path, tmp_path: Path) -> None:
    settings = RunSettings(workdir=tmp_path)
    keys = set()
    for i, ids in enumerate(([[0, 1, 2, 3, 4, 0]], [[4, 4, 4, 4, 4, 4]])):
        npz = tmp_path / f"d{i}.npz"
        np.savez(npz, ids=np.array(ids, dtype=np.int64))
        keys.add(_key(_spec(table_file, npz=npz), settings))
    keys.add(_key(_spec(table_file), settings))
    assert len(keys) == 3


def test_every_setting_that_can_change_a_figure_changes_the_key(table_file: Path, tmp_path: Path) -> None:
    from convcheck.types import Format

    spec = _spec(table_file)
    base = RunSettings(workdir=tmp_path, hop_settings={"tvm_tune_trials": 0, "cache_dir": str(tmp_path)})
    variants = {
        "samples": dataclasses.replace(base, samples=7),
        "threads": dataclasses.replace(base, threads=3),
        "latency": dataclasses.replace(base, latency=LatencyConfig(min_iters=3)),
        "bench seconds": dataclasses.replace(base, latency=LatencyConfig(min_seconds=0.01)),
        "reference": dataclasses.replace(base, references={Format.ONNX: "onnx_reference"}),
        "tolerance override": dataclasses.replace(base, tolerance_override={"atol": 1.0, "rtol": 0.0}),
        "batches": dataclasses.replace(base, batches=(1, 8)),
        "size": dataclasses.replace(base, size="tiny"),
        "max artifact": dataclasses.replace(base, max_artifact_mb=1.0),
        "tvm tuning": dataclasses.replace(base, hop_settings={**base.hop_settings, "tvm_tune_trials": 8}),
        # A load test's figures come from its settings: another QPS, bound or duration is another cell.
        "load": dataclasses.replace(base, load=LoadSettings(scenarios=("server",))),
        "load qps": dataclasses.replace(base, load=LoadSettings(scenarios=("server",), target_qps=50.0)),
    }
    reference = _key(spec, base)
    keys = {name: _key(spec, settings) for name, settings in variants.items()}
    same = {name for name, key in keys.items() if key == reference}
    assert not same, f"settings not in the cell key: {sorted(same)}"
    assert keys["load"] != keys["load qps"]
    # Where files go does not change a figure.
    moved = dataclasses.replace(base, workdir=tmp_path / "elsewhere", artifact_cache_dir=tmp_path / "c",
                                hop_settings={**base.hop_settings, "cache_dir": "/elsewhere"})
    assert _key(spec, moved) == reference


def test_every_settings_field_is_keyed_or_declared_not_to_matter() -> None:
    """A new RunSettings field is keyed unless listed in SETTINGS_NOT_KEYED: this test names the
    lists so that adding to them is a decision someone reads."""
    names = {f.name for f in dataclasses.fields(RunSettings)}
    assert SETTINGS_NOT_KEYED <= names
    # toolchains: keyed through the cell's environment (its resolved versions), tests/unit/test_toolchains.py
    assert SETTINGS_NOT_KEYED == {"workdir", "artifact_cache_dir", "toolchains"}
    assert HOP_SETTINGS_NOT_KEYED == {"cache_dir"}
    assert SPEC_NOT_KEYED == {"description", "files", "given_artifacts", "given_feeds", "builders"}


def test_spec_declarations_change_the_key(table_file: Path, tmp_path: Path) -> None:
    settings = RunSettings(workdir=tmp_path)
    spec = _spec(table_file)
    reference = _key(spec, settings)
    changed = {
        "inputs": dataclasses.replace(spec, inputs=(InputSpec("ids", (1, 6), "int64", "int", 0, 3),)),
        "tolerances": dataclasses.replace(spec, tolerances={"fp32": {"y": {"atol": 1.0}}}),
        "precision": dataclasses.replace(spec, precision="int8"),
        "task": dataclasses.replace(spec, task="classifier"),
        "outputs": dataclasses.replace(spec, outputs=("y", "z")),
        "batch": dataclasses.replace(spec, batch=4),
    }
    same = [name for name, s in changed.items() if _key(s, settings) == reference]
    assert not same, f"model declarations not in the cell key: {same}"


@pytest.mark.framework
@pytest.mark.slow
def test_cli_recomputes_when_the_input_range_changes(table_file: Path, tmp_path: Path, cli) -> None:
    """The reproduction from the issue, through the real CLI and one cache."""
    def run(value_range: str) -> dict:
        out = tmp_path / value_range.replace(".", "_")
        proc = cli("check", str(table_file), "--routes", "onnx/ort", "--input", f"ids:1x6:int64:{value_range}",
                   "--out", str(out), "--bench-seconds", "0.01", "--bench-iters", "3", "--executor", "inline")
        assert proc.returncode in (0, 1), proc.stderr
        return json.loads((out / "results.json").read_text())["cells"][0]

    first = run("0..5")
    assert first["status"] == "pass", first["error"]
    again = run("0..5")
    assert again.get("cached") is True
    wider = run("0..1000")
    assert not wider.get("cached"), "the 0..5 verdict was served for 0..1000"
    assert wider["status"] != "pass"


@pytest.mark.parametrize(("route", "module"), [("onnx/openvino", "convcheck.convert.openvino_from_onnx"),
                                                ("onnx/ort", "convcheck.validate.runtimes.ort"),
                                                ("onnx/ort", "convcheck.tolerance")])
def test_editing_the_code_a_cell_runs_changes_the_key(table_file: Path, tmp_path: Path, monkeypatch,
                                                      route: str, module: str) -> None:
    """Regression: keras/stablehlo/iree's converter imported every weight as zero; fixed in place, the
    matrix kept serving the cached mismatches, because the key held convcheck's version (unchanged while
    a checkout is edited) and not the converter's code."""
    import inspect

    from convcheck.cache import code_digest

    settings = RunSettings(workdir=tmp_path)
    spec = _spec(table_file, ["ids:1x6:int64:0..5"])
    code_digest.cache_clear()
    before = _key(spec, settings, route)
    real = inspect.getsource

    def edited(obj):
        text = real(obj)
        return text + "\n# edited\n" if getattr(obj, "__name__", "") == module else text

    monkeypatch.setattr(inspect, "getsource", edited)
    code_digest.cache_clear()
    try:
        assert _key(spec, settings, route) != before
    finally:
        code_digest.cache_clear()
