"""Every file a run leaves for people, rendered from its results document (results.json or the store).

`write_reports` is what `convcheck matrix`, `check`, `audit` and `report RUN` call: lock-in scores
are (re)computed from the document's own cells, then matrix.md, matrix.html, junit.xml and one
Markdown + one HTML page per model are written, each through a temporary file and a rename, so a
half-written report is never left where a reader (or a CI artifact upload) would take it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convcheck.atomic import write_text_atomic
from convcheck.reports.status_groups import default_fail_on

__all__ = ["default_fail_on", "parse_fail_on", "score", "write_reports"]


def parse_fail_on(value: str | None) -> set[str]:
    """`--fail-on mismatch,convert_error` -> those statuses; `none` -> never fail; None -> the default."""
    from convcheck.errors import ConvcheckError
    from convcheck.types import Status

    if value is None:
        return default_fail_on()
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["none"]:
        return set()
    known = {s.value for s in Status}
    groups = {"failures": default_fail_on(), "all": known - {Status.PASS.value}}
    chosen: set[str] = set()
    for name in names:
        if name in groups:
            chosen |= groups[name]
        elif name in known:
            chosen.add(name)
        else:
            raise ConvcheckError(f"--fail-on {name!r} is not a status: use any of {', '.join(sorted(known))}, "
                                 "`failures` (the default set), `all` or `none`")
    return chosen


def score(document: dict[str, Any], lockin_weights: Path | None = None) -> dict[str, Any]:
    """Attach the lock-in score to every cell (the run's last DAG task: it reads every cell)."""
    from convcheck.reports.lockin import load_lockin_data, score_document

    return score_document(document, load_lockin_data(lockin_weights))


def _write(path: Path, text: str) -> None:
    """A report file, atomically (the name `convcheck audit` imports)."""
    write_text_atomic(path, text)


def write_reports(document: dict[str, Any], out_dir: Path, fail_on: set[str] | None = None) -> dict[str, Path]:
    """matrix.md, matrix.html, junit.xml and models/<page>.md|.html from a (scored) document."""
    from convcheck.reports.html import model_page_name, render_matrix_html, render_model_html
    from convcheck.reports.junit import render_junit
    from convcheck.reports.markdown import render_matrix_md, render_model_md

    written = {
        "matrix.md": out_dir / "matrix.md",
        "matrix.html": out_dir / "matrix.html",
        "junit.xml": out_dir / "junit.xml",
    }
    _write(written["matrix.md"], render_matrix_md(document, link=model_page_name))
    _write(written["matrix.html"], render_matrix_html(document))
    _write(written["junit.xml"], render_junit(document, fail_on))
    for model in dict.fromkeys(c["model"] for c in document["cells"]):
        page = model_page_name(model)
        stem = page[:-5] if page.endswith(".html") else page
        _write(out_dir / "models" / f"{stem}.md", render_model_md(document, model))
        _write(out_dir / "models" / f"{stem}.html", render_model_html(document, model))
    return written
