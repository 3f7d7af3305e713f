"""onnx -> onnx_optimized: ONNX Runtime's graph optimisations applied once and saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from convcheck.converter import ConvertContext, ConvertOptions, Converter
from convcheck.types import Artifact, Format
from convcheck_example.formats import ONNX_OPTIMIZED, ORT


@dataclass
class OfflineOptions(ConvertOptions):
    #: ORT's level: "basic" (constant folding, redundant nodes) or "extended" (fusions, com.microsoft ops).
    level: str = "extended"


class OnnxOptimizedFromOnnx(Converter):
    hop = "onnx_optimized"
    source = Format.ONNX
    target = ONNX_OPTIMIZED
    requires = (ORT,)
    options_class = OfflineOptions
    summary = "ONNX Runtime's offline graph optimisation (extended level), saved as a new ONNX file"
    #: Lock-in facts in reports/data/lockin.json's shape: what the scorer knows about this hop's artifact.
    lockin: ClassVar[dict] = {
        "step_formats": {"onnx_optimized": "onnx_ort_optimized"},
        "hop_tools": {"*>onnx_optimized": ["onnxruntime"]},
        "formats": {"onnx_ort_optimized": {
            "name": "ONNX after ONNX Runtime offline optimisation",
            "governance": "open_source_single_vendor",
            "steward": "Microsoft (ONNX Runtime)",
            "reason": "an ONNX file, but its fused nodes are ONNX Runtime contrib ops (com.microsoft domain)",
            "reversibility": {"class": "partial", "to": ["ONNX"], "tool": None,
                              "note": "keep the unoptimised ONNX file: the fused contrib ops run on ONNX Runtime only"},
            "runtimes": ["ONNX Runtime (Microsoft)"],
            "hardware_vendors": ["Intel", "AMD", "Arm"],
            "tied_to": "the ONNX Runtime version and execution provider that wrote it",
            "source": "https://onnxruntime.ai/docs/performance/model-optimizations/graph-optimizations.html",
        }},
    }

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import onnxruntime as ort  # the heavy import lives here, never at module level

        opts = ort.SessionOptions()
        opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                         "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[self.options.level]
        out = ctx.workdir / "model.optimized.onnx"
        opts.optimized_model_filepath = str(out)
        # Weights that came as external data must be written beside the new file: by default ORT keeps
        # the source's relative reference (model.onnx.data), which does not exist next to the output.
        data = "model.optimized.onnx.data"
        opts.add_session_config_entry("session.optimized_model_external_initializers_file_name", data)
        ort.InferenceSession(str(source.main_file), sess_options=opts, providers=["CPUExecutionProvider"])
        ctx.log.append(f"onnx_optimized: ONNX Runtime {ort.__version__} wrote the {self.options.level} graph")
        members = [data] if (ctx.workdir / data).exists() else []
        return Artifact(ONNX_OPTIMIZED, out, {"level": self.options.level, "onnxruntime": ort.__version__,
                                              "members": members})
