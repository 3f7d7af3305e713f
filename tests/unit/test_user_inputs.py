"""A user's ONNX file -> its inputs: open dimensions settled by --inputs, index ranges read from the
graph, --input checked against the model, string and bfloat16 inputs fed from --inputs, and rank-0
inputs through TVM.

Every model here is built with onnx.helper in the test; the ones that run, run in real ONNX Runtime
(and TVM for the scalar case).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcheck.errors import ConvcheckError
from convcheck.model_spec import InputSpec
from convcheck.zoo.user_model import MAX_INPUT_ELEMENTS, parse_input_option, spec_from_onnx

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402


def _save(path: Path, nodes, inputs, outputs, initializers=(), opset: int = 17) -> Path:
    model = h.make_model(h.make_graph(nodes, path.stem, inputs, outputs, list(initializers)),
                         opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def vad_model(path: Path) -> Path:
    """A voice-activity detector's interface: audio [batch, sequence], a recurrent state
    [2, batch, 16] and the sample rate as a scalar; outputs a probability and the next state."""
    w = nh.from_array(np.linspace(0.5, 1.5, 16, dtype=np.float32), "w")
    axes = nh.from_array(np.array([0], np.int64), "axes0")
    nodes = [h.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1),  # [batch, 1]
             h.make_node("Unsqueeze", ["m", "axes0"], ["m0"]),  # [1, batch, 1]
             h.make_node("Mul", ["state", "w"], ["sw"]),
             h.make_node("Add", ["sw", "m0"], ["new_state"]),
             h.make_node("Cast", ["sr"], ["srf"], to=T.FLOAT),
             h.make_node("Mul", ["m", "srf"], ["prob"])]
    return _save(path, nodes,
                 [h.make_tensor_value_info("x", T.FLOAT, ["batch", "sequence"]),
                  h.make_tensor_value_info("state", T.FLOAT, [2, "batch", 16]),
                  h.make_tensor_value_info("sr", T.INT64, [])],
                 [h.make_tensor_value_info("prob", T.FLOAT, ["batch", 1]),
                  h.make_tensor_value_info("new_state", T.FLOAT, [2, "batch", 16])], [w, axes])


def embedding_model(path: Path, ids_type: int = T.INT64) -> Path:
    """ids -> Cast -> Gather(tok[1000, 8]); ids -> Unsqueeze -> Squeeze -> Gather(pos[300, 8]);
    `other` (an int input that indexes nothing) is added as a float."""
    rng = np.random.default_rng(0)
    tok = nh.from_array(rng.normal(size=(1000, 8)).astype(np.float32), "tok.weight")
    pos = nh.from_array(rng.normal(size=(300, 8)).astype(np.float32), "pos.weight")
    axes = nh.from_array(np.array([0], np.int64), "axes0")
    nodes = [h.make_node("Cast", ["ids"], ["ids64"], to=T.INT64),
             h.make_node("Gather", ["tok.weight", "ids64"], ["e1"]),
             h.make_node("Unsqueeze", ["ids", "axes0"], ["u"]),
             h.make_node("Squeeze", ["u", "axes0"], ["s"]),
             h.make_node("Gather", ["pos.weight", "s"], ["e2"]),
             h.make_node("Cast", ["other"], ["of"], to=T.FLOAT),
             h.make_node("Add", ["e1", "e2"], ["e"]),
             h.make_node("Add", ["e", "of"], ["y"])]
    return _save(path, nodes,
                 [h.make_tensor_value_info("ids", ids_type, [1, 6]),
                  h.make_tensor_value_info("other", T.INT64, [1, 6, 1])],
                 [h.make_tensor_value_info("y", T.FLOAT, [1, 6, 8])], [tok, pos, axes])


def _ort_run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


# -- 1. --inputs settles open dimensions -----------------------------------------------------------
def test_open_sequence_axis_is_refused_without_data(tmp_path: Path) -> None:
    with pytest.raises(ConvcheckError, match=r"open dimension 1 \(sequence\).*--input x:1x<N>.*--inputs"):
        spec_from_onnx(vad_model(tmp_path / "vad.onnx"))


@pytest.mark.framework
def test_npz_settles_open_dims_and_keeps_them_dynamic(tmp_path: Path) -> None:
    model = vad_model(tmp_path / "vad.onnx")
    rng = np.random.default_rng(1)
    npz = tmp_path / "data.npz"  # 3 samples stacked on a first axis; the scalar sr stacked as (3,)
    np.savez(npz, x=rng.normal(size=(3, 1, 512)).astype(np.float32), state=np.zeros((3, 2, 1, 16), np.float32),
             sr=np.array([16000, 8000, 16000], np.int64))
    spec = spec_from_onnx(model, npz=npz)
    x, state, sr = spec.inputs
    assert (x.shape, x.dynamic_axes) == ((1, 512), {0: "batch", 1: "sequence"})
    assert (state.shape, state.dynamic_axes) == ((2, 1, 16), {1: "batch"})
    assert (sr.shape, sr.dynamic_axes) == ((), {})
    assert x.describe() == "x:batchxsequence:float32"
    assert spec.batch == 1  # the dynamic first axis, not the state's static 2
    assert len(spec.given_feeds) == 3
    for feed in spec.given_feeds:
        assert isinstance(feed["sr"], np.ndarray) and feed["sr"].shape == ()  # not a numpy scalar
        prob, new_state = _ort_run(model, feed)
        assert prob.shape == (1, 1) and new_state.shape == (2, 1, 16)


@pytest.mark.framework
def test_npz_of_one_sample_with_a_longer_sequence(tmp_path: Path) -> None:
    model = vad_model(tmp_path / "vad.onnx")
    npz = tmp_path / "one.npz"
    np.savez(npz, x=np.ones((2, 1536), np.float32), state=np.zeros((2, 2, 16), np.float32), sr=np.array(16000))
    spec = spec_from_onnx(model, npz=npz)
    assert spec.inputs[0].shape == (2, 1536) and spec.inputs[1].shape == (2, 2, 16) and spec.batch == 2
    assert len(spec.given_feeds) == 1
    _ort_run(model, spec.given_feeds[0])


def test_npz_still_must_fit_the_static_dims(tmp_path: Path) -> None:
    npz = tmp_path / "bad.npz"
    np.savez(npz, x=np.ones((1, 512), np.float32), state=np.zeros((2, 1, 8), np.float32), sr=np.array(16000))
    with pytest.raises(ConvcheckError, match="state has 8 on axis 2; the model fixes it at 16"):
        spec_from_onnx(vad_model(tmp_path / "vad.onnx"), npz=npz)


def test_a_batch_axis_named_like_the_first_one_defaults_to_1(tmp_path: Path) -> None:
    spec = spec_from_onnx(vad_model(tmp_path / "vad.onnx"), ["x:1x512:float32"])
    state = spec.inputs[1]
    assert (state.shape, state.dynamic_axes) == ((2, 1, 16), {1: "batch"})


@pytest.mark.framework
def test_input_option_settles_the_open_dim_and_records_it_dynamic(tmp_path: Path) -> None:
    model = vad_model(tmp_path / "vad.onnx")
    spec = spec_from_onnx(model, ["x:1x512:float32", "state:2x1x16:float32"])
    x, state, _ = spec.inputs
    assert (x.shape, x.dynamic_axes) == ((1, 512), {0: "batch", 1: "sequence"})
    assert state.dynamic_axes == {1: "batch"}
    assert spec.batch == 1  # seeded samples keep the state's batch and x's batch the same
    feeds = spec.feeds(0)
    assert feeds["x"].shape == (1, 512) and feeds["state"].shape == (2, 1, 16)
    _ort_run(model, feeds)


# -- 2. index ranges from the graph ------------------------------------------------------------------
@pytest.mark.framework
def test_gather_indices_draw_from_the_smallest_table(tmp_path: Path) -> None:
    model = embedding_model(tmp_path / "emb.onnx")
    spec = spec_from_onnx(model)
    ids, other = spec.inputs
    assert (ids.distribution, ids.low, ids.high) == ("int", 0.0, 300.0)  # pos (300 rows) < tok (1000)
    assert (other.low, other.high) == (0.0, 10.0)  # indexes nothing: the default
    assert "ids drawn in [0, 300)" in spec.description and "'pos.weight'" in spec.description
    drawn = np.concatenate([spec.feeds(seed)["ids"].ravel() for seed in range(50)])
    assert drawn.min() >= 0 and drawn.max() < 300 and drawn.max() >= 10  # not only [0, 10) any more
    _ort_run(model, spec.feeds(0))


def test_an_explicit_range_wins_over_the_table(tmp_path: Path) -> None:
    spec = spec_from_onnx(embedding_model(tmp_path / "emb.onnx"), ["ids:1x6:int64:0..5"])
    assert (spec.inputs[0].low, spec.inputs[0].high) == (0.0, 5.0)
    assert "drawn in" not in spec.description
    # --input without a range still gets the table's
    spec = spec_from_onnx(embedding_model(tmp_path / "emb.onnx"), ["ids:1x6:int64"])
    assert spec.inputs[0].high == 300.0


@pytest.mark.framework
@pytest.mark.parametrize("variant", ["reshape_flatten", "constant_table_axis1", "int8_ids"])
def test_index_patterns(tmp_path: Path, variant: str) -> None:
    shape = nh.from_array(np.array([6], np.int64), "shape6")
    if variant == "reshape_flatten":  # torch's Embedding on flattened ids, table as initializer
        table = nh.from_array(np.ones((77, 4), np.float32), "emb")
        nodes = [h.make_node("Reshape", ["ids", "shape6"], ["r"]), h.make_node("Flatten", ["r"], ["f"], axis=0),
                 h.make_node("Gather", ["emb", "f"], ["y"])]
        inits, expected, dtype, out_shape = [table, shape], 77, T.INT64, [1, 6, 4]
    elif variant == "constant_table_axis1":  # a Constant node as the table, gathered on axis 1
        const = h.make_node("Constant", [], ["emb"], value=nh.from_array(np.ones((4, 33), np.float32)))
        nodes = [const, h.make_node("Gather", ["emb", "ids"], ["y"], axis=1)]
        inits, expected, dtype, out_shape = [], 33, T.INT64, [4, 1, 6]
    else:  # int8 ids cast to indices into a 1000-row table: the range stops at what int8 holds
        table = nh.from_array(np.ones((1000, 4), np.float32), "emb")
        nodes = [h.make_node("Cast", ["ids"], ["i"], to=T.INT64), h.make_node("Gather", ["emb", "i"], ["y"])]
        inits, expected, dtype, out_shape = [table], 128, T.INT8, [1, 6, 4]
    model = _save(tmp_path / f"{variant}.onnx", nodes, [h.make_tensor_value_info("ids", dtype, [1, 6])],
                  [h.make_tensor_value_info("y", T.FLOAT, out_shape)], inits)
    spec = spec_from_onnx(model)
    assert spec.inputs[0].high == expected
    _ort_run(model, spec.feeds(3))


# -- 3. --input validated when parsed ---------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("x:1x3:float32:e..1", "must be numbers"),
    ("x:1x3:float32:0..", "give both ends"),
    ("x:1x3:float32:..5", "give both ends"),
    ("x:1x3:int64:5..1", "is empty"),
    ("x:1x3:int64:3..3", "is empty"),
    ("x:1x3:float32:5..1", "LOW is above HIGH"),
    ("x:1x3:float32:nan..1", "finite"),
    ("x:1x3:float32:-inf..1", "finite"),
    ("x:1x3:int64:0.5..3", "whole-number"),
    ("x:1x3:uint8:0..300", "does not fit uint8"),
    ("x:1x3:float32:abc", "must be LOW..HIGH"),
    ("x:1x3:float33", "unknown dtype"),
    ("x:1x3:", "unknown dtype"),
    ("x:1xfoo:float32", "must be sizes joined by x"),
    ("x:0x3:float32", "at least 1"),
    ("x:65536x65536:float32", "over convcheck's"),
])
def test_malformed_input_options_are_one_line_errors(text: str, expected: str) -> None:
    with pytest.raises(ConvcheckError, match=expected) as caught:
        parse_input_option(text)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--input")


def test_well_formed_input_options() -> None:
    assert parse_input_option("ids:1x128:int64:0..30522") == InputSpec("ids", (1, 128), "int64", "int", 0, 30522)
    assert parse_input_option("x:1x3:float32:-1.5..1.5") == InputSpec("x", (1, 3), "float32", "uniform", -1.5, 1.5)
    assert parse_input_option("x:1x3:f4:1e-3..1e-2").dtype == "float32"  # dtype names normalised
    assert parse_input_option("x:0:1x3:float32").name == "x:0"  # TensorFlow names keep their colons
    assert parse_input_option("x:1x3:float32:0..0").low == 0.0  # a constant float is allowed
    assert parse_input_option("s:1x3:string").dtype == "str"
    assert parse_input_option("b:1x3:bool:0..2").distribution == "int"
    assert np.prod(parse_input_option("x:1024x1024x1024:uint8").shape) == MAX_INPUT_ELEMENTS


@pytest.mark.parametrize("option, expected", [
    ("x:1x4x512:float32", r"2 dimension\(s\), but vad.onnx declares 'x' with 3"),
    ("state:2x1x17:float32", "dimension 2 is 17, but vad.onnx fixes it at 16"),
    ("state:3x1x16:float32", "dimension 0 is 3, but vad.onnx fixes it at 2"),
    ("sr:1:int64", "has 1 dimension"),
    ("sr::int32", "dtype int32, but vad.onnx declares 'sr' as int64"),
    ("x:1x512:float16", "declares 'x' as float32"),
])
def test_input_contradicting_the_model_is_refused(tmp_path: Path, option: str, expected: str) -> None:
    model = vad_model(tmp_path / "vad.onnx")
    if option.startswith("x:1x4"):
        # a 3-dim model input to give a wrong rank for
        model = _save(tmp_path / "vad.onnx", [h.make_node("Identity", ["x"], ["y"])],
                      [h.make_tensor_value_info("x", T.FLOAT, [1, "sequence", 64])],
                      [h.make_tensor_value_info("y", T.FLOAT, [1, "sequence", 64])])
        option = "x:4x512:float32"
    others = [] if option.startswith("x:") else ["x:1x512:float32"]
    with pytest.raises(ConvcheckError, match=expected) as caught:
        spec_from_onnx(model, [*others, option])
    assert "\n" not in str(caught.value)


def test_input_misspelt_or_given_twice(tmp_path: Path) -> None:
    model = vad_model(tmp_path / "vad.onnx")
    with pytest.raises(ConvcheckError, match=r"--input names X not in vad.onnx \(its inputs: x, state, sr\)"):
        spec_from_onnx(model, ["X:1x512:float32"])  # named before the open dims of x are complained about
    with pytest.raises(ConvcheckError, match="'x' is given twice"):
        spec_from_onnx(model, ["x:1x512:float32", "x:1x256:float32"])


# -- 4. string and bfloat16 inputs from --inputs ------------------------------------------------------
def string_model(path: Path) -> Path:
    vocab = h.make_tensor("vocab", T.STRING, [1, 3], [b"a", b"b", b"c"])
    nodes = [h.make_node("Equal", ["s", "vocab"], ["e"]), h.make_node("Cast", ["e"], ["y"], to=T.FLOAT)]
    return _save(path, nodes, [h.make_tensor_value_info("s", T.STRING, [1, 3])],
                 [h.make_tensor_value_info("y", T.FLOAT, [1, 3])], [vocab], opset=19)


def bf16_model(path: Path) -> Path:
    nodes = [h.make_node("Cast", ["x"], ["xf"], to=T.FLOAT), h.make_node("Mul", ["xf", "xf"], ["y"])]
    return _save(path, nodes, [h.make_tensor_value_info("x", T.BFLOAT16, [1, "n"])],
                 [h.make_tensor_value_info("y", T.FLOAT, [1, "n"])])


@pytest.mark.framework
def test_string_input_from_npz_runs_in_ort(tmp_path: Path) -> None:
    model = string_model(tmp_path / "text.onnx")
    with pytest.raises(ConvcheckError, match=r"'s' is str.*--inputs data.npz holding s as a numpy str array"):
        spec_from_onnx(model)
    npz = tmp_path / "text.npz"
    np.savez(npz, s=np.array([[["a", "x", "c"]], [["b", "b", "q"]]]))
    spec = spec_from_onnx(model, npz=npz)
    assert spec.inputs[0].dtype == "str" and spec.inputs[0].describe() == "s:1x3:str"
    (y,) = _ort_run(model, spec.given_feeds[0])
    assert y.tolist() == [[1.0, 0.0, 1.0]]
    np.savez(npz, s=np.array([[b"a", b"b", b"z"]]))  # bytes are decoded as UTF-8
    spec = spec_from_onnx(model, npz=npz)
    assert spec.given_feeds[0]["s"].dtype.kind == "U"
    assert _ort_run(model, spec.given_feeds[0])[0].tolist() == [[1.0, 1.0, 0.0]]
    np.savez(npz, s=np.ones((1, 3), np.int64))
    with pytest.raises(ConvcheckError, match="wants text"):
        spec_from_onnx(model, npz=npz)


@pytest.mark.framework
def test_bfloat16_input_from_float32_npz(tmp_path: Path) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    ort = pytest.importorskip("onnxruntime")
    model = bf16_model(tmp_path / "bf16.onnx")
    with pytest.raises(ConvcheckError, match=r"'x' is bfloat16.*holding x as float32"):
        spec_from_onnx(model)
    values = np.random.default_rng(2).normal(size=(2, 1, 5)).astype(np.float32)
    npz = tmp_path / "bf16.npz"
    np.savez(npz, x=values)
    spec = spec_from_onnx(model, npz=npz)
    x = spec.inputs[0]
    assert (x.dtype, x.shape, x.dynamic_axes) == ("bfloat16", (1, 5), {1: "n"})
    feed = spec.given_feeds[1]["x"]
    assert feed.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(feed.astype(np.float32), values[1].astype(ml_dtypes.bfloat16).astype(np.float32))
    # ONNX Runtime takes the array as a bfloat16 tensor (OrtValue: its numpy path knows no bfloat16)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": ort.OrtValue.ortvalue_from_numpy_with_onnx_type(feed, T.BFLOAT16)})
    np.testing.assert_allclose(y, feed.astype(np.float32) ** 2, rtol=1e-6)
    # an array saved from ml_dtypes reads back as raw 2-byte voids: taken as the bfloat16 it was
    np.savez(npz, x=values[0].astype(ml_dtypes.bfloat16))
    again = spec_from_onnx(model, npz=npz).given_feeds[0]["x"]
    assert again.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(again.astype(np.float32), values[0].astype(ml_dtypes.bfloat16).astype(np.float32))
    np.savez(npz, x=values.astype(np.int32))
    with pytest.raises(ConvcheckError, match="wants bfloat16: give float32"):
        spec_from_onnx(model, npz=npz)


def test_string_and_bfloat16_specs_key_and_pickle(tmp_path: Path) -> None:
    """The cell key digests the user's data and the declarations; worker processes get the spec
    pickled: neither may break on a str or bfloat16 input."""
    import pickle

    pytest.importorskip("ml_dtypes")
    from convcheck.cache import cell_key
    from convcheck.plan import PlannedCell
    from convcheck.plan import RunSettings
    from convcheck.routes import select_routes
    from convcheck.types import Target

    npz = tmp_path / "d.npz"
    np.savez(npz, s=np.array([["a", "b", "c"]]))
    text = spec_from_onnx(string_model(tmp_path / "text.onnx"), npz=npz)
    np.savez(npz, x=np.ones((1, 3), np.float32))
    bf16 = spec_from_onnx(bf16_model(tmp_path / "bf16.onnx"), npz=npz)
    (route,) = select_routes("onnx/ort")
    for spec in (text, bf16):
        assert len(cell_key(PlannedCell(spec, route, Target(route.runtime)), RunSettings(workdir=tmp_path))) == 64
        back = pickle.loads(pickle.dumps(spec))
        assert back.given_feeds[0][spec.inputs[0].name].dtype == spec.given_feeds[0][spec.inputs[0].name].dtype


# -- 5. rank-0 inputs through TVM --------------------------------------------------------------------
def scalar_model(path: Path) -> Path:
    nodes = [h.make_node("Cast", ["n"], ["nf"], to=T.FLOAT), h.make_node("Mul", ["x", "nf"], ["m"]),
             h.make_node("Add", ["m", "x"], ["y"]), h.make_node("Add", ["n", "n"], ["k"])]
    return _save(path, nodes, [h.make_tensor_value_info("x", T.FLOAT, []), h.make_tensor_value_info("n", T.INT64, [])],
                 [h.make_tensor_value_info("y", T.FLOAT, []), h.make_tensor_value_info("k", T.INT64, [])])


@pytest.mark.framework
@pytest.mark.slow
def test_scalar_inputs_convert_and_run_in_tvm(tmp_path: Path) -> None:
    """Regression: the TVM runtime passed each feed through np.ascontiguousarray, which makes a
    0-d array 1-d: every scalar input was refused as shape (1,) against the compiled ()."""
    pytest.importorskip("tvm")
    from convcheck.converter import ConvertContext
    from convcheck.convert.tvm_from_onnx import TvmFromOnnx
    from convcheck.types import Artifact, Format, Target
    from convcheck.validate.runtimes.tvm import TvmRuntime

    model = scalar_model(tmp_path / "scalar.onnx")
    spec = spec_from_onnx(model)
    assert [(i.shape, i.dtype) for i in spec.inputs] == [((), "float32"), ((), "int64")]
    target = Target("tvm", "cpu", "fp32")
    ctx = ConvertContext(workdir=tmp_path / "work", input_specs=list(spec.inputs), output_names=list(spec.outputs),
                         example_feeds=spec.feeds(0), target=target, settings={})
    artifact = TvmFromOnnx().convert(Artifact(Format.ONNX, model), ctx)
    assert artifact.metadata["static_shapes"] == {"x": [], "n": []}
    runtime = TvmRuntime(target, threads=1)
    runtime.activate(artifact)
    try:
        for seed in range(3):
            feeds = spec.feeds(seed)
            got = runtime.infer(feeds)
            want_y, want_k = _ort_run(model, feeds)
            assert got["y"].shape == () and got["k"].shape == () and got["k"].dtype == np.int64
            np.testing.assert_allclose(got["y"], want_y, rtol=1e-6)
            assert got["k"] == want_k
    finally:
        runtime.deactivate()


# -- other formats: --input checked against what the file declares -----------------------------------
@pytest.mark.framework
@pytest.mark.slow
def test_input_for_a_pt2_is_checked_against_the_program(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from convcheck.zoo.user_files import spec_for_model

    torch.manual_seed(0)
    program = torch.export.export(torch.nn.Linear(30, 4).eval(), (torch.randn(2, 30),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    path = tmp_path / "linear.pt2"
    torch.export.save(program, str(path))
    name = program.graph_signature.user_inputs[0]
    with pytest.raises(ConvcheckError, match="dimension 1 is 31, but linear.pt2 fixes it at 30"):
        spec_for_model(str(path), [f"{name}:4x31:float32"], None)
    with pytest.raises(ConvcheckError, match="declares .* as float32"):
        spec_for_model(str(path), [f"{name}:4x30:float64"], None)
    spec = spec_for_model(str(path), [f"{name}:4x30:float32"], None)
    (x,) = spec.inputs
    assert x.shape == (4, 30) and list(x.dynamic_axes) == [0] and spec.batch == 4
