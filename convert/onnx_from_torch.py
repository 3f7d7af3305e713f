"""torch -> ONNX, with both exporters torch ships.

`OnnxFromTorch` (hop `onnx`) is torch.onnx's default dynamo exporter (torch.export underneath,
opset 18+, needs onnxscript). `OnnxFromTorchLegacy` (hop `onnx_legacy`) is the TorchScript-based
exporter (`dynamo=False`), deprecated but still what many deployed models went through: the two
fail on different models, which is why both are routes.

The dynamo exporter writes weights to `<name>.onnx.data` even for tiny models, so the artifact is
a folder holding `model.onnx` and its data, hashed and moved as one.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

from convcheck.converter import ConvertContext, ConvertOptions, Converter
from convcheck.requirements import ONNX, ONNXSCRIPT, TORCH
from convcheck.types import Artifact, Format


@dataclass
class TorchOnnxOptions(ConvertOptions):
    opset: int | None = None  # None: the exporter's default (dynamo 18+, legacy 17)
    dynamic_batch: bool = True  # export the axes the model declares dynamic as symbolic


class OnnxFromTorch(Converter):
    hop = "onnx"
    source = Format.TORCH
    target = Format.ONNX
    requires = (TORCH, ONNX, ONNXSCRIPT)
    options_class = TorchOnnxOptions
    summary = "torch.onnx.export, dynamo exporter (default)"
    dynamo = True

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import logging

        import torch

        from convcheck.model_spec import materialize

        # "torchvision is not installed. Skipping torchvision::nms" x4 on every export: not news.
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        model = materialize(source).eval()
        names = [spec.name for spec in ctx.input_specs]
        args = tuple(torch.from_numpy(ctx.example_feeds[n]) for n in names)
        out_dir = ctx.workdir / "onnx"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.onnx"
        kwargs: dict[str, Any] = dict(
            input_names=names, output_names=list(ctx.output_names), dynamo=self.dynamo,
        )
        if self.options.opset is not None:
            kwargs["opset_version"] = self.options.opset
        elif not self.dynamo:
            kwargs["opset_version"] = 17
        if self.options.dynamic_batch:
            kwargs["dynamic_axes"] = _dynamic_axes(ctx)
        # The dynamo exporter prints progress lines on stdout and both warn a lot: keep them in the
        # artifact's log instead of interleaving them with convcheck's own output.
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # A user's .pt2 is already an ExportedProgram: the dynamo exporter takes it as is (its
            # dynamic dims included) instead of tracing the module again.
            program = getattr(model, "exported_program", None) if self.dynamo else None
            if program is not None:
                kwargs.pop("dynamic_axes", None)
            torch.onnx.export(program if program is not None else model, args, str(path), **kwargs)
        ctx.log.extend(line for line in captured.getvalue().splitlines() if line.strip())
        ctx.log.extend(f"warning: {w.message}" for w in caught[:20])
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        return Artifact(
            format=Format.ONNX,
            path=out_dir,
            metadata={
                "entry": "model.onnx",
                "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
                "exporter": "dynamo" if self.dynamo else "torchscript",
                "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
                "nodes": len(proto.graph.node),
            },
        )


class OnnxFromTorchLegacy(OnnxFromTorch):
    hop = "onnx_legacy"
    requires = (TORCH, ONNX)
    summary = "torch.onnx.export(dynamo=False), TorchScript exporter (deprecated)"
    dynamo = False


def _dynamic_axes(ctx: ConvertContext) -> dict[str, dict[int, str]]:
    axes = {spec.name: dict(spec.dynamic_axes) for spec in ctx.input_specs if spec.dynamic_axes}
    batch_dynamic = any(0 in spec.dynamic_axes for spec in ctx.input_specs)
    if batch_dynamic:
        for name in ctx.output_names:
            axes.setdefault(name, {0: "batch"})
    return axes
