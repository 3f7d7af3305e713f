"""The user's own model in the formats they already have, as a ModelSpec.

| given | source format | loaded with |
|---|---|---|
| `model.onnx` | onnx | see zoo/user_model.py |
| `model.pt2` | torch | `torch.export.load(...).module()` |
| `model.pt` / `.ts` (TorchScript) | torch | `torch.jit.load` (an archive, never a pickle) |
| `model.keras` | keras | `keras.models.load_model(..., safe_mode=True)` (no lambda deserialisation) |
| SavedModel folder | savedmodel | `tf.saved_model.load` + one signature (`serving_default` by default) |
| `model.tflite` | tflite | the flatbuffer's SignatureDef; reference: LiteRT's reference kernels |
| `model.tflite --source SRC` | SRC's | SRC computes the reference; the .tflite runs as given |
| `model.mlpackage --source SRC` | SRC's | SRC computes the reference; the package runs as given (off macOS on the MIL executor) |
| `package.module:factory` | torch or keras | the factory returns `(model, example_inputs)` |

Loading is safe: no arbitrary unpickling anywhere (TorchScript and `.pt2` are archives, `.keras` is
loaded in safe mode, a SavedModel and a .tflite are protobuf/flatbuffer). A `module:factory` is code
the user chose to run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.errors import ConvcheckError
from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec
from convcheck.zoo.user_model import (INPUT_SYNTAX, OPEN, batch_of, dtype_name, fit_to_model,
                                      parse_input_options, spec_from_onnx)

MLMODEL = ("{given}: a .mlmodel file (a neural network or a pre-2021 model) cannot be executed here; convcheck checks "
           "ML program packages: re-convert with convert_to='mlprogram' and check the .mlpackage with --source")
ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
SUPPORTED = (".onnx, .pt2, TorchScript (.pt/.ts), .keras, a SavedModel folder, .tflite, "
             "or package.module:factory")


def spec_for_model(given: str, overrides: list[str], npz: Path | None, source: str | None = None,
                   signature: str | None = None, examples: Path | None = None) -> ModelSpec:
    """The ModelSpec for `convcheck check GIVEN [--source SRC]`; a one-line ConvcheckError for anything
    unusable. With `source`, GIVEN is a .tflite converted from SRC, checked against SRC.

    `npz` (--inputs) is the user's data: every parity sample. `examples` (--examples, and what the Python
    API writes for a live model's example inputs) is one batch like the real data: the first sample, with
    seeded draws of the same shapes and ranges after it, as for a `module:factory`'s example inputs."""
    if examples is not None:
        if npz is not None:
            raise ConvcheckError("give --inputs (every sample) or --examples (the first sample, random ones like it "
                                 "after it), not both")
        spec = spec_for_model(given, overrides, examples, source, signature)
        return _with_feeds(spec, spec.given_feeds[0]) if len(spec.given_feeds) == 1 else spec
    if source is not None:
        return _given_with_source(given, source, overrides, npz, signature)
    path = Path(given)
    if not path.exists() and ENTRY_POINT.match(given):
        return _from_factory(given, overrides, npz)
    if not path.exists():
        raise ConvcheckError(f"{given}: no such file (give a model file: {SUPPORTED})")
    suffix = path.suffix.lower()
    if suffix == ".mlmodel":
        raise ConvcheckError(MLMODEL.format(given=given))
    if suffix == ".mlpackage":
        raise ConvcheckError(f"{given}: a Core ML model is checked against the model it was converted from; add "
                             "--source MODEL (its .pt2, .keras, SavedModel, ...)")
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return _from_saved_model(path, overrides, npz, signature)
        raise ConvcheckError(f"{given}: is a folder; give a model file: {SUPPORTED}")
    if suffix == ".onnx":
        return spec_from_onnx(path, overrides, npz)
    if suffix == ".pt2":
        return _from_exported_program(path, overrides, npz)
    if suffix in (".pt", ".ts", ".jit", ".torchscript"):
        return _from_torchscript(path, overrides, npz)
    if suffix == ".keras":
        return _from_keras(path, overrides, npz)
    if suffix == ".tflite":
        return _from_tflite(path, overrides, npz)
    raise ConvcheckError(f"{given}: unknown model format {suffix or '(no extension)'}; convcheck reads {SUPPORTED}")


