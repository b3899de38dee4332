"""Which optional extra brings which import (pyproject.toml's optional-dependencies).

A production mail host installs ``pip install spamdrill`` and nothing more: doctor (without
--verify), logs, budget, spamdrill-deliver and spamdrill-spamc import none of these. A
command that does need one, on a machine without it, says in one line which extra to
install instead of a traceback (the CLI's main turns the ModuleNotFoundError into this).
"""

from __future__ import annotations

from spamdrill.errors import SpamdrillError

# top-level import name -> (the extra that installs it, what needs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "bokeh": ("html", "the plots of HTML pages"),
    "numpy": ("html", "the plots of HTML pages"),
    "pymysql": ("lab", "the lab's MariaDB client"),
    "dnslib": ("lab", "the lab's DNS server"),
    "locust": ("dist", "distributed floods"),
    "gevent": ("dist", "distributed floods"),
}


def missing(exc: ModuleNotFoundError) -> SpamdrillError | None:
    """The one-line error for an optional package that is not installed; None for any
    other missing module (a bug, which keeps its traceback)."""
    top = (exc.name or "").partition(".")[0]
    if top not in EXTRAS:
        return None
    extra, what = EXTRAS[top]
    return SpamdrillError(
        f"{top} is not installed (for {what})",
        f"install the {extra} extra: pip install 'spamdrill[{extra}]' "
        "(scripts/setup.sh installs every extra on a lab box)")
