"""A hop that converts nothing: the Core ML package the user already converted themselves.

`convcheck check model.mlpackage --source model.pt2` checks the user's own .mlpackage against the
model it came from: the route is `torch/given-coreml/coreml`. The source computes the reference; this
hop hands over a copy of the package (nothing the run does touches the original), its features
matched to the source's input and output names. On Linux the Core ML runtime executes it with
convcheck's MIL reference executor, on macOS with Core ML itself.

Matching features: coremltools keeps the names the converting script gave (`ct.TensorType(name=...)`)
and otherwise invents them (`var_1234` for outputs), so inputs match by name, or alone when there is
one, or by position when the ranks agree; outputs by name when the names are the source's, else by
position. Whatever was used is recorded in the artifact (`feature_matching`) and the model report.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

from convcheck.converter import ConvertContext, Converter
from convcheck.requirements import COREMLTOOLS
from convcheck.types import Artifact, Format


class CoremlFromUserFile(Converter):
    hop = "given-coreml"
    source = None
    target = Format.COREML
    summary = "your own .mlpackage, run as you converted it"
    requires = (COREMLTOOLS,)
    passes_through: ClassVar[bool] = True  # the route's precision is the package's, not chosen by the run

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        given = Path(ctx.settings["given_artifacts"][Format.COREML.value])
        info = inspect_package(given)
        input_map, output_map, matched = map_features(info, [s.name for s in ctx.input_specs],
                                                      [len(s.shape) for s in ctx.input_specs], list(ctx.output_names))
        out_dir = ctx.workdir / "coreml"
        package = out_dir / "model.mlpackage"
        if package.exists():  # a rerun in the same workdir: never mix two packages' files
            shutil.rmtree(package)
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(given, package)
        return Artifact(
            format=Format.COREML,
            path=out_dir,
            metadata={"entry": package.name, "given": str(given), "source": source.format.value,
                      "precision": info["precision"],
                      "input_map": input_map, "output_map": output_map, "feature_matching": matched,
                      "input_names": list(input_map), "output_names": list(output_map),
                      "specification_version": info["specification_version"]},
        )


def inspect_package(path: Path) -> dict[str, Any]:
    """What a .mlpackage declares, read without executing it: its kind, features (name, rank, type),
    specification version and the precision its program computes in. Raises ValueError for anything
    that is not an ML program package."""
    from convcheck.validate.runtimes.coreml import quiet_coremltools

    if not (path / "Manifest.json").is_file():
        raise ValueError("not a Core ML package (no Manifest.json inside)")
    with quiet_coremltools([]) as ct:
        try:
            spec = ct.utils.load_spec(str(path))
        except Exception as exc:  # noqa: BLE001 - the user's file, not our bug
            raise ValueError(f"coremltools cannot read it ({type(exc).__name__}: {exc})") from None
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise ValueError(f"it holds a {kind}, not an ML program: convcheck checks mlprogram packages "
                         "(convert with convert_to='mlprogram')")
    from convcheck.validate.runtimes.coreml import FEATURE_DTYPES, _array_type_name, _input_ranges

    inputs = []
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") != "multiArrayType":
            raise ValueError(f"input {feature.name!r} is a {feature.type.WhichOneof('Type')}: convcheck feeds "
                             "multi-array inputs only")
        inputs.append({"name": feature.name, "rank": len(_input_ranges(feature)),
                       "dtype": FEATURE_DTYPES.get(_array_type_name(feature), "float32")})
    return {"inputs": inputs, "outputs": [o.name for o in spec.description.output],
            "specification_version": spec.specificationVersion, "precision": program_precision(spec)}


def program_precision(spec: Any) -> str:
    """fp16 when the main function computes in fp16 (an op other than a const or a cast writes an fp16
    tensor: coremltools' compute_precision=FLOAT16), else fp32."""
    from coremltools.proto import MIL_pb2

    function = spec.mlProgram.functions["main"]
    pending = [function.block_specializations[function.opset]]
    while pending:
        block = pending.pop()
        for op in block.operations:
            pending.extend(op.blocks)
            if op.type in ("const", "cast"):
                continue
            if any(o.type.tensorType.dataType == MIL_pb2.DataType.FLOAT16 for o in op.outputs):
                return "fp16"
    return "fp32"


def map_features(info: dict[str, Any], inputs: list[str], ranks: list[int], outputs: list[str]
                 ) -> tuple[dict[str, str], dict[str, str], str]:
    """({source input: package input}, {source output: package output}, how they were matched).
    Raises ValueError naming what does not fit."""
    package_inputs = [i["name"] for i in info["inputs"]]
    if len(package_inputs) != len(inputs):
        raise ValueError(f"the package has {len(package_inputs)} input(s) {package_inputs}, the source "
                         f"{len(inputs)} {inputs}")
    how = []
    if set(package_inputs) == set(inputs):
        input_map, how = {n: n for n in inputs}, ["inputs by name"]
    else:
        package_ranks = [i["rank"] for i in info["inputs"]]
        if package_ranks != ranks:
            raise ValueError(f"the package's inputs {package_inputs} (ranks {package_ranks}) do not match the "
                             f"source's {inputs} (ranks {ranks}) by name or by position")
        input_map, how = dict(zip(inputs, package_inputs)), ["inputs by position"]
    package_outputs = list(info["outputs"])
    if len(package_outputs) != len(outputs):
        raise ValueError(f"the package has {len(package_outputs)} output(s) {package_outputs}, the source "
                         f"{len(outputs)} {outputs}")
    if set(package_outputs) == set(outputs):
        output_map = {n: n for n in outputs}
        how.append("outputs by name")
    else:
        output_map = dict(zip(outputs, package_outputs))
        how.append("outputs by position")
    return input_map, output_map, ", ".join(how)
