"""What every tf2onnx hop (from Keras, from a SavedModel, from a .tflite file) needs.

tf2onnx does not always fail loudly: on an op it cannot convert (Keras' exact GELU lowers to `Erfc`)
it only LOGS "op [...Erfc] is not supported" and writes a model that ONNX Runtime later rejects. So
each hop runs tf2onnx under `captured_log`, then `check_converted` turns such lines into an
`unsupported` status naming the op and runs `onnx.checker`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convcheck.converter import ConvertOptions
from convcheck.errors import CellFailure
from convcheck.types import Status


@dataclass
class Tf2OnnxOptions(ConvertOptions):
    opset: int | None = 17  # tf2onnx 1.17's most tested opset


class captured_log:
    """Collect a library's log records (tf2onnx reports unsupported ops only there)."""

    def __init__(self, logger: str = "tf2onnx") -> None:
        self.logger = logging.getLogger(logger)
        self.lines: list[str] = []

    def __enter__(self) -> list[str]:
        outer = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                outer.lines.append(f"{record.levelname}: {record.getMessage()}")

        self.handler = _Handler(level=logging.INFO)
        self.logger.addHandler(self.handler)
        return self.lines

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)


def check_converted(lines: list[str], path: Path, stage: str) -> None:
    """Raise `unsupported` for the ops tf2onnx logged as not converted, then run onnx.checker."""
    import onnx

    # e.g. "Tensorflow op [functional_1/y_1/Gelu/Erfc: Erfc] is not supported"
    not_supported = sorted({m.group(1) for ln in lines
                            if (m := re.search(r"op \[[^\]]*?: (\w+)\] is not supported", ln))})
    if not_supported:
        raise CellFailure(Status.UNSUPPORTED.value,
                          f"tf2onnx cannot convert op(s) {', '.join(not_supported)} and wrote an invalid model",
                          stage, not_supported[0])
    onnx.checker.check_model(str(path))


def rename_graph_io(proto: Any, inputs: dict[str, str], outputs: dict[str, str], path: Path) -> None:
    """Rename graph inputs/outputs (old -> new) everywhere they are used, and save the model.

    tf2onnx names tensors after TF's (`serving_default_x:0`, `StatefulPartitionedCall:1`); the routes
    feed and compare by the model's declared names."""
    import onnx

    mapping = {old: new for old, new in {**inputs, **outputs}.items() if old != new}
    if not mapping:
        return
    graph = proto.graph
    for node in graph.node:
        node.input[:] = [mapping.get(i, i) for i in node.input]
        node.output[:] = [mapping.get(o, o) for o in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        value.name = mapping.get(value.name, value.name)
    onnx.save(proto, str(path))


def rename_outputs_in_order(proto: Any, names: list[str], path: Path) -> None:
    """Give the graph outputs the declared names, in order (when their count agrees)."""
    current = [o.name for o in proto.graph.output]
    if current != names and len(current) == len(names):
        rename_graph_io(proto, {}, dict(zip(current, names)), path)
