"""TensorRT on one CUDA GPU, through polygraphy's TrtRunner.

The engine is a `.engine` file built by `convcheck.convert.tensorrt_from_onnx` for one precision
and one GPU model: it is loaded as bytes (`EngineFromBytes`) and run by polygraphy's runner, which
owns the CUDA stream and device buffers. tensorrt and polygraphy are imported inside the methods
only, so listing routes never loads them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from typing import Any

import numpy as np

from convcheck.requirements import POLYGRAPHY, TENSORRT
from convcheck.types import Artifact, Format
from convcheck.runtime import Runtime



class TensorrtRuntime(Runtime):
    name = "tensorrt"
    format = Format.TENSORRT
    devices = ("cuda",)
    precisions = ("fp32", "fp16")
    requires = (TENSORRT, POLYGRAPHY)
    summary = "TensorRT engine run by polygraphy's TrtRunner on one CUDA GPU"

    def activate_impl(self, artifact: Artifact) -> None:
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner
        from polygraphy.datatype import DataType

        built_for = artifact.metadata.get("precision")
        if built_for and built_for != self.target.precision:
            # Precision is baked into the engine at build time: running an fp16 engine in an fp32
            # cell would report fp16 parity under an fp32 label.
            raise ValueError(f"engine was built for {built_for}, the cell runs {self.target.precision}")
        self.built_for = built_for
        # polygraphy prints "[I] Loading bytes ..." lines on stdout: keep the progress output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            self.runner = TrtRunner(EngineFromBytes(artifact.main_file.read_bytes()), name="convcheck")
            self.runner.activate()
            meta = self.runner.get_input_metadata(use_numpy_dtypes=False)
        self.input_names = list(meta)
        # The engine's input types are fixed (e.g. int32 token ids on older parsers): feeds are cast
        # to them rather than rejected, as ORT would not need.
        self.input_dtypes = {n: np.dtype(DataType.to_dtype(m.dtype, "numpy")) for n, m in meta.items()}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        feed = {n: np.ascontiguousarray(feeds[n], dtype=self.input_dtypes[n]) for n in self.input_names}
        outputs = self.runner.infer(feed, copy_outputs_to_host=True)
        # TrtRunner returns views of host buffers it reuses on the next call: copy, or every sample
        # kept by the caller would silently become the last one.
        return {name: np.array(value, copy=True) for name, value in outputs.items()}

    def deactivate_impl(self) -> None:
        self.runner.deactivate()
        del self.runner

    def describe(self) -> dict[str, Any]:
        import tensorrt as trt

        return {
            "tensorrt": trt.__version__,
            "precision": self.target.precision,
            "engine_precision": getattr(self, "built_for", None),
            "device": gpu_name(),
            "runner": "polygraphy TrtRunner",
        }


def gpu_name() -> str | None:
    """The GPU's name (an engine is valid on one GPU model only), or None if it cannot be found.

    TensorRT's Python API has no device query. torch answers when it is already loaded (it honours
    CUDA_VISIBLE_DEVICES); otherwise nvidia-smi, which numbers all GPUs, for the first visible one.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                return str(torch.cuda.get_device_name(0))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    with contextlib.suppress(Exception):
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader", "-i", visible or "0"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    return None
