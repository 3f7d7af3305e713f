"""The loop of a worker process (local executor, toolchain environments): cells in over a connection,
cell records out, the worker's own output captured per cell."""

from __future__ import annotations

import os
import signal
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Iterator

from convcheck.executors.base import serve_cells

if TYPE_CHECKING:
    from convcheck.plan import RunSettings

#: Lines of a worker's own output kept per cell (the rest is in the worker's log file while it runs).
LOG_TAIL_LINES = 40


def tail(path: str, offset: int) -> tuple[list[str], int]:
    """The non-empty lines written to a worker's log file since `offset`, and the new offset."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return [], offset
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return [f"output: {ln}" for ln in lines[-LOG_TAIL_LINES:]], offset + len(data)


def worker_main(conn: Connection, settings: "RunSettings", registries: dict[str, dict[str, object]],
                log_path: str) -> None:
    """A worker: receives (index, planned cell) until told to stop; sends ("stage", index, task, stage)
    as each stage task starts and ("done", index, cell) at the end."""
    import faulthandler

    # The parent handles Ctrl-C; a worker must not die of it mid-cell and leave a half artifact.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Native code writes to the file descriptors, not sys.stderr: move both, not just Python's streams.
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    faulthandler.enable()  # a segfault leaves its Python traceback in the log, for the cell it killed

    def received() -> Iterator[tuple[int, Any]]:
        while (message := conn.recv()) is not None:
            yield message

    offset = os.path.getsize(log_path)
    for index, cell in serve_cells(settings, registries, received(),
                                   lambda i, task, stage: conn.send(("stage", i, task, stage))):
        lines, offset = tail(log_path, offset)
        cell["log"] = list(cell.get("log") or []) + lines
        conn.send(("done", index, cell))
