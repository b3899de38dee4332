"""maildrop with a generated filter shaped like the field report's /etc/maildroprc.

The report's global /etc/maildroprc is compiled into maildrop; the lab never writes /etc, so
it runs maildrop in filter-file mode (``maildrop FILTER USER``, ``$1`` is the user) with the
same logic: below a size limit, ``xfilter`` through spamc; spam to ``.Spam/``; log each step
(to the lab's log file: these machines have no syslog).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.lab.config import LabConfig
from spamdrill.lab.layout import Layout


def spamc_command(config: LabConfig, host: str, port: int,
                  layout: Layout | None = None) -> list[str]:
    """spamc as maildrop's xfilter runs it; ``-u`` is appended per user in the filter.
    With ``client = "spamdrill-spamc"``, its launcher, installed where pipe(8)'s user can
    run it (``lab.wrappers.install_spamc``). With ``client = "none"``, nothing."""
    if config.maildrop.client == "none":
        return []
    if config.maildrop.client == "rspamc":  # the lab's rspamd normal worker (lab.rspamd)
        from spamdrill.lab.rspamd import rspamc

        return [rspamc(), "-h", f"{host}:{port}", "--mime", *config.maildrop.spamc_args]
    if config.maildrop.client == "spamdrill-spamc":
        if layout is None:
            raise SpamdrillError("spamdrill-spamc in the xfilter needs the lab's run directory")
        from spamdrill.lab.wrappers import install_spamc

        spamc = str(install_spamc(layout.root))
    else:
        spamc = shutil.which("spamc") or "/usr/bin/spamc"
    return [spamc, "-d", host, "-p", str(port), *config.maildrop.spamc_args]


# maildrop delivers nothing for an empty message and exits 0 ("Empty message, do not
# deliver.": FormatMbox::HasMsg in maildrop's formatmbox.C, checked first in deliver.C), so
# an xfilter that prints nothing and exits 0 (spamc, given a success with no message)
# loses the mail with every wrapper. $SIZE is the filtered message's size: defer instead.
EMPTY_GUARD = """\
    if ( $SIZE == 0 )
    {
      log "Empty after the spam filter: $LABUSER (deferred)"
      echo "the spam filter returned an empty message; try again later"
      EXITCODE=75
      exit
    }
"""


# $1 is the recipient's local part (pipe(8)'s ${user}): text a stranger chose, and xfilter
# runs its command through /bin/sh. Only what maildrop itself matched against a strict
# pattern is used ($MATCH, and only if it is the whole of $1: maildrop's $ also matches
# before a final newline); anything else is refused as an unknown user (67, EX_NOUSER)
# before any command or path is built from it.
USER_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]*$"
# what a spamc argument in the generated xfilter may hold: the same words whether maildrop
# or sh reads them (no variable, quote, escape, space or glob)
_SAFE_ARG = re.compile(r"[A-Za-z0-9_./:=,@%+-]+\Z")
RECIPIENT_GUARD = f"""\
LABUSER=""
if ( $1 =~ /{USER_PATTERN}/ )
{{
  LABUSER="$MATCH"
}}
if ( $LABUSER eq "" || $LABUSER ne $1 )
{{
  echo "no such lab user"
  EXITCODE=67
  exit
}}
"""


def render_filter(layout: Layout, config: LabConfig, spamc: list[str]) -> str:
    """The field report's maildroprc: its xfilter inside ``exception { }`` (a failing
    filter is caught and the mail delivered as it is), or, with ``in_exception = false``,
    before it: then a failing xfilter (spamc -x) fails the delivery, and maildrop exits
    75 (EX_TEMPFAIL) for Postfix to try again. With ``empty_guard``, an xfilter that
    leaves the message empty defers it (75) rather than let maildrop drop it. With no
    ``spamc`` (``client = "none"``: a milter scanned before the queue), no xfilter."""
    for arg in spamc:  # maildrop expands $VAR and \ in xfilter's string before sh sees it
        if not _SAFE_ARG.match(arg):
            raise SpamdrillError(f"spamc argument {arg!r} for the lab's xfilter holds a "
                                 "character maildrop or the shell would interpret",
                                 "give spamc's flags as plain words (no $, quotes, "
                                 "backslashes or spaces)")
    quoted = " ".join(shlex.quote(a) for a in spamc)
    # spamc's -u names the user whose preferences apply; rspamc's -u would claim an
    # authenticated sender, its -d names the recipient (rspamc --help)
    user_flag, spam_header = ("-d", "X-Spam: yes") if config.maildrop.client == "rspamc" \
        else ("-u", "X-Spam-Flag: YES")
    scan = "" if not spamc else f"""\
  if ( $SIZE < {config.maildrop.size_limit} )
  {{
    log "Checking for spam: $LABUSER"
    xfilter "{quoted} {user_flag} $LABUSER"
{EMPTY_GUARD if config.maildrop.empty_guard else ""}  }}
"""
    inside, outside = (scan, "") if config.maildrop.in_exception else \
        ("", scan.replace("\n  ", "\n").removeprefix("  "))
    return f"""\
