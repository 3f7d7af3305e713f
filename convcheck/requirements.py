"""The packages hops and runtimes need, in one place: module checked (never imported) by `convcheck
routes`, distribution named in messages, and the convcheck extra that installs it."""

from __future__ import annotations

from convcheck.types import Requirement, Toolchain

TORCH = Requirement("torch", "torch", "torch")
ONNX = Requirement("onnx", "onnx", "onnx")
ONNXSCRIPT = Requirement("onnxscript", "onnxscript", "torch")
ORT = Requirement("onnxruntime", "onnxruntime", "onnx", also=("onnxruntime-gpu",))
TENSORFLOW = Requirement("tensorflow", "tensorflow-cpu", "tf", also=("tensorflow", "keras", "tf-keras"))
TF2ONNX = Requirement("tf2onnx", "tf2onnx", "tf")
TVM = Requirement("tvm", "apache-tvm", "tvm", also=("apache-tvm-ffi",))
OPENVINO = Requirement("openvino", "openvino", "openvino")
COREMLTOOLS = Requirement("coremltools", "coremltools", "coreml")
LITERT = Requirement("ai_edge_litert", "ai-edge-litert", "litert", import_check="ai_edge_litert.interpreter")
LITERT_TORCH = Requirement("litert_torch", "litert-torch", "litert-torch",
                           note="convcheck installs it in a toolchain environment of its own on first use")
EXECUTORCH = Requirement("executorch", "executorch", "executorch", import_check="executorch.runtime",
                         note="convcheck installs it in a toolchain environment of its own on first use")
TENSORRT = Requirement("tensorrt", "tensorrt", "tensorrt",
                       note="TensorRT's wheels download from NVIDIA's index and need a CUDA GPU")
POLYGRAPHY = Requirement("polygraphy", "polygraphy", "tensorrt")
JAX = Requirement("jax", "jax", "jax", also=("jaxlib", "flax"), import_check="flax.nnx")
JAX2ONNX = Requirement("jax2onnx", "jax2onnx", "jax")
IREE_COMPILER = Requirement("iree.compiler", "iree-base-compiler", "iree")
IREE_RUNTIME = Requirement("iree.runtime", "iree-base-runtime", "iree")
IREE_TOOLS_TF = Requirement("iree.tools.tf", "iree-tools-tf", "iree")
IREE_TURBINE = Requirement("iree.turbine", "iree-turbine", "iree")

# Toolchain environments (convcheck.toolchains): packages that cannot, or should not, live in the main one.
LITERT_TORCH_ENV = Toolchain(
    "litert-torch", ("litert-torch>=0.10,<0.11",),
    why="litert-torch 0.10 pins xdsl 0.28, which needs typing-extensions<4.13; apache-tvm-ffi needs >=4.13")
EXECUTORCH_ENV = Toolchain(
    "executorch", ("executorch>=1.5,<1.6",),
    why="executorch 1.5 pins torchao 0.18 and coremltools 9.0 and brings 1.5 GB (pandas, scikit-learn, hydra)")
