"""The TVM hops and runtime, with real TVM on tiny torch models.

torch -> ONNX -> TVM and torch -> ExportedProgram -> TVM must match torch eager; an ONNX LSTM must
end as `unsupported` naming LSTM; `--tvm-tune` must write both variants and reuse its records.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convcheck.converter import ConvertContext, Converter
from convcheck.types import Artifact, Format, Target
from convcheck.model_spec import InputSpec, ModelSpec

CPU = Target("tvm", "cpu", "fp32")


def build_mlp(size: str) -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)
    ).eval()


def build_cnn(size: str) -> Any:
    import torch

    torch.manual_seed(0)
    layers: list[Any] = []
    for cin, cout in ((3, 8), (8, 16)):
        # The first conv has no bias: the pattern FoldBatchnormToConv2D folds (the second keeps it).
        conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=cin != 3)
        layers += [conv, torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10))
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding it into the conv is tested
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


def build_lstm(size: str) -> Any:
    import torch

    class LastStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(16, 32, batch_first=True)
            self.head = torch.nn.Linear(32, 4)

        def forward(self, x: Any) -> Any:
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    torch.manual_seed(0)
    return LastStep().eval()


def build_wide(size: str) -> Any:
    """A classifier head with 300 outputs: the vector width does not divide it (PadMatmulColumns)."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.Tanh(), torch.nn.Linear(16, 300)).eval()


def build_conv1d(size: str) -> Any:
    """Conv1d, strided and padded (channels-last on CPU: NWC/WIO)."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv1d(2, 8, 5, stride=2, padding=2), torch.nn.ReLU(),
                               torch.nn.Conv1d(8, 16, 3, padding=1), torch.nn.AdaptiveAvgPool1d(1),
                               torch.nn.Flatten()).eval()


MODULE = __name__
MLP = ModelSpec("tvm_test_mlp", "tiny MLP", "classifier", (InputSpec("features", (8, 30), dynamic_axes={0: "batch"}),),
                ("logits",), {Format.TORCH: f"{MODULE}:build_mlp"}, batch=8)
CNN = ModelSpec("tvm_test_cnn", "tiny CNN with BatchNorm", "classifier", (InputSpec("image", (1, 3, 16, 16)),),
                ("logits",), {Format.TORCH: f"{MODULE}:build_cnn"}, batch=1)
WIDE = ModelSpec("tvm_test_wide", "MLP with a 300-way head", "classifier", (InputSpec("features", (4, 30)),),
                 ("logits",), {Format.TORCH: f"{MODULE}:build_wide"}, batch=4)
CONV1D = ModelSpec("tvm_test_conv1d", "tiny 1-D CNN", "classifier", (InputSpec("wave", (1, 2, 64)),),
                   ("logits",), {Format.TORCH: f"{MODULE}:build_conv1d"}, batch=1)
LSTM = ModelSpec("tvm_test_lstm", "tiny LSTM", "regression", (InputSpec("sequence", (2, 10, 16)),),
                 ("out",), {Format.TORCH: f"{MODULE}:build_lstm"}, batch=2)


def _context(spec: ModelSpec, workdir: Path, **settings: Any) -> ConvertContext:
    return ConvertContext(workdir=workdir, input_specs=list(spec.inputs), output_names=list(spec.outputs),
                          example_feeds=spec.feeds(seed=0), target=CPU, settings=settings)


def _source(spec: ModelSpec, route: str, ctx: ConvertContext) -> Artifact:
    """The artifact the TVM hop reads, made by convcheck's own first hop."""
    from convcheck.convert.exported_program_from_torch import ExportedProgramFromTorch
    from convcheck.convert.onnx_from_torch import OnnxFromTorch

    first: Converter = OnnxFromTorch() if route == "onnx" else ExportedProgramFromTorch()
    return first.convert(spec.source_artifact(Format.TORCH, "tiny"), ctx)


def _tvm_hop(route: str) -> Converter:
    from convcheck.convert.tvm_from_exported_program import TvmFromExportedProgram
    from convcheck.convert.tvm_from_onnx import TvmFromOnnx

    return TvmFromOnnx() if route == "onnx" else TvmFromExportedProgram()


