"""The export hop's localiser: the first torch module whose ONNX counterpart computes something else.

Forward hooks give every submodule's output; the dynamo exporter records on each ONNX node the module
scope it came from (`pkg.torch.onnx.name_scopes`), which ties ONNX values to modules. The walk, the
graph loading and the reports are convcheck.validate.localize_onnx's (shared with the runtime
localiser). torch and onnxruntime are imported inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.tolerance import Tolerance
from convcheck.validate.localize_onnx import (METHOD_EXPORT, NAME_SCOPES_KEY, REWRITE_KEY, Shape,
                                              _divergence_report, _first_divergence, _Graph, _load_graph,
                                              _not_found, _run_exposing)


def localize_export(torch_module: Any, onnx_path: Path, feeds: dict[str, np.ndarray], tol: Tolerance,
                    batch: int = 64) -> dict[str, Any]:
    """The first torch module whose ONNX counterpart computes something else: the export hop's fault.

    `torch_module` must be in the mode it was exported in (eval): its forward is run once, with
    hooks recording every submodule's output. Each module is matched to the output of the last ONNX
    node in its scope whose shape is the module's output shape; the matched values are computed by
    ONNX Runtime (CPU, optimisations off) `batch` at a time, in topological order, and compared
    against torch's (the reference). Needs the scope metadata of the dynamo exporter: without it,
    found is False with the reason.
    """
    graph = _load_graph(Path(onnx_path))
    scopes = {i: s for i, node in enumerate(graph.nodes) if (s := _node_scopes(node)) is not None}
    if not scopes:
        return _not_found(
            f"the ONNX graph has no {NAME_SCOPES_KEY} metadata on any node (the TorchScript exporter, "
            "dynamo=False, records none): the ONNX values cannot be tied to torch modules, and matching "
            "by shape and order is unreliable because exporters fold BatchNorm into the Conv before it; "
            "re-export with dynamo=True to localise", tol)
    missing_feeds = [name for name in graph.inputs if name not in feeds]
    if missing_feeds:
        raise ValueError(f"feeds lack the graph input(s) {missing_feeds}")
    calls = _capture_module_outputs(torch_module, [feeds[name] for name in graph.inputs])
    call_counts = {name: len(arrays) for name, arrays in calls.items()}
    points = _match_modules(graph, scopes, {name: [None if a is None else a.shape for a in arrays]
                                            for name, arrays in calls.items()}, _bind_symbols(graph, feeds))
    if not points:
        return _not_found("no torch module output matched an ONNX value: no module scope in the graph "
                          "holds a node whose output has the module's output shape", tol)
    reference = {value: calls[module][call] for value, ((module, call), *_) in points.items()}
    del calls  # only the matched outputs are needed from here on
    order = sorted(points, key=lambda value: graph.producer[value])
    walk = _first_divergence(order, lambda names: {n: reference[n] for n in names},
                             lambda names: _run_exposing(graph, names, feeds, "none"), tol, batch)
    if walk.first is None:
        return _not_found(f"all {len(walk.errors)} matched torch module outputs are within tolerance of "
                          "their ONNX values", tol, compared=len(walk.errors), matched=len(points))
    result = _divergence_report(graph, walk, METHOD_EXPORT, tol)
    (module, call), *others = points[walk.first]
    modules = dict(torch_module.named_modules())
    result.update(torch_module=module, torch_class=type(modules[module]).__name__)
    if call_counts[module] > 1:
        result["torch_call"] = call  # which call of a module run more than once (0 = the first)
    if others:
        result["same_output_modules"] = [m for m, _ in others]
    node = graph.nodes[graph.producer[walk.first]]
    result.update(_node_provenance(node, graph, torch_module))
    result["matched"] = len(points)
    return result


# --------------------------------------------------------------------------------------------------
# torch modules <-> ONNX values


def hookable_module(torch_module: Any) -> Any:
    """A module whose submodules run as themselves, so forward hooks see them. A user's .pt2 loads as a
    flat graph (`ExportedProgram.module()`: one module, no children, nothing to compare per module);
    `torch.export.unflatten` rebuilds the original hierarchy under the original names."""
    program = getattr(torch_module, "exported_program", None)
    if program is None:
        return torch_module
    import torch

    return torch.export.unflatten(program)


def _capture_module_outputs(torch_module: Any, args: list[np.ndarray]) -> dict[str, list[np.ndarray | None]]:
    """Every submodule's output at each of its calls (None where it is not one float tensor)."""
    import torch

    torch_module = hookable_module(torch_module)
    calls: dict[str, list[np.ndarray | None]] = {}

    def recorder(name: str) -> Callable[..., None]:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            # A copy: an in-place op after the module (ReLU(inplace=True)) would change the tensor.
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                value = output.detach().to("cpu")
                calls.setdefault(name, []).append((value.float() if value.dtype == torch.bfloat16 else value)
                                                  .numpy().copy())
            else:
                calls.setdefault(name, []).append(None)  # still a call: keeps call counts aligned
        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in torch_module.named_modules()]
    try:
        with torch.no_grad():
            torch_module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in args))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _node_scopes(node: Any) -> list[str] | None:
    """The module paths the node ran in, outermost first ("" = root), or None without the metadata."""
    for prop in node.metadata_props:
        if prop.key == NAME_SCOPES_KEY:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            # The last entry is the FX node's name, not a module.
            return [str(s) for s in scopes[:-1]] if isinstance(scopes, list) else None
    return None


