"""Execute a Core ML ML program (.mlpackage) op by op in numpy: its semantics, off macOS.

coremltools converts on Linux but cannot predict there. The program it writes is readable anywhere:
coremltools' own MIL loader (`milproto.load`) rebuilds it as MIL operations with every weight read
and every type inferred. This module walks the main function's block in order and computes each op:
- with convcheck's reference kernel where it has one (convcheck.validate.mil.kernels: the ops
  coremltools gives no `value_inference`, and those whose value_inference would accumulate in fp16);
- otherwise with coremltools' own `value_inference()`, the Python definition of the op's semantics
  that its constant folding uses, run on the actual input values;
- an op with neither raises `UnsupportedMilOp` naming it: never skipped.

Precision: every op's result is cast to the dtype the program declares for it, so an fp16 program
computes in fp16 where its ops say so (the casts coremltools inserts are executed like any op).
Kernels may accumulate wider before that rounding (see kernels.py).

What this is not: Apple's runtime. Its kernels (BNNS, Metal, the Neural Engine) may differ from this
reference in the last bits, and in fp16 by more; a pass here says the program computes the source's
function, not that a device will. Its latency is not a Core ML figure.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from convcheck.errors import ConvcheckBug
from convcheck.validate.mil.kernels import KERNELS

#: MIL dtype names (coremltools `types.builtin_to_string`) -> numpy.
NUMPY_DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8, "uint8": np.uint8,
                "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


class UnsupportedMilOp(NotImplementedError):
    """An op this executor has no kernel for (and coremltools no value_inference)."""

    def __init__(self, op_type: str, name: str) -> None:
        super().__init__(f"the MIL executor has no kernel for op {op_type!r} (op {name})")
        self.op_type = op_type
        self.name = name


@dataclass
class Step:
    """One executed op: what the localiser compares."""

    op_type: str
    name: str
    outputs: list[str]
    inputs: list[str]  # non-const variables it read
    weights: list[str]  # names of the const tensors it read (coremltools keeps source parameter names)


@dataclass
class MilProgram:
    """A loaded ML program: call `run(feeds)`."""

    path: Path
    function: Any
    input_names: list[str]  # the model's feature names, in order
    input_dtypes: dict[str, Any]
    output_names: list[str]  # feature names
    output_vars: list[str]  # the MIL variables the features are
    consts: dict[str, Any] = field(default_factory=dict)
    #: How each op type is computed here: "kernel" (convcheck's) or "value_inference" (coremltools').
    implementations: dict[str, str] = field(default_factory=dict)

    def run(self, feeds: dict[str, np.ndarray], keep: Callable[[Step, list[Any]], None] | None = None
            ) -> dict[str, np.ndarray]:
        """The program's outputs for `feeds` (keyed by feature name; cast to the declared input types).
        `keep(step, values)` is called after every op with its outputs, for localisation."""
        env: dict[str, Any] = dict(self.consts)
        for name in self.function.inputs:
            env[name] = np.asarray(feeds[name]).astype(self.input_dtypes[name], copy=False)
        _run_block(self.function, env, keep, self.consts)
        return {feature: np.asarray(env[var]) for feature, var in zip(self.output_names, self.output_vars)}


def read_program(package: Path, spec: Any = None) -> Any:
    """The package's program rebuilt by coremltools' MIL loader (an internal API): every op re-created,
    so its input types are re-checked and its output types re-inferred, and every weight is read.
    `spec`: the package's already-loaded model spec, if the caller has it."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = spec if spec is not None else ct.utils.load_spec(str(package))
    weights = ct.models.MLModel(str(package), skip_model_load=True).weights_dir
    with _quiet():
        return load(spec, spec.specificationVersion, weights)


#: The last program loaded, by its package's files (path, size, mtime of each): a cell loads its package
#: for the static check, the run and a localisation, and a full-size program takes seconds to rebuild.
_LAST: tuple[Any, MilProgram] | None = None


def _package_state(package: Path) -> tuple[Any, ...]:
    files = sorted(f for f in Path(package).rglob("*") if f.is_file())
    return (str(Path(package).resolve()),) + tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)


