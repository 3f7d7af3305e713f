"""A precision-independent step (the float flatbuffer fp16/int8 quantise, jax2tf's SavedModel) is built once
per model and inputs and read by the other precisions' cells; a failed or racing build never leaves a folder
a cell would trust."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcheck.converter import ConvertContext, shared_intermediate
from convcheck.model_spec import InputSpec
from convcheck.types import Artifact, Format


def _ctx(model_dir: Path, precision: str, shape=(1, 4)) -> ConvertContext:
    return ConvertContext(model_dir / f"torch-tflite-cpu-{precision}", [InputSpec("x", shape)], ["y"],
                          {"x": np.zeros(shape, np.float32)})


def _source(sha: str | None) -> Artifact:
    return Artifact(format=Format.TORCH, path=Path("/nonexistent"), sha256=sha)


def _builder(calls: list[Path], content: str = "flatbuffer"):
    def build(folder: Path) -> None:
        calls.append(folder)
        folder.mkdir(parents=True)
        (folder / "model.tflite").write_text(content)
    return build


def test_the_second_precision_reuses_the_first_ones_build(tmp_path):
    calls: list[Path] = []
    fp16 = _ctx(tmp_path, "fp16")
    first = shared_intermediate(fp16, _source("a" * 64), "litert_torch_float", _builder(calls))
    int8 = _ctx(tmp_path, "int8")
    second = shared_intermediate(int8, _source("a" * 64), "litert_torch_float", _builder(calls))
    assert first == second and len(calls) == 1
    assert (first / "model.tflite").read_text() == "flatbuffer"
    assert first.parent == tmp_path  # beside the cells' folders, not inside one of them
    assert any("reused" in line for line in int8.log)
    assert not list(tmp_path.glob("*.partial-*"))


def test_other_inputs_or_another_source_build_their_own(tmp_path):
    calls: list[Path] = []
    base = shared_intermediate(_ctx(tmp_path, "fp16"), _source("a" * 64), "litert_torch_float", _builder(calls))
    other_model = shared_intermediate(_ctx(tmp_path, "fp16"), _source("b" * 64), "litert_torch_float",
                                      _builder(calls))
    other_shape = shared_intermediate(_ctx(tmp_path, "fp16", (2, 4)), _source("a" * 64), "litert_torch_float",
                                      _builder(calls))
    other_step = shared_intermediate(_ctx(tmp_path, "fp16"), _source("a" * 64), "jax2tf_savedmodel",
                                     _builder(calls))
    assert len({base, other_model, other_shape, other_step}) == 4 and len(calls) == 4


def test_a_failed_build_leaves_nothing_and_the_next_cell_builds_again(tmp_path):
    def broken(folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "half.tflite").write_text("half")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError, match="converter crashed"):
        shared_intermediate(_ctx(tmp_path, "fp16"), _source("a" * 64), "litert_torch_float", broken)
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial, no final folder to trust
    calls: list[Path] = []
    folder = shared_intermediate(_ctx(tmp_path, "int8"), _source("a" * 64), "litert_torch_float", _builder(calls))
    assert len(calls) == 1 and (folder / "model.tflite").read_text() == "flatbuffer"


def test_the_loser_of_a_race_uses_the_winners_copy(tmp_path):
    winner_calls: list[Path] = []

    def racing(folder: Path) -> None:
        # While this worker builds, another worker finishes the same step and renames its copy into place.
        shared_intermediate(_ctx(tmp_path, "int8"), _source("a" * 64), "litert_torch_float",
                            _builder(winner_calls, "winner"))
        folder.mkdir(parents=True)
        (folder / "model.tflite").write_text("loser")

    folder = shared_intermediate(_ctx(tmp_path, "fp16"), _source("a" * 64), "litert_torch_float", racing)
    assert (folder / "model.tflite").read_text() == "winner"
    assert not list(tmp_path.glob("*.partial-*"))


def test_without_a_source_digest_the_step_is_the_cells_own(tmp_path):
    calls: list[Path] = []
    ctx = _ctx(tmp_path, "fp16")
    folder = shared_intermediate(ctx, _source(None), "litert_torch_float", _builder(calls))
    assert folder == ctx.workdir / "litert_torch_float" and len(calls) == 1
