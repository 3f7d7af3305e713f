"""torch -> TFLite (LiteRT flatbuffer) with `litert_torch.convert` (the PyPI package `litert-torch`,
formerly ai-edge-torch): torch.export, then Google's StableHLO -> TFLite lowering. No TensorFlow.
It runs in a toolchain environment of its own (convcheck.toolchains): litert-torch's pins cannot live
beside the TVM extra.

fp32 is the plain conversion. fp16 and int8 post-process the float flatbuffer with ai-edge-quantizer
(a litert-torch dependency), matching the Keras hop's meaning of the precisions: fp16 = float16
weights dequantised before each op, int8 = dynamic-range (int8 channelwise weights, activations
quantised on the fly). Unlike TF's converter, ai-edge-quantizer quantises every weight tensor, small
ones included (`min_weight_elements` 0).

The export is for the example batch's shapes: litert-torch 0.10 with torch 2.13 fails on a dynamic
batch (`dynamic_shapes`) with an AssertionError inside its lowering, so the flatbuffer has a fixed
batch and the runtime feeds it that batch. Its signature names inputs `args_<i>` and outputs
`output_<i>` by position; the artifact maps the declared names onto them, checked by shape.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

from convcheck.converter import ConvertContext, Converter, shared_intermediate
from convcheck.convert.tflite_from_keras import inspect_flatbuffer
from convcheck.errors import CellFailure
from convcheck.requirements import LITERT_TORCH, LITERT_TORCH_ENV
from convcheck.types import Artifact, Format, Status


#: precision -> ai-edge-quantizer recipe (None: the float model as converted).
_FP16_RECIPE = [{
    "regex": ".*", "operation": "*", "algorithm_key": "float_casting",
    "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                  "compute_precision": "FLOAT", "explicit_dequantize": True},
}]
QUANTISATION = {
    "fp32": "none",
    "fp16": "float16 weights, float32 compute (ai-edge-quantizer float_casting)",
    "int8": "dynamic-range: int8 channelwise weights, float activations (ai-edge-quantizer dynamic_wi8_afp32)",
}


class TfliteFromTorch(Converter):
    hop = "tflite"
    source = Format.TORCH
    target = Format.TFLITE
    requires = (LITERT_TORCH,)
    toolchain = LITERT_TORCH_ENV
    summary = "litert_torch.convert (torch.export -> TFLite), ai-edge-quantizer for fp16 / int8"
    depends_on_target = True  # the precision picks the quantisation

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import torch

        from convcheck.model_spec import materialize

        precision = ctx.target.precision
        if precision not in QUANTISATION:
            raise CellFailure(Status.UNSUPPORTED.value, f"no TFLite conversion for precision {precision}",
                              "convert:tflite")
        model = materialize(source).eval()
        names = [s.name for s in ctx.input_specs]
        args = tuple(torch.from_numpy(ctx.example_feeds[n]) for n in names)
        out_dir = ctx.workdir / "tflite"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.tflite"

        def build(folder: Path) -> None:
            folder.mkdir(parents=True)
            with _quiet(ctx.log):
                import litert_torch

                litert_torch.convert(model, args).export(str(folder / "model.tflite"))

        # The float flatbuffer does not depend on the precision: fp16 and int8 quantise the fp32 one.
        float_path = shared_intermediate(ctx, source, "litert_torch_float", build) / "model.tflite"
        with _quiet(ctx.log):
            import litert_torch

            if precision == "fp32":
                shutil.copyfile(float_path, path)
            else:
                _quantise(float_path, path, precision)
        info = inspect_flatbuffer(path.read_bytes())
        input_map, output_map = _map_io(info, ctx, [tuple(a.shape) for a in args], _torch_shapes(model, args))
        return Artifact(
            format=Format.TFLITE,
            path=out_dir,
            metadata={
                "entry": "model.tflite", "precision": precision, "quantization": QUANTISATION[precision],
                "via": "litert_torch.convert", "dynamic_batch": False, "signature": info["signature"],
                "input_names": names, "output_names": list(ctx.output_names),
                "input_map": input_map, "output_map": output_map, "output_matching": "signature order",
                "ops": info["ops"], "weights": info["weights"], "litert_torch": litert_torch.__version__,
            },
        )


def _quantise(float_path: Any, path: Any, precision: str) -> None:
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(float_path))
    q.load_quantization_recipe(recipe.dynamic_wi8_afp32() if precision == "int8" else _FP16_RECIPE)
    if path.exists():
        path.unlink()  # export_model refuses to overwrite
    q.quantize().export_model(str(path))


def _torch_shapes(model: Any, args: tuple[Any, ...]) -> list[tuple[int, ...]]:
    import torch

    with torch.no_grad():
        out = model(*args)
    outs = out if isinstance(out, (list, tuple)) else (out,)
    return [tuple(o.shape) for o in outs]


def _map_io(info: dict[str, Any], ctx: ConvertContext, in_shapes: list[tuple[int, ...]],
            out_shapes: list[tuple[int, ...]]) -> tuple[dict, dict]:
    """Declared names onto the positional `args_<i>` / `output_<i>` keys, each checked by shape."""
    sig = info["signature"]
    if sig is None:
        raise RuntimeError("litert-torch wrote a model without a SignatureDef")
    maps = []
    for declared, shapes, prefix, found in ((
            [s.name for s in ctx.input_specs], in_shapes, "args_", sig["inputs"]),
            (list(ctx.output_names), out_shapes, "output_", sig["outputs"])):
        if len(found) != len(declared):
            raise RuntimeError(f"the TFLite signature has {sorted(found)}, the model declares {declared}")
        mapping = {}
        for i, name in enumerate(declared):
            key = name if name in found else f"{prefix}{i}"
            if key not in found or (i < len(shapes) and list(shapes[i]) != found[key]["shape"]):
                raise RuntimeError(f"{name!r} {list(shapes[i]) if i < len(shapes) else '?'} does not match the "
                                   f"TFLite signature { {k: v['shape'] for k, v in found.items()} }")
            mapping[name] = {"key": key, "tensor": found[key]["tensor"]}
        maps.append(mapping)
    return maps[0], maps[1]


@contextlib.contextmanager
def _quiet(log: list[str]) -> Any:
    """litert-torch draws a progress tree on stdout (rich) and ai-edge-quantizer prints a size report:
    switch the first off and keep the second in the artifact's log."""
    saved = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        if saved is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved
        log.extend(ln for ln in captured.getvalue().splitlines() if ln.strip())
