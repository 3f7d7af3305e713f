"""Turning a converter's or runtime's exception into a cell status with a one-line reason.

The user must learn *which op* broke a route and *why*, so the messages the frameworks actually
print are matched for the operator name and the line that says what went wrong. The frameworks bury
that line: OpenVINO under `Check 'false' failed at .../unconverted_ops_report.cpp:151:` banners, TVM
under C++ backtraces, the TFLite converter under MLIR locations and notes, ONNX Runtime behind its
status code and a C++ signature. So:

- `RULES` is one table, per tool, of the messages met so far: a pattern (its group `op`, where
  present, names the operator), whether it means "the target does not implement this" (`unsupported`)
  or a converter/runtime error (status by stage), and which text makes the one-line message. Rules
  are data; add to them as new messages are met (with the real text as a test fixture).
- Where no rule matches, or the rule says `{first}`, the message is the first *informative* line of
  the text: `BANNERS` are the lines that never are (file:line banners, tracebacks, frames, notes).
- The whole cleaned text (ANSI stripped, capped) goes to `CellFailure.detail`, for the cell's log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convcheck.errors import REPORT_BUGS, CellFailure, ConvcheckBug
from convcheck.types import Status

UNSUPPORTED = Status.UNSUPPORTED.value

MESSAGE_LIMIT = 400  # characters of CellFailure.message
DETAIL_LINES = 200  # lines of CellFailure.detail (head and tail kept, the middle elided)
DETAIL_LINE_CHARS = 2000  # an MLIR dump or an ONNX Runtime node list can be one enormous line
MATCH_CHARS = 200_000  # rules read at most this much of a text (its head and tail): a dump can be megabytes


@dataclass(frozen=True)
class Rule:
    """One known message. `pattern` is searched (re.MULTILINE) in the cleaned text of the exception
    and its causes; its group `op`, where present, is the operator.

    `status`: `unsupported` (the target lacks the op), or None: `convert_error` at a convert stage,
    `runtime_error` elsewhere; the first `unsupported` rule that matches wins, else the first other
    one. `message`: the parts of the one-line message, joined by ": " (by a space after a part that
    ends a sentence); a part whose placeholders are all empty is dropped. Placeholders: the pattern's named groups, `{match}`
    (the matched text), `{line}` (the line the match starts on), `{first}` (the first informative
    line of the text), `{reasons}` (each match of `reasons`, as "label: first informative line of
    body", joined by "; ").
    """

    tool: str
    pattern: str
    status: str | None = None
    message: tuple[str, ...] = ("{first}",)
    reasons: str | None = None


# OpenVINO's unconverted-ops report lists each op that failed with the exception its translator threw:
# "-- Conv-15 with a message:\n[ONNX Frontend] Conversion failed for Conv-15\n...\nThe input data
# tensor's rank has to be known (static)\n\n-- ReduceMean-15 with a message: ...\n\nSummary:\n..."
_OV_REASONS = r"^-- (?P<label>\S+) with a message:\n(?P<body>[\s\S]*?)(?=^-- |^Summary:|\Z)"
# The TFLite converter's closing diagnostic: "Custom ops: BesselI0, Igamma" / "TF Select ops: TensorListReserve, ..."
_TFLITE_REASONS = r"^(?P<label>Custom ops|TF Select ops): (?P<body>.+)$"

RULES: tuple[Rule, ...] = (
    # -- OpenVINO: ov.convert_model (ONNX, torch, TF front ends), read_model, compile_model ------------
    # "-- No conversion rule found for operations: com.example.FooBar" / "...: FooBar-17" (an op the
    # front end lacks; "-17" is the opset OpenVINO appends) / "...: aten::special_zeta" (torch).
    Rule("openvino", r"No conversion rule found for operations?: (?P<op>[\w.:]+?)(?:-\d+)?(?:,|\s*$)",
         UNSUPPORTED, ("{line}", "{reasons}"), _OV_REASONS),
    # "-- Conversion is failed for: Conv-15, ReduceMean-15": the op's translator threw (the reason is
    # in the detailed log above the summary: a rank it cannot know, an input type it does not take).
    Rule("openvino", r"Conversion is failed for: (?P<op>[\w.:]+?)(?:-\d+)?(?:,|\s*$)",
         UNSUPPORTED, ("{line}", "{reasons}"), _OV_REASONS),
    # compile_model: "Unexpected: CPU plug-in doesn't support Parameter operation with dynamic rank."
    Rule("openvino", r"plug-in doesn't support (?P<op>\w+) operation", UNSUPPORTED, ("{line}",)),
    # -- TVM: Relax ONNX and ExportedProgram front ends, build ------------------------------------------
    # tvm.error.OpNotImplemented (the class name is not in str(exc)): "The following operators are not
    # supported for frontend ONNX: LSTM" (comma-separated if several).
    Rule("tvm", r"operators are not supported for frontend \w+: (?P<op>[\w.]+)", UNSUPPORTED, ("{line}",)),
    Rule("tvm", r"OpNotImplemented.*?[Oo]perator[s]?[: ]+\W*(?P<op>\w+)", UNSUPPORTED, ("{line}",)),
    # from_exported_program: "Unsupported function types ['amax.default']".
    Rule("tvm", r"Unsupported function types \['(?P<op>[\w.:]+)'", UNSUPPORTED, ("{line}",)),
    # VM codegen met an op no pass lowered: "CodeGenVM cannot handle this intrinsic now:\nOp(relax.nn.conv2d)"
    # (TVM < 0.20) / "CodeGenVM cannot emit this Relax operator directly. ...\nOffending call:\nR.isnan(x)".
    Rule("tvm", r"CodeGenVM cannot [\s\S]{0,1000}?(?:Op\(relax\.|Offending call:\s*R\.)(?P<op>[\w.]+)",
         None, ("{first}", "offending op {op}")),
    # The ONNX front end names the op on stdout, not in the exception ("Error converting operator
    # MatMul, with inputs: ..."): where a converter appends what it printed, it is read here.
    Rule("tvm", r"Error converting operator (?P<op>\w+)", None, ("{first}",)),
    Rule("tvm", r"In (?:function )?relax\.op\.(?P<op>[\w.]+)\(", None, ("{first}",)),
    # -- IREE (iree-compile on iree-turbine's torch dialect) -----------------------------------------------
    # An aten op with no torch-to-linalg lowering stays a generic op: "failed to legalize operation
    # 'torch.operator' that was explicitly marked illegal: %29:3 = "torch.operator"(...) <{name =
    # "torch.aten.lstm.input"}>"; an op lowered only in part leaves its operands: "failed to legalize
    # operation 'torch.constant.float': %31 = ..." (upsample_bilinear2d.vec's scale factors).
    Rule("iree", r"failed to legalize operation 'torch\.operator' that was explicitly marked illegal:[^\n]{0,3000}?"
                 r"name = \"torch\.(?P<op>[\w.]+)\"", UNSUPPORTED, ("iree-compile has no lowering for {op}",)),
    Rule("iree", r"failed to legalize operation '(?P<op>torch\.[\w.]+)'", UNSUPPORTED,
         ("iree-compile could not lower {op} (torch dialect)",)),
    # -- ONNX Runtime -----------------------------------------------------------------------------------
    # "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for Add(1) node with name ''"
    Rule("ort", r"Could not find an implementation for (?P<op>\w+)", UNSUPPORTED, ("{line}",)),
    # A custom-domain op without its library: "Fatal error: com.example:FooBar(-1) is not a registered function/op"
    Rule("ort", r"(?P<op>[\w.]{1,200}:\w{1,200})\(-?\d+\) is not a registered function/op", UNSUPPORTED,
         ("{line}",)),
    # ORT's INVALID_GRAPH and onnx.checker: "No Op registered for FooBar with domain_version of 17"
    Rule("onnx", r"No Op registered for (?P<op>\w+)", UNSUPPORTED, ("{line}",)),
    # -- LiteRT / TFLite: the converter (ConverterError with MLIR diagnostics) and the interpreter ------
    # "<loc>: error: 'tf.Igamma' op is neither a custom op nor a flex op" ... "Custom ops: Igamma" /
    # "TF Select ops: TensorListReserve, TensorListSetItem, TensorListStack".
    Rule("tflite", r"'tf\.(?P<op>\w+)' op is neither a custom op nor a flex op", UNSUPPORTED,
         ("{match}", "{reasons}"), _TFLITE_REASONS),
    Rule("tflite", r"failed to legalize operation '(?:tf|tfl|mhlo|stablehlo|chlo)\.(?P<op>\w+)'",
         UNSUPPORTED, ("{match}", "{reasons}"), _TFLITE_REASONS),
    Rule("tflite", r"Select TensorFlow op\(s\), including (?P<op>[\w, ]+?), (?:is|are) not supported",
         UNSUPPORTED, ("{line}",)),
    # LiteRT interpreter without the Flex delegate, at allocate_tensors: "Select TensorFlow op(s), included
    # in the given model, is(are) not supported by this interpreter. ... Node number 0
    # (FlexTensorListReserve) failed to prepare." The op is named as TensorFlow names it (no "Flex").
    # (Bounded gaps, here and below: an unbounded lazy gap is quadratic on a megabyte text.)
    Rule("tflite", r"Select TensorFlow op\(s\)[^\n]{0,300}?not supported by this interpreter[\s\S]{0,3000}?"
                   r"\(Flex(?P<op>\w+)\) failed to prepare", UNSUPPORTED, ("{first}",)),
    Rule("tflite", r"Select TensorFlow op\(s\)[^\n]{0,300}?not supported by this interpreter", UNSUPPORTED,
         ("{first}",)),
    Rule("tflite", r"Encountered unresolved custom op: (?:Flex)?(?P<op>\w+)", UNSUPPORTED, ("{line}",)),
    Rule("tflite", r"Didn't find op for builtin opcode '(?P<op>\w+)'", UNSUPPORTED, ("{line}",)),
    # -- coremltools --------------------------------------------------------------------------------------
    # "PyTorch convert function for op 'special_zeta' not implemented." (TorchScript front end),
    # "Conversion for TF op 'Igamma' not implemented." (TensorFlow), "Unsupported fx node lstm, kind
    # lstm.input" (torch.export front end).
    Rule("coreml", r"PyTorch convert function for op '(?P<op>[^']+)' not implemented", UNSUPPORTED, ("{line}",)),
    Rule("coreml", r"Conversion for TF op '(?P<op>[^']+)' not implemented", UNSUPPORTED, ("{line}",)),
    Rule("coreml", r"Unsupported fx node (?P<op>[\w.]+)", UNSUPPORTED, ("{line}",)),
    # -- tf2onnx: an op it only logs as not converted (the hop raises it), and its summary line -------------
    # "Tensorflow op [functional_1/y_1/Gelu/Erfc: Erfc] is not supported", "Unsupported ops: Counter({'Erfc': 1})"
    Rule("tf2onnx", r"op \[[^\]]*?: (?P<op>\w+)\] is not supported", UNSUPPORTED, ("{line}",)),
    Rule("tf2onnx", r"op \[?(?P<op>\w+)\]? is not supported", UNSUPPORTED, ("{line}",)),
    Rule("tf2onnx", r"Unsupported ops: Counter\(\{'(?P<op>\w+)'", UNSUPPORTED, ("{line}",)),
    # -- anything -------------------------------------------------------------------------------------------
    Rule("any", r"[Uu]nsupported (?:op|operator)[s]?[: ]+\W*(?P<op>[\w:.]+)", UNSUPPORTED, ("{first}",)),
    Rule("any", r"NOT_IMPLEMENTED", UNSUPPORTED, ("{first}",)),
    # -- op named, status by stage --------------------------------------------------------------------------
    # ORT: "Node () Op (MatMul) [ShapeInferenceError] Incompatible dimensions for matrix multiplication",
    # "Type Error: Type 'tensor(int32)' of input parameter (x) of operator (Sin) in node () is invalid.",
    # "Non-zero status code returned while running Reshape node. Name:'' Status Message: ..."
    Rule("ort", r"Op \((?P<op>\w+)\) \[ShapeInferenceError\]"),
    Rule("ort", r"of operator \((?P<op>\w+)\) in node"),
    Rule("ort", r"while running (?P<op>\w+) node"),
    # onnx.checker (tf2onnx's output, a user's file): "...\n\n==> Context: Bad node spec for node. Name: x OpType: RandomUniform"
    Rule("onnx", r"Bad node spec for node\. Name: .*? OpType: (?P<op>\w+)"),
    # coremltools' type inference: "Op 'linear_0' (linear op): Size of the last dimension of x, ..."
    Rule("coreml", r"^Op '[^']*' \((?P<op>\w+) op\):"),
    # OpenVINO, a node that fails validation outside the unconverted-ops report.
    Rule("openvino", r"While validating ONNX node '<Node\((?P<op>\w+)\)"),
    # tf2onnx: "make_sure failure: RandomUniform node with non-const shape requires opset >= 9"
    Rule("tf2onnx", r"make_sure failure: (?P<op>[A-Z]\w+) node "),
    # torch.onnx: "Unsupported: ONNX export of operator aten::frobnicate, opset 17." stays a convert_error.
    Rule("torch", r"(?P<op>aten::\w+(?:\.\w+)?)"),
    Rule("torch", r"(?P<op>aten\.\w+(?:\.\w+)?)"),
    Rule("torch", r"ONNX export of operator (?P<op>\w+)"),
    Rule("any", r"[Oo]perator '?(?P<op>\w+)'? is not"),
)

#: Lines that never say what went wrong (matched against the stripped line).
BANNERS: tuple[str, ...] = (
    r"^$",
    r"^[\W_]*$",  # "^", "^^^^^", "}", "---------"
    r"^Traceback \(most recent call last\):?$",
    r"^[\w.]*(?:Error|Exception|Failure): Traceback \(most recent call last\):?$",
    r"^[\w.]*(?:Error|Exception|Failure):$",  # "TVMError:" alone, its text on later lines
    r'^File "[^"]*", line \d+',  # Python frames, and TVM's C++ ones
    r"^\d+: \S",  # C++ frames: "  0: tvm::relax::..."
    r"^at \S+:\d+$",  # "        at /src/relax/op.cc:620", under a frame
    r"^\[bt\]",  # dmlc's "[bt] (0) /lib/libtvm.so(...)"
    r"^Stack trace:?$",
    r"Check '.*' failed at \S+:\d+:?$",  # OpenVINO: "Check 'false' failed at src/.../report.cpp:151:"
    r"^Exception from \S+:\d+:?$",  # OpenVINO: "Exception from src/inference/src/cpp/core.cpp:84:"
    r"^FrontEnd API failed with \w+:?$",
    r"^Model wasn't fully converted\.?(?: Failed operations detailed log:)?$",
    r"^Summary:$",
    r"^-- \S+ with a message:$",
    r"^\[ONNX Frontend\] Conversion failed for \S+$",
    r"^While validating (?:ONNX )?node '.*':$",
    r"^An error occurred during the execution of TVM\.?$",
    r"^For more information, please see: ",
    r"^# Metadata omitted",
    r"^(?:\S+:\d+:\d+|<unknown>:0): note: ",  # MLIR notes ("called from", "see current operation")
    r"^Details:$",
)

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_BANNERS = tuple(re.compile(b) for b in BANNERS)
#: Noise inside an informative line: MLIR locations, ORT's C++ location and signature, list bullets.
_LINE_NOISE = (
    re.compile(r"^-- "),
    re.compile(r"^(?:\S+:\d+:\d+|<unknown>:0): (?:error|warning): "),
    re.compile(r"^Check failed: \(.*?\) is false: (?=\S)"),
    re.compile(r"\S+\.(?:h|hpp|cc|cpp):\d+ [\w:~<>]+\([^()]*\) "),
    re.compile(r"Load model from .*? failed:"),  # ORT: the path is the artifact's, known to the cell
)
#: Text a framework inserts mid-sentence (TVM prints IR inline, with a note after each constant).
_INLINE_NOISE = (re.compile(r"\n# Metadata omitted\. Use show_meta=True in script\(\) method to show it\.\n?"),)


def clean_text(text: str) -> str:
    """ANSI colour codes out (exporters colour for terminals), carriage-return progress bars collapsed."""
    text = ANSI_ESCAPE.sub("", text)
    return "\n".join(ln.rsplit("\r", 1)[-1].rstrip() for ln in text.replace("\r\n", "\n").split("\n")).strip()


def _is_banner(line: str) -> bool:
    return any(b.search(line) for b in _BANNERS)


def _tidy(line: str) -> str:
    for noise in _LINE_NOISE:
        line = noise.sub("", line)
    return " ".join(line.split())


def informative_lines(text: str) -> list[str]:
    """The lines of `text` that say something, tidied, in order: no banners, no traceback frames, no
    source line a Python frame echoes."""
    out: list[str] = []
    after_frame = False
    for noise in _INLINE_NOISE:
        text = noise.sub(" ", text)
    for raw in text.splitlines():
        line = raw.strip()[:DETAIL_LINE_CHARS]  # a message line is at most 400 characters anyway
        if after_frame and raw[:1].isspace() and not line.startswith("File "):
            after_frame = False  # the source line (and its ^^^^ marker) a frame echoes
            continue
        after_frame = bool(re.match(r'File "[^"]*", line \d+', line))
        if _is_banner(line):
            continue
        line = _tidy(line)
        if line:
            out.append(line)
    return out


def headline(text: str) -> str:
    """The first informative line; one that only leads in ("...cannot handle this intrinsic now:")
    takes the next one with it."""
    lines = informative_lines(text)
    if not lines:
        return ""
    line = lines[0]
    if line.endswith(":") and len(lines) > 1:
        line = f"{line} {lines[1]}"
    return line


def _with_type(exc: BaseException, line: str) -> str:
    name = type(exc).__name__
    return line if line.startswith(name) else f"{name}: {line}"


def first_line(exc: BaseException) -> str:
    """`TypeName: the first informative line`, at most 400 characters."""
    line = headline(_bounded(clean_text(str(exc)))) or type(exc).__name__  # notes are detail, not the headline
    return _clip(_with_type(exc, line))


def _clip(line: str, limit: int = MESSAGE_LIMIT) -> str:
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, then what caused it (explicitly, or while handling), without cycles."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not s for s in seen) and len(seen) < 5:
        seen.append(cur)
        cur = cur.__cause__ if cur.__cause__ is not None else (None if cur.__suppress_context__ else cur.__context__)
    return seen


def exception_text(exc: BaseException) -> str:
    """str(exc), cleaned, with its notes (`add_note`: where a hop attaches what the framework printed,
    e.g. TVM's "Error converting operator MatMul, with inputs: ..." on stdout)."""
    notes = [n for n in getattr(exc, "__notes__", None) or [] if isinstance(n, str)]
    return clean_text(_bounded("\n".join([str(exc), *notes])))


def _bounded(text: str) -> str:
    """The head and the tail of a text longer than MATCH_CHARS."""
    if len(text) <= MATCH_CHARS:
        return text
    return f"{text[: MATCH_CHARS // 2]}\n…\n{text[-MATCH_CHARS // 2:]}"


def full_text(exc: BaseException) -> str:
    """The exception's whole text and its causes', cleaned, each headed by its type."""
    parts = []
    for i, e in enumerate(_chain(exc)):
        body = exception_text(e) or "(no message)"
        head = f"{type(e).__module__}.{type(e).__qualname__}".removeprefix("builtins.")
        parts.append(("" if i == 0 else "caused by ") + f"{head}: {body}")
    return "\n\n".join(parts)


def cap_lines(text: str, limit: int = DETAIL_LINES) -> str:
    """At most `limit` lines (the head and the tail, which is where a backtrace's message is), each
    at most DETAIL_LINE_CHARS."""
    lines = [ln if len(ln) <= DETAIL_LINE_CHARS else ln[:DETAIL_LINE_CHARS] + " …" for ln in text.splitlines()]
    if len(lines) > limit:
        tail = limit // 4
        head = limit - tail - 1
        lines = lines[:head] + [f"… {len(lines) - head - tail} lines omitted …"] + lines[-tail:]
    return "\n".join(lines)


def _render(rule: Rule, m: re.Match[str], text: str) -> str:
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.start())
    fields = {k: (v or "").strip() for k, v in m.groupdict().items()}
    fields["match"] = _tidy(m.group(0))
    fields["line"] = _tidy(text[start: end if end >= 0 else len(text)])
    fields["first"] = headline(text)
    reasons = []
    if rule.reasons:
        for r in re.finditer(rule.reasons, text, re.MULTILINE):
            label, body = r.group("label"), r.group("body")
            said = informative_lines(body)
            piece = f"{label}: {said[0] if said else body.strip()}"
            if piece not in reasons:
                reasons.append(piece)
    fields["reasons"] = "; ".join(reasons)
    parts: list[str] = []
    for part in rule.message:
        names = re.findall(r"\{(\w+)\}", part)
        if names and all(not fields.get(n) for n in names):
            continue
        rendered = part.format_map({n: fields.get(n, "") for n in names})
        if rendered and rendered not in parts:
            parts.append(rendered)
    said = ""
    for part in parts:  # ": " between parts, a space after a part that ends a sentence
        said = part if not said else f"{said}{' ' if said.endswith(('.', ':', ';')) else ': '}{part}"
    return said or fields["first"]


def match_rule(text: str) -> tuple[Rule, re.Match[str]] | None:
    """The first rule meaning `unsupported` that matches, else the first other rule that does."""
    ordered = [r for r in RULES if r.status == UNSUPPORTED] + [r for r in RULES if r.status != UNSUPPORTED]
    for rule in ordered:
        m = re.search(rule.pattern, text, re.MULTILINE)
        if m:
            return rule, m
    return None


# Kept for callers of the old API: the patterns, by kind, as the table holds them.
UNSUPPORTED_PATTERNS: tuple[str, ...] = tuple(r.pattern for r in RULES if r.status == UNSUPPORTED)
OP_IN_MESSAGE: tuple[str, ...] = tuple(r.pattern for r in RULES if r.status != UNSUPPORTED)


def find_op(text: str, patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        m = re.search(pattern, text, re.MULTILINE)
        if m:
            op = m.groupdict().get("op") or (m.group(1) if m.groups() else None)
            return op.strip() if op else None
    return None


def is_unsupported(text: str) -> bool:
    return any(re.search(p, text, re.MULTILINE) for p in UNSUPPORTED_PATTERNS)


def classify(exc: BaseException, stage: str) -> CellFailure:
    """The CellFailure for an exception raised in `stage` (convert..., load, run, reference).

    Its `message` is one line (≤ 400 characters) naming the op and the reason; its `detail` is the
    exception's whole cleaned text and its causes' (≤ 200 lines), for the cell's log.
    """
    if isinstance(exc, ConvcheckBug):
        return CellFailure(Status.INTERNAL_ERROR.value, f"internal error in convcheck ({first_line(exc)}); {REPORT_BUGS}",
                           f"internal:{stage}", detail=cap_lines(full_text(exc)))
    if isinstance(exc, CellFailure):
        # A hop that raised its own verdict `from` the framework's exception: keep that text too.
        causes = _chain(exc)[1:]
        if causes and not getattr(exc, "detail", ""):
            exc.detail = cap_lines(full_text(causes[0]))
        return exc
    detail = cap_lines(full_text(exc))
    own = exception_text(exc)
    if isinstance(exc, MemoryError):
        return CellFailure(Status.OOM.value, first_line(exc), stage, detail=detail)
    # Rules read the whole chain (a wrapper's message may hide the framework's); the headline prefers
    # the exception's own text.
    texts = [own] + [exception_text(e) for e in _chain(exc)[1:]]
    found = None
    for text in texts:
        found = match_rule(text)
        if found:
            break
    if found is None:
        return CellFailure(_by_stage(stage), first_line(exc), stage, None, detail=detail)
    rule, m = found
    op = (m.groupdict().get("op") or "").strip() or None
    said = _render(rule, m, text) or type(exc).__name__
    line = _with_type(exc, said) if text is own else f"{type(exc).__name__}: {headline(own) or '?'}: {said}"
    if rule.status == UNSUPPORTED:
        return CellFailure(UNSUPPORTED, _clip(f"op {op} is not supported: {line}" if op else line), stage, op,
                           detail=detail)
    return CellFailure(_by_stage(stage), _clip(line), stage, op, detail=detail)


def _by_stage(stage: str) -> str:
    return Status.CONVERT_ERROR.value if stage.startswith("convert") else Status.RUNTIME_ERROR.value
