"""torch -> ExecuTorch program (.pte), PyTorch Mobile's successor: `torch.export`, then
`to_edge_transform_and_lower` and `.to_executorch()`.

Two lowerings, two routes:
- `torch/executorch`: the XNNPACK delegate (XnnpackPartitioner), how ExecuTorch is deployed on CPUs
  (Android, iOS, Linux); what XNNPACK does not take stays on the portable kernels;
- `torch/executorch-portable/executorch`: no delegate, every op on ExecuTorch's portable kernels (plain
  C++ reference implementations): what a target without a backend runs, and the check that separates a
  lowering bug from an XNNPACK kernel's.

Which ops went to the delegate is read with `executorch.devtools.backend_debug.get_delegation_info`
and kept in the artifact's metadata (`delegation`): the cell shows it. The program is exported for
the example batch's shapes (fixed batch, as for torch/tflite): ExecuTorch plans its memory ahead of
time and a dynamic batch needs upper bounds the zoo does not declare.

Runs in the `executorch` toolchain environment (convcheck.toolchains): executorch 1.5 pins torchao
and coremltools and brings 1.5 GB that the main environment does not need.
"""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

from convcheck.converter import ConvertContext, Converter
from convcheck.requirements import EXECUTORCH, EXECUTORCH_ENV, TORCH
from convcheck.types import Artifact, Format


class ExecutorchFromTorch(Converter):
    hop = "executorch"
    source = Format.TORCH
    target = Format.PTE
    requires = (TORCH, EXECUTORCH)
    toolchain = EXECUTORCH_ENV
    summary = "torch.export -> to_edge_transform_and_lower(XnnpackPartitioner) -> .pte (ExecuTorch, XNNPACK delegate)"
    #: "xnnpack": lower what XNNPACK takes to its delegate; "portable": no delegate, portable kernels only.
    delegate = "xnnpack"

    def convert_impl(self, source: Artifact, ctx: ConvertContext) -> Artifact:
        import torch

        from convcheck.model_spec import materialize

        model = materialize(source).eval()
        names = [s.name for s in ctx.input_specs]
        args = tuple(torch.from_numpy(ctx.example_feeds[n]) for n in names)
        out_dir = ctx.workdir / "executorch"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "model.pte"
        timings: dict[str, float] = {}
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            started = time.perf_counter()
            exported = torch.export.export(model, args)
            timings["export_s"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            edge = self._lower(exported)
            timings["lower_s"] = round(time.perf_counter() - started, 3)
            delegation = _delegation(edge, self.delegate)
            started = time.perf_counter()
            program = edge.to_executorch()
            timings["to_executorch_s"] = round(time.perf_counter() - started, 3)
        path.write_bytes(program.buffer)
        ctx.log.extend(ln for ln in captured.getvalue().splitlines() if ln.strip())
        import executorch

        return Artifact(
            format=Format.PTE,
            path=out_dir,
            metadata={
                "entry": "model.pte", "precision": "fp32", "dynamic_batch": False, "method": "forward",
                "input_names": names, "output_names": list(ctx.output_names),
                "input_shapes": {n: list(a.shape) for n, a in zip(names, args)},
                "delegate": self.delegate, "delegation": delegation, "delegated": _summary(delegation),
                "stage_seconds": timings,
                "executorch": getattr(executorch, "__version__", None) or _version("executorch"),
            },
        )

    def _lower(self, exported: Any) -> Any:
        from executorch.exir import to_edge_transform_and_lower

        if self.delegate == "portable":
            return to_edge_transform_and_lower(exported)
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])


class ExecutorchPortableFromTorch(ExecutorchFromTorch):
    hop = "executorch-portable"
    summary = "torch.export -> to_edge_transform_and_lower (no delegate) -> .pte (ExecuTorch portable kernels)"
    delegate = "portable"


def _delegation(edge: Any, delegate: str) -> dict[str, Any]:
    """What went to the delegate: counts, and per operator how often it sits inside a delegated subgraph
    and outside (get_delegation_info's operator table, its `Total` row dropped)."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    rows = info.get_operator_delegation_dataframe().to_dict("records")
    ops = [{"op": str(r["op_type"]), "delegated": int(r["occurrences_in_delegated_graphs"]),
            "not_delegated": int(r["occurrences_in_non_delegated_graphs"])}
           for r in rows if r["op_type"] != "Total"]
    return {
        "backend": "XnnpackBackend" if delegate == "xnnpack" else None,
        "delegated_subgraphs": int(info.num_delegated_subgraphs),
        "delegated_nodes": int(info.num_delegated_nodes),
        "non_delegated_nodes": int(info.num_non_delegated_nodes),
        # getitem nodes only unpack a delegate's outputs: not operators a kernel runs.
        "not_delegated_ops": sorted({o["op"] for o in ops if o["not_delegated"] and o["op"] != "getitem"}),
        "ops": ops,
    }


def _summary(delegation: dict[str, Any]) -> str:
    """One line for the reports: how much went to the delegate, and which ops stayed on portable kernels."""
    total = delegation["delegated_nodes"] + delegation["non_delegated_nodes"]
    rest = ", ".join(delegation["not_delegated_ops"]) or "none"
    backend = delegation["backend"] or "no delegate"
    return f"{delegation['delegated_nodes']}/{total} nodes to {backend}; on portable kernels: {rest}"


def _version(distribution: str) -> str | None:
    from convcheck.environment import package_version

    return package_version(distribution)