# -- loaders: builders called with the file path (zoo.base.materialize) ------------------------------
def load_exported_program(path: str) -> Any:
    import torch

    class ProgramModule(torch.nn.Module):
        """`ExportedProgram.module()` refuses `.eval()` / `.train()`; every route calls them."""

        def __init__(self, program: Any) -> None:
            super().__init__()
            self.exported_program = program  # hops that take a program (ONNX dynamo, .pt2) use it as is
            self.program = program.module()

        def train(self, mode: bool = True) -> "ProgramModule":
            self.training = mode  # an exported program is already in inference form: nothing to switch
            return self

        def forward(self, *args: Any) -> Any:
            return self.program(*args)

    from convcheck.zoo.safe_load import load_exported_program as load_safely

    return ProgramModule(load_safely(path))


def load_torchscript(path: str) -> Any:
    import torch

    return torch.jit.load(path, map_location="cpu").eval()


def load_keras(path: str) -> Any:
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)


def load_factory(entry: str) -> Any:
    return _call_factory(entry)[0]


# -- specs ---------------------------------------------------------------------------------------------
def _spec(path_or_entry: str, fmt: Format, builder: str, inputs: list[InputSpec], outputs: list[str],
          npz: Path | None) -> ModelSpec:
    if fmt is Format.TORCH:
        _torch_feedable(path_or_entry, inputs)
    inputs, feeds = _settled(path_or_entry, inputs, npz)
    return ModelSpec(
        name=Path(path_or_entry).stem if ":" not in path_or_entry else path_or_entry.rsplit(":", 1)[1],
        description=f"user model {path_or_entry}",
        task="unknown",
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        builders={fmt: f"convcheck.zoo.user_files:{builder}"},
        sizes=("full",),
        batch=batch_of(inputs),
        builder_arg=str(Path(path_or_entry).resolve()) if ":" not in path_or_entry else path_or_entry,
        given_feeds=feeds,
    )


def _readable(path: Path, what: str, load: Any) -> Any:
    try:
        return load(str(path))
    except ConvcheckError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file is the user's input, not our bug
        raise ConvcheckError(f"{path}: not a readable {what} ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})") from None


def _is_zip(path: Path) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


