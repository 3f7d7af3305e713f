"""Explicit registries of converters, runtimes and zoo models.

Built-in entries are lazy dotted paths ("convcheck.convert.onnx_from_torch:OnnxFromTorch"): the
module is imported on first use. Converter and runtime modules import their heavy framework only
inside `convert()` / `activate()`, so loading the *class* (to read its hop name, formats and
requirements) costs nothing. Third-party plugins register through the entry-point groups
`convcheck.converters`, `convcheck.runtimes`, `convcheck.executors` and `convcheck.models`.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Generic, Iterator, TypeVar

from convcheck.errors import ConvcheckError

T = TypeVar("T")


def load_dotted(path: str) -> object:
    """Import `package.module:attribute`."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"dotted path {path!r} must look like 'package.module:Attribute'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ImportError(f"{module_name} has no attribute {attr!r} (registered as {path!r})") from exc


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """name -> lazily loaded object. Registration is explicit; order of registration is kept."""

    def __init__(self, kind: str, entry_point_group: str, list_command: str) -> None:
        self.kind = kind
        self.list_command = list_command
        self.entry_point_group = entry_point_group
        self._paths: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        self._plugins_scanned = False

    def register(self, name: str, dotted_path: str) -> None:
        if name in self._paths and self._paths[name] != dotted_path:
            raise ValueError(f"{self.kind} {name!r} is already registered as {self._paths[name]!r}")
        self._paths[name] = dotted_path
        self._loaded.pop(name, None)

    def register_object(self, name: str, obj: T) -> None:
        """Register an already-built object (tests, programmatic use)."""
        self._paths[name] = f"<object {obj!r}>"
        self._loaded[name] = obj

    def unregister(self, name: str) -> None:
        self._paths.pop(name, None)
        self._loaded.pop(name, None)

    def _scan_plugins(self) -> None:
        if self._plugins_scanned:
            return
        self._plugins_scanned = True
        for ep in entry_points(group=self.entry_point_group):
            self._paths.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._scan_plugins()
        return list(self._paths)

    def __contains__(self, name: str) -> bool:
        self._scan_plugins()
        return name in self._paths

    def get(self, name: str) -> T:
        self._scan_plugins()
        if name not in self._paths:
            raise ConvcheckError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())} "
                f"(list them with `{self.list_command}`)"
            )
        if name not in self._loaded:
            self._loaded[name] = load_dotted(self._paths[name])  # type: ignore[assignment]
        return self._loaded[name]

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self.get(name)

    def loadable_items(self) -> Iterator[tuple[str, T]]:
        """Like items(), skipping entries whose module fails to import (a broken plugin): for readers of
        metadata that must not fail because of it (rendering a report, listing lock-in facts)."""
        for name in self.names():
            try:
                yield name, self.get(name)
            except Exception:  # noqa: BLE001 - a plugin's import error is its own; `convcheck routes` shows it
                continue

    def portable(self) -> dict[str, object]:
        """Every entry as something a worker process can re-register: the dotted path, or the object
        itself for `register_object` entries (pickled: a class by reference, a spec by value)."""
        return {name: self._loaded[name] if path.startswith("<object") else path
                for name, path in self._paths.items()}

    def adopt(self, entries: dict[str, object]) -> None:
        """Register what another process's `portable()` holds that this one lacks (test registries,
        plugins registered in code)."""
        for name, entry in entries.items():
            if name in self._paths:
                continue
            if isinstance(entry, str):
                self.register(name, entry)
            else:
                self.register_object(name, entry)  # type: ignore[arg-type]


# The built-in entries. Adding a route means one module in convert/ or validate/runtimes/ and one line here.
converters: Registry[type] = Registry("converter", "convcheck.converters", "convcheck routes")
converters.register("onnx_from_torch", "convcheck.convert.onnx_from_torch:OnnxFromTorch")
converters.register("onnx_from_torch_legacy", "convcheck.convert.onnx_from_torch:OnnxFromTorchLegacy")
converters.register("openvino_from_torch", "convcheck.convert.openvino_from_torch:OpenvinoFromTorch")
converters.register("exported_program_from_torch",
                    "convcheck.convert.exported_program_from_torch:ExportedProgramFromTorch")
converters.register("openvino_from_onnx", "convcheck.convert.openvino_from_onnx:OpenvinoFromOnnx")
converters.register("onnx_from_keras", "convcheck.convert.onnx_from_keras:OnnxFromKeras")
converters.register("tflite_from_keras", "convcheck.convert.tflite_from_keras:TfliteFromKeras")
converters.register("onnx_from_savedmodel", "convcheck.convert.onnx_from_savedmodel:OnnxFromSavedModel")
converters.register("tflite_from_savedmodel", "convcheck.convert.tflite_from_savedmodel:TfliteFromSavedModel")
converters.register("openvino_from_savedmodel", "convcheck.convert.openvino_from_savedmodel:OpenvinoFromSavedModel")
converters.register("coreml_from_savedmodel", "convcheck.convert.coreml_from_savedmodel:CoremlFromSavedModel")
converters.register("onnx_from_tflite", "convcheck.convert.onnx_from_tflite:OnnxFromTflite")
converters.register("given_tflite", "convcheck.convert.given_artifact:TfliteFromUserFile")
converters.register("given_coreml", "convcheck.convert.given_coreml:CoremlFromUserFile")
converters.register("tflite_from_torch", "convcheck.convert.tflite_from_torch:TfliteFromTorch")
converters.register("executorch_from_torch", "convcheck.convert.executorch_from_torch:ExecutorchFromTorch")
converters.register("executorch_portable_from_torch",
                    "convcheck.convert.executorch_from_torch:ExecutorchPortableFromTorch")