def _match_modules(graph: _Graph, scopes: dict[int, list[str]], call_shapes: dict[str, list[tuple[int, ...] | None]],
                   bindings: dict[str, int]) -> dict[str, list[tuple[str, int]]]:
    """ONNX value -> the (module, call) pairs whose output it is, innermost module first.

    A module's call is the output of the last node in its scope, in topological order, whose shape
    is the module's output shape. A module called k times has k runs of consecutive nodes in its
    scope (nodes without metadata do not break a run); when the runs do not number k (back-to-back
    calls merge) the module is not matched rather than matched wrongly.
    """
    ordered = sorted(scopes)  # node indices with metadata, topological
    position = {node_index: pos for pos, node_index in enumerate(ordered)}
    in_scope: dict[str, list[int]] = {}
    for node_index in ordered:
        for module in scopes[node_index]:
            in_scope.setdefault(module, []).append(node_index)
    points: dict[str, list[tuple[str, int]]] = {}
    for module, shapes in call_shapes.items():
        nodes = in_scope.get(module)
        if not nodes:
            continue  # no node of its own: fused into a neighbour (Conv before a BatchNorm) or a no-op
        runs = _runs(nodes, position) if len(shapes) > 1 else [nodes]
        if len(runs) != len(shapes):
            continue
        for call, (run, shape) in enumerate(zip(runs, shapes)):
            value = None if shape is None else _last_output_of_shape(graph, run, shape, bindings)
            if value is not None:
                points.setdefault(value, []).append((module, call))
    for pairs in points.values():
        # Fully qualified paths: the deepest module has the most components ("" is the root).
        pairs.sort(key=lambda pair: -1 if pair[0] == "" else pair[0].count("."), reverse=True)
    return points


def _runs(nodes: list[int], position: dict[int, int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for node_index in nodes:
        if runs and position[node_index] == position[runs[-1][-1]] + 1:
            runs[-1].append(node_index)
        else:
            runs.append([node_index])
    return runs


def _last_output_of_shape(graph: _Graph, run: list[int], shape: tuple[int, ...],
                          bindings: dict[str, int]) -> str | None:
    for node_index in reversed(run):
        for out in graph.nodes[node_index].output:
            if out and graph.is_float(out) is not False and _shape_matches(graph.shapes.get(out), shape, bindings):
                return out
    return None


def _shape_matches(static: Shape | None, actual: tuple[int, ...], bindings: dict[str, int]) -> bool:
    """A symbol the feeds bind must have its size; any other symbolic or unknown dim matches any
    size; an unknown rank matches nothing (every same-rank value would do)."""
    if static is None or len(static) != len(actual):
        return False
    for dim, size in zip(static, actual):
        expected = bindings.get(dim) if isinstance(dim, str) else dim
        if expected is not None and expected != size:
            return False
    return True


def _bind_symbols(graph: _Graph, feeds: dict[str, np.ndarray]) -> dict[str, int]:
    """The sizes the feeds give the graph inputs' symbolic dims ("batch" -> 1): the same symbol on an
    intermediate value then has that size, which tells apart values that differ only there."""
    bindings: dict[str, int] = {}
    for name in graph.inputs:
        for dim, size in zip(graph.shapes.get(name) or (), np.shape(feeds[name])):
            if isinstance(dim, str):
                bindings[dim] = int(size)
    return bindings


def _node_provenance(node: Any, graph: _Graph, torch_module: Any) -> dict[str, Any]:
    """Which torch parameters feed the node and which rewrite produced it: after the exporter fuses a
    BatchNorm into the Conv before it, the node sits in the BatchNorm's scope but holds the Conv's
    weight, and both modules are suspects."""
    named = {name for name, _ in torch_module.named_parameters()} | {name for name, _ in torch_module.named_buffers()}
    parameters = [name for name in node.input if name in graph.sources and name not in graph.inputs]
    provenance: dict[str, Any] = {
        "parameters": parameters,
        "parameter_modules": sorted({name.rsplit(".", 1)[0] if "." in name else "" for name in parameters
                                     if name in named}),
    }
    for prop in node.metadata_props:
        if prop.key == REWRITE_KEY:
            provenance["rewrites"] = [rule.strip() for rule in prop.value.split(",") if rule.strip()]
    return provenance
