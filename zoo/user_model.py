"""The user's own model: a ModelSpec read from a model file instead of the zoo.

Inputs come from the file's own declarations (names, dtypes, static dims); what the file leaves
open (symbolic or unknown dims, value ranges) comes from `--input NAME:SHAPE:DTYPE[:LOW..HIGH]`,
with symbolic batch-like dims defaulting to 1. `--inputs data.npz` supplies real data instead, and
settles every open dimension from the arrays' shapes.

An `--input` is checked against the model when it is parsed: its rank, its static dimensions and
its dtype must be the model's (convcheck feeds the model's own types; a contradiction would only
turn into the same error in every cell), its value range must be a non-empty numeric range that
fits the dtype, and its size is under MAX_INPUT_ELEMENTS.

Integer inputs that index a table (`Gather(initializer, input)`, the Embedding pattern PyTorch
exports, possibly through Cast/Unsqueeze/Reshape/Squeeze/Flatten) draw from [0, rows of the table)
instead of [0, 10): every row can be reached and no index is out of range. An explicit `:LOW..HIGH`
wins; the model's description says which inputs were ranged from which table.

String (ONNX element type 8) and bfloat16 (16) inputs take their data from `--inputs`: strings as
numpy `<U`/`S` arrays, bfloat16 as float32 arrays converted with `ml_dtypes.bfloat16` (numpy has no
bfloat16 of its own; an array saved from ml_dtypes, read back as raw 2-byte `V2`, is taken as is).
Their spec dtype is "str" / "bfloat16".
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.errors import ConvcheckError
from convcheck.types import Format
from convcheck.model_spec import InputSpec, ModelSpec

#: ONNX TensorProto element type -> numpy dtype name, for the types convcheck can generate data for.
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
               10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}
#: Element types whose data must come from `--inputs data.npz` (convcheck generates none).
ONNX_DATA_ONLY = {8: "str", 16: "bfloat16"}
INPUT_SYNTAX = "NAME:SHAPE:DTYPE[:LOW..HIGH], e.g. x:1x3x224x224:float32 or ids:1x128:int64:0..30522"
#: A dimension of an InputSpec's shape not known yet: `--inputs` settles it from the data.
OPEN = -1
#: The most input elements convcheck will generate for one input of a user's model (4 GiB of float32).
MAX_INPUT_ELEMENTS = 2**30
#: Ops an index passes through unchanged in value on its way to a Gather (torch's Embedding export).
INDEX_PASSTHROUGH = frozenset({"Cast", "Unsqueeze", "Reshape", "Squeeze", "Flatten", "Identity"})


def dtype_name(text: str) -> str | None:
    """A dtype as convcheck names it ("float32", "int64", "bool", "str", "bfloat16"), or None when
    it is not one convcheck can feed."""
    lowered = text.strip().lower()
    if lowered in ("str", "string", "unicode"):
        return "str"
    if lowered in ("bfloat16", "bf16"):
        return "bfloat16"
    if not lowered:
        return None
    try:
        dtype = np.dtype(lowered)
    except (TypeError, ValueError):
        return None
    return dtype.name if dtype.kind in "fiub" and dtype.name != "longdouble" else None


def parse_input_option(text: str) -> InputSpec:
    """`x:1x3x224x224:float32[:low..high]` -> InputSpec (dims written `?` are not allowed: give a size)."""
    return _parse_input(text)[0]


def parse_input_options(texts: list[str] | tuple[str, ...]) -> dict[str, tuple[InputSpec, bool]]:
    """Every `--input`, by name, with whether it states its own value range; a name given twice is
    refused (which one was meant?)."""
    given: dict[str, tuple[InputSpec, bool]] = {}
    for text in texts:
        spec, ranged = _parse_input(text)
        if spec.name in given:
            raise ConvcheckError(f"--input {spec.name!r} is given twice; give each input once")
        given[spec.name] = (spec, ranged)
    return given


def _parse_input(text: str) -> tuple[InputSpec, bool]:
    """The InputSpec and whether it states its own value range (which then wins over the model's)."""
    # Parsed from the right: names exported from TensorFlow contain colons themselves ("x:0").
    parts = text.split(":")
    value_range = None
    if len(parts) > 3 and (".." in parts[-1] or (dtype_name(parts[-2]) and not dtype_name(parts[-1]))):
        value_range = parts.pop()
    if len(parts) < 3 or not parts[0]:
        raise ConvcheckError(f"--input {text!r}: expected {INPUT_SYNTAX}")
    dtype_text, shape_text, name = parts.pop(), parts.pop(), ":".join(parts)
    try:
        shape = tuple(int(d) for d in shape_text.lower().split("x")) if shape_text else ()
    except ValueError:
        raise ConvcheckError(f"--input {text!r}: shape {shape_text!r} must be sizes joined by x, e.g. 1x3x224x224") from None
    if any(d < 1 for d in shape):
        raise ConvcheckError(f"--input {text!r}: every dimension must be at least 1")
    count = math.prod(shape)
    if count > MAX_INPUT_ELEMENTS:
        raise ConvcheckError(f"--input {text!r}: {shape_text} is {count:.3g} elements, over convcheck's "
                             f"{MAX_INPUT_ELEMENTS:.3g} per input; give a smaller shape")
    dtype = dtype_name(dtype_text)
    if dtype is None:
        raise ConvcheckError(f"--input {text!r}: unknown dtype {dtype_text!r} (float32, float16, bfloat16, int64, "
                             "int32, uint8, bool, str, ...)")
    low, high, dist = _default_range(dtype)
    if value_range is not None:
        low, high, dist = _parse_range(text, value_range, dtype)
    return InputSpec(name, shape, dtype, dist, low, high), value_range is not None


def _parse_range(text: str, value_range: str, dtype: str) -> tuple[float, float, str]:
    """`LOW..HIGH`: integers drawn in [LOW, HIGH), floats uniform in [LOW, HIGH)."""
    example = "0..30522 (integers: HIGH is excluded) or -1.5..1.5"
    where = f"--input {text!r}: value range {value_range!r}"
    if dtype == "str":
        raise ConvcheckError(f"{where}: a string input takes no value range (its data comes from --inputs data.npz)")
    lo_text, sep, hi_text = value_range.partition("..")
    if not sep:
        raise ConvcheckError(f"{where}: must be LOW..HIGH, e.g. {example}")
    if not lo_text.strip() or not hi_text.strip():
        raise ConvcheckError(f"{where}: give both ends, LOW..HIGH, e.g. {example}")
    try:
        low, high = float(lo_text), float(hi_text)
    except ValueError:
        raise ConvcheckError(f"{where}: LOW and HIGH must be numbers, e.g. {example}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConvcheckError(f"{where}: LOW and HIGH must be finite numbers, e.g. {example}")
    if dtype == "bfloat16" or np.dtype(dtype).kind == "f":
        if low > high:
            raise ConvcheckError(f"{where}: LOW is above HIGH; write the smaller end first, e.g. {hi_text}..{lo_text}")
        top = 3.38e38 if dtype == "bfloat16" else float(np.finfo(dtype).max)
        if max(abs(low), abs(high)) > top:
            raise ConvcheckError(f"{where}: beyond what {dtype} holds ({top:.4g}); give a smaller range")
        return low, high, "uniform"
    if not (low.is_integer() and high.is_integer()):
        raise ConvcheckError(f"{where}: a {dtype} input takes whole-number ends, e.g. 0..30522")
    if low >= high:
        raise ConvcheckError(f"{where}: is empty: integers are drawn in [LOW, HIGH), so HIGH must be above LOW "
                             f"(e.g. {int(low)}..{int(low) + 1} draws only {int(low)})")
    bounds = (0, 2) if dtype == "bool" else (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max) + 1)
    if low < bounds[0] or high > bounds[1]:
        raise ConvcheckError(f"{where}: does not fit {dtype}, whose values lie in [{bounds[0]}, {bounds[1]}); "
                             f"give a range inside it, e.g. {bounds[0]}..{min(bounds[1], bounds[0] + 10)}")
    return low, high, "int"


def _default_range(dtype: str) -> tuple[float, float, str]:
    """Without a stated range: floats N(0, 1); integers in [0, 10) — small enough to be valid
    indices for most embeddings, but say `:0..VOCAB` for token ids (an input that indexes a table in
    an ONNX graph gets the table's size instead); booleans 0/1."""
    if dtype in ("bfloat16", "str"):
        return 0.0, 1.0, "normal"
    kind = np.dtype(dtype).kind
    if kind == "f":
        return 0.0, 1.0, "normal"
    if kind == "b":
        return 0.0, 2.0, "int"
    return 0.0, 10.0, "int"


def fit_to_model(where: str, declared: InputSpec, dims: list[int | None] | None, given: InputSpec) -> InputSpec:
    """`--input` for an input the model declares: `dims` are the model's (None: open; `dims` None:
    no shape recorded), `declared.dtype` its type (empty: unknown). A contradiction is refused in one
    line; the result keeps the model's open axes as dynamic axes, sized as given."""
    shown = "x".join("?" if d is None else str(d) for d in dims) if dims is not None else "?"
    written = "x".join(map(str, given.shape))
    given_shape = written or "(scalar)"
    if dims is not None:
        if len(given.shape) != len(dims):
            raise ConvcheckError(f"--input {given.name}: shape {given_shape} has {len(given.shape)} dimension(s), but "
                                 f"{where} declares {given.name!r} with {len(dims)} ({shown or 'a scalar'}); give "
                                 f"--input {given.name}:{_suggest(dims, given.shape)}:{declared.dtype or given.dtype}")
        for axis, (d, g) in enumerate(zip(dims, given.shape)):
            if d is not None and d != g:
                raise ConvcheckError(f"--input {given.name}: dimension {axis} is {g}, but {where} fixes it at {d} "
                                     f"(declared {shown}); give --input {given.name}:{_suggest(dims, given.shape)}:"
                                     f"{declared.dtype or given.dtype}")
    if declared.dtype and given.dtype != declared.dtype:
        raise ConvcheckError(f"--input {given.name}: dtype {given.dtype}, but {where} declares {given.name!r} as "
                             f"{declared.dtype}; give {given.name}:{written}:{declared.dtype} (convcheck feeds the "
                             "model's own type)")
    dynamic = {axis: declared.dynamic_axes.get(axis) or ("batch" if axis == 0 else f"dim{axis}")
               for axis, d in enumerate(dims or []) if d is None}
    return dataclasses.replace(given, dynamic_axes=dynamic)


def _suggest(dims: list[int | None], given: tuple[int, ...]) -> str:
    """The shape to write: the model's static dims, the user's sizes (or N) where it leaves them open."""
    out = []
    for axis, d in enumerate(dims):
        out.append(str(d) if d is not None else (str(given[axis]) if axis < len(given) and len(given) == len(dims)
                                                 else "N"))
    return "x".join(out)


def batch_of(inputs: list[InputSpec] | tuple[InputSpec, ...]) -> int:
    """The spec's batch: the size of the inputs' dynamic first axis (a recurrent state [2, batch, 64]
    has a static first axis, which is not the batch), else the largest first dimension."""
    dynamic = [i.shape[0] for i in inputs if i.shape and 0 in i.dynamic_axes]
    return max(dynamic) if dynamic else max((i.shape[0] for i in inputs if i.shape), default=1)


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
    given = parse_input_options(overrides)
    initializers = {i.name for i in model.graph.initializer}
    tables = _index_tables(model)
    # A symbolic name on some input's first axis is the batch: the same name elsewhere (a recurrent
    # state [2, batch, 64]) is the same size, 1 by default.
    batch_names = {vi.type.tensor_type.shape.dim[0].dim_param for vi in model.graph.input
                   if len(vi.type.tensor_type.shape.dim) and vi.type.tensor_type.shape.dim[0].dim_param}
    declared = [vi.name for vi in model.graph.input if vi.name not in initializers]
    unknown = [name for name in given if name not in declared]
    if unknown:  # before any other refusal: a misspelt name explains the rest
        raise ConvcheckError(f"--input names {', '.join(unknown)} not in {path.name} (its inputs: {', '.join(declared)})")
    inputs: list[InputSpec] = []
    notes: list[str] = []
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        override, ranged = given.pop(vi.name, (None, False))
        spec = _input_from_onnx(path, vi, override, open_ok=npz is not None, batch_names=batch_names)
        if not ranged and vi.name in tables and spec.distribution == "int" and spec.dtype != "bool":
            spec, note = _ranged_by_table(spec, tables[vi.name])
            notes.append(note)
        inputs.append(spec)
    outputs = tuple(o.name for o in model.graph.output)
    members = sorted({e.value for t in _external_tensors(model) for e in t.external_data if e.key == "location"})
    files = {Format.ONNX: path.resolve()}
    feeds: tuple[dict[str, np.ndarray], ...] = ()
    if npz:
        settled, feeds = _load_npz(npz, inputs)
        inputs = list(settled)
    description = f"user model {path.name}" + "".join(f"; {n}" for n in notes)
    spec = ModelSpec(
        name=path.stem,
        description=description,
        task="unknown",
        inputs=tuple(inputs),
        outputs=outputs,
        files=files,
        sizes=("full",),
        batch=batch_of(inputs),
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


def _input_from_onnx(path: Path, vi: Any, given: InputSpec | None = None, open_ok: bool = False,
                     batch_names: set[str] | frozenset[str] = frozenset()) -> InputSpec:
    """The declared input, or `given` (an `--input`) checked against the declaration. With `open_ok`
    (data from --inputs follows) an open dimension stays OPEN, for the data to settle; without, an
    open first axis, or one named like some input's first axis (`batch_names`), is the batch: 1."""
    import onnx

    ttype = vi.type.tensor_type
    elem = ttype.elem_type
    dtype = ONNX_DTYPES.get(elem) or ONNX_DATA_ONLY.get(elem)
    if dtype is None:
        kind = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else str(elem)
        raise ConvcheckError(f"{path.name}: input {vi.name!r} has element type {kind} ({elem}), which convcheck "
                             "cannot feed (it takes float, integer, bool, bfloat16 and string inputs)")
    if dtype in ONNX_DATA_ONLY.values() and not open_ok:
        raise ConvcheckError(f"{path.name}: input {vi.name!r} is {dtype}, which convcheck does not generate; "
                             f"pass --inputs data.npz holding {vi.name} as "
                             + ("a numpy str array (dtype '<U')" if dtype == "str" else
                                "float32 (converted to bfloat16)"))
    dims: list[int | None] | None = None
    names: dict[int, str] = {}
    if ttype.HasField("shape"):
        dims = []
        for axis, dim in enumerate(ttype.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                raise ConvcheckError(f"{path.name}: input {vi.name!r} declares dimension {axis} as {dim.dim_value}: "
                                     f"nothing to compare; give a size with --input {vi.name}:SHAPE:{dtype}")
            dims.append(dim.dim_value if dim.HasField("dim_value") else None)
            if not dim.HasField("dim_value"):
                names[axis] = dim.dim_param or ("batch" if axis == 0 else f"dim{axis}")
    if given is not None:
        spec = fit_to_model(path.name, InputSpec(vi.name, (), dtype, dynamic_axes=names), dims, given)
        check_input_size(path, vi.name, spec.shape)
        return spec
    if dims is None:
        raise ConvcheckError(f"{path.name}: input {vi.name!r} declares no shape; give it with "
                             f"--input {vi.name}:SHAPE:{dtype}")
    shape: list[int] = []
    for axis, d in enumerate(dims):
        if d is not None:
            shape.append(d)
        elif (axis == 0 or names[axis] in batch_names) and not open_ok:
            shape.append(1)  # a symbolic first axis is the batch almost always
        elif open_ok:
            shape.append(OPEN)  # the data from --inputs says how long
        else:
            shown = "x".join(str(s) for s in shape)
            raise ConvcheckError(
                f"{path.name}: input {vi.name!r} has an open dimension {axis} ({names[axis]}); give its size with "
                f"--input {vi.name}:{shown + 'x' if shown else ''}<N>...:{dtype}, or data with --inputs data.npz")
    check_input_size(path, vi.name, tuple(d for d in shape if d != OPEN))
    low, high, dist = _default_range(dtype)
    return InputSpec(vi.name, tuple(shape), dtype, dist, low, high, names)


def _index_tables(model: Any) -> dict[str, list[tuple[int, str]]]:
    """Graph inputs used as Gather indices into a constant table: input -> [(rows, table name)].

    Follows each input through ops that keep its values (Cast, Unsqueeze, Reshape, Squeeze, Flatten,
    Identity) to the `indices` operand of a Gather whose `data` is an initializer or a Constant;
    the rows are the table's size along the Gather's axis."""
    graph = model.graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    shapes[node.output[0]] = list(attr.t.dims)
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, index))
    found: dict[str, list[tuple[int, str]]] = {}
    for vi in graph.input:
        if vi.name in shapes:
            continue
        pending, seen = [vi.name], set()
        while pending:
            value = pending.pop()
            if value in seen:
                continue
            seen.add(value)
            for node, index in consumers.get(value, []):
                if node.domain not in ("", "ai.onnx"):
                    continue
                if node.op_type in INDEX_PASSTHROUGH and index == 0 and node.output:
                    pending.append(node.output[0])
                elif node.op_type == "Gather" and index == 1 and node.input[0] in shapes:
                    table = shapes[node.input[0]]
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    if table and -len(table) <= axis < len(table) and table[axis] > 0:
                        found.setdefault(vi.name, []).append((int(table[axis]), node.input[0]))
    return found


def _ranged_by_table(spec: InputSpec, tables: list[tuple[int, str]]) -> tuple[InputSpec, str]:
    """Indices drawn in [0, rows) of the smallest table the input indexes (ONNX allows negative
    indices too; the non-negative ones are the ones every runtime must get right)."""
    rows, table = min(tables)
    high = min(rows, int(np.iinfo(spec.dtype).max) + 1)
    note = (f"{spec.name} drawn in [0, {high}): Gather indices into {table!r} ({rows} rows"
            + (f"; the smallest of {len(tables)} tables it indexes" if len(tables) > 1 else "") + ")")
    return dataclasses.replace(spec, distribution="int", low=0.0, high=float(high)), note


def _fit_dtype(npz: Path, spec: InputSpec, arr: np.ndarray) -> np.ndarray:
    """The npz array in the input's dtype, converting only where numpy cannot hold it (bfloat16) or
    stores it differently (bytes for a string input); anything else must already match."""
    wanted = f"{spec.dtype} with {len(spec.shape)} dims (or {len(spec.shape) + 1}: samples stacked on a first axis)"
    if spec.dtype == "str":
        if arr.dtype.kind == "U":
            return arr
        if arr.dtype.kind == "S":
            try:
                return np.char.decode(arr, "utf-8")
            except UnicodeDecodeError:
                raise ConvcheckError(f"--inputs {npz}: {spec.name} holds bytes that are not UTF-8 text; save it "
                                     "as a numpy str array (dtype '<U')") from None
        raise ConvcheckError(f"--inputs {npz}: {spec.name} is {arr.dtype}; the model wants text: a numpy str array "
                             "(dtype '<U', e.g. np.array(['hello', 'world']))")
    if spec.dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise ConvcheckError(f"--inputs {npz}: {spec.name} is a bfloat16 input and numpy has no bfloat16: "
                                 "pip install ml-dtypes (convcheck converts float32 arrays with it)") from None
        if arr.dtype == np.float32:
            return arr.astype(ml_dtypes.bfloat16)
        if arr.dtype.kind == "V" and arr.dtype.itemsize == 2:  # saved from an ml_dtypes.bfloat16 array
            return arr.view(ml_dtypes.bfloat16)
        raise ConvcheckError(f"--inputs {npz}: {spec.name} is {arr.dtype}; the model wants bfloat16: give float32 "
                             "(convcheck converts it with ml_dtypes.bfloat16)")
    if arr.dtype != np.dtype(spec.dtype):
        raise ConvcheckError(f"--inputs {npz}: {spec.name} is {arr.dtype} with {arr.ndim} dims; the model wants {wanted}")
    return arr


def _load_npz(npz: Path, inputs: list[InputSpec]) -> tuple[tuple[InputSpec, ...], tuple[dict[str, np.ndarray], ...]]:
    """The user's data: one array per input name, either one sample (the input's own rank) or several
    stacked on a new first axis (rank + 1): `x` of shape (16, 1, 3, 224, 224) is 16 samples.

    Returns the inputs with every open dimension (OPEN, or a dynamic axis) sized from the data, and
    the samples."""
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
    settled: list[InputSpec] = []
    for spec in inputs:
        arr = data[spec.name]
        stacked = arr.ndim == len(spec.shape) + 1
        if not (stacked or arr.ndim == len(spec.shape)):
            raise ConvcheckError(f"--inputs {npz}: {spec.name} is {arr.dtype} with {arr.ndim} dims; the model wants "
                                 f"{spec.dtype} with {len(spec.shape)} dims (or {len(spec.shape) + 1}: samples "
                                 "stacked on a first axis)")
        arr = data[spec.name] = _fit_dtype(npz, spec, arr)
        sample_shape = arr.shape[1:] if stacked else arr.shape
        fixed = [(axis, d) for axis, d in enumerate(spec.shape) if axis not in spec.dynamic_axes and d != OPEN]
        wrong = [(axis, d) for axis, d in fixed if sample_shape[axis] != d]
        if wrong:
            axis, d = wrong[0]
            raise ConvcheckError(f"--inputs {npz}: {spec.name} has {sample_shape[axis]} on axis {axis}; the model "
                                 f"fixes it at {d} (its shape: {spec.describe()})")
        if 0 in sample_shape:
            raise ConvcheckError(f"--inputs {npz}: {spec.name} has a 0-sized axis ({'x'.join(map(str, sample_shape))}"
                                 "): there is nothing to compare")
        settled.append(dataclasses.replace(spec, shape=tuple(int(d) for d in sample_shape)))
        counts[spec.name] = arr.shape[0] if stacked else 1
    if len(set(counts.values())) > 1:
        raise ConvcheckError(f"--inputs {npz}: the inputs hold different numbers of samples {counts}; "
                             "stack the same number for every input")
    n = next(iter(counts.values()), 1)
    if n == 0:
        raise ConvcheckError(f"--inputs {npz}: holds no samples")
    stacked_names = {s.name for s in inputs if data[s.name].ndim == len(s.shape) + 1}
    # arr[i, ...], not arr[i]: a stack of scalars (shape (n,)) would give numpy scalars, which runtimes refuse.
    feeds = tuple({name: (arr[i, ...] if name in stacked_names else arr) for name, arr in data.items()}
                  for i in range(n))
    return tuple(settled), feeds
