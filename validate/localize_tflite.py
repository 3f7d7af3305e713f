"""First-divergence localisation for Keras -> TFLite routes: where does the converted model start to differ?

Parity says *that* a .tflite file computes something else than its Keras source; this module says
*where*. The Keras model's layer outputs (probe models over the source's own graph) are compared
with the LiteRT interpreter's intermediate tensors (`experimental_preserve_all_tensors`), in the
Keras layer order, and the first layer whose output exceeds the tolerance while everything before
it is within it is named.

Matching tensors to layers. The converter keeps the TF name scopes of the traced Keras call in the
tensor names: `<model>_1/<layer>_<k>/<op>` (`cnn_small_1/conv2d_1_2/convolution` is layer `conv2d_1`,
`cnn_small_1/conv2d_1/convolution` is layer `conv2d`: every scope carries one TF uniquifier suffix).
A fused op is named after all the ops it absorbed, joined by `;`
(`.../re_lu_1_2/Relu;.../batch_normalization_1_2/batchnorm/add_1;.../conv2d_1_2/convolution;...`):
its output is the output of the *last* of those layers in Keras order, and the layers before it
(Conv2D and BatchNormalization here) have no tensor of their own. The model's outputs are renamed
(`StatefulPartitionedCall_1:0`) and are matched through the SignatureDef instead.

Resolution is therefore a span, not always a layer: when the divergent tensor is a fused op, the
error starts somewhere between the last agreeing tensors and that op. `layer` names the first Keras
layer of that span (the earliest place the error can start), `tensor_layer` the layer whose output
the tensor is, and `span` all of them.

Interpreter: the default op resolver, so that the kernels are those the parity run used (XNNPACK).
With `experimental_preserve_all_tensors` LiteRT delegates node by node, so every intermediate is
written (checked against the reference kernels on cnn_small: same tensors to 1e-6).
"""

from __future__ import annotations

import math
import mmap
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.tolerance import Tolerance
from convcheck.validate.parity import compare_arrays

METHOD = "tflite: Keras layer outputs vs interpreter tensors (preserve_all_tensors)"
#: Layers per Keras probe model: one probe call holds this many layer outputs at once, so memory is
#: bounded by 32 activations on the Keras side, whatever the depth of the model.
PROBE_CHUNK = 32
#: The uniquifier TF's graph appends to a name scope that is already in use (`conv2d` -> `conv2d_1`).
_UNIQUIFIER = re.compile(r"^(.+)_\d+$")
#: The output index of a graph tensor name (`StatefulPartitionedCall_1:0`).
_PORT = re.compile(r":\d+$")


