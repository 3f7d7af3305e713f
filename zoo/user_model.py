"""The user's own model: a ModelSpec read from a model file instead of the zoo.

Inputs come from the file's own declarations (names, dtypes, static dims); what the file leaves
open (symbolic or unknown dims, value ranges) comes from `--input NAME:SHAPE:DTYPE[:LOW..HIGH]`,
with symbolic batch-like dims defaulting to 1. `--inputs data.npz` supplies real data instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.errors import ConvcheckError
from convcheck.types import Format
from convcheck.zoo.base import InputSpec, ModelSpec

#: ONNX TensorProto element type -> numpy dtype name.
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
               10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}
INPUT_SYNTAX = "NAME:SHAPE:DTYPE[:LOW..HIGH], e.g. x:1x3x224x224:float32 or ids:1x128:int64:0..30522"


def parse_input_option(text: str) -> InputSpec:
    """`x:1x3x224x224:float32[:low..high]` -> InputSpec (dims written `?` are not allowed: give a size)."""
    # Parsed from the right: names exported from TensorFlow contain colons themselves ("x:0").
    parts = text.split(":")
    value_range = parts.pop() if len(parts) > 3 and ".." in parts[-1] else None
    if len(parts) < 3 or not parts[0]:
        raise ConvcheckError(f"--input {text!r}: expected {INPUT_SYNTAX}")
    dtype, shape_text, name = parts.pop(), parts.pop(), ":".join(parts)
    try:
        shape = tuple(int(d) for d in shape_text.lower().split("x")) if shape_text else ()
    except ValueError:
        raise ConvcheckError(f"--input {text!r}: shape {shape_text!r} must be sizes joined by x, e.g. 1x3x224x224") from None
    if any(d < 1 for d in shape):
        raise ConvcheckError(f"--input {text!r}: every dimension must be at least 1")
    try:
        np.dtype(dtype)
    except TypeError:
        raise ConvcheckError(f"--input {text!r}: unknown dtype {dtype!r} (float32, int64, bool, ...)") from None
    low, high, dist = _default_range(dtype)
    if value_range is not None:
        m = re.fullmatch(r"(-?[\d.e+-]+?)\.\.(-?[\d.e+-]+)", value_range)
        if not m:
            raise ConvcheckError(f"--input {text!r}: value range must look like 0..30522")
        low, high = float(m.group(1)), float(m.group(2))
        dist = "int" if np.issubdtype(np.dtype(dtype), np.integer) or dtype == "bool" else "uniform"
    return InputSpec(name, shape, dtype, dist, low, high)


def _default_range(dtype: str) -> tuple[float, float, str]:
    """Without a stated range: floats N(0, 1); integers in [0, 10) — small enough to be valid
    indices for most embeddings, but say `:0..VOCAB` for token ids; booleans 0/1."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return 0.0, 1.0, "normal"
    if kind == "b":
        return 0.0, 2.0, "int"
    return 0.0, 10.0, "int"


def spec_from_onnx(path: Path, overrides: list[str] = (), npz: Path | None = None) -> ModelSpec:
    import onnx

    if not path.is_file():
        raise ConvcheckError(f"{path}: no such file (give the path of a .onnx model)")
    if path.stat().st_size == 0:
        raise ConvcheckError(f"{path}: the file is empty (an interrupted download or copy?)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file, not our bug
        raise ConvcheckError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:120]})") from None
    _check_onnx(path, model)
    given = {spec.name: spec for spec in (parse_input_option(o) for o in overrides)}
    initializers = {i.name for i in model.graph.initializer}
    inputs: list[InputSpec] = []
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        inputs.append(given.pop(vi.name, None) or _input_from_onnx(path, vi))
    if given:
        names = ", ".join(i.name for i in inputs)
        raise ConvcheckError(f"--input names {', '.join(given)} not in {path.name} (its inputs: {names})")
    outputs = tuple(o.name for o in model.graph.output)
    members = sorted({e.value for t in _external_tensors(model) for e in t.external_data if e.key == "location"})
    files = {Format.ONNX: path.resolve()}
    feeds = _load_npz(npz, inputs) if npz else ()
    spec = ModelSpec(
        name=path.stem,
        description=f"user model {path.name}",
        task="unknown",
        inputs=tuple(inputs),
        outputs=outputs,
        files=files,
        sizes=("full",),
        batch=max((i.shape[0] for i in inputs if i.shape), default=1),
        given_feeds=feeds,
        file_members=tuple(members),
    )
    return spec


