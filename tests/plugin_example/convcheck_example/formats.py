"""The plugin's artifact format. `Format.register` is idempotent: the hop and the runtime both name it."""

from convcheck.types import Format, Requirement

#: An ONNX graph after ONNX Runtime's offline optimisations: fused nodes in the com.microsoft domain,
#: readable by ONNX Runtime (of that version or later) only.
ONNX_OPTIMIZED = Format.register("onnx_optimized")

#: What the hop and the runtime need. The extra is "" because this plugin installs it itself
#: (pyproject.toml `dependencies`); the route contract test checks that the declaration is true.
ORT = Requirement("onnxruntime", "onnxruntime", "", also=("onnxruntime-gpu",))
