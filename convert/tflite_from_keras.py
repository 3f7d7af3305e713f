"""Keras -> TFLite (LiteRT flatbuffer) with `tf.lite.TFLiteConverter`.

The cell's precision picks the quantisation, so the artifact depends on the target: fp32 converts
plainly, fp16 stores float16 weights (dequantised to float32 at load), int8 is dynamic-range
quantisation (int8 weights, activations quantised per batch at run time; the converter leaves weight
tensors under 1024 elements in float32, so a small model may come out unquantised: `weights` in the
metadata counts the constant tensors per type so that a report can say so).

Builtin ops only: a model that needs Select TF ops (Flex) converts only with a TensorFlow kernel
fallback that `ai-edge-litert`'s interpreter does not ship, so such a model is `unsupported`. To name
the TF ops, the hop converts again with SELECT_TF_OPS allowed and reads the Flex custom ops out of
the flatbuffer (the builtins-only error names only the first op that failed to legalise).

TFLite renames inputs (`serving_default_features:0`) and may reorder inputs and outputs in the
flatbuffer: the SignatureDef keeps the Keras names (inputs) and positions (`output_0`...), so the
artifact records declared name -> signature key -> tensor name, checked against the Keras shapes.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any, Callable

from convcheck.converter import ConvertContext, Converter
from convcheck.errors import CellFailure
from convcheck.requirements import TENSORFLOW
from convcheck.types import Artifact, Format, Status


#: precision -> what the converter does to the weights (recorded with the artifact).
QUANTISATION = {
    "fp32": "none",
    "fp16": "float16 weights, float32 compute",
    "int8": "dynamic-range: int8 weights (tensors of 1024+ elements), float activations",
}
#: flatbuffer TensorType names -> numpy dtype names (for the inputs of a .tflite file).
_NUMPY_TYPES = {"float32": "float32", "float16": "float16", "float64": "float64", "int8": "int8", "uint8": "uint8",
                "int16": "int16", "int32": "int32", "int64": "int64", "bool": "bool", "uint32": "uint32"}
#: flatbuffer TensorType codes of the weight types worth counting.
_TENSOR_TYPES = {0: "float32", 1: "float16", 9: "int8", 3: "uint8", 2: "int32", 4: "int64"}


class TfliteFromKeras(Converter):
    hop = "tflite"
    source = Format.KERAS
    target = Format.TFLITE
    requires = (TENSORFLOW,)
    summary = "tf.lite.TFLiteConverter, builtin ops only (fp16 / dynamic-range int8 by precision)"
    depends_on_target = True  # the precision picks the quantisation

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.model_spec import materialize
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        precision = ctx.target.precision
        if precision not in QUANTISATION:
            raise CellFailure(Status.UNSUPPORTED.value, f"no TFLite conversion for precision {precision}",
                              "convert:tflite")
        model = materialize(source)
        out_dir = ctx.workdir / "tflite"
        out_dir.mkdir(parents=True, exist_ok=True)
        # The SavedModel of the fallback lives beside the artifact folder, not in it (it is not shipped).
        ways: list[tuple[str, Callable[[], Any]]] = [
            ("from_keras_model", lambda: tf.lite.TFLiteConverter.from_keras_model(model)),
            ("tf_saved_model", lambda: _from_saved_model(tf, model, ctx.workdir / "saved_model", ctx.log)),
        ]
        errors: list[tuple[str, BaseException]] = []
        for via, make in ways:
            try:
                blob = _convert(tf, make, precision, ctx.log, flex=False)
                break
            except Exception as exc:  # noqa: BLE001 - try the other way, then diagnose
                ctx.log.append(f"tflite via {via} (builtins only) failed: {_first_line(exc)}")
                errors.append((via, exc))
        else:
            flex = _flex_ops(tf, ways, precision, ctx.log)
            if flex:
                raise CellFailure(
                    Status.UNSUPPORTED.value,
                    f"needs Select TF ops (Flex) for: {', '.join(flex)}; the LiteRT interpreter cannot run them "
                    "(ai-edge-litert ships no Flex delegate; an LSTM converts to builtins with unroll=True)",
                    "convert:tflite", op=flex[0]) from errors[0][1]  # the converter's text: the cell log
            raise errors[0][1]
        path = out_dir / "model.tflite"
        path.write_bytes(blob)
        info = inspect_flatbuffer(blob)
        input_map, output_map, matched = _map_io(info, model, ctx)
        if info["weights"].get("int8", 0) == 0 and precision == "int8":
            ctx.log.append("tflite int8: no weight tensor was quantised (all under the converter's "
                           "1024-element minimum); the model computes in float32")
        return Artifact(
            format=Format.TFLITE,
            path=out_dir,
            metadata={
                "entry": "model.tflite", "precision": precision, "quantization": QUANTISATION[precision],
                "via": f"tf.lite.TFLiteConverter.{via}" if via == "from_keras_model"
                       else "keras export(tf_saved_model) + tf.lite.TFLiteConverter.from_saved_model",
                "signature": info["signature"],
                "input_names": [s.name for s in ctx.input_specs], "output_names": list(ctx.output_names),
                "input_map": input_map, "output_map": output_map, "output_matching": matched,
                "ops": info["ops"], "weights": info["weights"], "tensorflow": tf.__version__,
            },
        )


def _from_saved_model(tf: Any, model: Any, folder: Path, log: list[str]) -> Any:
    with _stdout_to(log):
        model.export(str(folder), format="tf_saved_model")
    return tf.lite.TFLiteConverter.from_saved_model(str(folder))


def _convert(tf: Any, make: Callable[[], Any], precision: str, log: list[str], flex: bool) -> bytes:
    converter = make()
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        # Tensor-list ops (a Keras LSTM's while loop) stay TF ops instead of failing to lower.
        converter._experimental_lower_tensor_list_ops = False
    converter.target_spec.supported_ops = ops
    if precision in ("fp16", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    # Keras' export prints "Saved artifact at ..." and the captured resources on stdout.
    with _stdout_to(log):
        return bytes(converter.convert())


def _flex_ops(tf: Any, ways: list[tuple[str, Callable[[], Any]]], precision: str, log: list[str]) -> list[str]:
    """The TF ops the model needs through Flex, in the order the flatbuffer lists them ([] if none)."""
    for via, make in ways:
        try:
            blob = _convert(tf, make, precision, log, flex=True)
        except Exception as exc:  # noqa: BLE001 - not a Flex problem then
            log.append(f"tflite via {via} with Select TF ops also failed: {_first_line(exc)}")
            continue
        found = [op[len("Flex"):] for op in inspect_flatbuffer(blob)["custom_ops"] if op.startswith("Flex")]
        log.append(f"tflite via {via} converts with Select TF ops; Flex ops: {', '.join(found) or 'none'}")
        return found
    return []


def inspect_flatbuffer(blob: bytes) -> dict[str, Any]:
    """Signatures, op counts, custom ops and weight types of a .tflite file, read without an interpreter."""
    schema = _schema()
    model = schema.Model.GetRootAs(blob, 0)
    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes, custom_ops = [], []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        custom = code.CustomCode()
        if custom:
            custom_ops.append(custom.decode())
        # Codes above 127 live in BuiltinCode only; DeprecatedBuiltinCode holds the old 8-bit value.
        codes.append(custom.decode() if custom else
                     builtin_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"))
    ops: dict[str, int] = {}
    weights: dict[str, int] = {}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for o in range(graph.OperatorsLength()):
            name = codes[graph.Operators(o).OpcodeIndex()]
            ops[name] = ops.get(name, 0) + 1
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() else None
            if buffer is not None and (buffer.DataLength() or buffer.Offset()):
                kind = _TENSOR_TYPES.get(tensor.Type(), f"type{tensor.Type()}")
                weights[kind] = weights.get(kind, 0) + 1
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def described(graph: Any, index: int) -> tuple[str, dict[str, Any]]:
        tensor = graph.Tensors(index)
        shape = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else tensor.ShapeAsNumpy()
        return tensor.Name().decode(), {"tensor": tensor.Name().decode(), "shape": [int(d) for d in shape],
                                        "dtype": _NUMPY_TYPES.get(type_names.get(tensor.Type(), ""), "?")}

    signature = None
    if not model.SignatureDefsLength() and model.SubgraphsLength():
        # No SignatureDef (TF1-era converters): the main subgraph's tensor names are the names.
        graph = model.Subgraphs(0)
        signature = {"key": None,
                     "inputs": dict(described(graph, int(i)) for i in graph.InputsAsNumpy()),
                     "outputs": dict(described(graph, int(i)) for i in graph.OutputsAsNumpy())}
    if model.SignatureDefsLength():
        sig = next((model.SignatureDefs(i) for i in range(model.SignatureDefsLength())
                    if model.SignatureDefs(i).SignatureKey() == b"serving_default"), model.SignatureDefs(0))
        graph = model.Subgraphs(sig.SubgraphIndex())

        def tensors(count: int, get: Callable[[int], Any]) -> dict[str, dict[str, Any]]:
            found = {}
            for i in range(count):
                entry = get(i)
                found[entry.Name().decode()] = described(graph, entry.TensorIndex())[1]
            return found

        signature = {"key": sig.SignatureKey().decode(),
                     "inputs": tensors(sig.InputsLength(), sig.Inputs),
                     "outputs": tensors(sig.OutputsLength(), sig.Outputs)}
    return {"ops": ops, "custom_ops": list(dict.fromkeys(custom_ops)),
            "weights": weights, "signature": signature}


def _schema() -> Any:
    """The flatbuffer schema bindings: ai-edge-litert's (no TensorFlow import) or TensorFlow's."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _map_io(info: dict[str, Any], model: Any, ctx: ConvertContext) -> tuple[dict, dict, str]:
    """declared name -> {signature key, tensor name}, for inputs and outputs, checked by shape."""
    # Signature input keys are the Keras Input names; the declared name is the same in the zoo.
    aliases = {s.name: t.name for s, t in zip(ctx.input_specs, model.inputs)}
    expected = {n: [-1 if d is None else int(d) for d in t.shape] for n, t in zip(ctx.output_names, model.outputs)}
    return map_signature(info, [s.name for s in ctx.input_specs], list(ctx.output_names), aliases, expected)