def _check_onnx(path: Path, model: Any) -> None:
    """Refuse what would fail later with a worse message, or read outside the model's folder."""
    import onnx

    if not model.HasField("graph") or not (len(model.graph.node) or len(model.graph.output)):
        raise ConvcheckError(f"{path}: the ONNX file holds no graph (not an ONNX model, or truncated)")
    newest = onnx.defs.onnx_opset_version()
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > newest:
            raise ConvcheckError(f"{path}: opset {imp.version} is newer than this onnx package knows ({newest}); "
                                 "export with an older opset or upgrade onnx")
    folder = path.parent.resolve()
    for tensor in _external_tensors(model):
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (folder / location).resolve()  # follows symlinks: a link out of the folder is out
        if (not location or Path(location).is_absolute() or ".." in Path(location).parts
                or not target.is_relative_to(folder)):
            raise ConvcheckError(f"{path}: external data {location!r} of tensor {tensor.name!r} lies outside the "
                                 "model's folder; convcheck reads weights only from beside the model (move the "
                                 "file next to it and give a plain file name)")
        if not target.is_file():
            raise ConvcheckError(f"{path}: external data file {location!r} of tensor {tensor.name!r} is missing "
                                 "(copy it next to the model)")
        end = int(info.get("offset") or 0) + int(info.get("length") or 0)
        if end > target.stat().st_size:
            raise ConvcheckError(f"{path}: tensor {tensor.name!r} reads bytes up to {end} of {location!r}, which has "
                                 f"{target.stat().st_size} (truncated weights file?)")
    try:  # structure (cycles, dangling names, unsorted nodes); the path form resolves external data
        onnx.checker.check_model(str(path))  # beside the model, not in the current folder
    except Exception as exc:  # noqa: BLE001
        first = " ".join(str(exc).split())[:200]
        raise ConvcheckError(f"{path}: not a valid ONNX graph ({first})") from None


#: The most input elements convcheck will generate for one input of a user's model (4 GiB of float32).
MAX_INPUT_ELEMENTS = 2**30


def check_input_size(path: Path, name: str, shape: tuple[int, ...]) -> None:
    """A declared input of 0 elements compares nothing; one of 2^40 would exhaust memory before a cell."""
    if any(d == 0 for d in shape):
        raise ConvcheckError(f"{path.name}: input {name!r} declares a dimension of 0 ({'x'.join(map(str, shape))}): "
                             f"there is nothing to compare; give a size with --input {name}:SHAPE:DTYPE")
    count = 1
    for d in shape:
        count *= d
    if count > MAX_INPUT_ELEMENTS:
        raise ConvcheckError(f"{path.name}: input {name!r} declares {'x'.join(map(str, shape))} = {count:.3g} "
                             f"elements, over convcheck's {MAX_INPUT_ELEMENTS:.3g}; give a smaller size with "
                             f"--input {name}:SHAPE:DTYPE")


def _external_tensors(model: object) -> list:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(model) if uses_external_data(t)]


