"""ONNX -> OpenVINO IR (`model.xml` + `model.bin`), with `openvino.convert_model`.

Saved with `compress_to_fp16=False`: `ov.save_model` compresses weights to fp16 by default, which
turned a ResNet-50's max_abs error from 4.5e-5 into 0.03 (shared NOTES) — that is an fp16 cell,
not an fp32 one.
"""

from __future__ import annotations

from typing import Any

from convcheck.converter import ConvertContext, Converter
from convcheck.requirements import OPENVINO
from convcheck.types import Artifact, Format


class OpenvinoFromOnnx(Converter):
    hop = "openvino"
    source = Format.ONNX
    target = Format.OPENVINO
    requires = (OPENVINO,)
    summary = "openvino.convert_model(model.onnx) -> IR"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import openvino as ov

        model = ov.convert_model(str(source.main_file))
        return save_ir(model, ctx, {"from": "onnx"})


def save_ir(model: Any, ctx: ConvertContext, metadata: dict[str, Any]) -> Artifact:
    """Name the IR's inputs/outputs as the model declares them and save it uncompressed."""
    import openvino as ov

    # Exactly the declared name: OpenVINO's torch front end names inputs after forward()'s arguments
    # ("input"), and a port with several names answers get_any_name() with whichever sorts first.
    for port, name in _match_ports(model.inputs, [s.name for s in ctx.input_specs]):
        port.get_tensor().set_names({name})
    for port, name in _match_ports(model.outputs, list(ctx.output_names)):
        port.get_tensor().set_names({name})
    out_dir = ctx.workdir / "openvino"
    out_dir.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out_dir / "model.xml"), compress_to_fp16=False)
    return Artifact(
        format=Format.OPENVINO,
        path=out_dir,
        metadata={
            "entry": "model.xml",
            # In port order, each port's only name now: the runtime binds by these, because compiling
            # folds no-op nodes behind an input and merges their tensor names into the input's.
            "input_names": [p.get_any_name() for p in model.inputs],
            "output_names": list(ctx.output_names),
            "openvino": ov.get_version(),
            "inputs": {p.get_any_name(): str(p.get_partial_shape()) for p in model.inputs},
            "ops": len(model.get_ops()),
            **metadata,
        },
    )


def _match_ports(ports: list[Any], names: list[str]) -> list[tuple[Any, str]]:
    """Ports to declared names: by name where every declared name is among the ports' names (a
    SavedModel's inputs come in signature-key order, not the declaration's), else by position."""
    by_name = {n: p for p in ports for n in p.get_names()}
    if all(n in by_name for n in names) and len({id(by_name[n]) for n in names}) == len(names):
        return [(by_name[n], n) for n in names]
    return list(zip(ports, names))
