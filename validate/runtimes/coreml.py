"""Core ML: Apple's runtime on macOS; everywhere else convcheck's MIL reference executor.

coremltools converts on Linux but has no Linux executor (`predict` raises "Model prediction is only
supported on macOS"). Off macOS the cell executes the package's ML program op by op in numpy
(convcheck.validate.mil): the program's semantics, judged by the same parity rules, and labelled as
such in `runtime_settings.executor`; it records no latency (that executor's speed says nothing of
Core ML's). On macOS the cell runs `coremltools.predict` on the CPU.

Either way the pipeline also runs `static_check`, which reads the `.mlpackage` without executing it: the
spec and the MIL program (re-loaded with coremltools' own loader, which re-infers every op's types and
reads the weights), inputs and outputs against the source model's real arrays, the op list, deployment
target, package size and whether fp16 compute was applied where asked and only there. Each finding is
`{"name", "ok", "detail"}`; a known mismatch (int64 inputs become int32) is a failed check, not a footnote.

coremltools is imported inside functions only, through `quiet_coremltools`: it imports TensorFlow
when installed and logs version and `libcoremlpython` warnings on import, which belong in the cell's
log rather than on the user's terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import platform
import re
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from convcheck.requirements import COREMLTOOLS
from convcheck.types import Artifact, Format
from convcheck.runtime import Runtime


#: The macOS release of each Core ML specification version (= `ct.target` value), for the verdict.
MACOS = {4: "10.15", 5: "11", 6: "12", 7: "13", 8: "14", 9: "15", 10: "26"}
#: Core ML feature (model boundary) array types -> numpy names.
FEATURE_DTYPES = {"FLOAT32": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "INT32": "int32", "INT8": "int8"}
_FLOATS = ("float16", "float32", "float64")
_PROGRESS = re.compile(r"\d+%\|")  # tqdm bars ct.convert draws on stderr


class CoremlRuntime(Runtime):
    name = "coreml"
    format = Format.COREML
    devices = ("cpu",)
    precisions = ("fp32", "fp16")
    requires = (COREMLTOOLS,)
    summary = ("Core ML mlprogram on the CPU (macOS); elsewhere the ML program executed op by op by "
               "convcheck's MIL reference executor")
    placement = {"macos": 1.0}
    #: What executes the program off macOS, as cells and reports name it.
    MIL_EXECUTOR = "convcheck MIL reference executor (the ML program's ops in numpy; not Apple's runtime)"

    def activate_impl(self, artifact: Artifact) -> None:
        built_for = artifact.metadata.get("precision")
        if built_for and built_for != self.target.precision:
            # Compute precision is baked in at conversion: an fp16 package in an fp32 cell would
            # report fp16 parity under an fp32 label.
            raise ValueError(f"package was converted for {built_for}, the cell runs {self.target.precision}")
        if platform.system() != "Darwin":
            self._activate_mil(artifact)
            return
        self.executor = "coremltools.predict (Core ML, CPU_ONLY)"
        with quiet_coremltools([]) as ct:
            # CPU_ONLY: the GPU and the Neural Engine compute in fp16 whatever the package asks, so
            # only the CPU gives a real fp32 cell, and it is deterministic run to run.
            self.model = ct.models.MLModel(str(artifact.main_file), compute_units=ct.ComputeUnit.CPU_ONLY)
            self.version = ct.__version__
        description = self.model.get_spec().description
        # Core ML I/O has no int64: feeds are cast to the declared types (int64 ids -> int32).
        self.input_dtypes = {i.name: FEATURE_DTYPES.get(_array_type_name(i), "float32") for i in description.input}
        self._bind_features(artifact, [i.name for i in description.input], [o.name for o in description.output])
        self._predict = lambda feeds: self.model.predict(feeds)
        self._package = artifact.main_file  # the MIL executor's second opinion reads it after the run

    def second_opinion(self, feeds: list[dict[str, np.ndarray]]) -> tuple[str, list[dict[str, np.ndarray]]] | None:
        """On macOS, the same package on the MIL executor too: where Core ML and the program's semantics
        disagree, the report says so (an Apple kernel's deviation, or an executor bug to report)."""
        if getattr(self, "program", None) is not None or not hasattr(self, "_package"):
            return None  # off macOS the MIL executor is the cell's own runtime
        from convcheck.validate.mil.program import load_program, unsupported_ops

        self.second_executor = self.MIL_EXECUTOR
        with quiet_coremltools([]):
            program = load_program(self._package)
        missing = unsupported_ops(program)
        if missing:
            raise NotImplementedError(f"the MIL executor has no kernel for op(s) {missing}")
        return self.MIL_EXECUTOR, [self._call(program.run, program.input_dtypes, sample) for sample in feeds]

    def _bind_features(self, artifact: Artifact, inputs: list[str], outputs: list[str]) -> None:
        """The source's input/output names -> the package's features: the same names for a package
        convcheck converted, the hop's matching (`input_map`/`output_map`) for a user's own package."""
        meta = artifact.metadata
        self.input_map = dict(meta.get("input_map") or {n: n for n in inputs})
        self.output_map = dict(meta.get("output_map") or {n: n for n in meta.get("output_names") or outputs})
        self.input_names = list(self.input_map)
        self.output_names = list(self.output_map)

    def _activate_mil(self, artifact: Artifact) -> None:
        from convcheck.errors import CellFailure
        from convcheck.types import Status
        from convcheck.validate.mil.program import load_program, unsupported_ops

        with quiet_coremltools([]) as ct:
            self.version = ct.__version__
            self.program = load_program(artifact.main_file)
        missing = unsupported_ops(self.program)
        if missing:
            # Known before running anything: every op the program has, not only the first one reached.
            raise CellFailure(Status.UNSUPPORTED.value, f"the MIL executor has no kernel for op(s) {missing}: this "
                              "machine cannot execute the Core ML program (macOS can)", "load", missing[0])
        self.executor = self.MIL_EXECUTOR
        self.no_latency = ("the cell ran on convcheck's MIL reference executor, not Core ML: its speed is not a Core ML "
                           "figure (run on macOS for one)")
        self.input_dtypes = dict(self.program.input_dtypes)
        self._bind_features(artifact, list(self.program.input_names), list(self.program.output_names))
        self._predict = self.program.run

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        return self._call(self._predict, self.input_dtypes, feeds)

    def _call(self, run: Any, dtypes: dict[str, Any], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`run` (predict, or the MIL executor) on the features the source's names map to, cast to `dtypes`."""
        out = run({feature: np.asarray(feeds[name], dtype=dtypes[feature]) for name, feature in self.input_map.items()})
        return {name: np.asarray(out[feature]) for name, feature in self.output_map.items()}

    def deactivate_impl(self) -> None:
        self.model = self.program = self._predict = None
        self.__dict__.pop("_package", None)

    def describe(self) -> dict[str, Any]:
        found: dict[str, Any] = {"threads": self.threads, "precision": self.target.precision,
                                 "executor": getattr(self, "executor", None),
                                 "coremltools": getattr(self, "version", None)}
        program = getattr(self, "program", None)
        if program is not None:
            found["mil_ops"] = dict(sorted(program.implementations.items()))
            found["notes"] = ["executed by convcheck's MIL reference executor: the ML program's semantics, not Apple's "
                              "kernels (which may differ in the last bits, in fp16 by more); a Mac gives the Core ML "
                              "figures"]
        else:
            found["compute_units"] = "CPU_ONLY"
        return found

    # -- anywhere: what can be known without executing ---------------------------------------------
    @classmethod
    def static_check(cls, artifact: Artifact, spec: Any, ref: Any) -> dict[str, Any]:
        """Checks of a converted package against the source model (`spec`: its ModelSpec; `ref`: the
        pipeline's Reference, whose `feeds[0]` / `outputs[0]` are the source's real arrays)."""
        with quiet_coremltools([]) as ct:
            return _static_check(ct, artifact, spec, ref)


@contextlib.contextmanager
def quiet_coremltools(log: list[str]) -> Iterator[Any]:
    """Import coremltools (and run what is inside the block) with its chatter captured into `log`.

    It logs through the `coremltools` logger (untested torch/TF versions, `libcoremlpython` missing off
    macOS), draws tqdm bars on stderr and imports TensorFlow, whose C++ banners go to file descriptor 2."""
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    logger = logging.getLogger("coremltools")
    records: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"{record.levelname}: {record.getMessage()}")

    handler, propagate = _Collect(level=logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # or a configured root logger would print them anyway
    printed = io.StringIO()
    native: list[str] = []
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            with _native_stderr(native) if "coremltools" not in sys.modules else contextlib.nullcontext():
                import coremltools as ct
            yield ct
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        log.extend(records)
        lines = (seg.strip() for line in printed.getvalue().splitlines() + native for seg in line.split("\r")[-1:])
        log.extend(line for line in lines if line and not _PROGRESS.search(line))
        # coremltools leaves TemporaryDirectory objects to the garbage collector: noise, not news.
        log.extend([f"warning: {w.message}" for w in caught if not issubclass(w.category, ResourceWarning)][:20])


@contextlib.contextmanager
def _native_stderr(lines: list[str]) -> Iterator[None]:
    """Capture file descriptor 2 (for the first import only): the TensorFlow that coremltools imports
    writes absl/oneDNN banners from C++, which TF_CPP_MIN_LOG_LEVEL set from Python does not silence."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


# -- the static check --------------------------------------------------------------------------------
def _static_check(ct: Any, artifact: Artifact, spec: Any, ref: Any) -> dict[str, Any]:
    package = artifact.main_file
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"name": name, "ok": bool(ok), "detail": detail})

    try:
        model_spec = ct.utils.load_spec(str(package))
    except Exception as exc:  # noqa: BLE001 - an unreadable package is the finding
        check("loads", False, f"ct.utils.load_spec failed: {exc}")
        return {"ok": False, "checks": checks, "ops": {},
                "verdict": f"The Core ML package does not load ({exc}); reconvert it."}
    kind = model_spec.WhichOneof("Type")
    version = model_spec.specificationVersion
    check("loads", kind == "mlProgram", f"{kind}, specification version {version}")
    if kind != "mlProgram":
        return {"ok": False, "checks": checks, "ops": {},
                "verdict": f"The package is a {kind}, not an mlprogram; convert with convert_to='mlprogram'."}

    function = model_spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    operations = list(_walk(block))
    ops = dict(sorted(Counter(op.type for op in operations).items(), key=lambda kv: (-kv[1], kv[0])))
    compute_ops = sum(n for t, n in ops.items() if t != "const")

    check("program", *_reload_program(package, len(operations)))
    target = _deployment_target(ct, version)
    asked = artifact.metadata.get("minimum_deployment_target")
    check("deployment_target", asked is None or _target_value(ct, asked) <= version,
          f"specification version {version} = {target} / macOS {MACOS.get(version, '?')}"
          + (f"; converted with minimum_deployment_target={asked}" if asked else ""))

    fmt = artifact.metadata.get("source")
    # A user's own package may name its features otherwise: compared under the source's names.
    inputs_as, outputs_as = ({feature: name for name, feature in (artifact.metadata.get(key) or {}).items()}
                             for key in ("input_map", "output_map"))
    check("inputs", *_compare_inputs(model_spec.description.input, spec.inputs_for(Format(fmt) if fmt else None),
                                     ref.feeds[0], inputs_as))
    check("outputs", *_compare_outputs(model_spec.description.output, block, operations, function,
                                       list(spec.outputs), ref.outputs[0], outputs_as))
    check("ops", compute_ops > 0,
          f"{compute_ops} ops besides {ops.get('const', 0)} constants: "
          + ", ".join(f"{t} x{n}" for t, n in ops.items() if t != "const"))
    check("precision", *_compare_precision(operations, artifact.metadata.get("precision", "fp32")))
    check("package", *_package_files(package, operations))

    failed = [c for c in checks if not c["ok"]]
    fp16 = " with fp16 compute" if artifact.metadata.get("precision") == "fp16" else ""
    head = f"Converted to an {target} mlprogram ({compute_ops} ops{fp16})"
    if not failed:
        verdict = f"{head}; inputs and outputs match the source; Apple's runtime needs macOS {MACOS.get(version, '')}+."
    else:
        more = f" (and {len(failed) - 1} more failed check(s))" if len(failed) > 1 else ""
        verdict = (f"{head}, but the {failed[0]['name']} check failed: {failed[0]['detail']}{more}; "
                   f"Apple's runtime needs macOS {MACOS.get(version, '')}+.")
    return {"ok": not failed, "checks": checks, "ops": ops, "deployment_target": target,
            "specification_version": version, "package_bytes": _size(package), "verdict": verdict}


def _walk(block: Any) -> Iterator[Any]:
    """Every operation of a MIL block, nested blocks (cond, while_loop bodies) included."""
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _walk(inner)


def _reload_program(package: Path, n_ops: int) -> tuple[bool, str]:
    """Re-load the program with coremltools' MIL loader (the MIL executor's reader): every op is rebuilt,
    so its input types are re-checked and its output types re-inferred, and every weight is read. Off
    macOS the executor then runs this very load (load_program keeps the last package it read)."""
    from convcheck.validate.mil.program import load_program

    try:
        load_program(package)
    except Exception as exc:  # noqa: BLE001 - an invalid program is the finding
        return False, f"the MIL program does not re-load: {exc}"
    return True, f"re-loaded with coremltools' MIL loader: {n_ops} ops type-checked, weights read"


def _deployment_target(ct: Any, version: int) -> str:
    names = {int(getattr(ct.target, n)): n for n in dir(ct.target) if re.fullmatch(r"(iOS|macOS)\d+", n)}
    return names.get(version, f"specification version {version}")


def _target_value(ct: Any, name: str) -> int:
    return int(getattr(ct.target, name))


def _array_type_name(feature: Any) -> str:
    array = feature.type.multiArrayType
    return array.DESCRIPTOR.fields_by_name["dataType"].enum_type.values_by_number[array.dataType].name


def _input_ranges(feature: Any) -> list[tuple[int, int]]:
    """(lowest, highest) size per axis; -1 means unbounded."""
    array = feature.type.multiArrayType
    if array.HasField("shapeRange"):
        return [(r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges]
    if array.HasField("enumeratedShapes"):
        shapes = [list(s.shape) for s in array.enumeratedShapes.shapes]
        return [(min(axis), max(axis)) for axis in zip(*shapes)]
    return [(d, d) for d in array.shape]


def _fmt_ranges(ranges: list[tuple[int, int]]) -> str:
    return "[" + ", ".join(str(lo) if lo == hi else f"{lo}..{'inf' if hi < 0 else hi}" for lo, hi in ranges) + "]"


def _compare_inputs(features: Any, inputs: Any, feeds: dict[str, np.ndarray], as_source: dict[str, str]
                    ) -> tuple[bool, str]:
    coreml = {as_source.get(f.name, f.name): f for f in features}
    problems, seen = [], []
    extra = sorted(set(coreml) - {i.name for i in inputs})
    if extra:
        problems.append(f"Core ML has input(s) {extra} the source does not")
    for decl in inputs:
        if decl.name not in coreml:
            problems.append(f"no Core ML input {decl.name!r} (it has {sorted(coreml)})")
            continue
        feature = coreml[decl.name]
        ranges = _input_ranges(feature)
        dtype = FEATURE_DTYPES.get(_array_type_name(feature), _array_type_name(feature).lower())
        want = str(feeds[decl.name].dtype) if decl.name in feeds else decl.dtype
        seen.append(f"{decl.name} {dtype} {_fmt_ranges(ranges)}")
        if dtype != want:
            problems.append(f"{decl.name} is {dtype} where the source takes {want}: callers must cast")
        if len(ranges) != len(decl.shape):
            problems.append(f"{decl.name} has rank {len(ranges)}, the source {len(decl.shape)}")
            continue
        for axis, (size, (lo, hi)) in enumerate(zip(decl.shape, ranges)):
            inside = lo <= size and (hi < 0 or size <= hi)
            if axis in decl.dynamic_axes and not (inside and lo != hi):
                problems.append(f"{decl.name} axis {axis} is {_fmt_ranges([(lo, hi)])} where the source declares "
                                f"it dynamic ({decl.dynamic_axes[axis]}, e.g. {size})")
            elif axis not in decl.dynamic_axes and (lo, hi) != (size, size):
                problems.append(f"{decl.name} axis {axis} is {_fmt_ranges([(lo, hi)])}, the source's is {size}")
    return not problems, "; ".join(problems) if problems else "match the source: " + ", ".join(seen)


def _tensor_dims(value_type: Any) -> tuple[str, list[int | None]]:
    """(dtype, dims) of a MIL tensor type; an unknown (symbolic) dimension is None."""
    from coremltools.proto import MIL_pb2

    tensor = value_type.tensorType
    dims = [d.constant.size if d.WhichOneof("dimension") == "constant" else None for d in tensor.dimensions]
    return MIL_pb2.DataType.Name(tensor.dataType).lower(), dims


def _compare_outputs(features: Any, block: Any, operations: list[Any], function: Any, declared: list[str],
                     outputs: dict[str, np.ndarray], as_source: dict[str, str]) -> tuple[bool, str]:
    """Core ML's output names, types and (MIL-declared) shapes against the source's real outputs."""
    produced = {o.name: o.type for op in operations for o in op.outputs}
    produced.update({i.name: i.type for i in function.inputs})  # an output may be an input, unchanged
    coreml = {as_source.get(f.name, f.name): f for f in features}
    problems, seen = [], []
    if list(coreml) != declared:
        problems.append(f"Core ML outputs are {list(coreml)}, the model declares {declared}")
    for name in declared:
        if name not in coreml or name not in outputs:
            continue
        real = outputs[name]
        dtype = FEATURE_DTYPES.get(_array_type_name(coreml[name]), _array_type_name(coreml[name]).lower())
        mil_var = dict(zip(coreml, block.outputs)).get(name, name)
        _, dims = _tensor_dims(produced[mil_var]) if mil_var in produced else ("?", [])
        shown = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
        seen.append(f"{name} {dtype} {shown}")
        if dtype != str(real.dtype):
            problems.append(f"{name} is {dtype} where the source returns {real.dtype}")
        fits = len(dims) == real.ndim and all(d is None or d == s for d, s in zip(dims, real.shape))
        if not fits:
            problems.append(f"{name} has shape {shown} where the source returns {list(real.shape)}")
    return not problems, "; ".join(problems) if problems else "match the source: " + ", ".join(seen)


def _compare_precision(operations: list[Any], asked: str) -> tuple[bool, str]:
    """fp32 asked: no fp16 tensor anywhere. fp16 asked: weights stored fp16 and ops computing fp16.

    coremltools' fp16 pass leaves some ops in fp32 on purpose (cast, while_loop, cond, list ops, ops
    whose constants exceed fp16's range): those are named in the detail, not counted as a failure."""
    weights: Counter[str] = Counter()  # float constants of rank >= 1, by dtype
    compute: Counter[str] = Counter()  # float outputs of non-const, non-cast ops, by dtype
    kept_fp32: Counter[str] = Counter()  # op types computing fp32 in an fp16 package
    casts_to_fp16 = 0
    for op in operations:
        for out in op.outputs:
            dtype, dims = _tensor_dims(out.type)
            if dtype not in _FLOATS:
                continue
            if op.type == "const":
                weights[dtype] += bool(dims)
            elif op.type == "cast":
                casts_to_fp16 += dtype == "float16"
            else:
                compute[dtype] += 1
                kept_fp32[op.type] += dtype != "float16"
    detail = (f"asked {asked}: weights fp16 {weights['float16']} / fp32 {weights['float32']}, op outputs fp16 "
              f"{compute['float16']} / fp32 {compute['float32']}, casts to fp16 {casts_to_fp16}")
    if asked != "fp16":
        return not (weights["float16"] or compute["float16"] or casts_to_fp16), detail
    kept = ", ".join(f"{t} x{n}" for t, n in kept_fp32.items() if n)
    if kept:
        detail += f"; kept fp32 by coremltools: {kept}"
    # No float computation at all (an int-only graph) has nothing to apply fp16 to.
    return compute["float16"] > 0 or not compute, detail


def _package_files(package: Path, operations: list[Any]) -> tuple[bool, str]:
    """The package's parts exist, and every weight blob the program points at lies inside its file."""
    specs = list(package.rglob("model.mlmodel"))
    if not specs:
        return False, f"no model.mlmodel inside {package.name}"
    root = specs[0].parent
    missing = []
    for op in operations:
        for attr in op.attributes.values():
            if attr.WhichOneof("value") == "blobFileValue":
                blob = attr.blobFileValue
                path = root / blob.fileName.replace("@model_path/", "")
                if not path.is_file() or blob.offset >= path.stat().st_size:
                    missing.append(f"{blob.fileName}@{blob.offset}")
    weights = sum(f.stat().st_size for f in (root / "weights").rglob("*") if f.is_file())
    detail = (f"{_size(package) / 1024:.1f} KiB: model.mlmodel {specs[0].stat().st_size / 1024:.1f} KiB, "
              f"weights {weights / 1024:.1f} KiB")
    if missing:
        return False, f"{detail}; weight blobs missing: {missing[:3]}"
    return _size(package) > 0, detail


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
