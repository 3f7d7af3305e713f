"""ort_offline: an offline-optimised graph loaded as a deployment would, with optimisations off."""

from __future__ import annotations

from typing import ClassVar

from convcheck.validate.runtimes.ort import OrtRuntime
from convcheck_example.formats import ONNX_OPTIMIZED, ORT


class OrtOfflineRuntime(OrtRuntime):
    name = "ort_offline"
    format = ONNX_OPTIMIZED
    devices = ("cpu",)
    requires = (ORT,)
    summary = "ONNX Runtime on an offline-optimised graph, session optimisations off (as deployed)"
    optimization = "none"  # already applied by the hop: applying them again would hide what the file does
    #: Its intermediates are fused nodes with no counterpart in the source graph: no node-by-node localising.
    onnx_intermediates = None
    #: The built-in deployment profiles (`convcheck audit --deploy NAME`) this runtime is a candidate for.
    deploy_profiles = ("cpu-server", "edge-cpu")
    lockin: ClassVar[dict] = {"runtime_tools": {"ort_offline": ["onnxruntime"]}}
