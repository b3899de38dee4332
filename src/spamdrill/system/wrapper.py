"""What runs maildrop for Postfix, and what it does with maildrop's exit 75 (sans-IO).

Not what the budget uses for an outcome: ``spamdrill budget`` runs the wrapper
(``spamdrill.budget.sandbox``) and uses its measured table. This reading stays for
recognising spamdrill-deliver, for line citations, and for the lab a system is shaped
into (``spamdrill.shaped.labconfig``).

Recognised: maildrop itself (Postfix's pipe(8) sees its status: 75 defers), and
spamdrill-deliver (its console script, or a launcher it wrote). Analysed: a shell or Perl
script, by the lines that compare a status with 75 (or 77) or look for "timeout" in
maildrop's output, and the ``exit N`` they lead to; ``exec maildrop`` and ``exit $?`` /
``exit($? >> 8)`` pass the status through. Anything else is unknown, and the budget then
assumes the worst seen in the field report (75 becomes a bounce), saying so in every row
it decides. Postfix's verdict on an exit status: ``spamdrill.proto.postfix_pipe``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spamdrill.proto.postfix_pipe import judge

LAUNCHER_MARK = "# spamdrill-deliver launcher"  # spamdrill.deliver.admin.LAUNCHER_MARK
_EXIT = re.compile(r"\bexit\s*\(?\s*(\d+)\s*\)?")
_SEVENTYFIVE = re.compile(r"(==|-eq|=)\s*\"?75\b|\b75\"?\s*(==|-eq)|^\s*75\)|\|\s*75\)")
_TIMEOUT = re.compile(r"timeout", re.I)
_PASS = re.compile(r"\bexit\s*\(?\s*(\$\?\s*>>\s*8|\"?\$\?\"?|\$\w*(status|code|rc)\w*)",
                   re.I)


@dataclass(frozen=True)
class Wrapper:
    kind: str  # none | spamdrill-deliver | bounce-on-75 | unknown
    path: str
    timeout_defers: bool  # maildrop's "Timeout quota exceeded." (75) ends as a deferral
    assumption: str = ""  # said in each budget row the wrapper decides
    findings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def model_kind(self) -> str:
        """The budget model's wrapper kind; unknown wrappers are taken at their worst."""
        return "bounce-on-75" if self.kind == "unknown" else self.kind


def recognise(argv: list[str], text: str | None) -> Wrapper:
    """``argv``: pipe(8)'s command; ``text``: the program's file, if it could be read."""
    if not argv:
        return Wrapper("none", "", True)
    path = argv[0]
    name = path.rsplit("/", 1)[-1]
    if name == "maildrop":
        return Wrapper("none", path, True)
    if name == "spamdrill-deliver" or (text is not None and (
            LAUNCHER_MARK in text or "spamdrill.deliver" in text)):
        return Wrapper("spamdrill-deliver", path, True)
    if text is None:
        return _unknown(path, "its file is not under the root given")
    return analyse(path, text)


def analyse(path: str, text: str) -> Wrapper:
    first = text.splitlines()[0] if text else ""
    if not first.startswith("#!") or not re.search(r"\b(sh|bash|dash|ksh|perl)\b", first):
        return _unknown(path, "not a shell or Perl script")
    lines = [re.sub(r"(^|\s)#.*", "", ln) for ln in text.splitlines()]
    if any(re.match(r"\s*exec\s+\S*maildrop\b", ln) for ln in lines):
        return Wrapper("none", path, True, findings=(f"{path}: execs maildrop: Postfix "
                                                     "sees maildrop's own status",))
    on_75 = _exit_after(lines, _SEVENTYFIVE)
    on_timeout = _exit_after(lines, _TIMEOUT)
    findings = []
    if on_timeout is not None:
        findings.append(f"{path}:{on_timeout[1]}: maildrop's 'timeout' text -> exit "
                        f"{on_timeout[0]} ({_verdict(on_timeout[0])})")
    if on_75 is not None:
        findings.append(f"{path}:{on_75[1]}: status 75 -> exit {on_75[0]} "
                        f"({_verdict(on_75[0])})")
        if "perl" in first and not any(_PASS.search(ln) for ln in lines):
            findings.append(f"{path}: any other failure of maildrop falls off the end: "
                            "exit 0, Postfix counts the mail delivered (lost)")
        bounces = _verdict(on_75[0]) == "bounced"
        timeout_defers = (on_timeout is not None and _verdict(on_timeout[0]) == "deferred"
                          and on_timeout[1] <= on_75[1]) or not bounces
        return Wrapper("bounce-on-75" if bounces else "none", path, timeout_defers,
                       findings=tuple(findings))
    if any(_PASS.search(ln) for ln in lines):
        return Wrapper("none", path, True, findings=(
            *findings, f"{path}: passes maildrop's status on: 75 defers"))
    return _unknown(path, "no exit mapping of 75 found in it")


def _exit_after(lines: list[str], pattern: re.Pattern[str]) -> tuple[int, int] | None:
    """(exit code, line number) of the first ``exit N`` on or up to 3 lines after a line
    matching ``pattern``."""
    for n, line in enumerate(lines):
        if pattern.search(line):
            for k in range(n, min(n + 4, len(lines))):
                m = _EXIT.search(lines[k])
                if m:
                    return int(m.group(1)), k + 1
    return None


def _verdict(status: int) -> str:
    return judge(exit_status=status, signal=None, output=b"").action


def _unknown(path: str, why: str) -> Wrapper:
    return Wrapper("unknown", path, False, assumption=(
        f"wrapper {path} unknown ({why}): assumed to turn maildrop's 75 into a bounce, as "
        "the field report's did"))
