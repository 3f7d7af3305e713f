"""convcheck-example-plugin: ONNX Runtime's offline graph optimisation as a route.

ONNX Runtime can apply its graph optimisations once, offline, and save the result
(`SessionOptions.optimized_model_filepath`); a deployment then loads that file with optimisations off
and starts faster. Whether the saved graph still computes the same function is exactly the question
convcheck answers, so this plugin makes it a route: `torch/onnx/onnx_optimized/ort_offline`.
"""
