"""Build the corpus of broken and hostile model files that `convcheck check` must refuse cleanly.

Nothing here is a committed binary: every file is derived, deterministically, from valid seeds built
in code from the tiny `mlp_tabular` zoo model (one ONNX file, one .pt2, one .keras, one .tflite), by
truncating at fixed fractions, flipping bits chosen by a seeded generator, or editing the model's
structure (a cycle, a future opset, external data that points outside the folder, a pickle where
tensors belong...). tests/hardening/test_bad_inputs.py runs the CLI on every case.

    python tests/data/make_bad_corpus.py OUT_DIR      # write the corpus there, list the cases

Layout under the corpus folder: one folder per case holding its file(s); `outside/` holds the
sentinels (files outside every model's folder that a hostile path points at, each a valid weight
blob, so a run that read one would go on rather than refuse); `markers/` is where a pickle's payload
would create its marker file (it must stay empty).

Each case says what convcheck must do with it (`expect`):
- "refused": exit status 2, one line on stderr (`error: ...`) naming the file and what is wrong
  (`mentions`, a regex), no traceback, nothing written;
- "status": the run happens (exit 0 or 1) and every cell carries an honest status, no traceback;
- "either": seeded random bit flips land where they land: a flip may leave a loadable model (then
  the cells must carry honest statuses) or break it (then it must be a clean refusal). Either way no
  traceback, no payload, nothing read outside the folder.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Marks a folder this script wrote (and may therefore empty and rewrite).
STAMP = ".bad-corpus"

#: One fast route per format the case's file is given as (the extension convcheck goes by).
ROUTES = {".onnx": "onnx/ort", ".tflite": "tflite/tflite", ".keras": "keras/onnx/ort", ".pt2": "torch/onnx/ort",
          ".pt": "torch/onnx/ort", ".pkl": "onnx/ort"}


#: Every case, in the order build_corpus makes them (tests parametrise over these without building).
CASE_NAMES = (
    "onnx_truncated_half", "onnx_truncated_tail", "onnx_bitflip", "onnx_weights_exponent_flips", "onnx_empty",
    "onnx_is_a_folder", "onnx_named_tflite", "tflite_named_onnx", "keras_named_pt2",
    "onnx_external_parent", "onnx_external_absolute", "onnx_external_symlink", "onnx_external_folder",
    "onnx_external_etc_passwd", "onnx_external_missing", "onnx_external_out_of_range",
    "onnx_cycle", "onnx_future_opset", "onnx_zero_dim", "onnx_zero_batch", "onnx_enormous_input",
    "onnx_newline_input_name",
    "tflite_truncated", "tflite_bitflip", "keras_bitflip_config", "keras_lambda_payload", "keras_config_injection",
    "savedmodel_writes_file",
    "pt2_bitflip_program", "pt2_pickled_weight", "pt2_pickled_sample_inputs", "pt_torch_save_zip", "pkl_pickle",
    "npz_wrong_names", "npz_wrong_rank", "npz_pickled_object", "npz_is_a_folder",
)


@dataclass(frozen=True)
class Case:
    name: str
    path: Path  # what is given to `convcheck check`
    args: tuple[str, ...] = ()  # extra CLI arguments (`--inputs data.npz`, `--input ...`)
    expect: str = "refused"  # "refused" | "status" | "either" (see the module docstring)
    why: str = ""
    mentions: str = ""  # regex (case-insensitive) the refusal must match: it says what is wrong
    names: str = ""  # the file name the refusal must contain (default: path.name)
    sentinels: tuple[Path, ...] = ()  # paths whose opening reads outside the model's folder: never opened
    marker: Path | None = None  # the file a pickle's payload would create: must never exist
    routes: str = ""  # the route to run (default: one fast route for the path's extension)

    @property
    def named(self) -> str:
        return self.names or self.path.name

    @property
    def route(self) -> str:
        return self.routes or ROUTES.get(self.path.suffix.lower(), "onnx/ort")


# -- deterministic damage ---------------------------------------------------------------------------
def truncate(blob: bytes, fraction: float) -> bytes:
    return blob[: int(len(blob) * fraction)]


def flip_bits(blob: bytes, seed: int, count: int, lo: int = 0, hi: int | None = None) -> bytes:
    """`count` single-bit flips at positions in [lo, hi) drawn by a generator seeded with `seed`."""
    rng = random.Random(seed)
    out = bytearray(blob)
    hi = len(blob) if hi is None else hi
    for _ in range(count):
        out[rng.randrange(lo, hi)] ^= 1 << rng.randrange(8)
    return bytes(out)


def zip_member_span(blob: bytes, member: str) -> tuple[int, int]:
    """Where a zip member's (stored or compressed) data lies in the archive's bytes."""
    import io

    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(member))
    offset = info.header_offset
    name_len, extra_len = struct.unpack("<HH", blob[offset + 26: offset + 30])
    start = offset + 30 + name_len + extra_len
    return start, start + info.compress_size


class Payload:
    """A pickle that would create `marker` if anything unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