def load_program(package: Path) -> MilProgram:
    """Load the .mlpackage's main function with coremltools' MIL loader, its constants evaluated (the
    same package, unchanged on disk, is loaded once)."""
    global _LAST
    state = _package_state(package)
    if _LAST is not None and _LAST[0] == state:
        return _LAST[1]
    found = _load_program(package)
    _LAST = (state, found)
    return found


def _load_program(package: Path) -> MilProgram:
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    if spec.WhichOneof("Type") != "mlProgram":
        raise ValueError(f"{package.name} is a {spec.WhichOneof('Type')}, not an ML program: only mlprogram "
                         "packages can be executed by the MIL executor")
    function = read_program(package, spec).functions["main"]
    features_in = [i.name for i in spec.description.input]
    dtypes = {name: _numpy_dtype(var.dtype) for name, var in function.inputs.items()}
    found = MilProgram(path=package, function=function, input_names=features_in, input_dtypes=dtypes,
                       output_names=[o.name for o in spec.description.output],
                       output_vars=[v.name for v in function.outputs])
    # Every constant, nested blocks' included, is evaluated once here: execution only reads them.
    for op in _walk(function):
        if _is_const(op):
            for out in op.outputs:
                value = out.val if op.op_type == "const" else _materialize(op, out)
                found.consts[out.name] = _as_value(value, out.dtype)
        elif op.op_type not in found.implementations:
            found.implementations[op.op_type] = _how(op)
    return found


def unsupported_ops(program: MilProgram) -> list[str]:
    return sorted(t for t, how in program.implementations.items() if how == "none")


# -- execution ---------------------------------------------------------------------------------------
_CONTROL = {"cond", "while_loop"}


def _run_block(block: Any, env: dict[str, Any], keep: Callable[[Step, list[Any]], None] | None,
               consts: dict[str, Any]) -> None:
    for op in block.operations:
        if _is_const(op):  # evaluated at load (MilProgram.consts)
            continue
        args = {name: _lookup(env, value) for name, value in op.inputs.items()}
        try:
            results = _control(op, args, env, keep, consts) if op.op_type in _CONTROL else _compute(op, args)
        except (UnsupportedMilOp, ConvcheckBug):
            raise
        except Exception as exc:  # the executor's failure, not the program's: an internal error
            raise ConvcheckBug(f"the MIL executor failed on op {op.name} ({op.op_type}): "
                               f"{type(exc).__name__}: {exc}") from exc
        outputs = results if isinstance(results, tuple) else (results,)
        if len(outputs) != len(op.outputs):
            raise ConvcheckBug(f"the MIL executor computed {len(outputs)} outputs for op {op.name} ({op.op_type}), "
                               f"the program declares {len(op.outputs)}")
        values = []
        for var, value in zip(op.outputs, outputs):
            env[var.name] = _as_value(value, var.dtype)
            values.append(env[var.name])
        if keep is not None:
            read = [v.name for v in _vars(op)]
            weights = [name for name in read if name in consts and np.size(consts[name]) > 1]
            keep(Step(op.op_type, op.name, [o.name for o in op.outputs], [n for n in read if n not in consts], weights),
                 values)


def _compute(op: Any, args: dict[str, Any]) -> Any:
    if op.op_type in KERNELS:
        return KERNELS[op.op_type](args)
    with _bound(op, args):
        try:
            value = op.value_inference()
        except NotImplementedError:
            raise UnsupportedMilOp(op.op_type, op.name) from None
    if value is None:  # coremltools' value_inference declines what it cannot fold (symbolic inputs)
        raise ConvcheckBug(f"coremltools' value_inference gave no value for op {op.name} ({op.op_type})")
    return value