def map_signature(info: dict[str, Any], inputs: list[str], outputs: list[str], aliases: dict[str, str] | None = None,
                  output_shapes: dict[str, list[int]] | None = None,
                  input_shapes: dict[str, list[int]] | None = None) -> tuple[dict, dict, str]:
    """Match declared input/output names to a .tflite file's SignatureDef.

    Inputs match by key (or by the alias a framework gave the input, or alone when there is one).
    Outputs match by key when the keys are the declared names (a model returning a dict), else by
    position (`output_<i>` is the i-th output), and by shape when positions disagree with the shapes."""
    sig = info["signature"]
    if sig is None:
        raise RuntimeError("the .tflite model has no SignatureDef: its inputs cannot be matched by name")
    aliases = aliases or {}
    input_map = {}
    for name in inputs:
        key = next((k for k in (name, aliases.get(name)) if k in sig["inputs"]), None)
        if key is None and len(inputs) == len(sig["inputs"]) == 1:
            key = next(iter(sig["inputs"]))
        if key is None:
            raise RuntimeError(f"input {name!r} not found in the TFLite signature (inputs {sorted(sig['inputs'])})")
        if input_shapes and not _same_shape(input_shapes.get(name), sig["inputs"][key]["shape"]):
            raise RuntimeError(f"input {name!r} {input_shapes[name]} does not fit the TFLite input {key!r} "
                               f"{sig['inputs'][key]['shape']}")
        input_map[name] = {"key": key, "tensor": sig["inputs"][key]["tensor"]}

    keys = list(sig["outputs"])
    if len(keys) != len(outputs):
        raise RuntimeError(f"the TFLite signature has {len(keys)} outputs {keys}, the model declares {outputs}")
    if set(keys) == set(outputs):  # a model returning a dict: the keys are the names
        chosen, matched = {n: n for n in outputs}, "signature name"
    else:  # a list: `output_<i>` is the i-th output
        by_position = {f"output_{i}": i for i in range(len(keys))}
        ordered = sorted(keys, key=lambda k: by_position.get(k, len(keys)))
        chosen, matched = dict(zip(outputs, ordered)), "signature order"
    expected = output_shapes or {}
    if any(not _same_shape(expected.get(n), sig["outputs"][k]["shape"]) for n, k in chosen.items()):
        chosen, matched = _match_by_shape(expected, sig["outputs"]), "shape"
    output_map = {n: {"key": k, "tensor": sig["outputs"][k]["tensor"]} for n, k in chosen.items()}
    return input_map, output_map, matched