def _torch_reference(spec: ModelSpec, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    from convcheck.model_spec import materialize

    model = materialize(spec.source_artifact(Format.TORCH, "tiny"))
    with torch.no_grad():
        return model(*(torch.from_numpy(feeds[i.name]) for i in spec.inputs)).numpy()


def _run(artifact: Artifact, feeds: dict[str, np.ndarray], entry: str | None = None) -> dict[str, np.ndarray]:
    from convcheck.validate.runtimes.tvm import TvmRuntime

    if entry is not None:
        artifact = Artifact(artifact.format, artifact.path, metadata={**artifact.metadata, "entry": entry})
    runtime = TvmRuntime(CPU, threads=2)
    runtime.activate(artifact)
    try:
        return runtime.infer(feeds)
    finally:
        runtime.deactivate()


def test_modules_import_no_framework():
    code = ("import sys\n"
            "import convcheck.convert.tvm_from_onnx, convcheck.convert.tvm_from_exported_program\n"
            "import convcheck.validate.runtimes.tvm\n"
            "print(sorted(m for m in ('tvm', 'torch', 'onnx') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.framework
@pytest.mark.slow
@pytest.mark.parametrize("route", ["onnx", "exported_program"])
@pytest.mark.parametrize("spec", [MLP, CNN, WIDE, CONV1D], ids=["mlp", "cnn", "wide-head", "conv1d"])
def test_tvm_matches_torch(spec: ModelSpec, route: str, tmp_path: Path):
    pytest.importorskip("tvm")
    ctx = _context(spec, tmp_path)
    artifact = _tvm_hop(route).convert(_source(spec, route, ctx), ctx)

    meta = artifact.metadata
    assert artifact.format is Format.TVM and artifact.main_file.name == "model.so" and artifact.sha256
    assert meta["input_names"] == [i.name for i in spec.inputs]
    assert meta["output_names"] == list(spec.outputs)
    assert meta["static_shapes"] == {n: list(a.shape) for n, a in ctx.example_feeds.items()}
    assert meta["pipeline"] == "parallel-vectorize" and meta["tuned"] is False
    assert meta["target"]["kind"] == "llvm" and meta["target"]["mcpu"]

    out = _run(artifact, ctx.example_feeds)
    np.testing.assert_allclose(out[spec.outputs[0]], _torch_reference(spec, ctx.example_feeds), rtol=1e-4, atol=1e-5)


@pytest.mark.framework
@pytest.mark.slow
def test_cpu_pipeline_pads_wide_matmuls_and_goes_channels_last(tmp_path: Path):
    """The rewrites behind the untuned CPU figures fire where they should (their parity is
    test_tvm_matches_torch's): a 300-column head is padded to the vector width and sliced back, and
    a CNN's convolutions are built channels-last; a graph TVM cannot build channels-last (this
    Conv1d stack) falls back to its own layout and says so."""
    pytest.importorskip("tvm")
    import onnx
    import tvm
    from tvm.relax.frontend.onnx import from_onnx

    from convcheck.convert.tvm_schedule import make_target, prepare

    target = tvm.target.Target(make_target("cpu", {}))
    ctx = _context(WIDE, tmp_path / "wide")
    model = onnx.load(str(_source(WIDE, "onnx", ctx).main_file))
    mod = from_onnx(model, shape_dict={n: list(a.shape) for n, a in ctx.example_feeds.items()})
    assert "strided_slice" in prepare(mod, target).script()

    ctx = _context(CNN, tmp_path / "cnn")
    assert _tvm_hop("onnx").convert(_source(CNN, "onnx", ctx), ctx).metadata["conv_layout"] == "channels-last"
    ctx = _context(CONV1D, tmp_path / "conv1d")
    layout = _tvm_hop("onnx").convert(_source(CONV1D, "onnx", ctx), ctx).metadata["conv_layout"]
    assert layout == "channels-last" or layout.startswith("as imported (channels-last failed: ")


@pytest.mark.framework
@pytest.mark.slow
def test_static_shapes_are_enforced(tmp_path: Path):
    pytest.importorskip("tvm")
    ctx = _context(MLP, tmp_path)
    artifact = _tvm_hop("onnx").convert(_source(MLP, "onnx", ctx), ctx)
    with pytest.raises(ValueError, match="static shape"):
        _run(artifact, MLP.feeds(seed=1, batch=3))


@pytest.mark.framework
@pytest.mark.slow
def test_onnx_lstm_is_unsupported_naming_the_op(tmp_path: Path):
    pytest.importorskip("tvm")
    from convcheck.failures import classify

    ctx = _context(LSTM, tmp_path)
    onnx_model = _source(LSTM, "onnx", ctx)
    with pytest.raises(Exception) as caught:
        _tvm_hop("onnx").convert(onnx_model, ctx)
    failure = classify(caught.value, "convert:tvm")
    assert (failure.status, failure.op) == ("unsupported", "LSTM"), failure.message


def build_mlp_other_weights(size: str) -> Any:
    """The MLP's layers with other weights: another model file, the same kernels."""
    import torch

    model = build_mlp(size)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    return model


MLP_OTHER = ModelSpec("tvm_test_mlp_other", "tiny MLP, other weights", "classifier",
                      (InputSpec("features", (8, 30), dynamic_axes={0: "batch"}),), ("logits",),
                      {Format.TORCH: f"{MODULE}:build_mlp_other_weights"}, batch=8)


@pytest.mark.framework
@pytest.mark.slow
def test_tuning_writes_both_variants_and_reuses_its_records(tmp_path: Path):
    """MetaSchedule's own tuner (builder/runner in worker processes, JSON database) on a tiny MLP:
    both builds match torch, and another model with the same layers pays nothing for tuning."""
    pytest.importorskip("tvm")
    cache = tmp_path / "cache"
    ctx = _context(MLP, tmp_path / "first", tvm_tune_trials=16, cache_dir=cache)
    onnx_model = _source(MLP, "onnx", ctx)
    reference = _torch_reference(MLP, ctx.example_feeds)

    started = time.perf_counter()
    first = _tvm_hop("onnx").convert(onnx_model, ctx)
    first_seconds = time.perf_counter() - started
    meta = first.metadata
    assert meta["tuned"] is True and meta["tune_trials"] == 16 and meta["tune_reused"] is False
    assert meta["tune_state"] == "tuned" and meta["tune_kernels"] >= 1 and meta["tune_kernels_reused"] == 0
    assert meta["tune_trials_run"] >= meta["tune_kernels"]  # MetaSchedule measured candidates
    # Every tuned kernel was timed against its default schedule; the slower of the two is not shipped.
    assert meta["tune_compared_kernels"] >= 1
    assert len(meta["tune_kept_default"]) <= meta["tune_compared_kernels"]
    assert meta["variants"] == {"untuned": "model_untuned.so"}
    assert (first.path / "model_untuned.so").is_file()
    records = Path(meta["tuning_records"])
    assert records.is_relative_to(cache / "tvm-tuning")
    assert (records / "database_tuning_record.json").stat().st_size > 0
    for entry in ("model.so", "model_untuned.so"):
        np.testing.assert_allclose(_run(first, ctx.example_feeds, entry)["logits"], reference, rtol=1e-4, atol=1e-5)

    # Another model file (other weights), same kernels: the records are the kernels', not the file's.
    other = _context(MLP_OTHER, tmp_path / "second", tvm_tune_trials=16, cache_dir=cache)
    other_onnx = _source(MLP_OTHER, "onnx", other)
    started = time.perf_counter()
    second = _tvm_hop("onnx").convert(other_onnx, other)
    second_seconds = time.perf_counter() - started
    assert second.metadata["tune_state"] == "reused" and second.metadata["tune_reused"] is True
    assert second.metadata["tuning_records"] == meta["tuning_records"]
    assert second.metadata["tune_seconds"] < 0.05 * meta["tune_seconds"]
    assert second_seconds < first_seconds / 2
    np.testing.assert_allclose(_run(second, other.example_feeds)["logits"],
                               _torch_reference(MLP_OTHER, other.example_feeds), rtol=1e-4, atol=1e-5)

    # A larger budget than the records cover searches again.
    more = _context(MLP, tmp_path / "third", tvm_tune_trials=32, cache_dir=cache)
    third = _tvm_hop("onnx").convert(_source(MLP, "onnx", more), more)
    assert third.metadata["tune_state"] == "tuned" and third.metadata["tune_trials_run"] > 0