# spamdrill lab maildroprc (generated): the field report's /etc/maildroprc, in filter mode
{RECIPIENT_GUARD}# maildrop runs xfilter through $SHELL, taken from the passwd entry: for a system
# user (nobody, debian-spamd) that is nologin, and every xfilter fails
SHELL="/bin/sh"
DEFAULT="{layout.mail_dir}/$LABUSER/Maildir"
logfile "{layout.maildrop_log}"
{outside}
exception {{
{inside}  if (/^{spam_header}/)
  {{
    exception {{
      log "Found spam: $LABUSER"
      to "$DEFAULT/.Spam/"
    }}
  }}
  else
  {{
    log "Delivering: $LABUSER $DEFAULT"
  }}
}}
to "$DEFAULT/"
"""


def _maildirmake(*args: str) -> None:
    try:
        done = subprocess.run(["maildirmake", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise SpamdrillError("maildirmake not found (Debian package maildrop)",
                             "run scripts/setup.sh") from None
    if done.returncode != 0:
        raise SpamdrillError(f"maildirmake {' '.join(args)} failed: {done.stderr.strip()}")


def setup(layout: Layout, config: LabConfig, spamd_host: str, spamd_port: int) -> None:
    """Maildirs with quotas (and a .Spam folder) for each lab user, and the filter file."""
    layout.maildrop_dir.mkdir(parents=True, exist_ok=True)
    for user in config.users:
        maildir = layout.maildir(user)
        maildir.parent.mkdir(parents=True, exist_ok=True)
        if not maildir.exists():
            _maildirmake(str(maildir))
            _maildirmake("-f", "Spam", str(maildir))
            _maildirmake("-q", config.maildrop.quota, str(maildir))
    text = render_filter(layout, config, spamc_command(config, spamd_host, spamd_port,
                                                       layout))
    layout.maildroprc.write_text(text)
    # maildrop refuses a filter file that others can write
    os.chmod(layout.maildroprc, 0o600)


@dataclass(frozen=True)
class MaildropRun:
    status: int
    stderr: str
    seconds: float


def deliver(layout: Layout, user: str, message: bytes, timeout: float = 600.0) -> MaildropRun:
    """Run the real maildrop on one message, as Postfix's pipe(8) would. Refused as root
    once the Maildirs belong to another user (``postfix.grant_mail``): maildrop run as
    root would write through whatever that user planted there."""
    owner = os.lstat(layout.mail_dir).st_uid
    if os.geteuid() == 0 and owner != 0:
        raise SpamdrillError(f"{layout.mail_dir} belongs to uid {owner}: root will not "
                             "deliver into a directory another user owns",
                             "deliver as that user, or take the lab down and up again")
    t0 = time.monotonic()
    done = subprocess.run(
        ["maildrop", str(layout.maildroprc), user],
        input=message, capture_output=True, timeout=timeout,
    )
    return MaildropRun(done.returncode, done.stderr.decode(errors="replace"),
                    time.monotonic() - t0)


def count_messages(layout: Layout, user: str, folder: str = "") -> int:
    """Messages in the user's inbox, or in ``.Spam`` etc. (both new/ and cur/)."""
    base: Path = layout.maildir(user) / folder if folder else layout.maildir(user)
    return sum(1 for sub in ("new", "cur") if (base / sub).is_dir()
               for _ in (base / sub).iterdir())
