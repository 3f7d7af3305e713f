"""How much does convcheck's LoadGen harness add to what LoadGen measures?

The same ONNX Runtime session is served by MLPerf LoadGen through two systems under test, in one process,
in interleaved rounds so that machine drift hits both alike:
- bare: LoadGen's issue callback calls `session.run(None, feeds)` and completes the sample; nothing else;
- harness: convcheck's `validate.loadgen.Sut` over `OrtRuntime.timed_call(feeds)`, exactly as a
  `convcheck load` cell runs it.
First the harness's capacity search finds the highest Server QPS whose p99 stays within the bound
(--bound-x times the unloaded p50); then, at that QPS ("at the bound"), each round runs the Server
scenario with both SUTs and compares their p50; SingleStream is compared the same way. Prints the p50 of
each, and harness / bare - 1 (target: under 5% of p50 at the bound): the median of the per-round ratios.
Models: the zoo's tabular MLP (tens of microseconds a call, where any fixed cost shows) and ResNet-50
(tens of milliseconds), full size, exported with the dynamo exporter.

    python benchmarks/loadgen_overhead.py [--rounds 5] [--duration 2] [--bound-x 20] [--models mlp_tabular,resnet50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from convcheck.converter import ConvertContext
from convcheck.convert.onnx_from_torch import OnnxFromTorch
from convcheck.environment import physical_cores
from convcheck.registry import models
from convcheck.types import Artifact, Format, Target
from convcheck.validate.loadgen import EARLY_STOPPING_P99_QUERIES, LoadSettings, Sut, _loadgen, _run_once, serve
from convcheck.validate.runtimes.ort import OrtRuntime


class BareSut:
    """The least a LoadGen SUT can be: run the session in the issue callback, complete the sample."""

    def __init__(self, lg, session, feeds: list[dict]) -> None:  # noqa: ANN001
        self.lg, self.session, self.feeds, self.error = lg, session, feeds, None
        self.handle = lg.ConstructSUT(self.issue, lambda: None)

    def issue(self, samples) -> None:  # noqa: ANN001
        for s in samples:
            self.session.run(None, self.feeds[s.index])
            self.lg.QuerySamplesComplete([self.lg.QuerySampleResponse(s.id, 0, 0)])

    def close(self) -> None:
        self.lg.DestroySUT(self.handle)


def export(model: str, folder: Path) -> tuple[Artifact, list[dict]]:
    spec = models.get(model)
    feeds = [spec.feeds(i, fmt=Format.TORCH, size="full") for i in range(4)]
    ctx = ConvertContext(folder / model, list(spec.inputs_for(Format.TORCH, "full")), list(spec.outputs), feeds[0])
    return OnnxFromTorch().convert(spec.source_artifact(Format.TORCH, "full"), ctx), feeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0, help="LoadGen minimum duration per run, seconds")
    parser.add_argument("--bound-x", type=float, default=20.0, help="latency bound as a multiple of the unloaded p50")
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--models", default="mlp_tabular,resnet50")
    args = parser.parse_args()
    lg = _loadgen()
    print(f"ONNX Runtime CPU, {args.threads} intra-op threads, {args.rounds} interleaved rounds, LoadGen minimum "
          f"duration {args.duration:g} s per run")
    print(f"{'model':<13}{'scenario':<15}{'QPS':>9}{'bare p50 ms':>13}{'harness p50 ms':>16}{'overhead':>10}"
          "  (per round: min .. max)")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            artifact, feeds = export(model, Path(tmp))
            runtime = OrtRuntime(Target("ort", "cpu", "fp32"), args.threads)
            runtime.activate(artifact)
            raw = [{n: f[n] for n in runtime.input_names} for f in feeds]
            call = runtime.timed_call(feeds[0])
            for _ in range(20):
                call()
            unloaded = min(_time_one(call) for _ in range(50))
            bound = unloaded * args.bound_x
            search = LoadSettings(scenarios=(), latency_bound_ms=bound, duration_s=args.duration, capacity_trials=6)
            found = serve(runtime, feeds, search, unloaded, None, lambda outs: {"ok": True}, Path(tmp) / "search")
            qps = found["capacity"]["qps"] or found["capacity"]["trials"][-1]["target_qps"]
            settings = LoadSettings(scenarios=("server",), duration_s=args.duration)
            qsl = lg.ConstructQSL(len(feeds), len(feeds), lambda i: None, lambda i: None)
            harness = Sut(lg, [runtime.timed_call(f) for f in feeds], None, 1, 1, 0.0)
            bare = BareSut(lg, runtime.session, raw)
            for scenario, expect in (("server", {"target_qps": qps, "latency_bound_ms": bound,
                                                 "min_queries": EARLY_STOPPING_P99_QUERIES}),
                                     ("single-stream", {"latency_ms": unloaded})):
                ratios, p50s = [], {"bare": [], "harness": []}
                for r in range(args.rounds):
                    got = {}
                    for name, sut in (("bare", bare), ("harness", harness)) if r % 2 == 0 else \
                            (("harness", harness), ("bare", bare)):
                        got[name] = _run_once(lg, sut, qsl, scenario, settings, expect,
                                              Path(tmp) / f"{model}-{scenario}-{name}-{r}")["p50"]
                        p50s[name].append(got[name])
                    ratios.append(got["harness"] / got["bare"] - 1)
                shown = f"{qps:.4g}" if scenario == "server" else "—"
                print(f"{model:<13}{scenario:<15}{shown:>9}{statistics.median(p50s['bare']):>13.4f}"
                      f"{statistics.median(p50s['harness']):>16.4f}{statistics.median(ratios):>+10.2%}"
                      f"  ({min(ratios):+.2%} .. {max(ratios):+.2%})")
            print(f"{'':<13}bound {bound:.3g} ms ({args.bound_x:g} x unloaded p50 {unloaded:.3g} ms); capacity "
                  f"search: {found['capacity']['qps']} QPS valid, {found['capacity']['lowest_invalid_qps']} invalid")
            harness.close()
            bare.close()
            lg.DestroyQSL(qsl)
            runtime.deactivate()


def _time_one(call) -> float:  # noqa: ANN001
    import time

    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000.0


if __name__ == "__main__":
    main()
