"""What an MDA result becomes: deliver, defer or bounce, with an RFC 3463 code. Sans-IO.

The facts behind the defaults (maildrop 2.9.3 as Debian ships it):

- ``maildrop/globaltimer.C``: the global timer writes ``maildrop: Timeout quota exceeded.``
  and exits EX_TEMPFAIL (75) -- a slow spamc/spamd, not the recipient's fault: defer.
- a full Maildir: ``maildrop: maildir over quota.``, also 75 (seen on the real binary);
  only the text tells it apart from the timeout. The field report wants a bounce (5.2.2);
  the default is to defer (4.2.2), configurable.
- an unknown user in delivery mode: ``Invalid user specified.``, EX_NOUSER (67): bounce 5.1.1.
- anything else non-zero, a signal, an MDA that cannot be run, or our own deadline: defer.
  A failure we do not understand is never reported as delivered (the field report's third
  wrapper did that: silent loss) and never bounced (its first did: lost legitimate mail).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per delivery
if TYPE_CHECKING:
    import re
    from typing import Any, Literal

    Action = Literal["deliver", "defer", "bounce"]

EX_TEMPFAIL = 75
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73


class MdaResult:
    """How the MDA ended. Exactly one of the ways is set.

    Plain classes, not dataclasses, in this package: ``dataclasses`` imports ``inspect``,
    which alone costs more than the rest of a delivery's Python start-up.
    """

    __slots__ = ("exec_error", "exit_status", "interrupted", "output", "signal", "timed_out")

    def __init__(self, exit_status: int | None = None, signal: int | None = None,
                 exec_error: str | None = None, timed_out: bool = False,
                 interrupted: int | None = None, output: bytes = b"") -> None:
        self.exit_status = exit_status
        self.signal = signal
        self.exec_error = exec_error
        self.timed_out = timed_out
        self.interrupted = interrupted  # a signal the wrapper itself received
        self.output = output


class Outcome:
    __slots__ = ("action", "dsn", "exit_code", "reason", "rule")

    def __init__(self, action: Action, exit_code: int, dsn: str, reason: str,
                 rule: str) -> None:
        self.action: Action = action
        self.exit_code = exit_code
        self.dsn = dsn
        self.reason = reason
        self.rule = rule

    def message(self, mda_output: bytes, limit: int = 4096) -> bytes:
        """What Postfix will read: the code and our reason first, then the MDA's words."""
        if self.action == "deliver":
            return b""
        head = f"{self.dsn} {self.reason}"
        words = " ".join(mda_output.decode("utf-8", "replace").split())
        data = (f"{head}: {words}" if words else head).encode("utf-8", "replace")
        return data[: limit - 1] + b"\n"


class Rule:
    """A row of the policy table: which results it matches and what they become.

    ``output`` is a regular expression source, compiled on first use: ``re`` is only
    imported when an MDA failed.
    """

    __slots__ = ("_compiled", "action", "dsn", "name", "output", "reason", "statuses")

    def __init__(self, name: str, action: Action, dsn: str, reason: str,
                 statuses: frozenset[int] = frozenset(), output: str | None = None) -> None:
        self.name = name
        self.action: Action = action
        self.dsn = dsn
        self.reason = reason
        self.statuses = statuses  # empty: any non-zero exit status
        self.output = output
        self._compiled: re.Pattern[bytes] | None = None

    def pattern(self) -> re.Pattern[bytes] | None:
        if self.output is not None and self._compiled is None:
            import re

            self._compiled = re.compile(self.output.encode(), re.I)
        return self._compiled

    def matches(self, result: MdaResult) -> bool:
        if result.exit_status is None or result.exit_status == 0:
            return False
        if self.statuses and result.exit_status not in self.statuses:
            return False
        pattern = self.pattern()
        return pattern is None or bool(pattern.search(result.output))


def default_rules(over_quota: Action = "defer") -> list[Rule]:
    quota = (Rule("over-quota", "bounce", "5.2.2", "mailbox full", frozenset({75, 77}),
                  r"over\s+quota")
             if over_quota == "bounce" else
             Rule("over-quota", "defer", "4.2.2", "mailbox full, will retry",
                  frozenset({75, 77}), r"over\s+quota"))
    return [
        # first: the timeout also contains the word "quota"
        Rule("maildrop-timeout", "defer", "4.4.7",
             "maildrop's global timeout fired (spam filtering or delivery too slow), "
             "will retry", frozenset({75}), r"Timeout quota exceeded"),
        quota,
        Rule("unknown-user", "bounce", "5.1.1", "no such mailbox", frozenset({67})),
    ]


