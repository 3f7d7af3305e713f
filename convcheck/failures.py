"""Turning a converter's or runtime's exception into a cell status with a one-line reason.

The user must learn *which op* broke a route, so the messages the frameworks actually print are
matched for the operator name. Patterns are data; add to them as new messages are met.
"""

from __future__ import annotations

import re

from convcheck.errors import CellFailure
from convcheck.types import Status

#: Messages that mean "the target does not implement this op" rather than "the runtime crashed".
#: Each pattern's first group, where present, is the op name.
UNSUPPORTED_PATTERNS: tuple[str, ...] = (
    r"No Op registered for (\w+)",
    r"Could not find an implementation for (\w+)",
    r"OpNotImplemented.*?[Oo]perator[s]?[: ]+\W*(\w+)",
    r"[Uu]nsupported (?:op|operator)[s]?[: ]+\W*([\w:.]+)",
    r"op \[?(\w+)\]? is not supported",
    r"Select TensorFlow op\(s\), including ([\w, ]+?), (?:is|are) not supported",
    r"NOT_IMPLEMENTED",
    # LiteRT interpreter without the Flex delegate, at allocate_tensors: "Select TensorFlow op(s), included
    # in the given model, is(are) not supported by this interpreter. ... Node number 0
    # (FlexTensorListReserve) failed to prepare." The op is named as TensorFlow names it (no "Flex").
    r"Select TensorFlow op\(s\)[\s\S]*?not supported by this interpreter[\s\S]*?\(Flex(\w+)\) failed to prepare",
    r"Select TensorFlow op\(s\)[\s\S]*?not supported by this interpreter",
    r"Encountered unresolved custom op: (?:Flex)?(\w+)",
    r"Didn't find op for builtin opcode '(\w+)'",
    # TVM Relax ONNX frontend, tvm.error.OpNotImplemented (the class name is not in str(exc)):
    # "The following operators are not supported for frontend ONNX: LSTM" (comma-separated if several).
    r"operators are not supported for frontend \w+: (\w+)",
    # TVM Relax from_exported_program: "Unsupported function types ['amax.default']".
    r"Unsupported function types \['([\w.:]+)'",
)
#: Messages in which a converter names the op it choked on (the status stays convert_error).
OP_IN_MESSAGE: tuple[str, ...] = (
    r"(aten::\w+(?:\.\w+)?)",
    r"(aten\.\w+(?:\.\w+)?)",
    r"ONNX export of operator (\w+)",
    r"[Oo]perator '?(\w+)'? is not",
)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(exc: BaseException) -> str:
    # Exporters colour their messages for terminals; results.json and reports want plain text.
    text = ANSI_ESCAPE.sub("", str(exc)).strip() or type(exc).__name__
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    line = f"{type(exc).__name__}: {line}" if not line.startswith(type(exc).__name__) else line
    return line[:400]


def find_op(text: str, patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip() if m.groups() and m.group(1) else None
    return None


def is_unsupported(text: str) -> bool:
    return any(re.search(p, text) for p in UNSUPPORTED_PATTERNS)


def classify(exc: BaseException, stage: str) -> CellFailure:
    """The CellFailure for an exception raised in `stage` (convert..., load, run, reference)."""
    if isinstance(exc, CellFailure):
        return exc
    text = str(exc)
    line = first_line(exc)
    if isinstance(exc, MemoryError):
        return CellFailure(Status.OOM.value, line, stage)
    if is_unsupported(text):
        op = find_op(text, UNSUPPORTED_PATTERNS)
        message = f"op {op} is not supported: {line}" if op else line
        return CellFailure(Status.UNSUPPORTED.value, message, stage, op)
    if stage.startswith("convert"):
        return CellFailure(Status.CONVERT_ERROR.value, line, stage, find_op(text, OP_IN_MESSAGE))
    return CellFailure(Status.RUNTIME_ERROR.value, line, stage, find_op(text, OP_IN_MESSAGE))
