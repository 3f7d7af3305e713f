"""The one place a document's strings are made safe for the page they land on.

Every string of a results document (model, output and op names, error messages, versions) may come
from a user's model, so each goes through exactly one of these at the point where it is placed:

- `md_escape`: Markdown (matrix.md, models/<page>.md, audit.md) — a table cell and running text alike;
- `esc`: HTML text and attribute values (matrix.html, models/<page>.html, audit.html);
- `script_json`: the JSON data block an HTML page's script reads;
- `xml_text` (junit.py) keeps its own XML 1.0 rule, and shares `ANSI` from here.

The figures convcheck formats itself (numbers, marks) need none of them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from html import escape
from typing import Any, Iterable
from urllib.parse import quote

# ANSI colour/cursor sequences (a converter's coloured log) are dropped whole, not just their ESC byte,
# so "\x1b[31mERROR" reads "ERROR" instead of "[31mERROR".
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Line breaks of every kind collapse to one space: a table row must stay on one line.
_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")
# Markdown punctuation that can start emphasis, code, links, headings, tables, strike-through, math or
# a hard break; backslash-escaping is the CommonMark/GFM way and keeps the raw file readable.
_MD_PUNCT = re.compile(r"([\\`*_\[\]#|~$])")
# HTML: entities, not backslashes, because `\<` is not an escape in every renderer; `&` first so an
# entity already in the text (`&lt;`) shows as typed instead of being decoded.
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# At the start of a string (a list item, a line of text), these would open a list or a setext heading:
# `- x`, `+ x`, `1. x`, `1) x`, `===`. (`>` and `#` are escaped everywhere already.)
_LEADING_BLOCK = re.compile(r"^(?:([-+=])|(\d{1,9})([.)])(?=\s|$))")
# What a <script type="application/json"> block must not hold raw: `</script>`, `<!--`, the JS line separators.
_SCRIPT_UNSAFE = (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


# --- text shaping ---------------------------------------------------------------------------------------------

def plain(text: Any) -> str:
    """One line of printable text: ANSI sequences, control and bidi-override characters removed
    (U+202E can make a name read backwards), every run of line breaks and tabs one space."""
    s = ANSI.sub("", str(text))
    s = _BREAKS.sub(" ", s).replace("\t", " ")
    return "".join(ch for ch in s if unicodedata.category(ch) not in ("Cc", "Cf", "Cs") or ch == "\u200d")


def clip(text: str, limit: int | None, rstrip: bool = True) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis (trailing blanks of the kept
    part dropped unless `rstrip` is False)."""
    if limit is None or len(text) <= limit:
        return text
    kept = text[: max(limit - 1, 0)]
    return (kept.rstrip() if rstrip else kept) + "…"


def first_line(text: Any, limit: int | None = None) -> str:
    """The first non-blank-trimmed line of `text` ('' for none), clipped to `limit` characters."""
    stripped = str(text or "").strip()
    return clip(stripped.splitlines()[0] if stripped else "", limit, rstrip=False)


# --- Markdown ---------------------------------------------------------------------------------------------------

def md_escape(text: Any, limit: int | None = None) -> str:
    """Any document string made safe as a Markdown table cell and as running text.

    Collapses it to one line, clips it to `limit` characters (before escaping, so an escape is never
    cut in half), then escapes HTML as entities (`<script>` shows as text, also in renderers that
    pass raw HTML through) and Markdown punctuation with backslashes (`|` cannot split a table row).
    """
    if text is None:
        return "—"
    s = clip(plain(text).strip(), limit)
    s = "".join(_HTML.get(ch, ch) for ch in s)
    s = _MD_PUNCT.sub(r"\\\1", s)
    return _LEADING_BLOCK.sub(lambda m: "\\" + m[1] if m[1] else m[2] + "\\" + m[3], s)


def md_url(path: str) -> str:
    """A relative link target: percent-encoded, so a space or `)` cannot end the link early."""
    return quote(path, safe="/._-~")


def md_table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """A GFM table, one line per row; cells are already escaped (or convcheck's own text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell if cell != "" else " " for cell in row) + " |" for row in rows]
    return lines


# --- HTML -------------------------------------------------------------------------------------------------------

def esc(value: Any) -> str:
    """HTML text or attribute value: quotes escaped too, so one function is safe in both places."""
    return escape("" if value is None else str(value), quote=True)


def script_json(data: Any) -> str:
    """JSON for a <script type="application/json"> block: `</script>`, `<!--` and the JS line separators
    cannot appear raw, so no string of the data can end the block or be read as markup."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    for raw, safe in _SCRIPT_UNSAFE:
        text = text.replace(raw, safe)
    return text
