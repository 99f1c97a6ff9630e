"""Markdown that stays literal: user text in a PIR or a draft can never break its structure.

User text (titles, notes, reasons, evidence, names) is not rewritten. Only markdown structure is
protected: in table cells ``|`` becomes ``\\|`` and newlines ``<br>``; in running text,
continuation lines are indented and a leading block marker (``#``, ``>``, ``-``, ``<``...) is
backslash-escaped, so a note cannot open a heading, a list, a table or an HTML block. Control
characters (ANSI escapes...) are shown as ``\\x1b`` rather than obeyed, since exports are printed
to terminals; bidi controls as ``\\u202e``; HTML tags and character references are escaped, and
images and link targets become plain text.

Import-light: the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# --- text that stays literal but cannot break the markdown ---------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What may open a block at the start of a line: heading, quote, list, thematic break / setext
# underline, fence, table row or delimiter, HTML block. An ordered-list number is handled apart.
_BLOCK_MARKER = re.compile(r"^[#>+*=`~|:<_-]")
_ORDERED = re.compile(r"^(\d{1,9})([.)])")


# Characters that change how text around them reads without being seen: bidi embeddings,
# overrides and isolates (text that reads differently from what it is: "Trojan Source"), zero-width
# and invisible characters, line/paragraph separators, and lone surrogates (bytes that were not
# UTF-8). Zero-width joiner (U+200D) stays: emoji sequences use it, and it reorders nothing.
_INVISIBLE = re.compile(
    "[\u061c\u180e\u200b\u200c\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff\ud800-\udfff]"
)
# HTML a renderer would obey: a tag, a comment, a declaration, a processing instruction or an
# autolink (``<`` before a letter, ``/``, ``!`` or ``?``), and character references (``&lt;``).
_HTML_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# Markdown that would fetch or link: an image (``![alt](url)``) loads a URL when the PIR is merely
# viewed; a link can point anywhere. Both stay readable as text.
_IMAGE = re.compile(r"!(?=\[)")
_LINK_TARGET = re.compile(r"\]\(")


# Any character one of the rules above may act on: text without one (nearly all of it) is
# returned as it is, after one search instead of six substitutions.
_NEEDS_CARE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b\u200c\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff&<!\\]]"
)


#: Where a loop over many lines skips :func:`md_inline`: None means ``md_inline(text)`` (and
#: :func:`visible`) would return ``text`` as it is.
needs_care = _NEEDS_CARE.search


def visible(text: str) -> str:
    """User text made safe to render, and literal: newlines normalised to ``\\n``; control,
    bidi and invisible characters shown as escapes (``\\x1b``, ``\\u202e``), not obeyed; HTML
    tags and character references escaped (``&lt;script>``); images and link targets made plain
    text."""
    if _NEEDS_CARE.search(text) is None:
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    text = _INVISIBLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    text = _ENTITY.sub("&amp;", text)
    text = _HTML_OPEN.sub("&lt;", text)
    text = _IMAGE.sub("\\!", text)
    return _LINK_TARGET.sub("]\\(", text)


def _safe_line_start(line: str) -> str:
    line = line.lstrip()
    ordered = _ORDERED.match(line)
    if ordered:
        return f"{ordered.group(1)}\\{ordered.group(2)}{line[ordered.end():]}"
    if _BLOCK_MARKER.match(line):
        return "\\" + line
    return line


def md_inline(text: object, indent: str = "  ") -> str:
    """User text inside a paragraph or list item that already started on this line.

    The first line is kept as is (it never starts a line); later lines are indented by
    ``indent`` (the list item's content column) and cannot open a block. Blank lines are dropped
    so a note cannot end the list item.
    """
    shown = visible(text if type(text) is str else str(text))
    if "\n" not in shown:
        return shown
    lines = shown.split("\n")
    rest = [indent + _safe_line_start(line) for line in lines[1:] if line.strip()]
    return "\n".join([lines[0], *rest])


def md_line(text: object) -> str:
    """User text on a heading's line: line breaks become spaces, and a trailing ``#`` is escaped
    so it cannot be read as the heading's closing sequence (and dropped)."""
    line = " ".join(part.strip() for part in visible(str(text)).split("\n") if part.strip())
    return line[:-1] + "\\#" if line.endswith("#") else line


def md_cell(text: object, empty: str = "—") -> str:
    """User text in a table cell: ``|`` escaped, newlines as ``<br>``, never empty."""
    shown = visible(text if type(text) is str else str(text))
    if "\n" not in shown:
        cell = shown.strip().replace("|", "\\|")
        return cell or empty
    lines = [line.strip() for line in shown.split("\n")]
    cell = "<br>".join(line for line in lines if line).replace("|", "\\|")
    return cell or empty


def md_code(text: object) -> str:
    """Text as an inline code span (a query as sent): one line, control and invisible
    characters shown as escapes, fenced with more backticks than it holds in a row."""
    shown = " ".join(str(text).split())
    shown = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", shown)
    shown = _INVISIBLE.sub(lambda match: f"\\u{ord(match.group()):04x}", shown)
    longest = max((len(run) for run in re.findall("`+", shown)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}" if shown else "—"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GFM table; cells must already be :func:`md_cell`-safe."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --- numbers and times ---------------------------------------------------------------------------


def and_list(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def hours_minutes(seconds: float) -> str:
    """The template's ``Xh Ym`` (whole minutes, rounded down): ``2520`` → ``0h 42m``."""
    minutes = int(max(0.0, seconds)) // 60
    return f"{minutes // 60}h {minutes % 60:02d}m"

