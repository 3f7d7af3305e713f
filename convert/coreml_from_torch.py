"""torch -> Core ML (an iOS16 `mlprogram`) with coremltools, and the base both Core ML hops share.

`CoremlConverter` owns everything that is the same whatever the front end: the input types (a
bounded `ct.RangeDim` on each dynamic axis: mlprogram refuses unbounded ones), the compute precision
taken from the cell's target (the artifact is therefore per precision: `depends_on_target`), output
dtypes pinned to the source's (with fp16 compute coremltools otherwise makes outputs FLOAT16), the
declared output names, the quiet import, saving the `.mlpackage` and its metadata. A subclass only
turns the source model into something `ct.convert` takes (`_to_mlmodel`).

`CoremlFromTorch` traces the model with `torch.jit.trace`: coremltools' torch.export front end fails
on LSTM (`Unsupported fx node lstm`) where the TorchScript one converts it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from typing import Any, ClassVar

from convcheck.converter import ConvertContext, ConvertOptions, Converter
from convcheck.errors import CellFailure
from convcheck.requirements import COREMLTOOLS, TORCH
from convcheck.types import Artifact, Format, Status


#: coremltools' messages for an op its front end has no conversion for (torch, then TensorFlow).
_UNSUPPORTED_OP = re.compile(r"(?:PyTorch convert function for op|Conversion for TF op) '([^']+)' not implemented")


@dataclass
class CoremlOptions(ConvertOptions):
    minimum_deployment_target: str = "iOS16"  # a `ct.target` name; iOS16 is the first with fp16 I/O
    #: Upper bound of every dynamic axis: an mlprogram input may not have an unbounded RangeDim.
    max_dynamic_size: int = 1024


class CoremlConverter(Converter):
    """What the torch and Keras hops to Core ML share; subclasses implement `_to_mlmodel`."""

    hop = "coreml"
    target = Format.COREML
    options_class = CoremlOptions
    depends_on_target = True  # compute precision (fp32 / fp16) is baked into the mlprogram
    via: ClassVar[str]  # the front end, recorded in the artifact's metadata
    options: CoremlOptions

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.validate.runtimes.coreml import quiet_coremltools

        with quiet_coremltools(ctx.log) as ct:
            precisions = {"fp32": ct.precision.FLOAT32, "fp16": ct.precision.FLOAT16}
            if ctx.target.precision not in precisions:
                raise CellFailure(Status.UNSUPPORTED.value,
                                  f"Core ML converts to fp32 or fp16 compute precision, not {ctx.target.precision}",
                                  "convert:coreml")
            # Always explicit: for an iOS16 mlprogram coremltools' default compute precision is FLOAT16.
            common = dict(
                inputs=self._input_types(ct, ctx), convert_to="mlprogram",
                compute_precision=precisions[ctx.target.precision],
                minimum_deployment_target=getattr(ct.target, self.options.minimum_deployment_target),
            )
            try:
                mlmodel = self._to_mlmodel(ct, source, ctx, common)
            except NotImplementedError as exc:
                found = _UNSUPPORTED_OP.search(str(exc))
                if not found:
                    raise
                raise CellFailure(Status.UNSUPPORTED.value, f"coremltools cannot convert op {found.group(1)!r}",
                                  "convert:coreml", found.group(1)) from exc
            mlmodel = _rename_outputs(ct, mlmodel, list(ctx.output_names))
            out_dir = ctx.workdir / "coreml"
            package = out_dir / "model.mlpackage"
            if package.exists():  # a rerun in the same workdir: never mix two packages' files
                shutil.rmtree(package)
            out_dir.mkdir(parents=True, exist_ok=True)
            mlmodel.save(str(package))
            description = mlmodel.get_spec().description
        return Artifact(
            format=Format.COREML,
            path=out_dir,
            metadata={
                "entry": package.name,
                "source": self.source.value,  # which of the model's input declarations it was built from
                "precision": ctx.target.precision,
                "via": self.via,
                "input_names": [i.name for i in description.input],
                "output_names": [o.name for o in description.output],
                "minimum_deployment_target": self.options.minimum_deployment_target,
                "coremltools": ct.__version__,
            },
        )

    def _to_mlmodel(self, ct: Any, source: Artifact, ctx: ConvertContext, common: dict[str, Any]) -> Any:
        """`ct.convert(<front-end model>, outputs=..., **common)`; outputs typed by `output_types`."""
        raise NotImplementedError

    def _input_types(self, ct: Any, ctx: ConvertContext) -> list[Any]:
        types = []
        for spec in ctx.input_specs:
            shape = [
                ct.RangeDim(lower_bound=1, upper_bound=max(self.options.max_dynamic_size, size), default=size)
                if axis in spec.dynamic_axes else size
                for axis, size in enumerate(spec.shape)
            ]
            types.append(ct.TensorType(name=spec.name, shape=shape, dtype=io_dtype(spec.dtype)))
        return types


def io_dtype(dtype: Any) -> Any:
    """The numpy type Core ML can carry at a model boundary for a source dtype.

    Core ML I/O has no int64 or float64: they are declared int32 / float32 (the static check reports
    the int64 -> int32 change as a mismatch, since callers must cast)."""
    import numpy as np

    dt = np.dtype(dtype)
    if dt == np.float16:
        return np.float16
    if dt.kind == "f":
        return np.float32
    if dt.kind in "iu":
        return np.int32
    if dt.kind == "b":
        return np.bool_
    raise TypeError(f"Core ML has no model input/output type for {dt}")


def output_types(ct: Any, names: list[str], dtypes: list[Any]) -> list[Any]:
    """Outputs typed like the source's: with fp16 compute coremltools would otherwise return FLOAT16."""
    return [ct.TensorType(name=n, dtype=io_dtype(d)) for n, d in zip(names, dtypes)]


def _rename_outputs(ct: Any, mlmodel: Any, names: list[str]) -> Any:
    """Give the outputs the model's declared names (the TF front end names them `Identity`, ...)."""
    spec = mlmodel.get_spec()
    current = [o.name for o in spec.description.output]
    if current == names or len(current) != len(names):
        return mlmodel
    for old, new in zip(current, names):
        ct.utils.rename_feature(spec, old, new)
    return ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir)


class CoremlFromTorch(CoremlConverter):
    source = Format.TORCH
    requires = (COREMLTOOLS, TORCH)
    summary = "coremltools.convert of torch.jit.trace, mlprogram (iOS16), fp32 or fp16 compute"
    via = "torch.jit.trace"

    def _to_mlmodel(self, ct: Any, source: Artifact, ctx: ConvertContext, common: dict[str, Any]) -> Any:
        import torch

        from convcheck.model_spec import materialize

        model = materialize(source).eval()
        args = tuple(torch.from_numpy(ctx.example_feeds[spec.name]) for spec in ctx.input_specs)
        with torch.no_grad():
            result = model(*args)  # for the output dtypes
            traced = torch.jit.trace(model, args)
        outs = result if isinstance(result, (tuple, list)) else (result,)
        outputs = output_types(ct, list(ctx.output_names), [o.numpy().dtype for o in outs])
        return ct.convert(traced, source="pytorch", outputs=outputs, **common)