converters.register("coreml_from_torch", "convcheck.convert.coreml_from_torch:CoremlFromTorch")
converters.register("coreml_from_keras", "convcheck.convert.coreml_from_keras:CoremlFromKeras")
converters.register("tvm_from_onnx", "convcheck.convert.tvm_from_onnx:TvmFromOnnx")
converters.register("tvm_from_exported_program", "convcheck.convert.tvm_from_exported_program:TvmFromExportedProgram")
converters.register("aoti_from_torch", "convcheck.convert.aoti_from_torch:AotiFromTorch")
converters.register("onnx_from_jax", "convcheck.convert.onnx_from_jax:OnnxFromJax")
converters.register("stablehlo_from_jax", "convcheck.convert.stablehlo_from_jax:StablehloFromJax")
converters.register("tflite_from_jax", "convcheck.convert.tflite_from_jax:TfliteFromJax")
converters.register("stablehlo_from_keras", "convcheck.convert.stablehlo_from_tf:StablehloFromKeras")
converters.register("stablehlo_from_savedmodel", "convcheck.convert.stablehlo_from_tf:StablehloFromSavedModel")
converters.register("torch_mlir_from_torch", "convcheck.convert.torch_mlir_from_torch:TorchMlirFromTorch")
converters.register("engine_from_onnx", "convcheck.convert.tensorrt_from_onnx:EngineFromOnnx")

runtimes: Registry[type] = Registry("runtime", "convcheck.runtimes", "convcheck routes")
runtimes.register("torch", "convcheck.validate.runtimes.torch_eager:TorchRuntime")
runtimes.register("keras", "convcheck.validate.runtimes.keras_eager:KerasRuntime")
runtimes.register("eager", "convcheck.validate.runtimes.torch_eager:TorchCudaRuntime")
runtimes.register("ort", "convcheck.validate.runtimes.ort:OrtRuntime")
runtimes.register("ort_reference", "convcheck.validate.runtimes.ort:OrtReferenceRuntime")
runtimes.register("onnx_reference", "convcheck.validate.runtimes.ort:OnnxReferenceEvaluatorRuntime")
runtimes.register("openvino", "convcheck.validate.runtimes.openvino:OpenvinoRuntime")
runtimes.register("tvm", "convcheck.validate.runtimes.tvm:TvmRuntime")
runtimes.register("tflite", "convcheck.validate.runtimes.litert:LitertRuntime")
runtimes.register("savedmodel", "convcheck.validate.runtimes.savedmodel:SavedModelRuntime")
runtimes.register("tflite_reference", "convcheck.validate.runtimes.litert:LitertReferenceRuntime")
runtimes.register("executorch", "convcheck.validate.runtimes.executorch:ExecutorchRuntime")
runtimes.register("coreml", "convcheck.validate.runtimes.coreml:CoremlRuntime")
runtimes.register("tensorrt", "convcheck.validate.runtimes.tensorrt:TensorrtRuntime")
runtimes.register("inductor", "convcheck.validate.runtimes.inductor:InductorRuntime")
runtimes.register("aoti", "convcheck.validate.runtimes.aoti:AotiRuntime")
runtimes.register("jax", "convcheck.validate.runtimes.jax_eager:JaxRuntime")
runtimes.register("iree", "convcheck.validate.runtimes.iree:IreeRuntime")
runtimes.register("iree_torch", "convcheck.validate.runtimes.iree:IreeTorchRuntime")

executors: Registry[type] = Registry("executor", "convcheck.executors", "convcheck matrix --help")
executors.register("local", "convcheck.executors.local:LocalExecutor")
executors.register("inline", "convcheck.executors.inline:InlineExecutor")
executors.register("ray", "convcheck.executors.ray_cluster:RayExecutor")

models: Registry[object] = Registry("model", "convcheck.models", "convcheck models")
models.register("mlp_tabular", "convcheck.zoo.mlp_tabular:SPEC")
models.register("cnn_small", "convcheck.zoo.cnn_small:SPEC")
models.register("resnet50", "convcheck.zoo.resnet50:SPEC")
models.register("mobilenet_v2", "convcheck.zoo.mobilenet_v2:SPEC")
models.register("efficientnet_b0", "convcheck.zoo.efficientnet_b0:SPEC")
models.register("vit_tiny", "convcheck.zoo.vit_tiny:SPEC")
models.register("unet_small", "convcheck.zoo.unet_small:SPEC")
models.register("bert_encoder", "convcheck.zoo.bert_encoder:SPEC")
models.register("gpt2_decoder", "convcheck.zoo.gpt2_decoder:SPEC")
models.register("lstm_classifier", "convcheck.zoo.lstm_classifier:SPEC")
models.register("audio_conv1d", "convcheck.zoo.audio_conv1d:SPEC")
models.register("dynamic_mlp", "convcheck.zoo.dynamic_mlp:SPEC")
models.register("tricky_ops", "convcheck.zoo.tricky_ops:SPEC")
