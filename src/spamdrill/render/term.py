"""Outside text for the terminal (rich), one function for every renderer: log lines, run
documents, recipients and config values are data, so none may be read as rich markup
(``[link=...]``, ``[bold]``, or an unbalanced ``[/x]`` that crashed ``spamdrill logs``) or
reach the terminal as a control character (an escape sequence can recolour, retitle or
clear it; CR and newline can forge a line; bidi overrides reorder what is shown).

Control characters are shown as ``\\xNN`` (``\\uNNNN``), as the wrapper's syslog line does.
Emoji codes (``:smile:``) are the consoles' business: spamdrill's are made with
``emoji=False`` (``console``).
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.markup import escape

# C0, DEL, C1; the bidi embeddings, overrides and isolates; the line/paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                      "\u2066-\u2069]")


def _shown(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(value: object) -> str:
    """``value`` as one line of visible text: every control character shown escaped."""
    return _CONTROL.sub(_shown, "" if value is None else str(value))


# backslashes before a "[" that does not open a tag (rich.markup's tag: [a-z#/@]...])
_BEFORE_BRACKET = re.compile(r"(\\+)(?=\[(?![a-z#/@][^[]*?\]))")


def safe(value: object) -> str:
    """``value`` for a rich markup string or table cell: ``plain``, markup escaped.
    Backslashes at its end are doubled: before a tag that follows (``[/red]``) rich shows
    half of them, and an odd count would escape the tag (``rich.markup.escape`` doubles
    only a single one); at the very end of a cell they show doubled. Backslashes before a
    ``[`` that opens no tag get one more: rich reads ``\\[`` in text as an escaped bracket
    and drops the backslash, which ``escape`` leaves alone (a log line's ``\\[`` was
    shown as ``[``)."""
    text = plain(value)
    body = text.rstrip("\\")
    trailing = len(text) - len(body)
    return escape(_BEFORE_BRACKET.sub(r"\1\\", body)) + "\\" * (2 * trailing)


def console(**kw: Any) -> Console:
    """A console that reads no emoji codes in text (data could carry them)."""
    return Console(emoji=False, **kw)
