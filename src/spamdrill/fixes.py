"""One catalog of fixes, keyed by failure mode (sans-IO): what ``spamdrill budget`` suggests
for a mode and what ``spamdrill logs`` says beside a mode it found are the same words,
written once here.

A fix may name numbers the budget computes from the system's configs (``{t_max}``: the
largest spamc ``-t`` that stays under maildrop's timeout). The budget fills them in; the
logs, which do not read the configs, show ``N`` and say which command computes it. Each
mode also names the next commands to run on the message it happened to (``{qid}``: its
Postfix queue id).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

from spamdrill.vocab import Mode

BUDGET = "spamdrill budget --etc /"
POSTCAT = "postcat -q {qid}"
REPLAY = "postcat -bh -q {qid} > msg.eml && spamdrill replay msg.eml"

UNBOUNDED = ("no spamc flag bounds it: run spamdrill-spamc --deadline={deadline_max} in the "
             "xfilter instead of spamc (its flags as they are), which ends the whole check "
             "by then and passes the message unscanned; and maildrop under "
             "spamdrill-deliver, which kills the spamc maildrop leaves behind and defers")
# spamdrill-spamc already in the xfilter, its deadline too long for maildrop's timeout
SPAMC_DEADLINE = "spamdrill-spamc --deadline={deadline_max}"
CONNECT_RETRIES = "spamc --connect-retries 1{firewall}"
FIREWALL_RESET = ", or have the firewall reject with a TCP reset (not rate-limited)"
SPAMC_T = "spamc -t {t_max}"
DELIVER = "run maildrop under spamdrill-deliver (it kills what maildrop left behind and defers)"
DEFERS = "use spamdrill-deliver: it defers timeouts"
WRAPPER = ("use spamdrill-deliver (it defers every temporary failure), or pass maildrop's "
           "status on: exec maildrop")


@dataclass(frozen=True)
class Fix:
    text: str  # the change; {names} are numbers the budget computes from the configs
    next: tuple[str, ...]  # commands to run next; {qid}: the message's queue id


_FILTER = (POSTCAT, REPLAY, BUDGET)  # a slow or failed scan: the message, replayed
_CHAIN = (POSTCAT, BUDGET)  # the delivery chain's own limits: the configs

CATALOG: dict[Mode, Fix] = {
    Mode.SPAMD_REFUSED: Fix("spamc --retry-sleep {sleep_max}", _CHAIN),
    Mode.SPAMD_ACCEPT_QUEUE_FULL: Fix(
        "spamc -n {n_max} (connect timeout; -t stays {t}), or --connect-retries 1"
        "{firewall}", _CHAIN),
    Mode.SPAMD_REJECTED: Fix(
        "spamc -n {n_max} (connect timeout; -t stays {t}), or --connect-retries 1"
        + FIREWALL_RESET, _CHAIN),
    Mode.SPAMD_SILENT: Fix(SPAMC_T, _FILTER),
    Mode.SPAMD_SLOW_DRIP: Fix(UNBOUNDED, _FILTER),
    Mode.SPAMD_OVERLOADED: Fix(SPAMC_T, _FILTER),
    Mode.SPAMD_CHILD_TIMEOUT: Fix(SPAMC_T, _FILTER),
    Mode.SPAMD_SLOW_SCAN: Fix(SPAMC_T, _FILTER),
    Mode.DB_UNREACHABLE: Fix(SPAMC_T, _FILTER),
    Mode.DB_REFUSED: Fix(SPAMC_T, _FILTER),
    Mode.DB_LOCKED: Fix(SPAMC_T, _FILTER),
    Mode.DB_TOO_MANY_CONNECTIONS: Fix(SPAMC_T, _FILTER),
    Mode.DNS_DEAD: Fix(SPAMC_T, _FILTER),
    Mode.DNS_DB_SERVFAIL: Fix(SPAMC_T, _FILTER),
    Mode.DNS_DB_NXDOMAIN: Fix(SPAMC_T, _FILTER),
    Mode.NET_SLOW: Fix("spamc -t {t_max} (on this link a scanned message can take 2 x -t), "
                       "or a smaller -s, or a faster link", _FILTER),
    Mode.MAILDROP_TIMEOUT: Fix(SPAMC_T, _FILTER),
    Mode.WRAPPER_BOUNCED_TRANSIENT: Fix(DEFERS, _CHAIN),
    Mode.WRAPPER_LOST: Fix("use spamdrill-deliver: only a real success exits 0", _CHAIN),
    Mode.POSTFIX_TIME_LIMIT: Fix(DELIVER, _CHAIN),
    Mode.OVER_QUOTA: Fix("none needed if the bounce says why (a permanent failure); else "
                         "raise the recipient's quota", (POSTCAT,)),
    Mode.UNKNOWN_USER: Fix("none needed: a permanent failure, bounced saying why",
                           (POSTCAT,)),
    Mode.FILTER_FAILED: Fix("use spamdrill-deliver (it defers), or drop -x", _CHAIN),
    Mode.FILTER_EMPTY: Fix("guard the xfilter: deliver nothing unless it printed a message "
                           "(maildrop delivers an empty one and exits 0)", _CHAIN),
    Mode.RSPAMD_REFUSED: Fix("keep the xfilter inside exception { } (rspamc exits 1: "
                             "maildrop delivers unscanned) or run maildrop under "
                             "spamdrill-deliver (it defers)", _CHAIN),
    Mode.RSPAMD_STOPPING: Fix("as for rspamd-refused: the xfilter inside exception { } "
                              "(delivered unscanned) or maildrop under spamdrill-deliver "
                              "(it defers)", _CHAIN),
    Mode.RSPAMD_OVERLOADED: Fix("more normal workers (worker-normal.inc count) or a "
                                "longer rspamc -t", _FILTER),
    Mode.RSPAMD_TASK_TIMEOUT: Fix("rspamc -t above task_timeout plus Redis's timeout; "
                                  "behind a milter, soft_reject_on_timeout = true defers "
                                  "instead of a partial verdict (through rspamc it defers "
                                  "nothing: exit 0, X-Spam: yes)", _FILTER),
    Mode.REDIS_DOWN: Fix("none needed for delivery (rspamd scans on); bring Redis back for "
                         "Bayes, history and greylisting", _CHAIN),
    Mode.RSPAMD_SLOW_RULE: Fix("rspamc -t above task_timeout, or a timeout of the rule's "
                               "own below task_timeout; behind a milter, "
                               "soft_reject_on_timeout = true defers instead of a partial "
                               "verdict", _FILTER),
    Mode.RSPAMD_DNS_DEAD: Fix("a local caching resolver for rspamd (options.dns."
                              "nameserver), and rspamc -t above task_timeout", _FILTER),
    Mode.REDIS_SLOW: Fix("Redis beside rspamd (a local socket or host), or a Redis timeout "
                         "above the link's delay; rspamc -t above task_timeout plus two "
                         "Redis timeouts", _FILTER),
    Mode.MILTER_UNAVAILABLE: Fix("milter_default_action = tempfail defers to the sender "
                                 "(4xx) instead of accepting unscanned mail", _CHAIN),
}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def fix(mode: Mode | str, text: str | None = None, **values: object) -> str:
    """The fix for ``mode`` (or ``text``, one of this module's variants), its numbers
    filled from ``values``. A number not given reads ``N``, and the text says which
    command computes it; ``{firewall}`` not given reads as nothing."""
    template = text if text is not None else CATALOG[Mode(mode)].text
    values = {"firewall": "", **values}
    missing = _fields(template) - set(values)
    filled = template.format(**values, **dict.fromkeys(missing, "N"))
    if missing:
        filled += f" (N: `{BUDGET}` computes it from your configs)"
    return filled


def next_commands(mode: Mode | str, qid: str | None = None) -> list[str]:
    """The commands to run next on a message this mode happened to."""
    cmds = CATALOG[Mode(mode)].next
    return [c.format(qid=qid or "QID") for c in cmds]


def fix_margin_s(limit: float) -> float:
    """How far below a limit a suggested setting stays: a tenth of it, at least 5 s, so
    scan time, process start-up and a slow disk do not tip a fix over (300 s -> 270 s,
    not 299 s)."""
    return float(max(5, math.ceil(limit / 10)))
