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

from convcheck.environment import devices, gpus, host, known_packages, known_requirements, module_present, \
    package_version

IMPORT_TIMEOUT_S = 180


def import_checks() -> dict[str, str]:
    """distribution -> the module to import to prove it works, from the hops' and runtimes' declared
    requirements (Requirement.import_check, else its module). A distribution that comes with another
    (keras beside tensorflow-cpu) is checked under its own module name where it has one."""
    checks = {"numpy": "numpy", "ray": "ray", "mlcommons-loadgen": "mlperf_loadgen"}
    for req in known_requirements():
        checks.setdefault(req.distribution, req.import_check or req.module)
        for other in req.also:
            own = other.replace("-", "_")
            checks.setdefault(other, own if module_present(own) else req.import_check or req.module)
    return checks


#: Beyond the import, for frameworks whose known breakage only shows when used: apache-tvm 0.27 with
#: apache-tvm-ffi 0.1.15 imports fine and segfaults serialising any DataType (MetaSchedule tuning).
SMOKE_TESTS = {"tvm": "import tvm; tvm.ir.load_json(tvm.ir.save_json(tvm.ir.PrimType('int32')))"}


def import_check(module: str) -> tuple[bool, str]:
    """Import `module` (and run its smoke test) in a fresh interpreter; (ok, last line of the error)."""
    code = SMOKE_TESTS.get(module, f"import {module}")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=IMPORT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, f"import {module} did not finish in {IMPORT_TIMEOUT_S} s"
    if proc.returncode == 0:
        return True, ""
    if proc.returncode < 0:  # a signal: the last stderr line is the crash dump's, not a message
        return False, f"`{code}` crashed (signal {-proc.returncode}): check the versions pinned in constraints.txt"
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return False, lines[-1] if lines else f"exit code {proc.returncode}"


def toolchain_versions() -> dict[str, str]:
    """For the distributions only toolchain environments hold (litert-torch, executorch): where they are."""
    from convcheck.environment import canonical
    from convcheck.envs import list_envs
    from convcheck.registry import converters, runtimes

    found: dict[str, str] = {}
    for registry in (converters, runtimes):
        for _, cls in registry.loadable_items():
            toolchain = getattr(cls, "toolchain", None)
            if toolchain is None:
                continue
            for req in getattr(cls, "requires", ()):
                found.setdefault(req.distribution, f"[dim]in the {toolchain.name} environment (made on first use)[/dim]")
    for env in list_envs():
        for dist in list(found):
            version = env["packages"].get(canonical(dist))
            if version and env["complete"]:
                found[dist] = f"{version} (environment {env['name']})"
    return found


def report(console: Console, check_imports: bool = True) -> int:
    """Print the doctor's tables; returns the exit code (1 if an installed framework fails to import)."""
    h = host()
    console.print(f"[bold]host[/bold]  {h['cpu']} · {h['cores']} cores · "
                  f"{(h['memory_bytes'] or 0) / 2**30:.1f} GiB · {h['os']} · Python {h['python']}")
    console.print(f"[bold]devices[/bold]  {', '.join(devices())}"
                  + (f"  ({'; '.join(gpus())})" if gpus() else "  (no CUDA GPU found by nvidia-smi)"))
    versions = {d: package_version(d) for d in known_packages()}
    modules = import_checks()
    to_check = [d for d, v in versions.items() if v and d in modules] if check_imports else []
    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = dict(zip(to_check, pool.map(lambda d: import_check(modules[d]), to_check)))
    in_envs = toolchain_versions()
    table = Table(title="packages")
    table.add_column("package")
    table.add_column("version")
    table.add_column("imports" if check_imports else "")
    broken = 0
    for dist, version in versions.items():
        if dist == "tensorflow" and versions.get("tensorflow-cpu"):
            continue
        if version is None:
            table.add_row(dist, in_envs.get(dist, "[dim]not installed[/dim]"), "")
            continue
        ok, why = checks.get(dist, (True, ""))
        broken += not ok
        mark = "" if dist not in checks else ("[green]ok[/green]" if ok else f"[red]fails: {why}[/red]")
        table.add_row(dist, version, mark)
    console.print(table)
    if broken:
        console.print(f"[red]{broken} installed package(s) fail to import: routes through them will fail.[/red]")
    return 1 if broken else 0
