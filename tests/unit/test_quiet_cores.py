"""convcheck.quiet_cores with real processes and real flock(2) locks: a timing never overlaps another
worker's untimed work, a timer is not starved by workers taking turns, and a dead worker frees the cores."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

from convcheck.quiet_cores import QuietCores


def _converter(folder: Path, log: Path, stages: int, seconds: float) -> None:
    """A worker converting: `stages` back-to-back stages in one shared hold, yielding between them."""
    cores = QuietCores(folder)
    with cores.shared():
        for _ in range(stages):
            start = time.monotonic()
            time.sleep(seconds)
            with log.open("a") as f:
                f.write(f"shared {start} {time.monotonic()}\n")
            cores.let_timers_in()


def _timer(folder: Path, log: Path, delay: float) -> None:
    time.sleep(delay)
    cores = QuietCores(folder)
    with cores.shared():
        with cores.exclusive() as waited:
            start = time.monotonic()
            time.sleep(0.2)
            with log.open("a") as f:
                f.write(f"exclusive {start} {time.monotonic()} {waited}\n")


def _spans(log: Path) -> list[tuple[str, float, float]]:
    return [(kind, float(a), float(b)) for kind, a, b, *_ in (line.split() for line in log.read_text().splitlines())]


def test_a_timing_waits_for_the_other_workers_stage_and_never_overlaps_it(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "log"
    # Two converters taking turns (each stage 0.3 s) would keep a shared hold on the cores forever
    # between them; the timer, arriving mid-stage, must get in after the current stages end.
    workers = [ctx.Process(target=_converter, args=(tmp_path, log, 6, 0.3)) for _ in range(2)]
    workers.append(ctx.Process(target=_timer, args=(tmp_path, log, 0.5)))
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    spans = _spans(log)
    exclusive = [s for s in spans if s[0] == "exclusive"]
    assert len(exclusive) == 1
    _, start, end = exclusive[0]
    for kind, a, b in spans:
        if kind == "shared":
            assert b <= start or a >= end, f"a shared stage {a:.2f}-{b:.2f} overlapped the timing {start:.2f}-{end:.2f}"
    # Not starved: timed before the converters' last stages (each has 6 x 0.3 s of work).
    assert any(a >= end for kind, a, b in spans if kind == "shared")


def _hold_forever(folder: Path) -> None:
    cores = QuietCores(folder)
    with cores.shared():
        time.sleep(60)


def test_a_killed_worker_leaves_the_cores_free(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    holder = ctx.Process(target=_hold_forever, args=(tmp_path,))
    holder.start()
    time.sleep(1.0)  # it holds the cores now
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(timeout=10)
    started = time.monotonic()
    with QuietCores(tmp_path).exclusive() as waited:
        pass
    assert time.monotonic() - started < 5 and waited < 5


def test_a_timing_inside_a_shared_hold_takes_it_back_after(tmp_path: Path):
    cores = QuietCores(tmp_path)
    with cores.shared():
        with cores.exclusive() as waited:
            assert waited < 1 and cores.held_alone
        assert cores._shared
    assert not cores._shared
    cores.close()


def test_a_converter_timing_inside_a_cell_uses_the_cells_own_hold(tmp_path: Path, monkeypatch):
    """TVM's tuning takes an exclusive hold from inside a cell's shared one (same process): one object per
    process, or the second flock would wait on the first forever."""
    from convcheck.quiet_cores import machine_cores

    monkeypatch.setenv("CONVCHECK_LOCK_DIR", str(tmp_path))
    cell = machine_cores()
    with cell.shared():
        with machine_cores().exclusive() as waited:
            assert machine_cores() is cell and waited < 1


def test_lock_files_that_cannot_be_made_leave_timings_uncoordinated_not_failed(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cores = QuietCores(blocker / "locks")  # a folder under a file: cannot be made
    with cores.shared():
        with cores.exclusive() as waited:
            assert waited == 0.0 and not cores.held_alone
    assert cores.unavailable and "a-file" in cores.unavailable


def test_a_stuck_holder_delays_a_timing_by_the_bound_only(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    holder = ctx.Process(target=_hold_forever, args=(tmp_path,))
    holder.start()
    try:
        time.sleep(1.0)
        cores = QuietCores(tmp_path)
        cores.max_wait_s = 0.5
        with cores.exclusive() as waited:
            assert not cores.held_alone and 0.5 <= waited < 3
        with cores.shared():  # shared holds still coexist with it
            pass
    finally:
        holder.kill()
        holder.join(timeout=10)
    with cores.exclusive():
        assert cores.held_alone
