"""Error classes.

`ConvcheckError` is the user's mistake (an unknown route, a bad path): the CLI prints its one-line
message and exits 2, with no traceback. Anything else escaping the CLI is a bug in convcheck.
A failing *cell* is neither: it is data (a Status in results.json), never an exception that stops a run.
"""

from __future__ import annotations


#: Where a user reports convcheck's own bugs (shown with every internal_error).
REPORT_BUGS = "this is a bug in convcheck, not a finding about the route: please report it with the cell's log"


class ConvcheckError(Exception):
    """A usage error, with a message that names the thing and the fix."""


class CellFailure(Exception):
    """Raised inside a cell's stages to end the cell with a given status.

    `status` is one of `Status`; `stage` names where it happened (export, convert, load, run, compare,
    benchmark); `op` is the operator a converter or runtime choked on, where its message names one.
    `message` is one line (at most 400 characters) naming the op and the reason; `detail` is the
    framework's whole text behind it (ANSI stripped, at most 200 lines; `convcheck.failures.classify`
    fills it), for the cell's log: "" where there is none beyond the message.
    """

    def __init__(self, status: str, message: str, stage: str, op: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.stage = stage
        self.op = op
        self.detail = detail


class ConvcheckBug(Exception):
    """convcheck's own code failed inside a stage (the MIL reference executor computing an op): the cell is
    an `internal_error`, never a finding about the route. `classify` turns it into that status."""