def localize_tflite(keras_model: Any, tflite_path: Path, feeds: dict[str, np.ndarray],
                    input_map: dict[str, str] | None, tol: Tolerance) -> dict[str, Any]:
    """Name the first Keras layer whose output the .tflite file at `tflite_path` does not reproduce.

    `feeds` hold one sample keyed by declared input names; `input_map` maps a declared name to its
    signature input key (convcheck's recorded `{"key": ..., "tensor": ...}` entries are accepted too);
    None means the declared names are the Keras input names and the signature keys. Returns a
    JSON-ready dict: `found` True with the divergent layer, or False with the `reason`.
    """
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import keras

    base: dict[str, Any] = {"method": METHOD, "tolerance": dict(vars(tol))}
    graph = _read_flatbuffer(Path(tflite_path))
    if graph.get("problem"):
        return {"found": False, "reason": graph["problem"], **base}
    if not getattr(keras_model, "inputs", None) or not getattr(keras_model, "outputs", None):
        return {"found": False, "reason": "the Keras model has no functional graph (a subclassed model that was "
                "never called on keras.Input): its layer outputs cannot be probed", **base}
    try:
        keras_args, tflite_feeds = _split_feeds(keras_model, feeds, input_map, graph["inputs"])
    except (KeyError, ValueError) as exc:
        return {"found": False, "reason": exc.args[0] if exc.args else str(exc), **base}

    try:
        interpreter = _run_interpreter(Path(tflite_path), graph["inputs"], tflite_feeds)
    except (RuntimeError, ValueError) as exc:  # a feed shape the file cannot take, a kernel that fails
        return {"found": False, "reason": f"the LiteRT interpreter could not run the file: {exc}", **base}
    details = {int(d["index"]): d for d in interpreter.get_tensor_details()}
    # Operations, not only layers: a keras.ops call in a functional graph (x + y) is a node of its own.
    layers = list(getattr(keras_model, "operations", None) or keras_model.layers)
    plan, unmatched = _plan(keras_model, layers, graph, details, _batch(keras_args))
    base.update(signature=graph["key"], matched=len(plan), without_tensor=len(unmatched))
    if not plan:
        return {"found": False, "reason": f"no tensor of the .tflite file could be matched to a Keras layer by name "
                f"and shape ({len(details)} tensors, {len(layers)} layers)", **base}

    walker = _GraphWalker(keras, {layer.name for layer, _ in plan}).register(layers)
    errors: dict[str, float] = {}  # compared layer -> its max |tflite - keras|, for `max_abs_in`
    compared, last = 0, ""
    worst = ("", -1.0)
    for start in range(0, len(plan), PROBE_CHUNK):
        chunk = plan[start:start + PROBE_CHUNK]
        refs = _probe(keras, keras_model, [layer for layer, _ in chunk], keras_args)
        for position, ((layer, index), ref) in enumerate(zip(chunk, refs), start):
            # One preserved tensor at a time: get_tensor copies, and the copy is dropped before the next.
            actual = _tensor_value(interpreter, details[index])
            if actual is None or actual.size != ref.size:
                walker.compared.discard(layer.name)  # not comparable: walk through it as if fused
                continue
            stats = compare_arrays(actual.reshape(ref.shape), ref, tol)
            del actual
            compared, last = compared + 1, layer.name
            span, boundary = walker.span(layer)
            if stats["ok"]:
                errors[layer.name] = stats["max_abs"]
                walker.verified.update(span)
                if stats["max_abs"] > worst[1]:
                    worst = (layer.name, stats["max_abs"])
                continue
            # The first divergence: the tensors feeding its span all agreed (they were compared before).
            first = min(span, key=lambda name: walker.order.get(name, math.inf))
            result = {
                "found": True, **base,
                "layer": first,
                "keras_class": type(walker.layers[first]).__name__,
                "tensor_layer": layer.name,
                "span": sorted(span, key=lambda name: walker.order.get(name, math.inf)),
                "tflite_tensor": details[index]["name"],
                "tflite_index": index,
                "shape": list(ref.shape),
                "inputs_from": sorted(boundary, key=lambda name: walker.order.get(name, -1)),
                "max_abs_in": max((errors.get(name, 0.0) for name in boundary), default=0.0),
                "max_abs_out": stats.get("max_abs"),
                "max_rel_out": stats.get("max_rel"),
                "cosine_out": stats.get("cosine"),
                "problem": stats.get("problem"),
                "compared": compared,
            }
            result.update(_downstream(keras, keras_model, keras_args, interpreter, details, plan,
                                      position, walker, tol))
            return _finite(result)
    if not compared:
        return {"found": False, "reason": f"{len(plan)} tensor(s) matched Keras layers by name but none had the "
                "size of the layer's output at run time", **base}
    return _finite({"found": False, **base, "compared": compared,
                    "reason": f"all {compared} compared layer outputs are within tolerance (atol max({tol.atol:g}, {tol.atol_rel:g} x scale), "
                              f"rtol {tol.rtol:g}); the last compared is {last!r}",
                    "worst_layer": worst[0], "max_abs": worst[1]})


# --- the .tflite side -------------------------------------------------------------------------------------------


