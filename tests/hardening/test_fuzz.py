"""Fuzzing `convcheck check`: hypothesis mutates valid small model files (ONNX, TFLite: overwritten
bytes, inserted bytes, truncation) and every run must end cleanly — a one-line refusal (exit 2) or
cells with honest statuses (exit 0/1), never a traceback or a dead `convcheck`.

CI runs a few derandomised examples per format (each is a real CLI process, ~4 s);
`make fuzz` runs many random ones (CONVCHECK_FUZZ_EXAMPLES, default there 200).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.conftest import run_cli  # noqa: E402
from tests.hardening.test_bad_inputs import corpus_module  # noqa: E402

EXAMPLES = int(os.environ.get("CONVCHECK_FUZZ_EXAMPLES", "6"))
LONG = "CONVCHECK_FUZZ_EXAMPLES" in os.environ
KNOWN = {"pass", "mismatch", "vacuous", "convert_error", "runtime_error", "unsupported", "crashed", "timeout",
         "oom", "missing_dep", "no_device", "upstream_failed"}
SEEDS: dict[str, bytes] = {}


def _seed(kind: str, tmp_root: Path) -> bytes:
    if not SEEDS:
        paths = corpus_module.build_seeds(tmp_root)
        for key, path in paths.items():
            SEEDS[Path(path).suffix] = Path(path).read_bytes()
    return SEEDS[kind]


mutation = st.one_of(
    st.tuples(st.just("set"), st.floats(0, 1, allow_nan=False), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.floats(0, 1, allow_nan=False), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("cut"), st.floats(0.05, 1, allow_nan=False), st.just(b"")),
)


def _mutate(blob: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    data = bytearray(blob)
    for kind, where, payload in edits:
        at = min(int(where * len(data)), max(len(data) - 1, 0))
        if kind == "set":
            data[at:at + len(payload)] = payload
        elif kind == "insert":
            data[at:at] = payload
        else:
            del data[at:]
    return bytes(data)


@pytest.mark.framework
@pytest.mark.slow
@pytest.mark.parametrize("suffix, route", [(".onnx", "onnx/ort"), (".tflite", "tflite/tflite")])
def test_mutated_model_files_end_cleanly(suffix, route, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    seed = _seed(suffix, root / "seeds")
    counter = iter(range(10**6))

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(mutation, min_size=1, max_size=4))
    def run(edits):
        case = root / f"case{next(counter)}"
        case.mkdir()
        model = case / f"model{suffix}"
        model.write_bytes(_mutate(seed, edits))
        proc = run_cli("check", str(model), "--routes", route, "--samples", "1", "--bench-seconds", "0",
                       "--bench-iters", "1", "--timeout", "120", "--out", str(case / "out"), timeout=300)
        text = proc.stdout + proc.stderr
        assert "Traceback" not in text, (edits, text[-2000:])
        assert proc.returncode in (0, 1, 2), (edits, proc.returncode, text[-2000:])
        if proc.returncode == 2:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("error:"), (edits, proc.stderr)
            assert not (case / "out").exists()
        else:
            cells = json.loads((case / "out" / "results.json").read_text())["cells"]
            assert cells and all(c["status"] in KNOWN for c in cells), (edits, cells)

    run()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
