"""The content-addressed artifact cache: a conversion whose inputs have not changed is not run again.

A hop's key covers its input artifact's digest (for the first hop, the model's fingerprint: code,
size, inputs; for later hops, the sha256 of the artifact the previous hop wrote), the converter class
and its options, the target where the hop depends on it (a TensorRT engine for fp16), the model's
declared inputs and outputs, the versions of the packages the hop uses, convcheck's version and the
source of the converter's module (with the convcheck modules it imports: `cache.code_digest`; a
converter fixed in place once kept handing out the artifact its broken predecessor wrote). So
one ONNX export is reused by every later run that needs it — a new runtime added to the matrix
converts nothing it already has.

An entry is a folder `<cache>/artifacts/<key[:2]>/<key>/` holding a copy of the artifact's files
(not hard links: onnx refuses external data with several links, "a potential hardlink attack") and
`artifact.json`
(format, entry file, metadata, digest). It is assembled in a temporary folder and renamed into place
in one step, so a run killed mid-copy leaves no half entry; when two runs cache the same artifact at
once, the first rename wins and the other run uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from convcheck.types import Artifact, Format
from convcheck.version import __version__

CACHE_FORMAT = 1


def hop_key(upstream_digest: str | None, converter: type, options: Any, target_id: str | None,
            inputs: list[Any], outputs: list[str]) -> str | None:
    """None when the input has no digest (nothing to key on): the hop is then not cached."""
    if not upstream_digest:
        return None
    from convcheck.cache import code_digest
    from convcheck.environment import package_version

    material = {
        "format": CACHE_FORMAT, "convcheck": __version__, "upstream": upstream_digest,
        "converter": f"{converter.__module__}:{converter.__qualname__}", "options": repr(options),
        "code": code_digest((converter.__module__,)),
        "target": target_id, "inputs": repr(inputs), "outputs": outputs,
        "versions": {r.distribution: package_version(r.distribution)
                     for r in getattr(converter, "requires", ())},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


class ArtifactCache:
    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder = folder / "artifacts"
        self.enabled = enabled

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def get(self, key: str | None) -> Artifact | None:
        if not self.enabled or key is None:
            return None
        entry = self._entry(key)
        try:
            meta = json.loads((entry / "artifact.json").read_text())
        except (OSError, ValueError):
            return None
        path = entry / "files"
        if not path.exists():
            return None
        return Artifact(format=Format(meta["format"]), path=path, sha256=meta["sha256"], bytes=meta["bytes"],
                        metadata={**meta["metadata"], "cached_from": str(entry)})

    def put(self, key: str | None, artifact: Artifact) -> None:
        """Cache a sealed artifact (a folder or a file); errors are swallowed: caching is an optimisation."""
        if not self.enabled or key is None or artifact.path is None or not artifact.sha256:
            return
        entry = self._entry(key)
        if entry.exists():
            if self.get(key) is not None:
                return
            shutil.rmtree(entry, ignore_errors=True)  # a broken entry (its writer died): replace it
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".tmp-"))
            try:
                if artifact.path.is_dir():
                    shutil.copytree(artifact.path, staging / "files")
                else:
                    (staging / "files").mkdir()
                    shutil.copy2(artifact.path, staging / "files" / artifact.path.name)
                meta = {"format": artifact.format.value, "sha256": artifact.sha256, "bytes": artifact.bytes,
                        "metadata": {k: v for k, v in artifact.metadata.items() if _jsonable(v)}}
                if not artifact.path.is_dir():
                    meta["metadata"]["entry"] = artifact.path.name
                (staging / "artifact.json").write_text(json.dumps(meta, default=str))
                os.rename(staging, entry)  # atomic; fails if another run got there first
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            pass


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
