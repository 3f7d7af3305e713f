"""A hop that converts nothing: the artifact the user already converted themselves.

`convcheck check model.tflite --source model.keras` checks the user's own .tflite against the model
it came from: the route is `keras/given-tflite/tflite` — the source computes the reference, this hop
hands over the user's file (copied into the run folder, so nothing the run does touches the
original), matched to the source's input and output names through the file's SignatureDef.

These hops are never enumerated as routes (their source is None): `convcheck check` builds them for
the file it was given (`given_routes`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

from convcheck.converter import ConvertContext, Converter
from convcheck.convert.tflite_from_keras import inspect_flatbuffer, map_signature
from convcheck.types import Artifact, Format


class TfliteFromUserFile(Converter):
    hop = "given-tflite"
    source = None
    target = Format.TFLITE
    summary = "your own .tflite file, run as you converted it"
    passes_through: ClassVar[bool] = True  # the route's precision is the file's, not chosen by the run

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        given = Path(ctx.settings["given_artifacts"][Format.TFLITE.value])
        blob = given.read_bytes()
        info = inspect_flatbuffer(blob)
        input_map, output_map, matched = map_signature(info, [s.name for s in ctx.input_specs],
                                                       list(ctx.output_names))
        out_dir = ctx.workdir / "tflite"
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(given, out_dir / "model.tflite")
        return Artifact(
            format=Format.TFLITE,
            path=out_dir,
            metadata={"entry": "model.tflite", "given": str(given), "precision": tflite_precision(info),
                      "signature": info["signature"], "input_map": input_map, "output_map": output_map,
                      "output_matching": matched, "ops": info["ops"], "weights": info["weights"]},
        )


def tflite_precision(info: dict) -> str:
    """What a .tflite file computes in, judged from its constant tensors: int8 weights (dynamic-range or
    full-integer quantisation) -> int8, float16 weights -> fp16, else fp32."""
    weights = info.get("weights", {})
    if weights.get("int8") or weights.get("uint8"):
        return "int8"
    if weights.get("float16"):
        return "fp16"
    return "fp32"
