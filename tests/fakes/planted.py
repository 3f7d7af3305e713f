"""Converters and models that plant a known defect, to prove the pipeline catches it.

They wrap the real exporter and the real runtime: only the defect is planted.
"""

from __future__ import annotations

from typing import Any

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.onnx_from_torch import OnnxFromTorch
from convcheck.types import Artifact, Format
from convcheck.model_spec import InputSpec, ModelSpec


class ScaledWeightOnnxFromTorch(OnnxFromTorch):
    """The real dynamo export, then one weight matrix scaled by 1.05: a silent conversion bug."""

    hop = "onnx_scaled"
    scale = 1.05

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import numpy as np
        import onnx
        from onnx import numpy_helper

        art = super().convert_impl(source, ctx)
        path = art.main_file
        proto = onnx.load(str(path))
        init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        arr = numpy_helper.to_array(init) * np.float32(self.scale)
        init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
        for f in path.parent.iterdir():
            f.unlink()
        onnx.save(proto, str(path))
        return art


class CrashingExporter(Converter):
    """Raises like the legacy exporter does on an op it cannot export."""

    hop = "onnx_broken"
    source = Format.TORCH
    target = Format.ONNX
    requires = OnnxFromTorch.requires

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        raise RuntimeError("Unsupported: ONNX export of operator aten::frobnicate, opset 17.\nmore detail")


class ErfcOnnxFromTorch(Converter):
    """Writes a valid-looking ONNX graph that uses Erfc, an op ONNX Runtime has no kernel for
    (what tf2onnx 1.17 writes for Keras exact GELU)."""

    hop = "onnx_erfc"
    source = Format.TORCH
    target = Format.ONNX
    requires = OnnxFromTorch.requires

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import onnx
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 30])
        y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 30])
        graph = helper.make_graph([helper.make_node("Erfc", ["features"], ["logits"])], "g", [x], [y])
        out = ctx.workdir / "model.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(out))
        return Artifact(Format.ONNX, out)


def build_constant(size: str) -> Any:
    """A torch model whose output ignores its input: zero weights, constant bias."""
    import torch

    model = torch.nn.Linear(30, 4)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.fill_(0.5)
    return model.eval()


CONSTANT_SPEC = ModelSpec(
    name="constant_model",
    description="test model whose output is constant",
    task="classifier",
    inputs=(InputSpec("features", (8, 30), dynamic_axes={0: "batch"}),),
    outputs=("logits",),
    builders={Format.TORCH: "tests.fakes.planted:build_constant"},
    batch=8,
)


class SegfaultingExporter(CrashingExporter):
    """Dies of SIGSEGV inside the converter, as a native library does."""

    hop = "onnx_segv"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


class HangingExporter(CrashingExporter):
    """Never returns (a converter stuck in a loop or a deadlock)."""

    hop = "onnx_hang"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import time

        while True:
            time.sleep(1)


class MemoryHogExporter(CrashingExporter):
    """Allocates without bound (touched memory, so it is resident), 64 MiB at a time."""

    hop = "onnx_hog"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        hoard = []
        while True:
            hoard.append(bytearray(64 * 2**20))
