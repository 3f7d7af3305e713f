"""First divergence for Core ML routes: the MIL op where the converted program stops computing the source.

The MIL executor (convcheck.validate.mil) sees every intermediate of the program; the source model's
are recorded beside it (torch: a forward hook on every submodule; Keras: a probe model over every
layer's output). No name ties the two reliably (coremltools fuses BatchNorm into the conv before it,
renames TorchScript values, inserts layout transposes), so values do:

- a MIL op is **verified** when its output equals, within the cell's tolerance, some source tensor of
  the same shape (a Keras NHWC tensor also as NCHW, the layout coremltools converts convolutions in);
- every op a verified op depends on is **cleared**: the error cannot have started there;
- the divergence starts at the first op, in program order, that is neither verified nor cleared and has
  a same-shape source tensor it should have matched (`op`); ops before it that could not be compared
  and are not cleared form the `span` where it may have started.

The source module (torch) or layer (Keras) named is the one the op's weights came from, by the names
coremltools keeps (`fc1.weight` -> const `fc1_weight`), or else the source tensor nearest to the op's
output. Localisation explains a mismatch; it never changes a verdict.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.tolerance import Tolerance
from convcheck.validate.parity import compare_arrays

METHOD = "coreml: MIL executor intermediates vs source module / layer outputs (matched by value)"


def localize_coreml(source: Any, package: Path, feeds: dict[str, np.ndarray], tol: Tolerance,
                    kind: str) -> dict[str, Any]:
    """`source`: the torch module (eval) or Keras model the package was converted from (`kind` "torch"
    or "keras"); `feeds`: one sample keyed by the package's input features (the model's input names unless
    the package is a user's own that names them otherwise)."""
    from convcheck.validate.mil.program import load_program

    base: dict[str, Any] = {"method": METHOD, "tolerance": dict(vars(tol))}
    program = load_program(Path(package))
    steps: list[tuple[Any, list[np.ndarray]]] = []
    program.run(feeds, keep=lambda step, values: steps.append((step, values)))
    inputs = [np.asarray(feeds[name]) for name in program.input_names]
    if kind == "torch":
        found_source = _torch_outputs(source, inputs)
        weights = _torch_weight_owners(source)
    else:
        found_source = _keras_outputs(source, inputs)
        weights = {}
    # Each source tensor under its shape, with its place in the recording order (a Keras NHWC tensor
    # also as NCHW, the layout the program computes convolutions in).
    by_shape: dict[tuple[int, ...], list[tuple[int, str, np.ndarray]]] = {}
    for k, (name, value) in enumerate(found_source):
        views = [value] + ([np.transpose(value, (0, 3, 1, 2))] if kind == "keras" and value.ndim == 4 else [])
        for view in views:
            by_shape.setdefault(view.shape, []).append((k, name, view))

    outputs = [_float(values[0]) if values else None for _, values in steps]
    producer = {out: i for i, (step, _) in enumerate(steps) for out in step.outputs}
    matched_at: dict[int, int] = {}  # verified op -> the recording index of the source tensor it equals
    comparable: set[int] = set()
    nearest: dict[int, tuple[str, float]] = {}
    for i, value in enumerate(outputs):
        candidates = by_shape.get(value.shape, []) if value is not None else []
        if candidates:
            comparable.add(i)
        for k, name, ref in candidates:
            stats = compare_arrays(value, ref, tol)  # type: ignore[arg-type]
            if stats["ok"]:
                matched_at[i] = k
                break
            error = float(stats.get("max_abs") or np.inf)
            if i not in nearest or error < nearest[i][1]:
                nearest[i] = (name, error)
    verified = set(matched_at)
    cleared: set[int] = set()
    stack = list(verified)
    while stack:
        for var in steps[stack.pop()][0].inputs:
            j = producer.get(var)
            if j is not None and j not in cleared:
                cleared.add(j)
                stack.append(j)
    base.update(compared=len(comparable), verified=len(verified), mil_ops=len(steps),
                source_tensors=len(found_source))
    if not comparable:
        return {"found": False, "reason": "no MIL op output has the shape of any source module or layer output: "
                                          "nothing could be compared", **base}
    span: list[int] = []
    for i, (step, _) in enumerate(steps):
        if i in verified or i in cleared or outputs[i] is None:
            continue
        span.append(i)
        if i not in comparable:
            continue
        # The source tensor this op should have equalled: the first of its shape recorded after the last
        # one an earlier op agreed with (torch modules in the order they first finish, Keras layers in graph
        # order); else the nearest in value.
        after = max((k for j, k in matched_at.items() if j < i), default=-1)
        expected = next((name for k, name, _ in by_shape[outputs[i].shape] if k > after), None)  # type: ignore[union-attr]
        owner = _owner(step.weights, weights)
        module = owner or expected or nearest.get(i, ("", 0.0))[0]
        how = "weights" if owner else "next source output" if expected else "nearest output"
        label = "torch_module" if kind == "torch" else "keras_layer"
        return {"found": True, **base, "op_type": step.op_type, "node": step.name, "output": step.outputs[0],
                label: module, "module_from": how,
                "span": [f"{steps[j][0].op_type} {steps[j][0].name}" for j in span],
                "max_abs_out": nearest.get(i, ("", None))[1], "weights": step.weights[:4]}
    return {"found": False, "reason": f"every compared MIL op output is within tolerance of a source tensor or feeds "
                                      f"one that is ({len(verified)} of {len(comparable)} comparable verified)", **base}


def _float(value: Any) -> np.ndarray | None:
    array = np.asarray(value) if value is not None and not isinstance(value, (str, list)) else None
    if array is None or array.dtype.kind != "f" or array.ndim == 0:
        return None
    return array


def _torch_outputs(module: Any, inputs: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    from convcheck.validate.localize_export import _capture_module_outputs

    calls = _capture_module_outputs(module, inputs)
    return [(name or "(model)", array) for name, arrays in calls.items() for array in arrays if array is not None]


def _torch_weight_owners(module: Any) -> dict[str, str]:
    """coremltools' const name prefix for each parameter -> the module that owns it."""
    from convcheck.validate.localize_export import hookable_module

    module = hookable_module(module)
    owners = {}
    for name, _ in list(module.named_parameters()) + list(module.named_buffers()):
        path = name.rsplit(".", 1)[0] if "." in name else ""
        owners[re.sub(r"[^0-9A-Za-z_]", "_", name)] = path
    return owners


def _owner(weights: list[str], owners: dict[str, str]) -> str | None:
    for const in weights:
        for prefix in sorted(owners, key=len, reverse=True):
            if const == prefix or const.startswith(prefix + "_"):
                return owners[prefix] or "(model)"
    return None


def _keras_outputs(model: Any, inputs: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    import keras

    from convcheck.validate.localize_tflite import _probe, _single_output

    layers = [layer for layer in model.layers if _single_output(layer) is not None
              and not isinstance(layer, keras.layers.InputLayer)]
    found: list[tuple[str, np.ndarray]] = []
    for start in range(0, len(layers), 32):  # bounded memory, as the TFLite localiser
        chunk = layers[start:start + 32]
        found.extend((layer.name, value) for layer, value in zip(chunk, _probe(keras, model, chunk, inputs)))
    return found
