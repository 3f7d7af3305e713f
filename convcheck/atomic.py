"""Every file convcheck writes for someone else to read (results.json, the reports, cache entries) goes
through a temporary file in its folder and a rename: a reader (a resumed run, a CI artifact upload)
finds the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """`data` at `path` (its folder made), by a flushed, synced temporary file renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, errors: str = "strict") -> None:
    """`text` as UTF-8 at `path`, atomically. errors="replace" keeps a lone surrogate (valid in JSON, so
    possible in a user's string) from stopping the report."""
    write_bytes_atomic(path, text.encode("utf-8", errors))


def write_json_atomic(path: Path, data: Any, indent: int | None = 2) -> None:
    """`data` as JSON (no NaN: JSON has none) at `path`, atomically."""
    text = json.dumps(data, indent=indent, allow_nan=False) + ("\n" if indent is not None else "")
    write_bytes_atomic(path, text.encode("utf-8"))
