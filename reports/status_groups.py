"""What a status means to a reader, once for every report: its mark and colour, and its group.

Three groups a reader acts on: `pass`; `notrun` — could not run *here* (a package or device is missing:
a stated reason, not a failure of the route, never recommended by the audit); `failure` — everything
else, a status this convcheck does not know included (someone must look at it). The terminal's rich
colours are the single source of the grouping by colour: the HTML report maps each to a CSS class.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from convcheck.types import Status

#: Could not run here: a stated reason, not a failure of the route (the audit calls these unverified).
NOT_HERE = (Status.MISSING_DEP.value, Status.NO_DEVICE.value)

#: status -> (mark, rich colour); the terminal, Markdown and HTML reports all draw from it.
STYLE = {
    "pass": ("✔", "green"),
    "mismatch": ("✘", "red"),
    "vacuous": ("∅", "yellow"),
    "convert_error": ("✘", "red"),
    "runtime_error": ("✘", "red"),
    "unsupported": ("⊘", "magenta"),
    "crashed": ("☠", "red"),
    "timeout": ("⏱", "red"),
    "oom": ("✘", "red"),
    "missing_dep": ("–", "dim"),
    "no_device": ("–", "dim"),
    "upstream_failed": ("↑", "red"),
    "internal_error": ("!", "bold red"),
}

#: The rich colour of STYLE -> the HTML reports' CSS class (the same grouping, one source of truth).
CSS_OF_RICH = {"green": "s-pass", "red": "s-fail", "yellow": "s-warn", "magenta": "s-unsup", "dim": "s-skip"}


def mark(status: str) -> str:
    """The status's one-character mark; `?` for a status this convcheck does not know."""
    return STYLE.get(status, ("?", "red"))[0]


def status_css(status: str) -> str:
    """The HTML class of a status; an unknown status is drawn as a failure."""
    return CSS_OF_RICH.get(STYLE.get(status, ("?", "red"))[1], "s-fail")


def group(status: str) -> str:
    """pass / failure / notrun: what a reader acts on. An unknown status counts as a failure."""
    if status == Status.PASS.value:
        return "pass"
    return "notrun" if status in NOT_HERE else "failure"


def is_failure(status: str) -> bool:
    """Status.is_failure, and True for a status from a newer convcheck: show it rather than hide it."""
    return group(status) == "failure"


def default_fail_on() -> set[str]:
    """The statuses that fail a run (exit 1, a JUnit <failure>) unless --fail-on says otherwise."""
    return {s.value for s in Status if s.is_failure}


def status_index(status: str) -> int:
    """Status order of the enum (pass, mismatch, vacuous, ...); unknown statuses last."""
    order = [s.value for s in Status]
    return order.index(status) if status in order else len(order)


def status_counts(cells: Iterable[dict[str, Any]]) -> Counter:
    """How many cells have each status, in the order the statuses first appear."""
    return Counter(c["status"] for c in cells)


def failures(cells: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failing cells, in document order."""
    return [c for c in cells if is_failure(c["status"])]


def not_here(cells: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells that could not run on this machine, in document order."""
    return [c for c in cells if c["status"] in NOT_HERE]
