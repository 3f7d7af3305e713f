"""`convcheck doctor`: packages, versions, devices, host, and proof that each framework imports.

pip's exit code is not proof: a resolver that downgrades typing-extensions leaves apache-tvm-ffi
failing at import time. So each installed framework is imported in its own subprocess (in
parallel, with a timeout), which also keeps this process free of every framework.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.table import Table

from convcheck.environment import KNOWN_PACKAGES, devices, gpus, host, package_version

#: distribution -> the module to import to prove it works.
IMPORT_CHECKS: dict[str, str] = {
    "numpy": "numpy",
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "onnxscript": "onnxscript",
    "tensorflow-cpu": "tensorflow",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "tf2onnx": "tf2onnx",
    "coremltools": "coremltools",
    "apache-tvm": "tvm",
    "openvino": "openvino",
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "polygraphy": "polygraphy",
    "tensorrt": "tensorrt",
    "ray": "ray",
}
IMPORT_TIMEOUT_S = 180


def import_check(module: str) -> tuple[bool, str]:
    """Import `module` in a fresh interpreter; (ok, last line of the error)."""
    try:
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                              timeout=IMPORT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, f"import {module} did not finish in {IMPORT_TIMEOUT_S} s"
    if proc.returncode == 0:
        return True, ""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return False, lines[-1] if lines else f"exit code {proc.returncode}"


def report(console: Console, check_imports: bool = True) -> int:
    """Print the doctor's tables; returns the exit code (1 if an installed framework fails to import)."""
    h = host()
    console.print(f"[bold]host[/bold]  {h['cpu']} · {h['cores']} cores · "
                  f"{(h['memory_bytes'] or 0) / 2**30:.1f} GiB · {h['os']} · Python {h['python']}")
    console.print(f"[bold]devices[/bold]  {', '.join(devices())}"
                  + (f"  ({'; '.join(gpus())})" if gpus() else "  (no CUDA GPU found by nvidia-smi)"))
    versions = {d: package_version(d) for d in KNOWN_PACKAGES}
    to_check = [d for d, v in versions.items() if v and d in IMPORT_CHECKS] if check_imports else []
    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = dict(zip(to_check, pool.map(lambda d: import_check(IMPORT_CHECKS[d]), to_check)))
    table = Table(title="packages")
    table.add_column("package")
    table.add_column("version")
    table.add_column("imports" if check_imports else "")
    broken = 0
    for dist, version in versions.items():
        if dist == "tensorflow" and versions.get("tensorflow-cpu"):
            continue
        if version is None:
            table.add_row(dist, "[dim]not installed[/dim]", "")
            continue
        ok, why = checks.get(dist, (True, ""))
        broken += not ok
        mark = "" if dist not in checks else ("[green]ok[/green]" if ok else f"[red]fails: {why}[/red]")
        table.add_row(dist, version, mark)
    console.print(table)
    if broken:
        console.print(f"[red]{broken} installed package(s) fail to import: routes through them will fail.[/red]")
    return 1 if broken else 0