def _same_shape(want: list[int] | None, got: list[int]) -> bool:
    if want is None:
        return True
    return len(want) == len(got) and all(w == g or -1 in (w, g) for w, g in zip(want, got))


def _match_by_shape(expected: dict[str, list[int]], outputs: dict[str, dict[str, Any]]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for name, shape in expected.items():
        fits = [k for k, v in outputs.items() if _same_shape(shape, v["shape"]) and k not in chosen.values()]
        if len(fits) != 1:
            raise RuntimeError(f"cannot match output {name!r} {shape} to the TFLite signature outputs "
                               f"{ {k: v['shape'] for k, v in outputs.items()} }")
        chosen[name] = fits[0]
    return chosen


@contextlib.contextmanager
def _stdout_to(log: list[str]) -> Any:
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        # Keras' export describes the temporary SavedModel it wrote (endpoint, signature, one line per
        # captured variable): noise once the .tflite exists. Anything else it prints is kept.
        log.extend(ln for ln in captured.getvalue().splitlines()
                   if ln.strip() and not re.match(r"(Saved artifact at|\* Endpoint|Output Type:|Captures:|\s)", ln))


def _first_line(exc: BaseException) -> str:
    """One line for the log. A ConverterError's first line is an MLIR location; its `errors` hold the
    op and the message, e.g. "tf.TensorListReserve: failed to legalize operation ..."."""
    from convcheck.failures import first_line

    details = [f"{e.operator.name}: {e.error_message.splitlines()[0]}" if e.operator.name else e.error_message
               for e in getattr(exc, "errors", None) or []]
    return "; ".join(dict.fromkeys(details))[:600] if details else first_line(exc)
