"""How much does convcheck's latency harness add to what it measures?

Times the same ONNX Runtime session two ways, in one process, interleaved so that machine drift
hits both alike:
- bare: `for _ in range(n): session.run(None, feeds)` timed as a whole, divided by n;
- harness: `convcheck.validate.latency.measure` over `OrtRuntime.timed_call(feeds)` (each call timed
  alone with perf_counter_ns, samples kept), exactly as a matrix cell does, its mean.
Prints the per-model mean latency of each and the ratio harness / bare - 1 (target: under 1%): the
median of the per-round ratios, and the ratio of the best rounds (least disturbed by the machine). Models: the zoo's tabular MLP (a call of tens of microseconds, where any fixed
cost shows) and ResNet-50 (tens of milliseconds), full size, exported with the dynamo exporter.

    python benchmarks/harness_overhead.py [--rounds 7] [--seconds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from convcheck.converter import ConvertContext
from convcheck.convert.onnx_from_torch import OnnxFromTorch
from convcheck.environment import physical_cores
from convcheck.registry import models
from convcheck.types import Artifact, Format, Target
from convcheck.validate.latency import LatencyConfig, measure
from convcheck.validate.runtimes.ort import OrtRuntime


def export(model: str, folder: Path) -> tuple[Artifact, dict]:
    spec = models.get(model)
    feeds = spec.feeds(0, fmt=Format.TORCH, size="full")
    ctx = ConvertContext(folder / model, list(spec.inputs_for(Format.TORCH, "full")), list(spec.outputs), feeds)
    return OnnxFromTorch().convert(spec.source_artifact(Format.TORCH, "full"), ctx), feeds


def bare_mean_ms(session, feeds: dict, seconds: float) -> float:
    """A plain loop: the cheapest way to call the session repeatedly, timed as a whole."""
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds / 4:  # calibrate the count: no clock inside the loop
        session.run(None, feeds)
        n += 1
    count = max(3, int(n * 4))
    t0 = time.perf_counter_ns()
    for _ in range(count):
        session.run(None, feeds)
    return (time.perf_counter_ns() - t0) / count / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per method and round")
    parser.add_argument("--threads", type=int, default=physical_cores())
    args = parser.parse_args()
    config = LatencyConfig(warmup_iters=5, warmup_seconds=0.2, min_iters=30, min_seconds=args.seconds)
    print(f"ONNX Runtime CPU, {args.threads} intra-op threads, {args.rounds} interleaved rounds, "
          f"{args.seconds:g} s per method per round")
    print(f"{'model':<14}{'bare mean ms':>14}{'harness mean ms':>17}{'overhead':>10}{'best rounds':>13}"
          "  (per round: min .. max)")
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("mlp_tabular", "resnet50"):
            artifact, feeds = export(model, Path(tmp))
            runtime = OrtRuntime(Target("ort", "cpu", "fp32"), args.threads)
            runtime.activate(artifact)
            session = runtime.session
            raw = {n: feeds[n] for n in runtime.input_names}
            for _ in range(20):  # warm caches and thread pools before the first round
                session.run(None, raw)
            ratios, bare_all, harness_all = [], [], []
            for _ in range(args.rounds):
                bare = bare_mean_ms(session, raw, args.seconds)
                harness = measure(runtime.timed_call(feeds), config)["mean"]
                bare_all.append(bare)
                harness_all.append(harness)
                ratios.append(harness / bare - 1)
            runtime.deactivate()
            print(f"{model:<14}{statistics.median(bare_all):>14.4f}{statistics.median(harness_all):>17.4f}"
                  f"{statistics.median(ratios):>+10.2%}{min(harness_all) / min(bare_all) - 1:>+13.2%}"
                  f"  ({min(ratios):+.2%} .. {max(ratios):+.2%})")


if __name__ == "__main__":
    main()
