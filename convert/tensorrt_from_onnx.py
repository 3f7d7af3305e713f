"""ONNX -> TensorRT engine, built with polygraphy's loaders.

An engine is specific to a precision and a GPU model (hence `depends_on_target`): fp32 builds with
TF32 off (polygraphy's default), so fp32 parity means fp32 arithmetic; fp16 sets the FP16 builder
flag, which lets TensorRT pick fp16 kernels layer by layer (weak typing, TensorRT 10.x).

Inputs whose dimensions the ONNX file leaves symbolic get one optimisation profile: the benchmarked
batch is `opt`, 1 is `min` and `max(opt, dynamic_max)` is `max`, so the engine is tuned for the
shape that is measured and still accepts smaller and somewhat larger ones.

`precheck` is the part that runs without TensorRT (no GPU, or TensorRT not installable): a static
comparison of the graph with TensorRT's published ONNX operator list.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convcheck.converter import ConvertContext, ConvertOptions, Converter
from convcheck.errors import CellFailure
from convcheck.requirements import POLYGRAPHY, TENSORRT
from convcheck.types import Artifact, Format, Status

STAGE = "convert:tensorrt"


@dataclass
class TensorrtOptions(ConvertOptions):
    #: Upper bound of every dynamic axis in the optimisation profile (unless the benchmarked size is larger).
    dynamic_max: int = 32


class EngineFromOnnx(Converter):
    hop = "tensorrt"
    source = Format.ONNX
    target = Format.TENSORRT
    requires = (TENSORRT, POLYGRAPHY)
    options_class = TensorrtOptions
    depends_on_target = True
    summary = "TensorRT engine built by polygraphy from the ONNX file (fp32, or fp16 builder flag)"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import tensorrt as trt
        from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath, SaveEngine
        from polygraphy.exception import PolygraphyException

        from convcheck.validate.runtimes.tensorrt import gpu_name

        precision = ctx.target.precision
        if precision not in ("fp32", "fp16"):
            raise CellFailure(Status.UNSUPPORTED.value, f"this hop builds fp32 or fp16 engines, not {precision}", STAGE)
        if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
            # TensorRT 11 removed the weak-typing precision flags: fp16 there needs an ONNX model
            # that is already fp16 (e.g. ModelOpt AutoCast), which this hop does not produce.
            raise CellFailure(Status.UNSUPPORTED.value,
                              f"TensorRT {trt.__version__} has no FP16 builder flag (removed in 11.x); "
                              "fp16 needs a strongly typed fp16 ONNX model", STAGE)
        out_dir = ctx.workdir / "tensorrt"
        out_dir.mkdir(parents=True, exist_ok=True)
        engine_path = out_dir / "model.engine"

        # polygraphy logs (and routes TensorRT's own logger) to stdout: keep it in the artifact's log.
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                try:
                    network = NetworkFromOnnxPath(str(source.main_file))()
                except PolygraphyException as exc:
                    raise _parse_failure(source.main_file, captured.getvalue(), exc) from exc
                _builder, net, _parser = network
                input_names = [net.get_input(i).name for i in range(net.num_inputs)]
                profile, shapes = _profile(net, ctx, self.options.dynamic_max)
                config = CreateConfig(fp16=precision == "fp16", profiles=[profile] if shapes else None)
                # A (builder, network, parser) tuple, not a loader: polygraphy then leaves them to us.
                engine = SaveEngine(EngineFromNetwork(network, config=config), str(engine_path))()
                del engine  # frees the deserialised engine's GPU memory before the runtime loads its own
        finally:
            ctx.log.extend(line for line in captured.getvalue().splitlines()[-200:] if line.strip())
        return Artifact(
            format=Format.TENSORRT,
            path=out_dir,
            metadata={
                "entry": "model.engine",
                "precision": precision,
                "tensorrt": trt.__version__,
                "device": gpu_name(),
                "profiles": [shapes] if shapes else [],
                "input_names": input_names,
                "output_names": list(ctx.output_names),
            },
        )

    @classmethod
    def precheck(cls, artifact: Artifact) -> dict[str, Any]:
        """Static op check of the ONNX artifact against TensorRT's list; needs `onnx`, never tensorrt."""
        from convcheck.validate.tensorrt_support import check_onnx_graph

        if artifact.format is not Format.ONNX:
            raise TypeError(f"{cls.__name__}.precheck takes onnx, got {artifact.format.value}")
        return check_onnx_graph(artifact.main_file)


def _profile(net: Any, ctx: ConvertContext, dynamic_max: int) -> tuple[Any, dict[str, dict[str, list[int]]]]:
    """One optimisation profile covering every input with a dynamic dimension.

    Dynamic means what the parsed network says (-1), not only what the model spec declares: an axis
    the spec calls dynamic but the ONNX export fixed cannot be given a range (TensorRT rejects it),
    and a symbolic axis the spec does not mention still needs one.
    """
    from polygraphy.backend.trt import Profile

    declared = {spec.name: dict(spec.dynamic_axes) for spec in ctx.input_specs}
    profile = Profile()
    shapes: dict[str, dict[str, list[int]]] = {}
    for i in range(net.num_inputs):
        tensor = net.get_input(i)
        dims = list(tensor.shape)
        dynamic = [axis for axis, d in enumerate(dims) if d < 0]
        if not dynamic:
            continue
        if tensor.name not in ctx.example_feeds:
            raise ValueError(f"input {tensor.name!r} has dynamic axes {dynamic} but no example to size its profile "
                             f"(declared inputs: {sorted(declared)})")
        opt = [int(d) for d in ctx.example_feeds[tensor.name].shape]
        if len(opt) != len(dims):
            raise ValueError(f"input {tensor.name!r}: example has rank {len(opt)}, the network rank {len(dims)}")
        low = [1 if axis in dynamic else d for axis, d in enumerate(opt)]
        high = [max(d, dynamic_max) if axis in dynamic else d for axis, d in enumerate(opt)]
        profile.add(tensor.name, min=low, opt=opt, max=high)
        shapes[tensor.name] = {"min": low, "opt": opt, "max": high}
    return profile, shapes


def _parse_failure(path: Path, log: str, exc: Exception) -> CellFailure:
    """Name the op TensorRT's parser stopped at; polygraphy's exception only says parsing failed.

    The parser's own errors went to the captured log ("In node 3 with name: ... and operator: Foo");
    the static check adds which ops the published list lacks.
    """
    errors = [ln.strip() for ln in log.splitlines() if "[E]" in ln or "ERROR" in ln]
    said = errors[0] if errors else str(exc)
    m = re.search(r"operator: (\w+)", log)
    op = m.group(1) if m else None
    report: dict[str, Any] | None = None
    with contextlib.suppress(Exception):  # the check is a help for the message, never a second failure
        from convcheck.validate.tensorrt_support import check_onnx_graph

        report = check_onnx_graph(path)
    if report and (report["unsupported"] or report["custom_domains"]):
        op = op or (report["unsupported"] or [None])[0]
        return CellFailure(Status.UNSUPPORTED.value,
                           f"TensorRT's ONNX parser failed: {report['verdict']} Parser: {said}"[:600], STAGE, op)
    return CellFailure(Status.CONVERT_ERROR.value, f"TensorRT's ONNX parser failed: {said}"[:600], STAGE, op)