# -- seeds ------------------------------------------------------------------------------------------
def build_seeds(folder: Path) -> dict[str, Path]:
    """mlp_tabular (tiny) as mlp.onnx, mlp.pt2, mlp.keras and mlp.tflite: valid files to break."""
    import torch

    from convcheck.zoo.mlp_tabular import build_keras, build_torch

    folder.mkdir(parents=True, exist_ok=True)
    model = build_torch("tiny").eval()
    x = torch.randn(2, 30)
    torch.onnx.export(model, (x,), str(folder / "mlp.onnx"), input_names=["features"], output_names=["logits"],
                      dynamic_axes={"features": {0: "batch"}}, dynamo=False)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    torch.export.save(program, str(folder / "mlp.pt2"))
    keras_model = build_keras("tiny")
    keras_model.save(str(folder / "mlp.keras"))
    import tensorflow as tf

    (folder / "mlp.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())
    return {s: folder / f"mlp.{s}" for s in ("onnx", "pt2", "keras", "tflite")}


# -- the corpus -------------------------------------------------------------------------------------
def build_corpus(folder: Path) -> list[Case]:
    """Write every case under `folder` (emptied first) and return them."""
    import numpy as np
    import onnx

    folder = Path(folder).resolve()
    if folder.exists() and any(folder.iterdir()):
        if not (folder / STAMP).is_file():  # never empty a folder this script did not write
            raise SystemExit(f"{folder} is not empty and holds no {STAMP}: give a new or empty folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP).write_text("written by tests/data/make_bad_corpus.py; safe to delete\n")
    seeds = build_seeds(folder / "seeds")
    outside, markers = folder / "outside", folder / "markers"
    outside.mkdir()
    markers.mkdir()
    cases: list[Case] = []

    def place(name: str, filename: str, data: bytes | None = None) -> Path:
        (folder / name).mkdir()
        path = folder / name / filename
        if data is not None:
            path.write_bytes(data)
        return path

    def add(name: str, filename: str, data: bytes | None, **kw) -> Case:  # noqa: ANN003
        case = Case(name=name, path=place(name, filename, data), **kw)
        cases.append(case)
        return case

    onnx_blob, tflite_blob = seeds["onnx"].read_bytes(), seeds["tflite"].read_bytes()
    keras_blob, pt2_blob = seeds["keras"].read_bytes(), seeds["pt2"].read_bytes()
    unreadable = r"not a readable|not a valid|truncat|corrupt"

    # --- ONNX: truncated, bit-flipped, empty, folder, wrong extension ---
    add("onnx_truncated_half", "model.onnx", truncate(onnx_blob, 0.5), mentions=unreadable,
        why="cut at half: the protobuf ends mid-field")
    add("onnx_truncated_tail", "model.onnx", truncate(onnx_blob, 0.98), mentions=unreadable,
        why="the last 2% cut off: the graph's tail (outputs, opset import) is missing")
    add("onnx_bitflip", "model.onnx", flip_bits(onnx_blob, seed=1, count=16), expect="either", mentions=unreadable,
        why="16 seeded random bit flips anywhere in the file")
    add("onnx_weights_exponent_flips", "model.onnx", _flip_onnx_exponents(onnx_blob, seed=2), expect="status",
        why="the exponent's top bit flipped in 8 weights: a valid file computing other (huge) values; the "
            "reference and the route agree or not, the cells say so")
    add("onnx_empty", "model.onnx", b"", mentions=r"empty|0 bytes|not a readable",
        why="an empty file (protobuf parses it as an empty ModelProto: no graph, no inputs)")
    directory = add("onnx_is_a_folder", "model.onnx", None, mentions=r"folder|director",
                    why="a folder named model.onnx where a file is expected")
    directory.path.mkdir()
    (directory.path / "model.onnx").write_bytes(onnx_blob)
    add("onnx_named_tflite", "model.tflite", onnx_blob, mentions=r"TFLite|flatbuffer",
        why="an ONNX file with a .tflite extension")
    add("tflite_named_onnx", "model.onnx", tflite_blob, mentions=r"ONNX",
        why="a .tflite flatbuffer with a .onnx extension")
    add("keras_named_pt2", "model.pt2", keras_blob, mentions=r"torch\.export|\.pt2",
        why="a .keras zip with a .pt2 extension (a zip, but not a torch.export archive)")

    # --- ONNX external data pointing outside the model's folder ---
    model = onnx.load_from_string(onnx_blob)
    weights = _external_weights(model)  # the blob the external-data file would hold
    secret_parent = folder / "secret.bin"
    secret_parent.write_bytes(weights)
    add("onnx_external_parent", "model.onnx", _with_location(model, "../secret.bin"),
        mentions=r"outside|\.\.|escape|relative", sentinels=(secret_parent,),
        why="external data at ../secret.bin: outside the model's folder (a valid weight blob is planted there)")
    secret_abs = outside / "secret_absolute.bin"
    secret_abs.write_bytes(weights)
    add("onnx_external_absolute", "model.onnx", _with_location(model, str(secret_abs)),
        mentions=r"outside|absolute|escape", sentinels=(secret_abs,),
        why="external data at an absolute path (a valid weight blob is planted there)")
    secret_link = outside / "secret_symlink.bin"
    secret_link.write_bytes(weights)
    link = folder / "onnx_external_symlink" / "weights.bin"  # opening the link reads the file outside
    linked = add("onnx_external_symlink", "model.onnx", _with_location(model, "weights.bin"),
                 mentions=r"outside|symlink|link|escape", sentinels=(secret_link, link),
                 why="external data weights.bin is a symlink to a file outside the folder")
    (linked.path.parent / "weights.bin").symlink_to(Path("..") / "outside" / secret_link.name)
    tree = outside / "tree"
    tree.mkdir()
    secret_tree = tree / "secret_in_tree.bin"
    secret_tree.write_bytes(weights)
    add("onnx_external_folder", "model.onnx", _with_location(model, "../outside/tree"),
        mentions=r"outside|\.\.|escape|folder|director|not a file", sentinels=(secret_tree,),
        why="external data location ../outside/tree: a folder outside the model's folder (holding a valid "
            "weight blob)")
    add("onnx_external_etc_passwd", "model.onnx", _with_location(model, "../" * 40 + "etc/passwd"),
        mentions=r"outside|\.\.|escape", why="external data at ../../…/etc/passwd")
    add("onnx_external_missing", "model.onnx", _with_location(model, "weights.bin"),
        mentions=r"weights\.bin", why="external data weights.bin that is not there")
    short = add("onnx_external_out_of_range", "model.onnx", _with_location(model, "weights.bin"),
                mentions=r"weights\.bin", why="external data weights.bin, half as long as the offsets and lengths say")
    (short.path.parent / "weights.bin").write_bytes(weights[: len(weights) // 2])

    # --- ONNX graphs that parse but cannot be a model ---
    add("onnx_cycle", "model.onnx", _with_cycle(model), mentions=r"cycl|topolog|sorted",
        why="a graph with a cycle (t1 = Add(relu, t2); t2 = Identity(t1))")
    future = onnx.ModelProto()
    future.CopyFrom(model)
    for opset in future.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 99
    add("onnx_future_opset", "model.onnx", future.SerializeToString(), mentions=r"opset",
        why="opset 99, from the future")
    add("onnx_zero_dim", "model.onnx", _with_input_dims(model, ["batch", 0]), mentions=r"\b0\b|zero|empty",
        why="the input declares a 0-sized feature axis: [batch, 0]")
    add("onnx_zero_batch", "model.onnx", _with_input_dims(model, [0, 30]), mentions=r"\b0\b|zero|empty",
        why="the input declares a 0-sized first axis: [0, 30]")
    huge = 2 ** 40
    add("onnx_enormous_input", "model.onnx", _with_input_dims(model, [huge, 30]),
        mentions=r"large|enormous|too (big|many)|[TPE]i?B|elements|memory",
        why=f"the input declares [{huge}, 30] float32: 132 TB per sample")

    add("onnx_newline_input_name", "model.onnx", _with_input_name(model, "features\nerror: an injected line"),
        args=("--input", "nope:1x30:float32"), mentions=r"not in",
        why="the input's name holds a newline and a fake error line; --input names an input the model lacks, "
            "so the refusal lists the model's inputs")

    # --- TFLite ---
    add("tflite_truncated", "model.tflite", truncate(tflite_blob, 0.9), mentions=unreadable,
        why="the last 10% cut off: the TFL3 identifier is there, offsets point past the end")
    add("tflite_bitflip", "model.tflite", flip_bits(tflite_blob, seed=3, count=16, lo=8), expect="either",
        mentions=unreadable, why="16 seeded random bit flips after the identifier")

    # --- .keras ---
    lo, hi = zip_member_span(keras_blob, "config.json")
    add("keras_bitflip_config", "model.keras", flip_bits(keras_blob, seed=4, count=8, lo=lo, hi=hi),
        mentions=unreadable + r"|CRC|\.keras", why="8 seeded bit flips inside the archive's config.json member")
    marker_lambda = markers / "keras_lambda_ran"
    add("keras_lambda_payload", "model.keras", _keras_with_lambda(marker_lambda, folder / "scratch"),
        mentions=r"lambda|safe|unsafe", marker=marker_lambda,
        why="a Lambda layer whose code would create a marker file (refused by safe mode, never run)")

    marker_inject = markers / "keras_config_injection_ran"
    add("keras_config_injection", "model.keras", _keras_with_config_edit(keras_blob, marker_inject),
        mentions=unreadable + r"|deserializ", marker=marker_inject,
        why="config.json names subprocess.Popen(['touch', marker]) as a layer's kernel initializer")

    # --- SavedModel ---
    marker_tf = markers / "savedmodel_write_file_ran"
    saved = add("savedmodel_writes_file", "saved_model", None, marker=marker_tf, routes="savedmodel/onnx/ort",
                mentions=r"WriteFile|write_file|file ?system|I/O|\bops?\b",
                why="a SavedModel whose serving signature calls tf.io.write_file(marker): calling it for the "
                    "reference would write outside the folder")
    _saved_model_writing(saved.path, marker_tf)

    # --- .pt2 ---
    lo, hi = zip_member_span(pt2_blob, "models/model.json")
    add("pt2_bitflip_program", "model.pt2", flip_bits(pt2_blob, seed=5, count=8, lo=lo, hi=hi),
        mentions=unreadable + r"|torch\.export", why="8 seeded bit flips inside the serialised program (model.json)")
    marker_weight = markers / "pt2_weight_pickle_ran"
    add("pt2_pickled_weight", "model.pt2", _pt2_with_pickled_weight(pt2_blob, marker_weight),
        mentions=r"pickle", marker=marker_weight,
        why="a .pt2 whose weights config says use_pickle for one weight, that weight a pickle payload "
            "(torch.export.load would torch.load it with weights_only=False)")
    marker_inputs = markers / "pt2_sample_inputs_pickle_ran"
    add("pt2_pickled_sample_inputs", "model.pt2", _pt2_with_member(pt2_blob, "sample_inputs/model.pt",
                                                                    pickle.dumps(Payload(marker_inputs))),
        mentions=r"pickle", marker=marker_inputs,
        why="a .pt2 whose sample inputs are a pickle payload (torch retries a failed weights_only load "
            "with weights_only=False)")

    # --- pickles where a model belongs ---
    marker_pt = markers / "torch_save_pt_ran"
    add("pt_torch_save_zip", "model.pt", _torch_save_bytes(Payload(marker_pt)),
        args=("--input", "features:1x30:float32"), mentions=r"pickle|TorchScript", marker=marker_pt,
        why="a torch.save zip (data.pkl a payload) named .pt: a zip, but not a TorchScript archive")
    marker_pkl = markers / "pkl_ran"
    add("pkl_pickle", "model.pkl", pickle.dumps(Payload(marker_pkl)), mentions=r"unknown model format|\.pkl",
        marker=marker_pkl, why="a plain pickle named .pkl")

    # --- --inputs .npz that does not fit, or is hostile (all given with the valid ONNX seed) ---
    def npz_case(name: str, mentions: str, why: str, marker: Path | None = None, **arrays) -> None:  # noqa: ANN003
        model_path = place(name, "model.onnx", onnx_blob)
        npz = model_path.parent / "data.npz"
        np.savez(npz, **arrays)
        cases.append(Case(name=name, path=model_path, args=("--inputs", str(npz)), mentions=mentions, names=npz.name,
                          marker=marker, why=why))

    rng = np.random.default_rng(6)
    npz_case("npz_wrong_names", r"do not match|names?", "the array is called x; the model's input is features",
             x=rng.normal(size=(2, 30)).astype("float32"))
    npz_case("npz_wrong_rank", r"dims|rank|shape", "features of shape (30,): rank 1 where the model wants 2",
             features=rng.normal(size=(30,)).astype("float32"))
    marker_npz = markers / "npz_pickle_ran"
    npz_case("npz_pickled_object", r"pickle|object|not a readable", "an object array whose element is a pickle "
             "payload", marker=marker_npz, features=np.array([Payload(marker_npz)], dtype=object))
    model_path = place("npz_is_a_folder", "model.onnx", onnx_blob)
    (model_path.parent / "data.npz").mkdir()
    cases.append(Case(name="npz_is_a_folder", path=model_path, args=("--inputs", str(model_path.parent / "data.npz")),
                      mentions=r"folder|director|no such file", names="data.npz", why="--inputs names a folder"))

    shutil.rmtree(folder / "scratch", ignore_errors=True)
    for marker in markers.iterdir():  # building a payload must not leave its marker behind
        marker.unlink()
    assert tuple(c.name for c in cases) == CASE_NAMES, "CASE_NAMES must list the cases in order"
    return cases


# -- ONNX edits -------------------------------------------------------------------------------------
def _flip_onnx_exponents(blob: bytes, seed: int) -> bytes:
    """Flip the top exponent bit of 8 seeded float32 weights of the largest initializer (in place in the
    serialised bytes: the protobuf stays valid)."""
    import onnx

    model = onnx.load_from_string(blob)
    raw = max(model.graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    start = blob.find(raw)
    assert start >= 0 and len(raw) % 4 == 0
    rng = random.Random(seed)
    out = bytearray(blob)
    for index in rng.sample(range(len(raw) // 4), 8):
        out[start + 4 * index + 3] ^= 0x40  # little-endian float32: byte 3 holds sign + top exponent bits
    return bytes(out)


def _external_weights(model) -> bytes:  # noqa: ANN001
    """The bytes every initializer's data would occupy in one external-data file, in order."""
    return b"".join(t.raw_data for t in model.graph.initializer)


def _with_location(model, location: str) -> bytes:  # noqa: ANN001
    """The model with every initializer's data moved to external data at `location` (offsets into a blob
    laid out as `_external_weights`)."""
    import onnx
    from onnx import TensorProto

    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    offset = 0
    for tensor in edited.graph.initializer:
        size = len(tensor.raw_data)
        del tensor.external_data[:]
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(size))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        tensor.data_location = TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        offset += size
    return edited.SerializeToString()


def _with_cycle(model) -> bytes:  # noqa: ANN001
    import onnx
    from onnx import helper

    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    nodes = list(edited.graph.node)
    first_relu = next(i for i, n in enumerate(nodes) if n.op_type == "Relu")
    relu_out = nodes[first_relu].output[0]
    for node in nodes[first_relu + 1:]:  # the consumers of the relu read t1 instead
        for k, name in enumerate(node.input):
            if name == relu_out:
                node.input[k] = "cycle_t1"
    add = helper.make_node("Add", [relu_out, "cycle_t2"], ["cycle_t1"], name="cycle_add")
    ident = helper.make_node("Identity", ["cycle_t1"], ["cycle_t2"], name="cycle_identity")
    del edited.graph.node[:]
    edited.graph.node.extend(nodes[: first_relu + 1] + [add, ident] + nodes[first_relu + 1:])
    return edited.SerializeToString()


def _with_input_dims(model, dims: list) -> bytes:  # noqa: ANN001
    import onnx

    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    shape = edited.graph.input[0].type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d
    return edited.SerializeToString()


def _with_input_name(model, name: str) -> bytes:  # noqa: ANN001
    import onnx

    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    old = edited.graph.input[0].name
    edited.graph.input[0].name = name
    for node in edited.graph.node:
        for k, given in enumerate(node.input):
            if given == old:
                node.input[k] = name
    return edited.SerializeToString()


# -- torch and keras payloads -----------------------------------------------------------------------
def _pt2_with_member(blob: bytes, member: str, data: bytes, edit_config: bool = False) -> bytes:
    """The .pt2 archive with `member` (matched by its path's end) replaced by `data`; with `edit_config`,
    the weights config marks the first weight as pickled."""
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            content = zin.read(info.filename)
            if info.filename.endswith(member):
                content = data
            elif edit_config and info.filename.endswith("weights/model_weights_config.json"):
                config = json.loads(content)
                first = next(iter(config["config"].values()))
                first["use_pickle"] = True
                content = json.dumps(config).encode()
            zout.writestr(info.filename, content)
    return out.getvalue()


def _pt2_with_pickled_weight(blob: bytes, marker: Path) -> bytes:
    import io

    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        config = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("model_weights_config.json"))))
    first_file = next(iter(config["config"].values()))["path_name"]
    return _pt2_with_member(blob, f"data/weights/{first_file}", pickle.dumps(Payload(marker)), edit_config=True)


def _torch_save_bytes(obj: object) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _keras_with_lambda(marker: Path, scratch: Path) -> bytes:
    """A .keras model with a Lambda layer whose (marshalled) code touches `marker` when called."""
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    scratch.mkdir(parents=True, exist_ok=True)
    code = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]"
    inputs = keras.Input((30,), name="features")
    hidden = keras.layers.Dense(4)(inputs)
    outputs = keras.layers.Lambda(eval(code), name="payload")(hidden)  # noqa: S307 - the payload under test
    path = scratch / "lambda.keras"
    keras.Model(inputs, outputs).save(str(path))
    return path.read_bytes()


def _keras_with_config_edit(blob: bytes, marker: Path) -> bytes:
    """The .keras archive with its first Dense layer's kernel initializer naming subprocess.Popen."""
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            content = zin.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(content)
                dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
                dense["config"]["kernel_initializer"] = {"module": "subprocess", "class_name": "Popen",
                                                         "config": {"args": ["touch", str(marker)]},
                                                         "registered_name": None}
                content = json.dumps(config).encode()
            zout.writestr(info.filename, content)
    return out.getvalue()


def _saved_model_writing(folder: Path, marker: Path) -> None:
    """A SavedModel (features [batch, 30] -> logits) whose signature also writes `marker` when called
    (tracing it to save does not run it)."""
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    class Writes(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal((30, 4), seed=(7, 7)))

        @tf.function(input_signature=[tf.TensorSpec([None, 30], tf.float32, name="features")])
        def serve(self, features):  # noqa: ANN001, ANN202
            tf.io.write_file(str(marker), "the SavedModel's signature ran")
            return {"logits": tf.matmul(features, self.w)}

    module = Writes()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/data/make_bad_corpus.py OUT_DIR", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    cases = build_corpus(Path(argv[0]))
    width = max(len(c.name) for c in cases)
    for case in cases:
        print(f"{case.name:<{width}}  {case.expect:<8} {case.path.relative_to(Path(argv[0]).resolve())} "
              f"{' '.join(case.args)}\n{'':<{width}}  {case.why}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
