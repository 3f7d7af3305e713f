"""TensorFlow SavedModel -> OpenVINO IR with `openvino.convert_model(folder)` (OpenVINO's TF front end)."""

from __future__ import annotations

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.openvino_from_onnx import save_ir
from convcheck.requirements import OPENVINO
from convcheck.types import Artifact, Format


class OpenvinoFromSavedModel(Converter):
    hop = "openvino"
    source = Format.SAVEDMODEL
    target = Format.OPENVINO
    requires = (OPENVINO,)
    summary = "openvino.convert_model(saved_model_dir) -> IR (TensorFlow front end, no TensorFlow import)"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import openvino as ov

        key = source.metadata.get("signature")
        # OpenVINO converts the serving_default signature; another one would need TensorFlow to load it.
        if key and key != "serving_default":
            raise ValueError(f"OpenVINO converts a SavedModel's serving_default signature only, not {key!r}")
        model = ov.convert_model(str(source.path))
        return save_ir(model, ctx, {"from": "savedmodel"})
