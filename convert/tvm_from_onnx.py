"""ONNX -> TVM (Relax): `relax.frontend.onnx.from_onnx`, compiled to a shared library.

The graph is imported with the static shapes of the benchmark batch (`ctx.example_feeds`), so the
compiled code is specialised to it; compiling and exporting are shared with the ExportedProgram
hop in `tvm_build`. Ops the frontend lacks (LSTM, ...) raise `tvm.error.OpNotImplemented`,
which `convcheck.failures` classifies as `unsupported` with the op name; so is a string input
(Relax has no string tensors). Rank-0 (scalar) inputs import with the shape `[]`.
"""

from __future__ import annotations

import contextlib
import io
import warnings

from convcheck.converter import ConvertContext, Converter
from convcheck.errors import CellFailure
from convcheck.requirements import ONNX, TVM
from convcheck.types import Artifact, Format, Status


class TvmFromOnnx(Converter):
    hop = "tvm"
    source = Format.ONNX
    target = Format.TVM
    requires = (TVM, ONNX)
    summary = "TVM Relax from_onnx, static shapes, compiled for the cell's device (--tvm-tune: MetaSchedule)"
    depends_on_target = True

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import onnx

        # The frontend is a submodule `import tvm.relax` does not load.
        from tvm.relax.frontend.onnx import from_onnx

        from convcheck.convert.tvm_build import build_artifact
        from convcheck.convert.tvm_onnx_ops import relax_clip

        model = onnx.load(str(source.main_file))  # external weights are read from beside it
        initializers = {init.name for init in model.graph.initializer}
        names = [i.name for i in model.graph.input if i.name not in initializers]
        missing = [n for n in names if n not in ctx.example_feeds]
        if missing:
            raise ValueError(f"ONNX inputs {missing} have no example feed (feeds: {sorted(ctx.example_feeds)})")
        feeds = {n: ctx.example_feeds[n] for n in names}
        text = [n for n, a in feeds.items() if a.dtype.kind in "USO"]
        if text:
            # Relax has no string tensors; its frontend would fail with "unknown dtype `object`".
            raise CellFailure(Status.UNSUPPORTED.value, f"TVM has no string tensors: input(s) {', '.join(text)} "
                              "hold text", "convert")
        printed = io.StringIO()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                # The frontend prints "Error converting operator X, with inputs: ..." and re-raises
                # without naming X: the printed line goes with the error, where classify reads notes.
                with contextlib.redirect_stdout(printed), relax_clip():
                    mod = from_onnx(
                        model,
                        shape_dict={n: list(a.shape) for n, a in feeds.items()},
                        dtype_dict={n: str(a.dtype) for n, a in feeds.items()},
                    )
            except Exception as exc:
                said = [ln for ln in printed.getvalue().splitlines() if ln.startswith("Error converting operator")]
                if said:
                    exc.add_note(said[-1][:400])
                raise
            finally:
                ctx.log.extend(ln[:400] for ln in printed.getvalue().splitlines()[-20:] if ln.strip())
        ctx.log.extend(f"warning: {w.message}" for w in caught[:20])
        # Relax returns the graph's outputs in the graph's order, which need not be the declaration's
        # (tf2onnx orders a SavedModel's outputs its own way): name them from the graph.
        return build_artifact(mod, ctx, source, names, frontend="onnx",
                              output_names=[o.name for o in model.graph.output])