class Policy:
    __slots__ = ("deadline", "rules")

    def __init__(self, rules: list[Rule] | None = None, deadline: float = 600.0) -> None:
        self.rules = default_rules() if rules is None else rules
        self.deadline = deadline  # well below Postfix's command_time_limit default (1000 s)

    def classify(self, result: MdaResult) -> Outcome:
        if result.timed_out:
            return Outcome("defer", EX_TEMPFAIL, "4.4.7",
                           f"delivery took longer than {self.deadline:g} s, will retry",
                           "deadline")
        if result.interrupted is not None:
            return Outcome("defer", EX_TEMPFAIL, "4.3.0",
                           f"delivery interrupted by signal {result.interrupted}, will retry",
                           "interrupted")
        if result.exec_error is not None:
            return Outcome("defer", EX_TEMPFAIL, "4.3.5",
                           f"cannot run the MDA ({result.exec_error}), will retry", "exec-error")
        if result.signal is not None:
            return Outcome("defer", EX_TEMPFAIL, "4.3.0",
                           f"MDA killed by signal {result.signal}, will retry", "signal")
        if result.exit_status == 0:
            return Outcome("deliver", 0, "2.0.0", "delivered", "success")
        for rule in self.rules:
            if rule.matches(result):
                code = EX_TEMPFAIL if rule.action == "defer" else (
                    EX_NOUSER if rule.dsn == "5.1.1" else EX_UNAVAILABLE)
                return Outcome(rule.action, code, rule.dsn, rule.reason, rule.name)
        return Outcome("defer", EX_TEMPFAIL, "4.3.0",
                       f"MDA failed with status {result.exit_status}, will retry", "unknown")


class PolicyError(ValueError):
    """The wrapper's config file is wrong."""


def _dsn_ok(dsn: str) -> bool:
    parts = dsn.split(".")
    return (len(parts) == 3 and parts[0] in ("4", "5")
            and all(p.isdigit() and 1 <= len(p) <= 3 for p in parts[1:]))


def from_dict(raw: dict[str, Any]) -> Policy:
    """Build a policy from the config file's table. Extra rules come before the defaults.

    ``deliver`` is not an action a rule may choose: only a real exit 0 is a delivery.
    """
    known = {"over_quota", "deadline", "rule"}
    unknown = set(raw) - known
    if unknown:
        raise PolicyError(f"unknown setting(s): {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(known))})")
    over_quota = raw.get("over_quota", "defer")
    if over_quota not in ("defer", "bounce"):
        raise PolicyError("over_quota must be 'defer' or 'bounce'")
    deadline = raw.get("deadline", 600)
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline <= 0:
        raise PolicyError("deadline must be a positive number of seconds")
    rules = []
    for i, r in enumerate(raw.get("rule", [])):
        where = f"rule {i + 1}"
        if not isinstance(r, dict):
            raise PolicyError(f"{where}: must be a table")
        action, dsn = r.get("action"), str(r.get("dsn", ""))
        if action not in ("defer", "bounce"):
            raise PolicyError(f"{where}: action must be 'defer' or 'bounce'")
        if not _dsn_ok(dsn) or (dsn[0] == "4") != (action == "defer"):
            raise PolicyError(f"{where}: dsn must be 4.x.y for defer, 5.x.y for bounce")
        statuses = r.get("status", [])
        if not isinstance(statuses, list) or not all(
                isinstance(s, int) and 1 <= s <= 255 for s in statuses):
            raise PolicyError(f"{where}: status must be a list of exit codes 1-255")
        rule = Rule(str(r.get("name", where)), action, dsn, str(r.get("reason", "")) or dsn,
                    frozenset(statuses), str(r["output"]) if "output" in r else None)
        import re

        try:
            rule.pattern()
        except re.error as exc:
            raise PolicyError(f"{where}: bad output regex: {exc}") from None
        rules.append(rule)
    return Policy(rules=rules + default_rules(over_quota), deadline=float(deadline))