def _input_from_onnx(path: Path, vi: object) -> InputSpec:
    ttype = vi.type.tensor_type  # type: ignore[attr-defined]
    dtype = ONNX_DTYPES.get(ttype.elem_type)
    if dtype is None:
        raise ConvcheckError(f"{path.name}: input {vi.name!r} has element type {ttype.elem_type}, which convcheck "  # type: ignore[attr-defined]
                             "cannot generate data for; pass --inputs data.npz")
    shape: list[int] = []
    dynamic: dict[int, str] = {}
    for axis, dim in enumerate(ttype.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value <= 0:
            raise ConvcheckError(f"{path.name}: input {vi.name!r} declares dimension {axis} as {dim.dim_value}: "  # type: ignore[attr-defined]
                                 f"nothing to compare; give a size with --input {vi.name}:SHAPE:{dtype}")  # type: ignore[attr-defined]
        if dim.HasField("dim_value"):
            shape.append(dim.dim_value)
        elif axis == 0:
            shape.append(1)  # a symbolic first axis is the batch almost always
            dynamic[axis] = dim.dim_param or "batch"
        else:
            raise ConvcheckError(
                f"{path.name}: input {vi.name!r} has an open dimension {axis} ({dim.dim_param or '?'}); "  # type: ignore[attr-defined]
                f"give its size with --input {vi.name}:{'x'.join(str(d) for d in shape)}x<N>...:{dtype}"  # type: ignore[attr-defined]
            )
    check_input_size(path, vi.name, tuple(shape))  # type: ignore[attr-defined]
    low, high, dist = _default_range(dtype)
    return InputSpec(vi.name, tuple(shape), dtype, dist, low, high, dynamic)  # type: ignore[attr-defined]


def _load_npz(npz: Path, inputs: list[InputSpec]) -> tuple[dict[str, np.ndarray], ...]:
    """The user's data: one array per input name, either one sample (the input's own rank) or several
    stacked on a new first axis (rank + 1): `x` of shape (16, 1, 3, 224, 224) is 16 samples."""
    if not npz.is_file():
        raise ConvcheckError(f"--inputs {npz}: no such file")
    try:
        data = dict(np.load(npz, allow_pickle=False))
    except Exception as exc:  # noqa: BLE001
        raise ConvcheckError(f"--inputs {npz}: not a readable .npz ({type(exc).__name__}); "
                             "write it with numpy.savez(path, name=array, ...)") from None
    expected = {i.name for i in inputs}
    if set(data) != expected:
        raise ConvcheckError(f"--inputs {npz}: arrays {sorted(data)} do not match the model's inputs {sorted(expected)}")
    counts: dict[str, int] = {}
    for spec in inputs:
        arr = data[spec.name]
        stacked = arr.ndim == len(spec.shape) + 1
        if str(arr.dtype) != spec.dtype or not (stacked or arr.ndim == len(spec.shape)):
            raise ConvcheckError(f"--inputs {npz}: {spec.name} is {arr.dtype} with {arr.ndim} dims; the model wants "
                                 f"{spec.dtype} with {len(spec.shape)} dims (or {len(spec.shape) + 1}: samples "
                                 "stacked on a first axis)")
        sample_shape = arr.shape[1:] if stacked else arr.shape
        fixed = [(axis, d) for axis, d in enumerate(spec.shape) if axis not in spec.dynamic_axes]
        wrong = [(axis, d) for axis, d in fixed if sample_shape[axis] != d]
        if wrong:
            axis, d = wrong[0]
            raise ConvcheckError(f"--inputs {npz}: {spec.name} has {sample_shape[axis]} on axis {axis}; the model "
                                 f"fixes it at {d} (its shape: {spec.describe()})")
        counts[spec.name] = arr.shape[0] if stacked else 1
    if len(set(counts.values())) > 1:
        raise ConvcheckError(f"--inputs {npz}: the inputs hold different numbers of samples {counts}; "
                             "stack the same number for every input")
    n = next(iter(counts.values()), 1)
    if n == 0:
        raise ConvcheckError(f"--inputs {npz}: holds no samples")
    stacked_names = {s.name for s in inputs if data[s.name].ndim == len(s.shape) + 1}
    return tuple({name: (arr[i] if name in stacked_names else arr) for name, arr in data.items()} for i in range(n))
