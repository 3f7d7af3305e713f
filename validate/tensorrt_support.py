"""Static check of an ONNX graph against TensorRT's published ONNX operator support list.

TensorRT needs an NVIDIA GPU and cannot be installed everywhere, but a user still wants to know,
before renting one, whether their ONNX model has a chance: this reads the graph with `onnx` only
and compares every node, subgraph bodies (If/Loop/Scan) and model-local functions included, with
`data/tensorrt_onnx_ops.json`, a transcription of onnx-tensorrt's `docs/operators.md` for one
TensorRT release. It is a screen, not a proof: TensorRT's parser is the final word (restrictions on
attributes, shapes and types are reported as notes, not checked).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

#: Node domains that mean the standard ONNX operator set.
DEFAULT_DOMAINS = ("", "ai.onnx")
DATA_FILE = "data/tensorrt_onnx_ops.json"


@lru_cache(maxsize=1)
def load_support_list() -> dict[str, Any]:
    """The shipped operator list (installed as package data of `convcheck.validate`)."""
    text = resources.files("convcheck.validate").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def check_onnx_graph(path: Path) -> dict[str, Any]:
    """Which of the model's ops TensorRT's published list supports, restricts or lacks.

    Weights are not loaded (`load_external_data=False`): only the graph structure is needed, so a
    multi-GB model is checked in the time it takes to read its protobuf.
    """
    import onnx

    support = load_support_list()
    model = onnx.load(str(path), load_external_data=False)
    functions = {(f.domain, f.name): f for f in model.functions}
    ops: Counter[str] = Counter()
    custom: set[str] = set()
    _walk(model.graph.node, functions, ops, custom, calling=())

    table: dict[str, dict[str, Any]] = support["ops"]
    standard = [op for op in ops if "::" not in op]
    unsupported = sorted(op for op in standard if not table.get(op, {}).get("supported", False))
    restricted = {op: table[op]["restrictions"] for op in sorted(standard)
                  if op not in unsupported and table[op].get("restrictions")}
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    opset_ok = opset is not None and support["min_opset"] <= opset <= support["max_opset"]
    report: dict[str, Any] = {
        "ops": dict(sorted(ops.items())),
        "unsupported": unsupported,
        "restricted": restricted,
        "opset": opset,
        "opset_supported": opset_ok,
        "custom_domains": sorted(custom),
        "list": {k: support[k] for k in ("source", "tensorrt_version", "retrieved")},
    }
    report["verdict"] = _verdict(report, support)
    return report


def _walk(nodes: Any, functions: dict[tuple[str, str], Any], ops: Counter[str], custom: set[str],
          calling: tuple[tuple[str, str], ...]) -> None:
    """Count every node, descending into graph attributes and model-local function bodies.

    A call to a local function is not an op TensorRT must know: its parser inlines the body (or uses
    a plugin of that name), so the body's ops are what count. `calling` guards against recursion.
    """
    for node in nodes:
        key = (node.domain, node.op_type)
        if key in functions and key not in calling:
            _walk(functions[key].node, functions, ops, custom, calling + (key,))
            continue
        if node.domain in DEFAULT_DOMAINS:
            ops[node.op_type] += 1
        else:
            ops[f"{node.domain}::{node.op_type}"] += 1
            custom.add(node.domain)
        for attr in node.attribute:
            # AttributeProto.g (GRAPH) holds If/Loop/Scan bodies; .graphs (GRAPHS) is the list form.
            if attr.HasField("g"):
                _walk(attr.g.node, functions, ops, custom, calling)
            for sub in attr.graphs:
                _walk(sub.node, functions, ops, custom, calling)


def _verdict(report: dict[str, Any], support: dict[str, Any]) -> str:
    """One sentence a user can act on."""
    version = f"TensorRT {support['tensorrt_version']}"
    span = f"{support['min_opset']}-{support['max_opset']}"
    problems = []
    if report["unsupported"]:
        problems.append(f"{', '.join(report['unsupported'])} "
                        f"{'is' if len(report['unsupported']) == 1 else 'are'} not supported by its ONNX parser")
    if report["custom_domains"]:
        problems.append(f"ops in custom domain(s) {', '.join(report['custom_domains'])} need TensorRT plugins")
    if not report["opset_supported"]:
        problems.append(f"opset {report['opset']} is outside the supported range {span}")
    if problems:
        return f"{version} is likely to reject this model: {'; '.join(problems)}."
    n = len(report["ops"])
    sentence = (f"All {n} op types are in {version}'s ONNX support list and opset {report['opset']} "
                f"is within {span}")
    if report["restricted"]:
        count = len(report["restricted"])
        sentence += (f"; {count} {'carries' if count == 1 else 'carry'} restrictions this static check cannot verify "
                     f"({', '.join(report['restricted'])})")
    return sentence + "."
