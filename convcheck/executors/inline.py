"""`inline`: every cell in this process, one after another (debugging: a breakpoint stops where you
expect). A converter that segfaults takes the run down with it: use `local` for real runs. Cells of a
toolchain environment (convcheck.toolchains) still run in a worker with that environment's interpreter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

from convcheck.executors.base import Executor, Finished, run_planned

if TYPE_CHECKING:
    from convcheck.plan import PlannedCell


class InlineExecutor(Executor):
    def run(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[Finished]:
        from convcheck.executors.local import run_env_cells

        # A cell of a toolchain environment needs that environment's interpreter: a local worker runs it.
        yield from run_env_cells(self, cells, on_start, self._run_here)

    def _run_here(self, cells: list["PlannedCell"], on_start: Callable[[int], None]) -> Iterator[Finished]:
        from convcheck.pipeline import CellRunner

        runner = CellRunner(self.settings)
        for index, planned in enumerate(cells):
            on_start(index)
            yield index, run_planned(runner, planned)
