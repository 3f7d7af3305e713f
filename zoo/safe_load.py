"""Loading model files nobody on this team wrote without running code they carry.

- `.pt2` (torch.export): the archive format stores tensors as raw bytes, but `torch.export.load`
  still unpickles members a crafted file can declare: weights/constants marked `use_pickle`
  (`torch.load(weights_only=False)`), sample inputs (a `weights_only=False` fallback), custom and
  opaque objects (`pickle.loads`). `load_exported_program` refuses archives with custom/opaque
  object members before torch sees them, and forces every `torch.load` inside to weights-only
  (`TORCH_FORCE_WEIGHTS_ONLY_LOAD`), so a pickle that would run code fails instead.
- TensorFlow SavedModel: a signature is a graph, and graphs can hold ops that touch files or run
  Python (`WriteFile`, `PyFunc`, ...). `file_and_code_ops` lists such ops in a signature's graph
  and every function it calls, so a SavedModel is refused before its reference run executes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

from convcheck.errors import ConvcheckError

#: Ops a model's forward pass never needs, that read or write files, run Python, or talk to the OS.
#: (Variable restore ops are used by TensorFlow itself when it loads the SavedModel's own variables,
#: never inside a serving signature.)
TF_FILE_AND_CODE_OPS = frozenset({
    "WriteFile", "ReadFile", "MatchingFiles", "DeleteFile", "FileExists", "Save", "SaveV2", "SaveSlices",
    "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "ImmutableConst", "WriteSummary", "CreateSummaryFileWriter", "WriteAudioSummary", "WriteImageSummary",
    "WriteScalarSummary", "WriteHistogramSummary", "WriteRawProtoSummary", "WriteGraphSummary",
    "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "TextLineDatasetV2", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "ExperimentalLMDBDataset", "LMDBDataset", "SqlDataset", "ExperimentalSqlDataset",
    "LoadDataset", "SaveDataset", "SaveDatasetV2", "DatasetToTFRecord", "PrintV2", "Print", "DebugIdentityV2",
    "DebugIdentityV3", "DebugIdentity",
})


@contextlib.contextmanager
def _weights_only_torch_load() -> Iterator[None]:
    """Every `torch.load` in the block is weights-only, whatever its caller passed (read per call)."""
    saved = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)  # both set is an error in torch
    # torch.export logs a multi-line warning with a traceback before raising on a bad archive.
    quiet = [logging.getLogger(n) for n in ("torch.export", "torch._export", "torch.export.pt2_archive")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_pt2_archive(path: Path) -> None:
    """Refuse a .pt2 whose members torch would unpickle with plain `pickle` (custom/opaque objects)."""
    from torch.export.pt2_archive.constants import CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConvcheckError(f"{path}: not a readable torch.export program (.pt2) ({exc})") from None
    pickled = [n for n in names
               if os.path.basename(n).startswith((CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX))]
    if pickled:
        raise ConvcheckError(f"{path}: the .pt2 holds pickled Python objects ({pickled[0]}), which would run code "
                             "when loaded; convcheck loads only tensors and the graph (re-export without custom "
                             "or opaque objects)")
    if not any(n.endswith(("archive_format", "/version")) or n == "version" for n in names):
        raise ConvcheckError(f"{path}: not a torch.export program (.pt2): the zip has no archive_format/version "
                             "member (another kind of archive renamed to .pt2?)")


def load_exported_program(path: str | Path) -> Any:
    """`torch.export.load`, without running code the file carries."""
    import pickle

    import torch

    import warnings

    check_pt2_archive(Path(path))
    with _weights_only_torch_load(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the weights-only unpickler warns about protocols before refusing
        try:
            return torch.export.load(str(path))
        except pickle.UnpicklingError:
            raise ConvcheckError(f"{path}: the .pt2 holds a pickle that is not plain tensors (weights or sample "
                                 "inputs saved with pickle); refused, not run: re-save it with torch.export.save "
                                 "from plain tensors") from None


def file_and_code_ops(graph_def: Any) -> list[str]:
    """The file-touching or code-running op types in a TF GraphDef and its function library."""
    found = {n.op for n in graph_def.node if n.op in TF_FILE_AND_CODE_OPS}
    for function in graph_def.library.function:
        found |= {n.op for n in function.node_def if n.op in TF_FILE_AND_CODE_OPS}
    return sorted(found)
