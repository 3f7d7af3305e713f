"""First-divergence localisation for ONNX-based routes: WHERE does a converted model start to differ?

A parity failure says that the outputs differ, not which operator made them differ. Two hops of an
ONNX route can be at fault, and each has its own comparison:

- `localize_export` (convcheck.validate.localize_export): the torch module against the ONNX graph
  exported from it. Forward hooks give every submodule's output; the dynamo exporter records on each
  ONNX node the module scope it came from (`pkg.torch.onnx.name_scopes`), which tells which ONNX
  value is that module's output.
- `localize_runtime`: the ONNX graph run by the reference (ONNX Runtime, CPU, optimisations off)
  against a candidate runtime that can expose some named intermediate tensors.

Both walk the comparison points in topological order and name the first one out of tolerance: every
point upstream of it was compared before it and was within tolerance, so the error starts there.

Intermediate tensors are exposed in batches (`batch` at a time) and the walk stops at the first
divergence: marking every tensor of a large graph as an output at once holds every activation in
memory together. Weights stay on disk: the graph is loaded without its external data and ONNX
Runtime reads them from the original folder, so a model over protobuf's 2 GB limit works too.

Frameworks (onnx, onnxruntime, torch, openvino) are imported inside functions: importing this
module must stay free, like the rest of convcheck's core.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.tolerance import Tolerance

METHOD_EXPORT = "export: torch module outputs vs ONNX node outputs (ORT, optimisations off)"
METHOD_RUNTIME = "runtime: ONNX node outputs, reference ORT CPU (optimisations off) vs candidate"

#: Written by torch.onnx's dynamo exporter on every node it translates from an FX node: the fully
#: qualified paths of the modules the op ran in, outermost ("" = the root) first, then the FX node's
#: own name, e.g. ['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d'].
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
#: Written by onnxscript's optimizer (run by the exporter) on a node a rewrite rule produced, e.g.
#: "FuseBatchNormIntoConv, RemoveOptionalBiasFromConv": the node then computes more than one module.
REWRITE_KEY = "pkg.onnxscript.rewriter.rule_name"

#: TensorProto element types compared: FLOAT, FLOAT16, DOUBLE. Integer tensors are shapes, indices
#: and masks (a wrong one shows in the float tensor it feeds); bfloat16 has no numpy dtype in ORT.
FLOAT_ELEM_TYPES = frozenset({1, 10, 11})
#: A graph whose weights are embedded and whose serialized size passes this is first rewritten with
#: external data into a temporary folder: the copy with extra outputs must stay under protobuf's 2 GB.
INLINE_BYTES_LIMIT = 1_500_000_000
#: The first ONNX Runtime whose session option `session.model_external_initializers_file_folder_path`
#: lets a model given as bytes find its external data (microsoft/onnxruntime#23557). Before it, the
#: copy with extra outputs is written as a file beside the original, read, and deleted.
ORT_BYTES_WITH_EXTERNAL_DATA = (1, 21)

Candidate = Callable[[list[str]], dict[str, np.ndarray]]
#: A static shape: a size, a symbol the graph names (dim_param), or None where the graph says nothing.
Shape = tuple[int | str | None, ...]


@dataclass
class _Graph:
    """The top-level graph of an ONNX file, its weights left on disk in `folder`."""

    model: Any  # onnx.ModelProto; external initializers not loaded
    folder: Path  # where ONNX Runtime finds the external data
    nodes: list[Any]  # top-level NodeProtos in topological order (subgraph nodes are not walked)
    producer: dict[str, int]  # value name -> index in `nodes` of the node that computes it
    sources: set[str]  # graph inputs and initializers: identical on both sides by construction
    inputs: list[str]  # graph inputs that are fed (initializers excluded)
    elem_types: dict[str, int]  # value name -> TensorProto element type, where known
    shapes: dict[str, Shape | None]  # value name -> static shape (None: unknown dim or rank)
    has_external_data: bool = False
    workdir: Any = None  # TemporaryDirectory holding a rewritten copy of a huge inline model

    def is_float(self, name: str) -> bool | None:
        """True/False when the element type is known, None when only running the graph can tell."""
        elem = self.elem_types.get(name)
        return None if elem is None else elem in FLOAT_ELEM_TYPES


@dataclass
class _Error:
    within: bool
    max_abs: float  # inf when the comparison failed outright (shape, non-finite)
    problem: str | None = None


@dataclass
class _Walk:
    """Where the walk over comparison points stopped."""

    first: str | None = None  # the first value out of tolerance, in topological order
    errors: dict[str, _Error] = field(default_factory=dict)
    requested: int = 0
    missing: list[str] = field(default_factory=list)  # requested but the candidate gave no value


# --------------------------------------------------------------------------------------------------
# public API


def localize_runtime(onnx_path: Path, feeds: dict[str, np.ndarray], candidate: Candidate, tol: Tolerance,
                     batch: int = 64) -> dict[str, Any]:
    """The first ONNX node a candidate runtime computes differently from the reference: the runtime's fault.

    The reference is ONNX Runtime on CPU with graph optimisations off, so each node is computed as
    written. `candidate(names)` returns the values it can for those tensor names (runtimes fuse
    nodes away and expose what is left); a node the candidate cannot expose is not compared, and
    the report says whether the divergent node's inputs were compared directly or only further up.
    """
    graph = _load_graph(Path(onnx_path))
    missing_feeds = [name for name in graph.inputs if name not in feeds]
    if missing_feeds:
        raise ValueError(f"feeds lack the graph input(s) {missing_feeds}")
    order = [value for _, value in _comparable_outputs(graph)]
    walk = _first_divergence(order, lambda names: _run_exposing(graph, names, feeds, "none"), candidate,
                             tol, batch)
    if not walk.errors:
        return _not_found(f"the candidate exposed none of the {walk.requested} node outputs requested", tol,
                          compared=0, requested=walk.requested)
    if walk.first is None:
        return _not_found(f"all {len(walk.errors)} node outputs the candidate exposed are within tolerance "
                          f"({len(walk.missing)} of {walk.requested} it could not expose)", tol,
                          compared=len(walk.errors), requested=walk.requested, not_exposed=len(walk.missing))
    result = _divergence_report(graph, walk, METHOD_RUNTIME, tol)
    result.update(requested=walk.requested, not_exposed=len(walk.missing))
    return result


def ort_candidate(onnx_path: Path, feeds: dict[str, np.ndarray], providers: list[str] | None = None,
                  optimization: str = "all") -> Candidate:
    """ONNX Runtime as deployed (`optimization` "all" by default) as a candidate for `localize_runtime`.

    Exposing a tensor makes it a graph output, and ORT does not fuse away a graph output: a fusion
    that would have swallowed an exposed node does not happen in the localisation run. A divergence
    that only the fused kernel causes can therefore show at the graph outputs and vanish inside.
    """
    graph = _load_graph(Path(onnx_path))
    producible = set(graph.producer)

    def run(names: list[str]) -> dict[str, np.ndarray]:
        # This graph may be another file than the reference's (a rewritten copy): ask only for what it has.
        wanted = [name for name in names if name in producible]
        return _run_exposing(graph, wanted, feeds, optimization, providers) if wanted else {}

    return run


def openvino_candidate(onnx_path: Path, feeds: dict[str, np.ndarray]) -> Candidate:
    """OpenVINO's CPU plugin in f32, reading the ONNX file itself, as a candidate for `localize_runtime`.

    Tensor names are those of the ONNX graph (OpenVINO's ONNX frontend keeps them); a name that no
    longer exists after the frontend's own conversion is skipped. The model is read and compiled
    again for each batch because `add_outputs` changes the model in place.
    """
    path = Path(onnx_path)

    def run(names: list[str]) -> dict[str, np.ndarray]:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        known = {tensor_name for op in model.get_ops() for port in op.outputs() for tensor_name in port.get_names()}
        wanted = [name for name in names if name in known]
        if wanted:
            model.add_outputs(wanted)
        # Without the hint, CPUs with AMX / AVX512-BF16 compute in bf16: every node would "diverge".
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        # A port may carry several names; the feeds are keyed by the ONNX graph's input name.
        inputs = {port.get_any_name(): feeds[next(n for n in port.get_names() if n in feeds)]
                  for port in compiled.inputs}
        results = compiled.create_infer_request().infer(inputs)
        values: dict[str, np.ndarray] = {}
        for port in compiled.outputs:
            for name in port.get_names() & set(wanted):
                values[name] = np.array(results[port])
        return values

    return run


# --------------------------------------------------------------------------------------------------
# the walk


def _first_divergence(order: list[str], reference: Candidate, candidate: Candidate, tol: Tolerance,
                      batch: int) -> _Walk:
    """Compare `order` (value names, topological) `batch` at a time; stop at the first out of tolerance."""
    walk = _Walk()
    for chunk in _chunks(order, max(1, batch)):
        walk.requested += len(chunk)
        ref_values = reference(chunk)
        cand_values = candidate(chunk)
        for name in chunk:
            if name not in cand_values or name not in ref_values:
                walk.missing.append(name)
                continue
            ref, actual = np.asarray(ref_values[name]), np.asarray(cand_values[name])
            if not _is_float_array(ref):
                continue  # its type was unknown before running: integers are not compared (see FLOAT_ELEM_TYPES)
            error = _tensor_error(actual, ref, tol)
            walk.errors[name] = error
            if not error.within:
                walk.first = name
                return walk
    return walk


def _tensor_error(actual: np.ndarray, ref: np.ndarray, tol: Tolerance) -> _Error:
    """allclose over the positions where the reference is finite; a shape change or a NaN/Inf where
    the reference is finite is a divergence by itself."""
    if actual.shape != ref.shape:
        return _Error(False, math.inf, f"shape {list(actual.shape)} != reference {list(ref.shape)}")
    a, r = actual.astype(np.float64), ref.astype(np.float64)
    finite_ref = np.isfinite(r)
    broken = finite_ref & ~np.isfinite(a)
    if broken.any():
        return _Error(False, math.inf, f"{int(broken.sum())} non-finite value(s) where the reference is finite")
    a, r = a[finite_ref], r[finite_ref]
    diff = np.abs(a - r)
    max_abs = float(diff.max()) if diff.size else 0.0
    # Each intermediate is held to the bound at its own scale (its peak |ref|), as final outputs are.
    atol = tol.effective_atol(float(np.abs(r).max()) if r.size else 0.0)
    within = bool(np.all(diff <= atol + tol.rtol * np.abs(r)))
    return _Error(within, max_abs, None if within else
                  f"max_abs {max_abs:.3g} exceeds atol {atol:.3g} + rtol {tol.rtol:g} x |ref|")


def _divergence_report(graph: _Graph, walk: _Walk, method: str, tol: Tolerance) -> dict[str, Any]:
    """The JSON-ready report of the node computing `walk.first`, with the error of what fed it."""
    node_index = graph.producer[walk.first]
    node = graph.nodes[node_index]
    upstream, direct = _upstream_errors(graph, node_index, walk.errors)
    error = walk.errors[walk.first]
    report: dict[str, Any] = {
        "found": True,
        "method": method,
        "node": node.name,
        "op_type": node.op_type,
        "output": walk.first,
        "max_abs_in": max(upstream.values(), default=0.0),
        "max_abs_out": error.max_abs,
        "inputs": upstream,
        # False: some input of the node was not exposed, and max_abs_in is that of values further up.
        "inputs_compared_directly": direct,
        "compared": len(walk.errors),
        "tolerance": dict(vars(tol)),
    }
    if error.problem:
        report["problem"] = error.problem
    return _json_safe(report)


def _upstream_errors(graph: _Graph, node_index: int, errors: dict[str, _Error]) -> tuple[dict[str, float], bool]:
    """Errors of the nearest compared values above the node's float inputs, and whether those were
    all its direct inputs. Graph inputs and initializers are the same on both sides: error 0."""
    found: dict[str, float] = {}
    direct = True
    seen: set[str] = set()
    pending = [(name, True) for name in graph.nodes[node_index].input]
    while pending:
        name, is_direct = pending.pop()
        if not name or name in seen or graph.is_float(name) is False:
            continue  # an absent optional input, or an integer (shape, index) tensor
        seen.add(name)
        if name in errors:
            found[name] = errors[name].max_abs
        elif name in graph.sources or name not in graph.producer or _is_constant(graph, name):
            found[name] = 0.0  # a graph input, an initializer, a Constant node, or an outer-scope value
        else:
            direct &= not is_direct
            pending.extend((upstream, False) for upstream in graph.nodes[graph.producer[name]].input)
    return found, direct


def _is_constant(graph: _Graph, name: str) -> bool:
    return graph.nodes[graph.producer[name]].op_type == "Constant"


def _not_found(reason: str, tol: Tolerance, **counts: int) -> dict[str, Any]:
    return {"found": False, "reason": reason, **counts, "tolerance": dict(vars(tol))}


def _json_safe(obj: Any) -> Any:
    """JSON has no Infinity: a comparison that failed outright (see `problem`) writes max_abs as null."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _is_float_array(value: np.ndarray) -> bool:
    return np.issubdtype(value.dtype, np.floating)


# --------------------------------------------------------------------------------------------------
# ONNX graph and ONNX Runtime


def _load_graph(onnx_path: Path) -> _Graph:
    """The graph without its external weights, with types, static shapes and a topological order."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    folder, workdir = onnx_path.parent, None
    if model.ByteSize() > INLINE_BYTES_LIMIT:
        # Embedded weights this large would take the copy with extra outputs past 2 GB: rewrite the
        # model once with external data into a temporary folder and run it from there.
        workdir = tempfile.TemporaryDirectory(prefix="convcheck-localize-")
        full = onnx.load(str(onnx_path))
        onnx.save_model(full, str(Path(workdir.name) / "model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="model.onnx.data")
        del full
        folder = Path(workdir.name)
        model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value.name for value in model.graph.input if value.name not in initializers]
    elem_types, shapes = _value_types(model)
    nodes = _topological(list(model.graph.node), initializers | set(inputs))
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    has_external_data = any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    return _Graph(model=model, folder=folder, nodes=nodes, producer=producer, sources=initializers | set(inputs),
                  inputs=inputs, elem_types=elem_types, shapes=shapes, has_external_data=has_external_data,
                  workdir=workdir)


def _value_types(model: Any) -> tuple[dict[str, int], dict[str, Shape | None]]:
    """Element types and static shapes of the graph's values: declared ones, completed by ONNX shape
    inference when the graph declares fewer than its nodes compute (the dynamo exporter declares all)."""
    import onnx

    graph = model.graph
    declared = list(graph.input) + list(graph.value_info) + list(graph.output)
    computed = {out for node in graph.node for out in node.output if out}
    if not computed <= {value.name for value in declared}:
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
            declared = list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)
        except Exception:  # noqa: BLE001 - custom domains and broken graphs: keep what is declared
            pass
    elem_types: dict[str, int] = {}
    shapes: dict[str, Shape | None] = {}
    for value in declared:
        if not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type:
            elem_types[value.name] = tensor.elem_type
        if tensor.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or None
                                       for d in tensor.shape.dim)
    for init in graph.initializer:
        elem_types[init.name] = init.data_type
        shapes[init.name] = tuple(init.dims)
    return elem_types, shapes


def _topological(nodes: list[Any], available: set[str]) -> list[Any]:
    """The nodes in topological order: the file's own order when it is one (ONNX requires it, and it
    follows the exporter's execution order, which module matching relies on), else a stable sort."""
    known = set(available)
    for node in nodes:
        if any(name and name not in known for name in _node_reads(node)):
            break
        known.update(node.output)
    else:
        return nodes
    # Not sorted (hand-edited graphs): Kahn's algorithm, keeping the file's order among ready nodes.
    produced_by = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    waiting = [{name for name in _node_reads(node) if name in produced_by} for node in nodes]
    consumers: dict[int, list[int]] = {}
    for i, deps in enumerate(waiting):
        for name in deps:
            consumers.setdefault(produced_by[name], []).append(i)
    ready = sorted(i for i, deps in enumerate(waiting) if not deps)
    ordered: list[int] = []
    while ready:
        i = ready.pop(0)
        ordered.append(i)
        for j in consumers.get(i, []):
            waiting[j] -= set(nodes[i].output)
            if not waiting[j]:
                ready.append(j)
        ready.sort()
    return [nodes[i] for i in ordered]


def _node_reads(node: Any) -> set[str]:
    """Every value a node reads: its inputs and the outer-scope values its subgraphs (If/Loop bodies) use."""
    reads = set(node.input)
    for attr in node.attribute:
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            inner = {out for n in sub.node for out in n.output} | {i.name for i in sub.input} \
                | {i.name for i in sub.initializer}
            reads |= {name for n in sub.node for name in _node_reads(n)} - inner
    return reads


def _comparable_outputs(graph: _Graph) -> list[tuple[int, str]]:
    """(node index, value) for every top-level node output that may be a float tensor, in topological
    order. Constant nodes are left out: they have no input to go wrong on, and runtimes fold them."""
    return [(i, out) for i, node in enumerate(graph.nodes) if node.op_type != "Constant"
            for out in node.output if out and graph.is_float(out) is not False]


def _run_exposing(graph: _Graph, names: list[str], feeds: dict[str, np.ndarray], optimization: str,
                  providers: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run the graph with ONNX Runtime, the named intermediate values added as graph outputs."""
    import onnx
    import onnxruntime as ort

    outputs = graph.model.graph.output
    kept = len(outputs)
    declared = {value.name for value in outputs}
    for name in names:
        if name in declared:
            continue
        elem = graph.elem_types.get(name)
        # Without a known type, a ValueInfoProto with only the name: ORT infers the type itself.
        outputs.append(onnx.helper.make_tensor_value_info(name, elem, None) if elem else onnx.ValueInfoProto(name=name))
    try:
        serialized = graph.model.SerializeToString()
    finally:
        del outputs[kept:]  # the graph is shared by every batch: leave it as loaded
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    options.log_severity_level = 3
    session = _session(graph, serialized, options, providers or ["CPUExecutionProvider"])
    values = session.run(list(names), {name: feeds[name] for name in graph.inputs})
    return dict(zip(names, values))


def _session(graph: _Graph, serialized: bytes, options: Any, providers: list[str]) -> Any:
    """An ORT session of the serialized graph, its external data read from the graph's folder."""
    import onnxruntime as ort

    if not graph.has_external_data:
        return ort.InferenceSession(serialized, sess_options=options, providers=providers)
    if _version(ort.__version__) >= ORT_BYTES_WITH_EXTERNAL_DATA:
        # A model given as bytes has no folder: this is where ORT resolves the external data's locations.
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(graph.folder))
        return ort.InferenceSession(serialized, sess_options=options, providers=providers)
    # External data locations are relative to the model file: the copy must sit beside the data. The
    # session holds the weights once created, so the file is deleted straight away.
    with tempfile.NamedTemporaryFile(dir=graph.folder, prefix=".convcheck-localize-", suffix=".onnx",
                                     delete=False) as handle:
        handle.write(serialized)
    try:
        return ort.InferenceSession(handle.name, sess_options=options, providers=providers)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def _version(text: str) -> tuple[int, ...]:
    """(1, 21) from "1.21.0" or "1.21.0.dev20250101": the release numbers only."""
    numbers = []
    for part in text.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers)
