"""TVMScript's decorators under convcheck.convert.tvm_frames: same parse, no walk of sys.modules.

Before the fix, importing TVM's tensor intrinsics (the first MetaSchedule search, dlight's CUDA
matmul rule) took 93 s in a bare interpreter and 406 s in the CI test process: every frame of
`inspect.stack()` below an import asked `inspect.getmodule`, which walks all of sys.modules.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types

import pytest

pytestmark = pytest.mark.framework

tvm = pytest.importorskip("tvm")

from convcheck.convert.tvm_frames import cheap_script_frames  # noqa: E402

SCRIPT = '''
from tvm.script import ir as I, tirx as T

SCALE = 2.0


def make():
    offset = 1.0

    @T.prim_func
    def affine(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
        for i in range(4):
            b[i] = a[i] * T.float32(SCALE) + T.float32(offset)

    return affine


@I.ir_module
class Module:
    @T.prim_func
    def double(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
        for i in range(4):
            b[i] = a[i] * T.float32(2)


FUNC = make()
'''


def _import_script(tmp_path, name):
    """Import SCRIPT as a module from a file, so its decorators run under real import frames."""
    path = tmp_path / f"{name}.py"
    path.write_text(SCRIPT)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@pytest.fixture
def scans(monkeypatch):
    """How often inspect.getmodule was asked about a frame without a file (`<frozen importlib...>`):
    it can never find one, so each time it walks all of sys.modules."""
    count = {"n": 0}
    real = inspect.getmodule

    def counting(obj, _filename=None):
        try:
            name = _filename or inspect.getfile(obj)
        except TypeError:
            name = ""
        count["n"] += str(name).startswith("<")
        return real(obj, _filename)

    monkeypatch.setattr(inspect, "getmodule", counting)
    return count


def test_scripts_parse_the_same_without_scanning_modules(tmp_path, scans):
    plain = _import_script(tmp_path, "convcheck_tvmscript_plain")
    without = scans["n"]
    scans["n"] = 0
    with cheap_script_frames():
        cheap = _import_script(tmp_path, "convcheck_tvmscript_cheap")
    assert without >= 20, "the plain parse asks getmodule about each import frame (what the fix avoids)"
    assert scans["n"] == 0
    # Closure and module variables resolved, the class-level prim_func kept inside its IRModule.
    tvm.ir.assert_structural_equal(cheap.FUNC, plain.FUNC)
    tvm.ir.assert_structural_equal(cheap.Module, plain.Module)
    assert [gv.name_hint for gv in cheap.Module.get_global_vars()] == ["double"]
    assert inspect.stack is not None and inspect.stack.__module__ == "inspect", "the patch is undone"


def test_the_patch_is_undone_after_an_error():
    original = inspect.stack
    with pytest.raises(RuntimeError):
        with cheap_script_frames():
            raise RuntimeError("boom")
    assert inspect.stack is original


def test_frames_keep_what_tvm_reads():
    def probe():
        return inspect.stack()

    with cheap_script_frames():
        frames = probe()
    assert frames[0].function == "probe" and frames[0].code_context
    assert frames[1].function == "test_frames_keep_what_tvm_reads"
    assert all(isinstance(f.frame, types.FrameType) for f in frames)