def _zip_archive(path: Path, what: str) -> None:
    """.pt2, TorchScript and .keras files are zip archives: a file that is not one is truncated or foreign
    (and torch would log a traceback before its own error)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ConvcheckError(f"{path}: not a {what} (those are zip archives; this file is not one: truncated, "
                             "or another format?)")


def _from_exported_program(path: Path, overrides: list[str], npz: Path | None) -> ModelSpec:
    import torch

    _zip_archive(path, "torch.export program (.pt2)")

    from convcheck.zoo.safe_load import load_exported_program as load_safely

    program = _readable(path, "torch.export program (.pt2)", load_safely)
    given = _given_inputs(overrides)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    ranges = {str(k): v for k, v in program.range_constraints.items()}
    inputs = []
    for name in program.graph_signature.user_inputs:
        val = placeholders[name].meta.get("val")
        shape, dynamic = [], {}
        for axis, dim in enumerate(val.shape):
            if isinstance(dim, int):
                shape.append(dim)
                continue
            lower = getattr(ranges.get(str(dim)), "lower", 1)
            shape.append(max(1, int(lower)) if str(lower).lstrip("-").isdigit() else 1)
            dynamic[axis] = str(dim)
        dtype = str(val.dtype).replace("torch.", "")
        if name in given:
            dims = [None if axis in dynamic else d for axis, d in enumerate(shape)]
            inputs.append(_fitted_override(path, name, dims, dtype, dynamic, given.pop(name)))
            continue
        inputs.append(_input(name, tuple(shape), dtype, dynamic, path))
    _no_leftovers(given, path, [i.name for i in inputs])
    outputs = [str(o) for o in program.graph_signature.user_outputs]
    return _spec(str(path), Format.TORCH, "load_exported_program", inputs, outputs, npz)


def _from_torchscript(path: Path, overrides: list[str], npz: Path | None) -> ModelSpec:
    if not _is_zip(path):
        raise ConvcheckError(f"{path}: not a TorchScript archive (save it with torch.jit.save; convcheck never "
                             "unpickles arbitrary .pt files)")
    module = _readable(path, "TorchScript archive (save it with torch.jit.save; convcheck never unpickles "
                       "arbitrary .pt files)", load_torchscript)
    names = [a.name for a in module.forward.schema.arguments[1:]]
    given = _given_inputs(overrides)
    missing = [n for n in names if n not in given]
    if missing:
        raise ConvcheckError(f"{path.name}: TorchScript does not record input shapes; give --input for "
                             f"{', '.join(missing)} ({INPUT_SYNTAX})")
    inputs = [given.pop(n) for n in names]
    _no_leftovers(given, path, names)
    outputs = _count_torch_outputs(module, inputs)
    return _spec(str(path), Format.TORCH, "load_torchscript", inputs, outputs, npz)


def _from_keras(path: Path, overrides: list[str], npz: Path | None) -> ModelSpec:
    import zipfile

    if not zipfile.is_zipfile(path):  # Keras' own error for this is "File not found"
        raise ConvcheckError(f"{path}: not a .keras archive (a .keras file is a zip); is it truncated, or saved "
                             "in the legacy HDF5 format (.h5)? Re-save it with model.save('model.keras')")
    model = _readable(path, "Keras model (.keras)", load_keras)
    given = _given_inputs(overrides)
    inputs = []
    for tensor in model.inputs:
        name = tensor.name
        if name in given:
            inputs.append(_fitted_override(path, name, list(tensor.shape), str(tensor.dtype), {}, given.pop(name)))
            continue
        inputs.append(_open_dims(path, name, list(tensor.shape), str(tensor.dtype), npz is not None))
    _no_leftovers(given, path, [i.name for i in inputs])
    outputs = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])
    return _spec(str(path), Format.KERAS, "load_keras", inputs, outputs, npz)


def _from_saved_model(path: Path, overrides: list[str], npz: Path | None, signature: str | None) -> ModelSpec:
    def load(folder: str) -> Any:
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        return tf.saved_model.load(folder)

    loaded = _readable(path, "TensorFlow SavedModel folder", load)
    keys = list(loaded.signatures)
    if not keys:
        raise ConvcheckError(f"{path}: the SavedModel has no signatures to call; export it with one "
                             "(model.export(dir) or tf.saved_model.save(m, dir, signatures=...))")
    key = signature or ("serving_default" if "serving_default" in keys else keys[0] if len(keys) == 1 else None)
    if key not in keys:
        raise ConvcheckError(f"{path}: {'no signature ' + repr(signature) if signature else 'several signatures'}; "
                             f"choose one with --signature ({', '.join(keys)})")
    function = loaded.signatures[key]
    from convcheck.zoo.safe_load import file_and_code_ops

    risky = file_and_code_ops(function.graph.as_graph_def())
    if risky:
        raise ConvcheckError(f"{path}: signature {key!r} runs ops that touch files or run code ({', '.join(risky)}); "
                             "a model's forward pass needs none of them, and convcheck does not run them")
    given = _given_inputs(overrides)
    inputs = []
    for name, tensor in function.structured_input_signature[1].items():
        dims = list(tensor.shape) if tensor.shape.rank is not None else None
        if name in given:
            inputs.append(_fitted_override(path, name, dims, tensor.dtype.name, {}, given.pop(name)))
            continue
        if dims is None:
            raise ConvcheckError(f"{path.name}: input {name!r} has no known rank; give its shape with --input "
                                 f"({INPUT_SYNTAX})")
        inputs.append(_open_dims(path, name, dims, tensor.dtype.name, npz is not None))
    _no_leftovers(given, path, [i.name for i in inputs])
    outputs = list(function.structured_outputs)
    inputs, feeds = _settled(path, inputs, npz)
    spec = ModelSpec(name=path.name, description=f"user model {path} (SavedModel, signature {key})",
                     task="unknown", inputs=tuple(inputs), outputs=tuple(outputs),
                     files={Format.SAVEDMODEL: path.resolve()}, sizes=("full",), signature=key,
                     batch=batch_of(inputs), given_feeds=feeds)
    return spec


def _from_tflite(path: Path, overrides: list[str], npz: Path | None) -> ModelSpec:
    from convcheck.convert.given_artifact import tflite_precision

    info = _tflite_info(path)
    given = _given_inputs(overrides)
    inputs = []
    for name, tensor in info["signature"]["inputs"].items():
        dims = [None if d < 0 else d for d in tensor["shape"]]
        if name in given:
            declared = "" if tensor["dtype"] == "?" else tensor["dtype"]
            inputs.append(_fitted_override(path, name, dims, declared, {}, given.pop(name)))
            continue
        if tensor["dtype"] == "?":
            raise ConvcheckError(f"{path.name}: input {name!r} has a type convcheck cannot feed (it takes float, "
                                 "integer and bool inputs of a .tflite file)")
        inputs.append(_open_dims(path, name, dims, tensor["dtype"], npz is not None))
    _no_leftovers(given, path, [i.name for i in inputs])
    inputs, feeds = _settled(path, inputs, npz)
    return ModelSpec(name=path.stem, description=f"user model {path.name} (TFLite)", task="unknown",
                     inputs=tuple(inputs), outputs=tuple(info["signature"]["outputs"]),
                     files={Format.TFLITE: path.resolve()}, sizes=("full",), precision=tflite_precision(info),
                     batch=batch_of(inputs), given_feeds=feeds)


#: The already converted files `check FILE --source SRC` takes, by suffix.
CONVERTED = {".tflite": Format.TFLITE, ".mlpackage": Format.COREML}


def _given_with_source(given: str, source: str, overrides: list[str], npz: Path | None,
                       signature: str | None) -> ModelSpec:
    """`check model.tflite --source model.keras` (or `model.mlpackage --source model.pt2`): the source's
    spec, with the converted file handed over as it is."""
    import dataclasses

    path = Path(given)
    fmt = CONVERTED.get(path.suffix.lower())
    if path.suffix.lower() == ".mlmodel":
        raise ConvcheckError(MLMODEL.format(given=given))
    if fmt is None:
        raise ConvcheckError(f"--source is for a model you already converted (.tflite or .mlpackage); {given} is "
                             "not one (check a source model without --source)")
    if not path.exists():
        raise ConvcheckError(f"{given}: no such file (give the {path.suffix} you converted)")
    spec = spec_for_model(source, overrides, npz, signature=signature)
    if fmt in spec.sources:
        raise ConvcheckError(f"--source {source}: give the model the {path.suffix} was converted from "
                             f"(.keras, SavedModel, .onnx, .pt2, ...), not another {path.suffix}")
    declared = spec.inputs_for(None)
    if fmt is Format.COREML:
        precision = _matched_coreml(path, source, declared, list(spec.outputs))
    else:
        precision = _matched_tflite(path, source, declared, list(spec.outputs))
    return dataclasses.replace(spec, description=f"{path.name} ({fmt.value}) against {spec.description}",
                               given_artifacts={fmt: path.resolve()}, precision=precision)


def _matched_tflite(path: Path, source: str, declared: list[InputSpec], outputs: list[str]) -> str:
    from convcheck.convert.given_artifact import tflite_precision
    from convcheck.convert.tflite_from_keras import map_signature

    if not path.is_file():
        raise ConvcheckError(f"{path}: is not a file (give the .tflite file you converted)")
    info = _tflite_info(path)
    try:
        map_signature(info, [i.name for i in declared], outputs,
                      input_shapes={i.name: [-1 if a in i.dynamic_axes else d for a, d in enumerate(i.shape)]
                                    for i in declared})
    except RuntimeError as exc:
        raise ConvcheckError(f"{path.name} does not match --source {source}: {exc}") from None
    return tflite_precision(info)


def _matched_coreml(path: Path, source: str, declared: list[InputSpec], outputs: list[str]) -> str:
    """The package's precision, once its features are known to match the source's."""
    from convcheck.convert.given_coreml import inspect_package, map_features

    if not path.is_dir():
        raise ConvcheckError(f"{path}: a .mlpackage is a folder; this is a file (is it a zipped package? unzip it)")
    try:
        info = inspect_package(path)
    except ValueError as exc:
        raise ConvcheckError(f"{path}: {exc}") from None
    try:
        map_features(info, [i.name for i in declared], [len(i.shape) for i in declared], outputs)
    except ValueError as exc:
        raise ConvcheckError(f"{path.name} does not match --source {source}: {exc}") from None
    return info["precision"]


def _tflite_info(path: Path) -> dict[str, Any]:
    from convcheck.convert.tflite_from_keras import inspect_flatbuffer

    blob = path.read_bytes()
    # A flatbuffer with the TFLite file identifier at bytes 4..8; anything else is not a .tflite file.
    if len(blob) < 8 or blob[4:8] != b"TFL3":
        raise ConvcheckError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier); is it truncated or another format?")
    try:
        info = inspect_flatbuffer(blob)
    except Exception as exc:  # noqa: BLE001 - a corrupt flatbuffer is the user's file, not our bug
        raise ConvcheckError(f"{path}: not a readable .tflite file (its flatbuffer is cut short or corrupt: "
                             f"{type(exc).__name__}); is it truncated?") from None
    if not info["signature"] or not info["signature"]["inputs"]:
        raise ConvcheckError(f"{path}: the .tflite file declares no inputs")
    return info


def _given_inputs(overrides: list[str]) -> dict[str, InputSpec]:
    """Every `--input`, by name (formats other than ONNX take no range hint from the graph)."""
    return {name: spec for name, (spec, _) in parse_input_options(overrides).items()}


def _open_dims(path: Path, name: str, dims: list[int | None], dtype: str, open_ok: bool = False) -> InputSpec:
    """An input whose first open dimension is the batch (1, dynamic); any other open one needs --input,
    or (`open_ok`: data from --inputs follows) is left OPEN for the data to settle."""
    shape, dynamic = [], {}
    for axis, dim in enumerate(dims):
        if dim is None and (axis == 0 or open_ok):
            shape.append(OPEN if open_ok else 1)
            dynamic[axis] = "batch" if axis == 0 else f"dim{axis}"
        elif dim is None:
            raise ConvcheckError(f"{path.name}: input {name!r} has an open dimension {axis}; give its size "
                                 f"with --input ({INPUT_SYNTAX}), or data with --inputs data.npz")
        else:
            shape.append(int(dim))
    return _input(name, tuple(shape), dtype, dynamic, path)


def _fitted_override(path: Path, name: str, dims: list[int | None] | None, declared_dtype: str,
                     dynamic: dict[int, str], given: InputSpec) -> InputSpec:
    """An --input checked against what the file declares (rank, static dims, dtype)."""
    declared = InputSpec(name, (), dtype_name(declared_dtype) or "", dynamic_axes=dynamic)
    dims = None if dims is None else [None if d is None else int(d) for d in dims]
    return fit_to_model(path.name, declared, dims, given)


def _settled(where: str | Path, inputs: list[InputSpec], npz: Path | None
             ) -> tuple[list[InputSpec], tuple[dict[str, np.ndarray], ...]]:
    """The inputs with open dimensions sized from --inputs, and its samples; without --inputs, inputs
    convcheck cannot generate data for are refused here."""
    from convcheck.zoo.user_model import _load_npz

    if npz:
        settled, feeds = _load_npz(npz, inputs)
        return list(settled), feeds
    for spec in inputs:
        if spec.dtype in ("str", "bfloat16"):
            raise ConvcheckError(f"{Path(str(where)).name}: input {spec.name!r} is {spec.dtype}, which convcheck does "
                                 "not generate; pass --inputs data.npz")
    return list(inputs), ()


def _torch_feedable(where: str | Path, inputs: list[InputSpec]) -> None:
    """Feeds reach a torch model through torch.from_numpy, which takes neither text nor ml_dtypes'
    bfloat16."""
    for spec in inputs:
        if spec.dtype in ("str", "bfloat16"):
            raise ConvcheckError(f"{Path(str(where)).name}: input {spec.name!r} is {spec.dtype}; convcheck feeds torch "
                                 "models float, integer and bool inputs only (export to ONNX and check the .onnx)")


def _framework_of(model: Any) -> str:
    """The framework a model's class comes from, through its bases: a user's own `class Net(nn.Module)`
    lives in the user's module, but subclasses torch's (read from the MRO: no framework is imported)."""
    known = ("torch", "keras", "tensorflow", "tf_keras")
    roots = [cls.__module__.split(".")[0] for cls in type(model).__mro__]
    return next((root for root in roots if root in known), roots[0])


def _from_factory(entry: str, overrides: list[str], npz: Path | None) -> ModelSpec:
    model, examples = _call_factory(entry)
    framework = _framework_of(model)
    if not isinstance(examples, dict):
        examples = {f"input_{i}": e for i, e in enumerate(examples if isinstance(examples, (tuple, list)) else [examples])}
    arrays = {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for k, v in examples.items()}
    given = _given_inputs(overrides)
    inputs = [given.pop(k, None) or _input(k, a.shape, str(a.dtype), {}) for k, a in arrays.items()]
    _no_leftovers(given, Path(entry), list(arrays))
    if framework == "torch":
        outputs = _count_torch_outputs(model, inputs)
        fmt = Format.TORCH
    elif framework in ("keras", "tensorflow", "tf_keras"):
        outputs = list(getattr(model, "output_names", None) or ["output_0"])
        fmt = Format.KERAS
    else:
        raise ConvcheckError(f"{entry}: returned a {type(model).__module__}.{type(model).__name__}; "
                             "convcheck takes a torch.nn.Module or a keras.Model")
    spec = _spec(entry, fmt, "load_factory", inputs, outputs, npz)
    return spec if npz else _with_feeds(spec, arrays)


def _call_factory(entry: str) -> tuple[Any, Any]:
    from convcheck.registry import load_dotted

    try:
        factory = load_dotted(entry)
    except (ImportError, ValueError) as exc:
        raise ConvcheckError(f"{entry}: cannot import the factory ({exc})") from None
    result = factory()
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ConvcheckError(f"{entry}: the factory must return (model, example_inputs), got {type(result).__name__}")
    return result


def _with_feeds(spec: ModelSpec, arrays: dict[str, np.ndarray]) -> ModelSpec:
    """The factory's own example inputs are the first sample; seeded draws fitted to them follow."""
    import dataclasses

    fitted = tuple(_fitted(i, arrays[i.name]) for i in spec.inputs)
    return dataclasses.replace(spec, inputs=fitted, given_feeds=(arrays,), given_are_examples=True)


