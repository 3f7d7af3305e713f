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
        import os
        import time

        # A test that must know how often the hang was started names a file to count starts in.
        starts_file = os.environ.get("CONVCHECK_TEST_HANG_STARTS")
        if starts_file:
            with open(starts_file, "a") as starts:
                starts.write(f"{os.getpid()}\n")
        while True:
            time.sleep(1)


class MemoryHogExporter(CrashingExporter):
    """Allocates without bound (touched memory, so it is resident), 64 MiB at a time."""

    hop = "onnx_hog"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        hoard = []
        while True:
            hoard.append(bytearray(64 * 2**20))


class ThirstyOnnxFromTorch(OnnxFromTorch):
    """The real dynamo export, after holding 1.5 GiB of touched memory for three seconds: a converter
    with a real, bounded need (tf2onnx on Keras ResNet-50 needs ~10 GiB), not a runaway one."""

    hop = "onnx_thirsty"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import time

        held = [bytearray(64 * 2**20) for _ in range(24)]
        time.sleep(3.0)  # the parent samples resident memory every 0.2 s
        del held
        return super().convert_impl(source, ctx)


def plant_in_mlpackage(package: Any, fault: str) -> str:
    """Plant a fault in a converted .mlpackage's ML program and return the MIL variable it corrupts.

    `scale`: the first linear/conv op's weight scaled by 1.05 (written back as an immediate constant);
    `swap`: the first relu computes a sigmoid instead. Everything else is the converter's own output."""
    import shutil
    import tempfile
    from pathlib import Path

    import coremltools as ct
    import numpy as np

    from convcheck.validate.mil.program import load_program

    package = Path(package)
    spec = ct.utils.load_spec(str(package))
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    if fault == "scale":
        op = next(o for o in block.operations if o.type in ("linear", "conv"))
        weight = op.inputs["weight"].arguments[0].name
        value = np.asarray(load_program(package).consts[weight])
        const = next(o for o in block.operations if o.type == "const" and o.outputs[0].name == weight)
        tensor = const.attributes["val"].immediateValue.tensor  # replaces the blob reference
        scaled = value * value.dtype.type(1.05)
        if value.dtype == np.float16:  # fp16 immediates are raw little-endian bytes
            tensor.bytes.values = scaled.astype(np.float16).tobytes()
        else:
            tensor.floats.values[:] = scaled.astype(np.float32).ravel().tolist()
    elif fault == "swap":
        op = next(o for o in block.operations if o.type == "relu")
        op.type = "sigmoid"
    else:
        raise ValueError(fault)
    weights = ct.models.MLModel(str(package), skip_model_load=True).weights_dir
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / package.name
        ct.models.MLModel(spec, weights_dir=weights, skip_model_load=True).save(str(staged))
        shutil.rmtree(package)
        shutil.copytree(staged, package)
    return op.outputs[0].name


class _PlantedCoremlFromTorch:
    """The real torch -> Core ML conversion, then one planted fault in the saved ML program."""

    fault = ""

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        art = super().convert_impl(source, ctx)  # type: ignore[misc]
        planted_var = plant_in_mlpackage(art.main_file, self.fault)
        return Artifact(art.format, art.path, {**art.metadata, "planted": planted_var})  # digest of what is there now


def planted_coreml(fault: str) -> type:
    from convcheck.convert.coreml_from_torch import CoremlFromTorch

    return type(f"Coreml{fault.title()}FromTorch", (_PlantedCoremlFromTorch, CoremlFromTorch),
                {"hop": f"coreml_{fault}", "fault": fault, "__module__": __name__})
