"""Keep TVMScript's decorators from scanning every loaded module.

TVM's `@T.prim_func`, `@I.ir_module` and `@R.function` decorators call `inspect.stack()` to find the
caller's class and closure variables. `inspect.stack()` reads the source line of *every* frame on
the stack, and for a frame without a file on disk (each `<frozen importlib._bootstrap>` frame of an
import) `inspect.getmodule` walks all of `sys.modules`. TVM parses about 250 such functions when
MetaSchedule or dlight's CUDA rules import `tvm.s_tir.tensor_intrin`: measured here, that import took
93 s in a bare interpreter and 406 s inside the test process with torch, TensorFlow and JAX loaded
(about 30,000 modules), every time a TVM build first needed it.

TVM only reads frames' locals and the source line of the third frame (`is_defined_in_class`), so
the stack it gets here carries source lines for the innermost frames only. Measured: the same import
in about 4 s.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator

#: Frames that get their source line: the caller, the decorator and the line TVM inspects.
FRAMES_WITH_SOURCE = 4


def _stack(context: int = 1) -> list[inspect.FrameInfo]:
    frame = sys._getframe(1)
    frames: list[inspect.FrameInfo] = []
    while frame is not None:
        # A frame without a file (`<frozen ...>`) has no source to read, and asking costs the scan.
        if len(frames) < FRAMES_WITH_SOURCE and not frame.f_code.co_filename.startswith("<"):
            info = inspect.getframeinfo(frame, context)
            frames.append(inspect.FrameInfo(frame, *info, positions=info.positions))
        else:
            code = frame.f_code
            frames.append(inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, None, None,
                                            positions=None))
        frame = frame.f_back
    return frames


@contextlib.contextmanager
def cheap_script_frames() -> Iterator[None]:
    """Within the block, `inspect.stack()` skips the source of outer frames (see the module docstring)."""
    original = inspect.stack
    inspect.stack = _stack
    try:
        yield
    finally:
        inspect.stack = original


def init_tuning_worker() -> None:
    """MetaSchedule's builder/runner worker processes: cheap frames for good, intrinsics loaded now.

    Each `tvm.exec.popen_worker` is a fresh interpreter that parses the tensor-intrinsic library on
    its first build; without this it spends minutes there and hits the builder's timeout.
    """
    inspect.stack = _stack
    import tvm.s_tir.tensor_intrin  # noqa: F401 - the import is the point