def _fitted(spec: InputSpec, example: np.ndarray) -> InputSpec:
    """Draw like the example: N(mean, std) for floats, the example's integer range for ints."""
    import dataclasses

    if np.issubdtype(example.dtype, np.floating):
        return dataclasses.replace(spec, distribution="normal", low=float(example.mean()),
                                   high=float(example.std()) or 1.0)
    if np.issubdtype(example.dtype, np.integer):
        return dataclasses.replace(spec, distribution="int", low=float(example.min()), high=float(example.max()) + 1)
    return spec


def _input(name: str, shape: tuple[int, ...], dtype: str, dynamic: dict[int, str],
           path: Path | None = None) -> InputSpec:
    from convcheck.zoo.user_model import _default_range, check_input_size

    if path is not None:
        check_input_size(path, name, tuple(int(d) for d in shape if d != OPEN))
    known = dtype_name(dtype)
    if known is None:
        raise ConvcheckError(f"{path.name if path is not None else name}: input {name!r} has type {dtype}, which "
                             "convcheck cannot feed (it takes float, integer, bool, bfloat16 and string inputs)")
    low, high, dist = _default_range(known)
    return InputSpec(name, tuple(int(d) for d in shape), known, dist, low, high, dynamic)


def _no_leftovers(given: dict[str, InputSpec], path: Path, names: list[str]) -> None:
    if given:
        raise ConvcheckError(f"--input names {', '.join(given)} not in {path.name} (its inputs: {', '.join(names)})")


def _count_torch_outputs(module: Any, inputs: list[InputSpec]) -> list[str]:
    """torch formats do not name outputs: run once and call them output_0.. (or `output`)."""
    import torch

    _torch_feedable("the torch model", inputs)
    rng = np.random.default_rng(0)
    args = [torch.from_numpy(i.sample(rng)) for i in inputs]
    with torch.no_grad():
        out = module(*args)
    count = len(out) if isinstance(out, (tuple, list)) else 1
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]
