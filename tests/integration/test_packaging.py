"""`pip install .` builds a wheel in which the root folders are convcheck subpackages."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_maps_card_folders_into_the_convcheck_namespace(tmp_path):
    wheel_dir = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(wheel_dir), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel = next(wheel_dir.glob("convcheck-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("convcheck/cli.py", "convcheck/convert/onnx_from_torch.py", "convcheck/validate/parity.py",
                     "convcheck/validate/runtimes/ort.py", "convcheck/zoo/mlp_tabular.py",
                     "convcheck/reports/terminal.py", "convcheck/schemas/results.schema.json"):
        assert expected in names, f"{expected} missing from {wheel.name}"
    assert not any(n.startswith(("convert/", "validate/", "zoo/", "reports/", "tests/")) for n in names)

    # Installed from the wheel (not the editable checkout), the package imports and lists its routes.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import convcheck, convcheck.convert.onnx_from_torch as c; from convcheck.routes import enumerate_routes;"
            "print(convcheck.__file__); print([r.id for r in enumerate_routes()])")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.splitlines()[0]).is_relative_to(target)
    assert "torch/onnx/ort" in out.stdout
