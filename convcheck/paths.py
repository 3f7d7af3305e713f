"""Where convcheck keeps state between runs: one per-user folder, moved as a whole by CONVCHECK_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    if os.environ.get("CONVCHECK_HOME"):
        return Path(os.environ["CONVCHECK_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "convcheck"


def cache_dir() -> Path:
    return home() / "cache"
