"""torch -> OpenVINO IR directly, with `openvino.convert_model(nn.Module, example_input=...)`.

OpenVINO traces the module itself (TorchScript underneath), skipping ONNX: a different front end
with different failure modes from the ONNX route, which is why both are routes.
"""

from __future__ import annotations

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.openvino_from_onnx import save_ir
from convcheck.requirements import OPENVINO, TORCH
from convcheck.types import Artifact, Format


class OpenvinoFromTorch(Converter):
    hop = "openvino"
    source = Format.TORCH
    target = Format.OPENVINO
    requires = (TORCH, OPENVINO)
    summary = "openvino.convert_model(nn.Module) -> IR"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import openvino as ov
        import torch

        from convcheck.model_spec import materialize

        module = materialize(source).eval()
        example = tuple(torch.from_numpy(ctx.example_feeds[s.name]) for s in ctx.input_specs)
        # Static shapes except the axes the model declares dynamic: a fully dynamic IR is slower.
        shapes = [
            ov.PartialShape([-1 if axis in s.dynamic_axes else int(d)
                             for axis, d in enumerate(ctx.example_feeds[s.name].shape)])
            for s in ctx.input_specs
        ]
        with torch.no_grad():
            model = ov.convert_model(module, example_input=example, input=shapes)
        return save_ir(model, ctx, {"from": "torch"})
