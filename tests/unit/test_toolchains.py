"""Which cells run in a toolchain environment, with what, and how that reaches the cache key, the
reports and `convcheck diff` (convcheck.toolchains; the environments themselves: test_envs.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from convcheck.cache import cell_key
from convcheck.diff import render_versions, version_changes
from convcheck.environment import package_version
from convcheck.envs import Env
from convcheck.errors import ConvcheckError
from convcheck.plan import PlannedCell, RunSettings
from convcheck.registry import models
from convcheck.reports.route_packages import relevant_packages
from convcheck.routes import availability, select_routes
from convcheck.toolchains import check_overrides, env_for, parse_override
from convcheck.types import Target


def route(route_id: str):
    (found,) = select_routes(route_id)
    return found


def test_an_override_is_pkg_equals_version_and_names_a_package_some_route_touches() -> None:
    assert parse_override(" onnxruntime == 1.31.0 ") == ("onnxruntime", "onnxruntime==1.31.0")
    assert check_overrides(["ONNX_Runtime==1.31.0".replace("_", "")]) == ("onnxruntime==1.31.0",)
    for bad, says in (("onnxruntime", "PKG==VERSION"), ("onnxruntime>=1.31", "PKG==VERSION"),
                      ("leftpad==1.0", "no route touches"), ("convcheck==0.1", "installed from this checkout")):
        with pytest.raises(ConvcheckError, match=says):
            check_overrides([bad])
    with pytest.raises(ConvcheckError, match="twice"):
        check_overrides(["onnxruntime==1.31.0", "onnxruntime==1.30.0"])


@pytest.mark.skipif(package_version("torch") is None, reason="needs the torch build on this machine")
def test_torch_can_only_be_the_build_on_this_disk() -> None:
    with pytest.raises(ConvcheckError, match="multi-GB CUDA build"):
        parse_override("torch==2.9.1")
    installed = package_version("torch").split("+")[0]
    assert parse_override(f"torch=={installed}") == ("torch", f"torch=={installed}")


def test_a_declared_toolchain_holds_its_set_and_pins_the_rest_of_the_route() -> None:
    spec = env_for(route("torch/tflite"))
    assert spec is not None and spec.toolchains == ("litert-torch",)
    reqs = set(spec.requirements)
    assert "litert-torch>=0.10,<0.11" in reqs
    # The source framework and the runtime are this install's versions: only litert-torch differs.
    assert f"torch=={package_version('torch')}" in reqs
    assert f"numpy=={package_version('numpy')}" in reqs
    if package_version("ai-edge-litert"):
        assert f"ai-edge-litert=={package_version('ai-edge-litert')}" in reqs
    assert {"litert_torch", "torch", "ai_edge_litert.interpreter"} <= set(spec.imports)
    assert env_for(route("torch/executorch")).toolchains == ("executorch",)
    # A route without a toolchain stays in this interpreter.
    assert env_for(route("torch/onnx/ort")) is None


def test_an_override_moves_only_the_routes_that_touch_the_package() -> None:
    overrides = ("onnxruntime==1.31.0",)
    ort = env_for(route("torch/onnx/ort"), overrides)
    assert ort is not None and ort.name == "onnxruntime==1.31.0" and ort.overrides == overrides
    assert "onnxruntime==1.31.0" in ort.requirements
    assert f"onnx=={package_version('onnx')}" in ort.requirements  # everything else pinned
    assert env_for(route("torch/openvino"), overrides) is None
    # On a toolchain route that does not touch it, the declared environment is unchanged.
    assert env_for(route("torch/tflite"), overrides) == env_for(route("torch/tflite"))
    other = env_for(route("torch/onnx/ort"), ("onnxruntime==1.30.0",))
    assert other.digest != ort.digest and ort.digest == env_for(route("torch/onnx/ort"), overrides).digest


def test_toolchain_routes_are_available_without_their_packages_here() -> None:
    assert availability(route("torch/tflite")).available
    assert availability(route("torch/executorch")).available


def _env(version: str) -> Env:
    return Env("d" + version.replace(".", ""), f"onnxruntime=={version}", Path("/nowhere"),
               {"onnxruntime": version, "numpy": "2.4.6"}, (f"onnxruntime=={version}",), "2026-12-02T00:00:00", 1.0,
               (f"onnxruntime=={version}",))


def test_the_cache_key_holds_the_environment_and_an_override_leaves_other_cells_alone(tmp_path: Path) -> None:
    spec = models.get("mlp_tabular")
    ort, ov = route("torch/onnx/ort"), route("torch/openvino")
    plain = RunSettings(workdir=tmp_path)
    upgraded = RunSettings(workdir=tmp_path, toolchains=("onnxruntime==1.31.0",))
    openvino = PlannedCell(spec, ov, Target(ov.runtime))
    assert cell_key(openvino, plain) == cell_key(openvino, upgraded)  # the override does not touch it
    main = cell_key(PlannedCell(spec, ort, Target(ort.runtime)), plain)
    old = cell_key(PlannedCell(spec, ort, Target(ort.runtime), env=_env("1.31.0")), upgraded)
    older = cell_key(PlannedCell(spec, ort, Target(ort.runtime), env=_env("1.30.0")), upgraded)
    assert len({main, old, older}) == 3


def _doc(version: str | None) -> dict:
    cell = {"model": "mlp_tabular", "route": "torch/onnx/ort", "device": "cpu", "precision": "fp32",
            "status": "pass", "packages": ["torch", "onnx", "onnxruntime"]}
    if version:
        cell["toolchain"] = {"env": "x", "name": f"onnxruntime=={version}", "requirements": [],
                             "packages": {"onnxruntime": version, "torch": "2.13.0+cpu"}}
    return {"run": {"packages": {"numpy": "2.4.6", "torch": "2.13.0+cpu", "onnx": "1.23.2", "onnxruntime": "1.32.0",
                                 "openvino": "2026.4.1"}}, "cells": [cell]}


def test_a_cell_in_an_environment_reports_that_environments_versions_and_diff_says_what_changed() -> None:
    before, after = _doc(None), _doc("1.31.0")
    assert relevant_packages(after, after["cells"][0])["onnxruntime"] == "1.31.0"
    assert relevant_packages(before, before["cells"][0])["onnxruntime"] == "1.32.0"
    changes = version_changes(before, after)
    assert changes == [{"package": "onnxruntime", "before": "1.32.0", "after": "1.31.0", "cells": 1}]
    assert render_versions(changes) == "onnxruntime 1.32.0 -> 1.31.0 in 1 cell"
    assert version_changes(before, copy.deepcopy(before)) == []


def test_a_cell_whose_reference_is_the_overridden_package_says_both_sides_ran_it(tmp_path: Path) -> None:
    from convcheck.engine import reference_overridden

    settings = RunSettings(workdir=tmp_path, toolchains=("onnxruntime==1.31.0",))
    onnx_ort, torch_ort = route("onnx/ort"), route("torch/onnx/ort")
    spec = models.get("mlp_tabular")
    note = reference_overridden(PlannedCell(spec, onnx_ort, Target(onnx_ort.runtime), env=_env("1.31.0")), settings)
    assert note and "ort_reference" in note and "onnxruntime==1.31.0" in note and "onnx-reference" in note
    torch_cell = PlannedCell(spec, torch_ort, Target(torch_ort.runtime), env=_env("1.31.0"))
    assert reference_overridden(torch_cell, settings) is None  # torch computes that reference
