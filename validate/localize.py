"""Which localiser answers "where does the error start?" for a mismatching cell.

A cell's route is a chain of artifacts; the localisers compare intermediate tensors of one hop's
output with its input's:
- the final runtime against ONNX Runtime (optimisations off) on the same ONNX graph, where the
  runtime exposes intermediates (`ort`, `openvino` converted from ONNX): the runtime is at fault;
- otherwise the ONNX graph against the PyTorch module it was exported from (dynamo exporter scope
  metadata): the export is at fault;
- a Keras model against its .tflite conversion (`keras/tflite`).
- a torch module or Keras model against its Core ML program, executed op by op by the MIL executor
  (`torch/coreml`, `keras/coreml`).
Routes without a localiser (TVM and TensorRT expose no intermediates here) get `found: false` with
that reason. A localiser's own failure is recorded, never raised:
localisation explains a mismatch, it does not change the cell's status.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from convcheck.types import Format
from convcheck.tolerance import Tolerance

def localize_cell(route_formats: tuple[Format, ...], runtime: str, record: list[dict[str, Any]],
                  load_source: Callable[[], Any], feeds: dict[str, np.ndarray], tol: Tolerance,
                  source_file: Path | None = None) -> dict[str, Any]:
    """`record` is the cell's per-hop artifact list (`cell["artifacts"]`); `load_source` builds the
    source model (torch module / Keras model) only if a localiser needs it. `source_file`: the user's
    own model file, when the route starts from one (an ONNX file is then the graph the runtime's
    intermediates are compared on, though no hop produced it)."""
    from convcheck.failures import first_line

    if source_file is not None and route_formats and route_formats[0] is Format.ONNX:
        record = [{"format": Format.ONNX.value, "ok": True, "path": str(source_file.parent),
                   "metadata": {"entry": source_file.name}, "converter": "user file"}] + list(record)
    started = time.perf_counter()
    try:
        found = _dispatch(route_formats, runtime, record, load_source, feeds, tol)
    except Exception as exc:  # noqa: BLE001 - explaining a mismatch must not hide it
        found = {"found": False, "reason": f"localisation failed: {first_line(exc)}"}
    found["seconds"] = time.perf_counter() - started
    return found


def _dispatch(formats: tuple[Format, ...], runtime: str, record: list[dict[str, Any]],
              load_source: Callable[[], Any], feeds: dict[str, np.ndarray], tol: Tolerance) -> dict[str, Any]:
    from convcheck.registry import load_dotted, runtimes

    onnx_hop = next((r for r in record if r.get("format") == Format.ONNX.value and r.get("ok")), None)
    source = formats[0]
    if onnx_hop is not None:
        onnx_path = Path(onnx_hop["path"]) / onnx_hop["metadata"]["entry"]
        after_onnx = formats[formats.index(Format.ONNX) + 1:]
        runs_onnx_graph = not after_onnx or after_onnx == (Format.OPENVINO,)
        # A runtime that can run the ONNX graph exposing named intermediates says how (Runtime.onnx_intermediates).
        factory = getattr(runtimes.get(runtime), "onnx_intermediates", None) if runtime in runtimes else None
        if factory and runs_onnx_graph:
            from convcheck.validate.localize_onnx import localize_runtime

            candidate = load_dotted(factory)(onnx_path, feeds)
            found = localize_runtime(onnx_path, feeds, candidate, tol)
            if found["found"]:
                return found
            runtime_note = found.get("reason", "")
        else:
            runtime_note = f"{runtime} exposes no intermediate tensors to compare"
        # The dynamo exporter records each node's module scopes; the TorchScript one does not.
        if source is Format.TORCH and onnx_hop["metadata"].get("exporter") == "dynamo":
            from convcheck.validate.localize_export import localize_export

            found = localize_export(load_source(), onnx_path, feeds, tol)
            if not found["found"]:
                found["reason"] = f"{found.get('reason', '')}; runtime: {runtime_note}".strip("; ")
            return found
        return {"found": False, "reason": f"the ONNX graph agrees where it could be compared ({runtime_note}); "
                                          f"no localiser for a {source.value} -> ONNX export"}
    tflite_hop = next((r for r in record if r.get("format") == Format.TFLITE.value and r.get("ok")), None)
    if tflite_hop is not None and source is Format.KERAS and tflite_hop.get("converter") == "TfliteFromKeras":
        from convcheck.validate.localize_tflite import localize_tflite

        meta = tflite_hop["metadata"]
        return localize_tflite(load_source(), Path(tflite_hop["path"]) / meta["entry"], feeds,
                               meta.get("input_map"), tol)
    coreml_hop = next((r for r in record if r.get("format") == Format.COREML.value and r.get("ok")), None)
    if coreml_hop is not None and source in (Format.TORCH, Format.KERAS) and len(record) == 1:
        from convcheck.validate.localize_coreml import localize_coreml

        meta = coreml_hop["metadata"]
        # A user's own package may name its inputs otherwise (input_map: source name -> package feature).
        features = {meta.get("input_map", {}).get(name, name): value for name, value in feeds.items()}
        return localize_coreml(load_source(), Path(coreml_hop["path"]) / meta["entry"], features, tol, source.value)
    return {"found": False, "reason": f"no localiser for a route through {', '.join(f.value for f in formats)} "
                                      f"run by {runtime} yet"}