def _control(op: Any, args: dict[str, Any], env: dict[str, Any], keep: Any, consts: dict[str, Any]) -> Any:
    """cond and while_loop: their nested blocks run on a copy of the scope; a taken cond branch's ops are
    kept for localisation, a loop body's (many iterations of the same ops) are not."""
    if op.op_type == "cond":
        branch = op.blocks[0] if bool(np.asarray(args["pred"])) else op.blocks[1]
        scope = dict(env)
        _run_block(branch, scope, keep, consts)
        values = tuple(scope[v.name] for v in branch.outputs)
        return values if len(values) > 1 else values[0]
    # while_loop: blocks[0] is the condition, blocks[1] the body, loop_vars flow through both.
    state = list(args["loop_vars"])
    cond_block, body = op.blocks
    for _ in range(1_000_000):
        scope = dict(env, **{v.name: s for v, s in zip(cond_block.inputs, state)})
        _run_block(cond_block, scope, None, consts)
        if not bool(np.asarray(scope[cond_block.outputs[0].name])):
            break
        scope = dict(env, **{v.name: s for v, s in zip(body.inputs, state)})
        _run_block(body, scope, None, consts)
        state = [scope[v.name] for v in body.outputs]
    else:
        raise RuntimeError(f"while_loop {op.name} did not end after 1,000,000 iterations")
    return tuple(state) if len(state) > 1 else state[0]


@contextlib.contextmanager
def _bound(op: Any, args: dict[str, Any]) -> Iterator[None]:
    """Give the op's input variables these values for the length of one value_inference call.

    value_inference reads its inputs through `var.val` / `var.sym_val`, which return `_sym_val.val`:
    the executor binds a holder there and restores what the loader left (None for a runtime tensor)."""
    saved = []
    for name, var in op.inputs.items():
        for v, value in zip(var if isinstance(var, (list, tuple)) else [var],
                            args[name] if isinstance(var, (list, tuple)) else [args[name]]):
            saved.append((v, v._sym_val))
            v._sym_val = SimpleNamespace(val=value)
    try:
        yield
    finally:
        for v, was in reversed(saved):
            v._sym_val = was


def _lookup(env: dict[str, Any], value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [env[v.name] for v in value]
    return env[value.name]


def _vars(op: Any) -> Iterator[Any]:
    for value in op.inputs.values():
        yield from (value if isinstance(value, (list, tuple)) else [value])


def _walk(block: Any) -> Iterator[Any]:
    for op in block.operations:
        yield op
        for inner in getattr(op, "blocks", []) or []:
            yield from _walk(inner)


def _is_const(op: Any) -> bool:
    return op.op_type == "const" or op.op_type.startswith("constexpr_")


def _how(op: Any) -> str:
    if op.op_type in KERNELS or op.op_type in _CONTROL:
        return "kernel"
    from coremltools.converters.mil.mil.operation import Operation

    implemented = any("value_inference" in k.__dict__ for k in type(op).__mro__ if k is not Operation)
    return "value_inference" if implemented else "none"


def _materialize(op: Any, out: Any) -> Any:
    """A compression op's dense value (constexpr_lut_to_dense, constexpr_affine_dequantize, ...)."""
    fn = getattr(op, "materialized_val_inference", None)
    if fn is None:
        raise UnsupportedMilOp(op.op_type, op.name)
    value = fn()
    return value[list(op.outputs).index(out)] if isinstance(value, tuple) else value


def _numpy_dtype(mil_type: Any) -> Any:
    from coremltools.converters.mil.mil import types

    name = types.builtin_to_string(mil_type)
    return NUMPY_DTYPES.get(name, np.float32)


def _as_value(value: Any, mil_type: Any) -> Any:
    """A value in the program's declared type: float results are rounded to fp16 where it says fp16."""
    from coremltools.converters.mil.mil import types

    if value is None or isinstance(value, (str, list)):
        return value
    name = types.builtin_to_string(mil_type)
    if name in NUMPY_DTYPES:
        array = np.asarray(value).astype(NUMPY_DTYPES[name], copy=False)
        if array.ndim:
            return array
        # A scalar stays a scalar, and a bool a Python bool: numpy 2 refuses np.bool_ where coremltools'
        # value_inference passes it on (reduce ops' keepdims).
        return bool(array) if array.dtype == np.bool_ else array[()]
    return value  # str, list and state types pass through


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield
