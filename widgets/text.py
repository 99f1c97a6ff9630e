"""Untrusted text, made safe to show: every pane and the timeline use these, so a control
character or a bidi override looks the same everywhere, and nothing is ever parsed as markup.

:func:`printable` keeps one line one line (control characters become visible placeholders);
:func:`safe_text` also folds newlines and bounds the length, for panes; :func:`truncate_cells`
cuts to a terminal width. The results are still data: put them in a ``Segment``, a ``Text`` or a
``Content``, never through markup parsing.
"""

from __future__ import annotations

from typing import Final

from rich.cells import cell_len, set_cell_size

#: Longest external string a pane shows; the rest is cut with an ellipsis.
MAX_TEXT = 400

# Control characters become their visible "control picture" (ESC → ␛): shown, never obeyed.
_PLACEHOLDERS: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20)}  # ␀ … ␟
_PLACEHOLDERS[0x7F] = "␡"
_PLACEHOLDERS.update({code: "�" for code in range(0x80, 0xA0)})  # C1 controls (CSI 0x9b, …)
# Characters that reorder or break a terminal line: bidi embeddings, overrides and isolates
# ("Trojan Source"), and the Unicode line and paragraph separators.
_PLACEHOLDERS.update({code: "�" for code in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                              *range(0x2066, 0x206A))})
_TRANSLATION: Final = str.maketrans({**_PLACEHOLDERS, 0x2028: "␤", 0x2029: "␤"})
_ONE_LINE: Final = str.maketrans({**_PLACEHOLDERS, 0x2028: " ", 0x2029: " "})
_MULTI_LINE: Final = str.maketrans({**_PLACEHOLDERS, ord("\n"): "\n", ord("\t"): "    ",
                                    0x2028: "\n", 0x2029: "\n"})


def printable(text: str) -> str:
    """``text`` with every control character replaced by a visible, one-cell placeholder.

    ESC becomes ``␛``, NUL ``␀``, TAB ``␉``, CR ``␍``, LF ``␊``, DEL ``␡``; C1 controls and bidi
    overrides become ``�``.
    """
    return text.translate(_TRANSLATION)


def safe_text(value: object, *, limit: int = MAX_TEXT, multiline: bool = False) -> str:
    """An outside string made safe to show literally: no markup, no escapes, bounded length.

    Newlines, tabs and carriage returns fold to single spaces (unless ``multiline``), other
    control characters are shown as control pictures (``\\x1b`` → ``␛``), and text longer than
    ``limit`` characters is cut with ``…``.
    """
    text = "" if value is None else str(value)
    if multiline:
        text = text.replace("\r\n", "\n").translate(_MULTI_LINE)
    else:
        text = " ".join(text.replace("\r\n", "\n").split("\n"))
        text = text.replace("\t", " ").replace("\r", " ").translate(_ONE_LINE)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def truncate_cells(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``width`` terminal cells, ending in ``ellipsis`` if it was cut.

    Wide (CJK, emoji) characters count as two cells. Very long strings are pre-cut by characters
    first so that a 5,000-character note costs no more than a short one.
    """
    if width <= 0:
        return ""
    # A character is at most two cells wide; allow generously for zero-width ones.
    limit = width * 4 + 16
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    if not cut and cell_len(text) <= width:
        return text
    room = width - cell_len(ellipsis)
    if room <= 0:
        return ellipsis[:width]
    if cell_len(text) <= room:
        return text + ellipsis
    # set_cell_size pads with a space when a wide character straddles the cut: drop it.
    return set_cell_size(text, room).rstrip(" ") + ellipsis
