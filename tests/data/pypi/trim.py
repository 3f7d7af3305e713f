"""Record PyPI JSON responses for tests/integration/test_ecosystem.py, trimmed to what convcheck.ecosystem reads.

    python tests/data/pypi/trim.py jax ai-edge-torch onnxruntime   # fetches from pypi.org, writes <name>.json here

Each release keeps one file's upload time and yanked flag (the earliest file: the release's day)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from convcheck.ecosystem import fetch_pypi


def trim(document: dict) -> dict:
    releases = {}
    for version, files in document.get("releases", {}).items():
        if files:
            first = min(files, key=lambda f: f["upload_time_iso_8601"])
            releases[version] = [{"upload_time_iso_8601": first["upload_time_iso_8601"],
                                  "yanked": all(f.get("yanked") for f in files),
                                  "yanked_reason": first.get("yanked_reason")}]
    info = document.get("info", {})
    return {"info": {"name": info.get("name"), "version": info.get("version"), "classifiers": info.get("classifiers")},
            "releases": releases, "vulnerabilities": document.get("vulnerabilities", [])}


if __name__ == "__main__":
    here = Path(__file__).parent
    for package in sys.argv[1:]:
        (here / f"{package}.json").write_text(json.dumps(trim(fetch_pypi(package)), indent=0, sort_keys=True) + "\n")
