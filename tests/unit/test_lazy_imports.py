"""`--help`, `routes`, `models` must import no ML framework (they must stay instant, and work without them)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "tensorflow", "tvm", "coremltools", "openvino", "onnxruntime", "onnx", "tensorrt", "keras",
         "ai_edge_litert", "tf2onnx", "ray", "polygraphy")

SCRIPT = """
import sys
from convcheck import cli
sys.argv = ["convcheck", *{args!r}]
try:
    cli.app()
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["routes"], ["routes", "--json"], ["models"],
                                  ["matrix", "--help"]])
def test_command_imports_no_framework(args):
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(args=args, heavy=HEAVY)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY:"))
    assert line == "HEAVY:", f"`convcheck {' '.join(args)}` imported {line[6:]}"
