"""Keras / TensorFlow SavedModel -> StableHLO with IREE's TensorFlow importer (`iree-tools-tf`).

`iree-import-tf` reads a SavedModel signature through TensorFlow's MLIR bridge
(`tensorflow.mlir.experimental`, the API the tool itself calls) and lowers it to StableHLO plus
`ml_program` globals for the weights; `iree-compile` then takes it like jax.export's StableHLO.

The model is traced into a SavedModel of its own first, with the **static shapes of the benchmark
batch** (`ctx.example_feeds`), one positional input per declared input and one output per declared
output, in order. Why static: with a dynamic batch axis the importer leaves the flatten's `tf.Reshape`
in TensorFlow's dialect (its shape is computed at run time), and iree-compile 3.13 crashes on it
(signal 11 in FormDispatchRegions; measured on a Conv2D-Flatten-Dense Keras model). Like the TVM hops,
the compiled module then runs the batch it was built for and refuses others with an error that says so.

Any TensorFlow op the lowering leaves behind is named in an `unsupported` failure before compiling,
instead of a compiler crash.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Callable

from convcheck.converter import ConvertContext, Converter
from convcheck.errors import CellFailure
from convcheck.requirements import IREE_COMPILER, IREE_TOOLS_TF, TENSORFLOW
from convcheck.types import Artifact, Format, Status

#: The signature (and, after import, the MLIR function) the traced SavedModel serves.
SIGNATURE = "serve"
#: TensorFlow's MLIR dialects: an op of theirs left in the module is one the lowering could not handle.
TF_DIALECTS = ("tf", "tf_executor", "tf_device", "tf_saved_model")


class StablehloFromKeras(Converter):
    hop = "stablehlo"
    source = Format.KERAS
    target = Format.STABLEHLO
    requires = (TENSORFLOW, IREE_TOOLS_TF, IREE_COMPILER)
    summary = "iree-import-tf: a static-shape SavedModel of the Keras model -> StableHLO MLIR"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.model_spec import materialize

        model = materialize(source)

        def call(*args: Any) -> Any:
            return model(list(args) if len(args) > 1 else args[0], training=False)

        return import_traced(call, model, ctx, "keras model")


class StablehloFromSavedModel(Converter):
    hop = "stablehlo"
    source = Format.SAVEDMODEL
    target = Format.STABLEHLO
    requires = (TENSORFLOW, IREE_TOOLS_TF, IREE_COMPILER)
    summary = "iree-import-tf: the SavedModel's signature, retraced with static shapes -> StableHLO MLIR"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        from convcheck.zoo.keras_init import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        key = source.metadata.get("signature") or "serving_default"
        loaded = tf.saved_model.load(str(source.path))
        function = loaded.signatures[key]
        names = [s.name for s in ctx.input_specs]

        def call(*args: Any) -> Any:
            return function(**dict(zip(names, args)))

        return import_traced(call, loaded, ctx, f"SavedModel signature {key!r}")


def import_traced(call: Callable[..., Any], holder: Any, ctx: ConvertContext, what: str) -> Artifact:
    """Trace `call` with the example feeds' static shapes into a SavedModel (`holder` keeps its variables
    alive in it), import that with iree-import-tf and check that only StableHLO is left."""
    from convcheck.zoo.keras_init import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf
    from iree.tools.tf.scripts.iree_import_tf.__main__ import import_saved_model

    output_names = list(ctx.output_names)
    specs = [tf.TensorSpec(ctx.example_feeds[s.name].shape, tf.as_dtype(ctx.example_feeds[s.name].dtype),
                           name=f"input_{i:03d}") for i, s in enumerate(ctx.input_specs)]

    def serve(*args: Any) -> dict[str, Any]:
        out = call(*args)
        if isinstance(out, dict):
            outs = [out[n] for n in output_names]
        else:
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(outs) != len(output_names):
            raise ValueError(f"the {what} returned {len(outs)} outputs, the model declares {output_names}")
        # Zero-padded keys: the signature's outputs sort, and keep, the declared order.
        return {f"output_{i:03d}": o for i, o in enumerate(outs)}

    concrete = tf.function(serve, input_signature=specs).get_concrete_function()
    module = tf.Module()
    module.model = holder
    # The importer reads weights through the SavedModel's object graph: a Keras 3 model under a tf.Module
    # attribute saves a working signature but leaves its variables out of that graph (they import as zeros,
    # measured), so the variables the function captures are tracked by hand.
    module.captured = list(concrete.variables)
    traced = ctx.workdir / "iree-savedmodel"  # beside the artifact folder: not shipped with it
    tf.saved_model.save(module, str(traced), signatures={SIGNATURE: concrete})
    out_dir = ctx.workdir / "stablehlo"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.mlirbc"
    try:
        import_saved_model(output_path=str(path), saved_model_dir=str(traced), exported_names=SIGNATURE,
                           import_type="savedmodel_v1", tags="serve")
    except Exception as exc:  # noqa: BLE001 - name the TensorFlow construct HLO has no type for, else re-raise
        variant = re.search(r"'mhlo\.(\w+)' op operand #\d+ must be .{0,2000}?but got '([^']*tf_type\.variant[^']*)'",
                            str(exc), flags=re.S)
        if variant:
            # Keras's LSTM/GRU loop carries a TensorList (a variant tensor): HLO's while has no such type.
            raise CellFailure(Status.UNSUPPORTED.value,
                              f"TensorFlow's lowering to StableHLO cannot carry a {variant.group(2)} (a TensorList, "
                              f"as Keras's recurrent layers keep) through 'mhlo.{variant.group(1)}'; unroll=True "
                              "avoids the loop", "convert:stablehlo", op=variant.group(1)) from exc
        raise
    ops = module_ops(path)
    leftover = sorted({op for op in ops if op.split(".")[0] in TF_DIALECTS})
    if leftover:
        raise CellFailure(Status.UNSUPPORTED.value,
                          f"iree-import-tf left TensorFlow ops it could not lower to StableHLO: {', '.join(leftover)} "
                          "(iree-compile takes StableHLO only)", "convert:stablehlo", op=leftover[0])
    return Artifact(
        format=Format.STABLEHLO,
        path=out_dir,
        metadata={"entry": path.name, "function": SIGNATURE, "input_names": [s.name for s in ctx.input_specs],
                  "output_names": output_names, "tensorflow": tf.__version__,
                  "via": "tf.saved_model.save (static shapes) + iree-import-tf (savedmodel_v1)",
                  "static_shapes": {s.name: list(ctx.example_feeds[s.name].shape) for s in ctx.input_specs},
                  "dynamic": False, "nodes": sum(1 for op in ops if op.startswith("stablehlo.")),
                  "precision": "fp32"},
    )


def module_ops(path: Path) -> list[str]:
    """Every op of an MLIR (bytecode) module, as `dialect.op`, one per occurrence: `iree-opt` prints it
    (weights elided) with unregistered dialects allowed, so that TensorFlow ops left in it show."""
    from iree.compiler.tools.binaries import find_tool

    printed = subprocess.run([find_tool("iree-opt"), "--allow-unregistered-dialect",
                              "--mlir-elide-elementsattrs-if-larger=16", str(path)],
                             capture_output=True, text=True, check=True).stdout
    # `%x = stablehlo.add ...`, `"tf.Reshape"(...)`, `ml_program.global_load ...` and bare `return`.
    return re.findall(r'(?:^|=|\s)"?([a-z_]+\.[A-Za-z_][\w.]*)"?[\s(<{]', printed, flags=re.M)
