"""A worker process in a toolchain environment (convcheck.envs): the same worker loop as `local`'s,
started with the environment's interpreter instead of this one.

multiprocessing's spawn cannot do this: it hands the child the parent's `sys.path`, so the child would
import the main environment's packages (the very typing-extensions the environment exists to avoid).
Here the child is `ENV/bin/python -m convcheck.executors.env_worker FD LOG` with one end of a socket
pair as FD: the parent sends (settings, registries, extra import paths) first, then the same
(index, planned cell) messages as to a local worker, and reads the same replies. Cells, artifacts and
reference outputs cross as pickles and files, as they do between any two workers.

`EnvProcess` gives the parent what it uses of a multiprocessing.Process: pid, is_alive, exitcode
(negative for a signal), sentinel (a pidfd, for multiprocessing.connection.wait), kill and join.
"""

from __future__ import annotations

import os
import pickle
import site
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def _import_paths() -> list[str]:
    """The parent's import paths that are not an environment's own (the repository, a test folder with
    planted converters): the child appends them after its own site-packages, never before."""
    own = {os.path.realpath(p) for p in [*site.getsitepackages(), site.getusersitepackages(), sys.prefix,
                                        sys.base_prefix] if p}
    keep = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if any(real == o or real.startswith(o + os.sep) for o in own) or "site-packages" in real:
            continue
        keep.append(entry)
    return keep


class EnvProcess:
    """A worker running `python` (an environment's interpreter)."""

    def __init__(self, python: Path, settings: Any, registries: dict[str, dict[str, object]], log_path: str) -> None:
        self.python = python
        self.payload = payload(settings, registries)
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None
        self.sentinel = -1
        self.conn: Connection | None = None

    def start(self) -> Connection:
        ours, theirs = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PYTHONNOUSERSITE"] = "1"
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                [str(self.python), "-m", "convcheck.executors.env_worker", str(theirs.fileno()), self.log_path],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                cwd=os.getcwd())
        finally:
            log.close()
            theirs.close()
        self.sentinel = os.pidfd_open(self.popen.pid)
        self.conn = Connection(ours.detach())
        self.conn.send_bytes(self.payload)
        return self.conn

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen else 0

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def is_alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        if self.is_alive():
            self.popen.kill()  # type: ignore[union-attr]

    def join(self, timeout: float | None = None) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return
        if self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1


def main(argv: list[str]) -> None:
    fd, log_path = int(argv[0]), argv[1]
    conn = Connection(fd)
    settings, registries = _load_payload(conn.recv_bytes())
    from convcheck.executors.worker import worker_main

    worker_main(conn, settings, registries, log_path)


def payload(settings: Any, registries: dict[str, dict[str, object]]) -> bytes:
    """What the parent sends first: the settings and registries pickled inside, so that the child can set
    its import paths before it unpickles them (a planted test converter lives in the parent's tests/)."""
    return pickle.dumps((pickle.dumps(settings), pickle.dumps(registries), _import_paths()))


def _load_payload(data: bytes) -> tuple[Any, dict[str, dict[str, object]]]:
    settings_blob, registries_blob, paths = pickle.loads(data)
    for entry in paths:
        if entry not in sys.path:
            sys.path.append(entry)
    return pickle.loads(settings_blob), pickle.loads(registries_blob)


if __name__ == "__main__":
    main(sys.argv[1:])