def _read_flatbuffer(path: Path) -> dict[str, Any]:
    """Signature tensors and operator order of the file, read through a read-only mmap (the weights
    are not copied into memory: the interpreter maps the same file)."""
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as blob:
        model = schema.Model.GetRootAs(blob, 0)
        if not model.SignatureDefsLength():
            return {"problem": "the .tflite file has no SignatureDef: its inputs and outputs cannot be matched "
                               "to the Keras model's"}
        sig = next((model.SignatureDefs(i) for i in range(model.SignatureDefsLength())
                    if model.SignatureDefs(i).SignatureKey() == b"serving_default"), model.SignatureDefs(0))
        subgraph = int(sig.SubgraphIndex())
        if subgraph != 0:
            # set_tensor addresses subgraph 0 only; a signature runner would hide the intermediates.
            return {"problem": f"the signature {sig.SignatureKey().decode()!r} lives in subgraph {subgraph}; "
                               "only subgraph 0 can be fed and read tensor by tensor"}
        graph = model.Subgraphs(subgraph)

        def constant(t: int) -> bool:
            buffer = graph.Tensors(t).Buffer()
            return 0 < buffer < model.BuffersLength() and bool(model.Buffers(buffer).DataLength()
                                                                or model.Buffers(buffer).Offset())

        # Position of the operator that writes each tensor: operators are stored in execution order.
        # Outputs of ops that read only constants (the DEQUANTIZE of an fp16 weight) are weights, not
        # activations: left out, or a weight of the right size could stand in for a layer's output.
        producer, static = {}, set()
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            inputs = [int(op.Inputs(j)) for j in range(op.InputsLength()) if op.Inputs(j) >= 0]
            weights_only = bool(inputs) and all(t in static or constant(t) for t in inputs)
            for j in range(op.OutputsLength()):
                t = int(op.Outputs(j))
                if weights_only:
                    static.add(t)
                else:
                    producer[t] = o
        return {
            "key": sig.SignatureKey().decode(),
            "inputs": {sig.Inputs(i).Name().decode(): int(sig.Inputs(i).TensorIndex())
                       for i in range(sig.InputsLength())},
            "outputs": {sig.Outputs(i).Name().decode(): int(sig.Outputs(i).TensorIndex())
                        for i in range(sig.OutputsLength())},
            "producer": producer,
        }


def _run_interpreter(path: Path, inputs: dict[str, int], feeds: dict[str, np.ndarray]) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        # "intended for debugging purposes only ... can significantly increase memory usage": that is the point.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    shapes = {int(d["index"]): (tuple(int(s) for s in d["shape"]), d["dtype"])
              for d in interpreter.get_input_details()}
    values = {key: np.ascontiguousarray(feeds[key], dtype=shapes[inputs[key]][1]) for key in feeds}
    resized = False
    for key, value in values.items():
        if shapes[inputs[key]][0] != value.shape:
            # strict: only the dimensions the model left dynamic (-1 in shape_signature) may change.
            interpreter.resize_tensor_input(inputs[key], list(value.shape), strict=True)
            resized = True
    if resized:
        interpreter.allocate_tensors()
    for key, value in values.items():
        interpreter.set_tensor(inputs[key], value)
    interpreter.invoke()
    return interpreter


def _tensor_value(interpreter: Any, detail: dict[str, Any]) -> np.ndarray | None:
    """The tensor as floats: float tensors as they are, per-tensor quantised ones dequantised, else None."""
    value = interpreter.get_tensor(int(detail["index"]))
    if np.issubdtype(value.dtype, np.floating):
        return value
    scale, zero_point = detail.get("quantization", (0.0, 0))
    per_channel = detail.get("quantization_parameters", {}).get("scales")
    if scale and (per_channel is None or len(per_channel) <= 1) and np.issubdtype(value.dtype, np.integer):
        return (value.astype(np.float32) - zero_point) * np.float32(scale)
    return None


def _comparable_dtype(detail: dict[str, Any]) -> bool:
    dtype = np.dtype(detail["dtype"])
    return bool(np.issubdtype(dtype, np.floating) or (np.issubdtype(dtype, np.integer) and detail["quantization"][0]))


# --- the Keras side ---------------------------------------------------------------------------------------------


