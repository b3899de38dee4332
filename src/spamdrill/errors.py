"""One exception type for everything a user can fix.

The CLI prints ``SpamdrillError`` as one line (what is wrong, then what to do) and exits
non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SpamdrillError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} -- {self.hint}" if self.hint else self.message


def bad(where: str, what: str, allowed: str = "") -> SpamdrillError:
    """One line naming the file and line, what is wrong, and what is allowed."""
    return SpamdrillError(f"{where}: {what}", allowed)
