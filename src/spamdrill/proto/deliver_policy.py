"""spamdrill-deliver's policy: what an MDA result becomes (deliver, defer or bounce, with an
RFC 3463 code). Sans-IO; its file is read and validated by ``system.deliver_conf``.

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
    from typing import Literal

    Action = Literal["deliver", "defer", "bounce"]

EX_TEMPFAIL = 75
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_OSERR = 71
# the statuses pipe(8) defers (sys_exits.c: 4.3.0): a rule bouncing one must say so
TRANSIENT_STATUSES = frozenset({EX_OSERR, EX_TEMPFAIL})

MAX_DEADLINE = 86400.0  # finite and bounded: poll() and timers need a real number
MAX_CONFIG_BYTES = 1 << 20
MAX_PATTERN = 512  # a regex source; deep nesting and huge repeats stay out of re's way
MAX_NAME = 64
MAX_REASON = 200
RULE_TEXT = 4096  # rules see at most this much of the MDA's output (what Postfix keeps)


class MdaResult:
    """How the MDA ended. Exactly one of the ways is set.

    Plain classes, not dataclasses, in this package: ``dataclasses`` imports ``inspect``,
    which alone costs more than the rest of a delivery's Python start-up.
    """

    __slots__ = ("exec_error", "exit_status", "input_left", "interrupted", "leftovers",
                 "output", "signal", "timed_out")

    def __init__(self, exit_status: int | None = None, signal: int | None = None,
                 exec_error: str | None = None, timed_out: bool = False,
                 interrupted: int | None = None, output: bytes = b"",
                 input_left: bool = False, leftovers: bool = False) -> None:
        self.exit_status = exit_status
        self.signal = signal
        self.exec_error = exec_error
        self.timed_out = timed_out
        self.interrupted = interrupted  # a signal the wrapper itself received
        self.output = output
        self.input_left = input_left  # the MDA ended with part of the message unread
        self.leftovers = leftovers  # its group still had members, killed after it exited


class Decision:
    """What the wrapper tells Postfix: deliver, defer or bounce, its exit status, the DSN
    code and reason, and the rule that decided (not ``vocab.Outcome``, a spamc run's)."""

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
        head = " ".join(f"{self.dsn} {self.reason}".split())  # a path may hold a newline
        words = " ".join(mda_output.decode("utf-8", "replace").split())
        data = (f"{head}: {words}" if words else head).encode("utf-8", "replace")
        return data[: limit - 1] + b"\n"


class Rule:
    """A row of the policy table: which results it matches and what they become.

    ``output`` is a regular expression source, compiled on first use: ``re`` is only
    imported when an MDA failed. Matching can backtrack without end on a careless pattern;
    the caller bounds it with a timer (``run.within``), and the text it sees is bounded.
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
            import warnings

            with warnings.catch_warnings():  # a FutureWarning on stderr would reach Postfix
                warnings.simplefilter("ignore")
                self._compiled = re.compile(self.output.encode(), re.I)
        return self._compiled

    def matches(self, result: MdaResult) -> bool:
        if result.exit_status is None or result.exit_status == 0:
            return False
        if self.statuses and result.exit_status not in self.statuses:
            return False
        pattern = self.pattern()
        return pattern is None or bool(pattern.search(result.output[:RULE_TEXT]))


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


def _defer(dsn: str, reason: str, rule: str) -> Decision:
    return Decision("defer", EX_TEMPFAIL, dsn, reason, rule)


def usage_error(text: str) -> Decision:
    """Under Postfix a usage error must not bounce (exit 2 would): the mail waits while
    the admin fixes master.cf."""
    return _defer("4.3.5", f"spamdrill-deliver usage error: {text}, will retry", "usage")


def config_error(text: str) -> Decision:
    return _defer("4.3.5", f"spamdrill-deliver config error: {text}, will retry", "config")


def internal_error(text: str) -> Decision:
    """The last resort: whatever went wrong inside the wrapper defers (4.3.0)."""
    return _defer("4.3.0", f"spamdrill-deliver internal error: {text}, will retry",
                  "internal")


class Policy:
    __slots__ = ("deadline", "rules")

    def __init__(self, rules: list[Rule] | None = None, deadline: float = 600.0) -> None:
        self.rules = default_rules() if rules is None else rules
        self.deadline = deadline  # well below Postfix's command_time_limit default (1000 s)

    def out_of_time(self, result: MdaResult) -> Decision:
        """The rules could not finish within the deadline: a failure, so defer."""
        return _defer("4.4.7", f"MDA failed with status {result.exit_status} and its "
                      f"output could not be classified within {self.deadline:g} s, "
                      "will retry", "deadline")

    def classify(self, result: MdaResult) -> Decision:
        if result.timed_out:
            return _defer("4.4.7", f"delivery took longer than {self.deadline:g} s, "
                          "will retry", "deadline")
        if result.interrupted is not None:
            return _defer("4.3.0", f"delivery interrupted by signal {result.interrupted}, "
                          "will retry", "interrupted")
        if result.exec_error is not None:
            return _defer("4.3.5", f"cannot run the MDA ({result.exec_error}), will retry",
                          "exec-error")
        if result.signal is not None:
            return _defer("4.3.0", f"MDA killed by signal {result.signal}, will retry",
                          "signal")
        if result.exit_status == 0:
            return self._success(result)
        for rule in self.rules:
            if rule.matches(result):
                code = EX_TEMPFAIL if rule.action == "defer" else (
                    EX_NOUSER if rule.dsn == "5.1.1" else EX_UNAVAILABLE)
                return Decision(rule.action, code, rule.dsn, rule.reason, rule.name)
        return _defer("4.3.0", f"MDA failed with status {result.exit_status}, will retry",
                      "unknown")

    @staticmethod
    def _success(result: MdaResult) -> Decision:
        """Exit 0 is a delivery only if the MDA read the whole message: pipe(8) itself
        takes exit 0 with its writes cut short (EPIPE) as delivered (pipe_command.c)."""
        if result.input_left:
            return _defer("4.3.0", "MDA exited 0 but did not read the whole message, "
                          "will retry", "input-left")
        return Decision("deliver", 0, "2.0.0", "delivered", "success")


class PolicyError(ValueError):
    """The wrapper's config file (or a command-line setting) is wrong. One line."""