def _split_feeds(model: Any, feeds: dict[str, np.ndarray], input_map: dict[str, Any] | None,
                 sig_inputs: dict[str, int]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """The Keras call's positional inputs and the interpreter's inputs by signature key."""
    keras_names = [t.name for t in model.inputs]
    if input_map is None:
        mapping = {name: name for name in keras_names}
    else:
        mapping = {name: (key["key"] if isinstance(key, dict) else key) for name, key in input_map.items()}
    if len(mapping) == len(sig_inputs) == 1 and next(iter(mapping.values())) not in sig_inputs:
        # One input: the signature key is whatever the converter called it (as map_signature does).
        mapping = {next(iter(mapping)): next(iter(sig_inputs))}
    for name, key in mapping.items():
        if key not in sig_inputs:
            raise KeyError(f"input {name!r} maps to {key!r}, which the .tflite signature does not have "
                           f"(inputs {sorted(sig_inputs)})")
        if name not in feeds:
            raise KeyError(f"no feed for input {name!r} (feeds {sorted(feeds)})")
    declared = list(mapping)
    if len(declared) != len(keras_names):
        raise ValueError(f"the Keras model has {len(keras_names)} inputs {keras_names}, the input map declares "
                         f"{declared}")
    # A declared name is the Keras input's name, or maps to a signature key that is (the converter keys
    # the signature by Keras input names); otherwise declared order is Keras order, as convcheck records it.
    keras_args = []
    for i, keras_name in enumerate(keras_names):
        name = next((n for n in declared if n == keras_name), None) or \
            next((n for n in declared if mapping[n] == keras_name), None) or declared[i]
        keras_args.append(np.asarray(feeds[name]))
    return keras_args, {mapping[name]: np.asarray(feeds[name]) for name in declared}


def _batch(keras_args: list[np.ndarray]) -> int:
    return int(keras_args[0].shape[0]) if keras_args and keras_args[0].ndim else 1


def _probe(keras: Any, model: Any, layers: list[Any], keras_args: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of `layers` for one sample, from a probe model over the source model's own graph."""
    probe = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in layers])
    # A list even for one input: the probe's inputs are `model.inputs`, a list, and Keras warns on a bare tensor.
    outs = probe(list(keras_args), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [np.asarray(keras.ops.convert_to_numpy(o)) for o in outs]


def _single_output(layer: Any) -> Any | None:
    """The layer's output KerasTensor when it has exactly one call and one float output, else None."""
    if len(getattr(layer, "_inbound_nodes", ())) != 1:
        return None  # a shared layer: its TFLite scopes (`dense_1`, `dense_2`) cannot be told apart
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(out, (list, tuple, dict)) or "float" not in str(getattr(out, "dtype", "")):
        return None
    return out


# --- matching tensors to layers ---------------------------------------------------------------------------------


def _plan(model: Any, layers: list[Any], graph: dict[str, Any], details: dict[int, dict[str, Any]],
          batch: int) -> tuple[list[tuple[Any, int]], list[str]]:
    """(layer, tensor index) for every layer that has a tensor of its own, in Keras order; and the others."""
    import keras

    order = {layer.name: i for i, layer in enumerate(layers)}
    produced = [i for i in graph["producer"] if i in details]
    locations = {i: [_PORT.sub("", loc).split("/") for loc in details[i]["name"].split(";")] for i in produced}
    resolve = _resolver(set(order), model.name, [parts for locs in locations.values() for parts in locs])

    # Each op output belongs to the latest Keras layer its name mentions (a fused op computes up to it).
    owned: dict[str, list[int]] = {}
    for index, locs in locations.items():
        names = {n for parts in locs if (n := resolve(parts)) is not None}
        if names:
            owned.setdefault(max(names, key=order.__getitem__), []).append(index)
    # The model outputs are renamed by the converter; the signature says which is which.
    from_signature: dict[str, int] = {}
    for i, out in enumerate(model.outputs):
        producer = out._keras_history.operation
        key = next((k for k in (f"output_{i}", producer.name) if k in graph["outputs"]), None)
        if key is not None:
            from_signature[producer.name] = graph["outputs"][key]

    plan, unmatched = [], []
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        out = _single_output(layer)
        if out is None:
            unmatched.append(layer.name)
            continue
        fits = [i for i in owned.get(layer.name, ())
                if _comparable_dtype(details[i]) and _fits(out.shape, details[i]["shape"], batch)]
        signature_index = from_signature.get(layer.name)
        if signature_index is not None and signature_index in details:
            plan.append((layer, signature_index))
        elif fits:
            # Several tensors of one layer (Dense -> MatMul, then Tanh): its output is written last.
            plan.append((layer, max(fits, key=graph["producer"].__getitem__)))
        else:
            unmatched.append(layer.name)
    return plan, unmatched


def _resolver(layer_names: set[str], model_name: str, all_parts: list[list[str]]) -> Any:
    """A function from a tensor location (`['cnn_small_1', 'conv2d_1_2', 'convolution']`) to the Keras
    layer it belongs to, or None.

    The layer is the scope after the model's own scope. Scopes normally carry one uniquifier suffix
    (`conv2d_1` is `conv2d`); whether this file's do is decided by which reading explains more scopes,
    and the other reading is the fallback (a scope used once, without suffix)."""

    def strip(scope: str) -> str | None:
        m = _UNIQUIFIER.match(scope)
        return m.group(1) if m else None

    def scope_of(parts: list[str]) -> str | None:
        if len(parts) >= 2 and model_name in (parts[0], strip(parts[0])):
            return parts[1]
        return parts[0] if len(parts) >= 2 else None  # a single part is an op or graph name, no scope

    scopes = [s for parts in all_parts if (s := scope_of(parts)) is not None]
    suffixed = sum(strip(s) in layer_names for s in scopes)
    exact = sum(s in layer_names for s in scopes)
    readings = (lambda s: s, strip) if exact > suffixed else (strip, lambda s: s)

    def resolve(parts: list[str]) -> str | None:
        scope = scope_of(parts)
        if scope is None:
            return None
        return next((n for read in readings if (n := read(scope)) in layer_names), None)

    return resolve


def _fits(keras_shape: tuple, tflite_shape: Any, batch: int) -> bool:
    """Same shape (None in Keras matching anything), or the same number of elements (then reshaped)."""
    tshape = [int(d) for d in tflite_shape]
    if len(keras_shape) == len(tshape) and all(k is None or k == t for k, t in zip(keras_shape, tshape)):
        return True
    dims = [batch if (k is None and i == 0) else k for i, k in enumerate(keras_shape)]
    if any(d is None for d in dims):
        return False
    return math.prod(dims) == math.prod(tshape)


class _GraphWalker:
    """Backward walks over the Keras graph: which layers a compared tensor covers (its span: the layer
    and the uncompared layers feeding it), and which compared layers or inputs feed that span."""

    def __init__(self, keras: Any, compared: set[str]) -> None:
        self.keras = keras
        self.compared = set(compared)
        self.verified: set[str] = set()  # uncompared layers inside the span of an agreeing tensor
        self.layers: dict[str, Any] = {}
        self.order: dict[str, int] = {}

    def register(self, layers: list[Any]) -> "_GraphWalker":
        for i, layer in enumerate(layers):
            self.layers[layer.name], self.order[layer.name] = layer, i
        return self

    def span(self, layer: Any) -> tuple[set[str], set[str]]:
        span, boundary, seen = {layer.name}, set(), set()
        stack = [(layer, 0)]
        while stack:
            op, node_index = stack.pop()
            for tensor in op._inbound_nodes[node_index].input_tensors:
                parent, parent_node = tensor._keras_history.operation, tensor._keras_history.node_index
                # By call, not by layer: a shared layer's second call has ancestors of its own.
                if (parent.name, parent_node) in seen:
                    continue
                seen.add((parent.name, parent_node))
                if isinstance(parent, self.keras.layers.InputLayer) or parent.name in self.compared:
                    boundary.add(parent.name)
                    continue
                # An uncompared layer already covered by an agreeing tensor computed right: walk past it
                # to the compared tensors beyond, but it is no suspect.
                if parent.name not in self.verified:
                    span.add(parent.name)
                stack.append((parent, parent_node))
        return span, boundary


def _downstream(keras: Any, model: Any, keras_args: list[np.ndarray], interpreter: Any,
                details: dict[int, dict[str, Any]], plan: list[tuple[Any, int]], at: int, walker: _GraphWalker,
                tol: Tolerance) -> dict[str, Any]:
    """Does the divergence propagate? The first later compared layer fed by the divergent one, compared.

    An error that vanishes at its consumer suggests the matched tensor was not really the layer's output
    (an intermediate of it) or that the next op masks it (a ReLU over negative values): worth saying."""
    divergent = plan[at][0].name
    for layer, index in plan[at + 1:]:
        if layer.name not in walker.compared:
            continue
        _, boundary = walker.span(layer)
        if divergent not in boundary:
            continue
        ref = _probe(keras, model, [layer], keras_args)[0]
        actual = _tensor_value(interpreter, details[index])
        if actual is None or actual.size != ref.size:
            return {"downstream_layer": layer.name, "propagates": None}
        stats = compare_arrays(actual.reshape(ref.shape), ref, tol)
        out = {"downstream_layer": layer.name, "downstream_max_abs": stats.get("max_abs"),
               "propagates": not stats["ok"]}
        if stats["ok"]:
            out["note"] = (f"the error does not reach {layer.name!r}: the tensor matched to {divergent!r} may be an "
                           "intermediate of that layer rather than its output, or the next op masks the error")
        return out
    return {"downstream_layer": None, "propagates": None}


def _finite(result: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or Infinity."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
