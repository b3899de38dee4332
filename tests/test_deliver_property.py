"""The wrapper's promise as a property, over policy files and command lines an admin could
write (carelessly or with intent) and MDAs that end every way one can:

- exit 0 only when the MDA exited 0 having read its input,
- 67 or 69 only for a permanent failure the policy configures (a matching bounce rule,
  ``over_quota = "bounce"``, or the default unknown-user rule),
- 75 for everything else, a config the wrapper refuses among it (and then the MDA never
  runs),
- and always within the deadline + 2 s.

The oracle is written from the policy file's documented rules, not from the wrapper's code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.lab

WRAPPER = [sys.executable, "-m", "spamdrill.deliver"]
TRANSIENT = {71, 75}  # the statuses pipe(8) defers (sys_exits.c): a bounce must be marked
SLOW = "(a+)+$"  # catastrophic backtracking on TEXTS' "aaa…!": the oracle must not run it

TEXTS = ["", "maildrop: Timeout quota exceeded.", "maildrop: maildir over quota.",
         "ERR: authdaemon: s_connect() failed\nInvalid user specified.", "a" * 36 + "!",
         "write error: no space left on device"]


@dataclass
class Rule:
    toml: dict[str, object]
    valid: bool

    @property
    def bounces(self) -> bool:
        return self.toml.get("action") == "bounce"

    def matches(self, status: int, text: str) -> bool:
        statuses = self.toml.get("status") or []
        if statuses and status not in statuses:  # type: ignore[operator]
            return False
        pattern = self.toml.get("output")
        return pattern is None or pattern == SLOW or bool(
            re.search(str(pattern), text, re.I))


@dataclass
class Config:
    text: str | None  # None: no --config at all
    valid: bool
    rules: list[Rule] = field(default_factory=list)
    over_quota: str | None = None


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)  # int; float literals come ready-made as strings below


def pick(draw: st.DrawFn, good: Sequence[object],
         bad: Sequence[object]) -> tuple[object, bool]:
    """A value and whether it is valid: mostly good ones, so that valid configs (and
    with them deliveries and bounces) are well covered; a bad one about one time in 12."""
    if draw(st.sampled_from(range(12))) == 11:  # not integers(): they favour their bounds
        return draw(st.sampled_from(bad)), False
    return draw(st.sampled_from(good)), True


NON_TRANSIENT = [[1], [67], [77, 100], [1, 69], [255]]


RULE_FIELDS = ("action", "status", "dsn", "output", "bounce_transient", "reason")


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    """A rule with at most one field broken (about one rule in three)."""
    broken = draw(st.sampled_from([None] * 12 + list(RULE_FIELDS) * 1))

    def value(name: str, good: Sequence[object], bad: Sequence[object]) -> object:
        return draw(st.sampled_from(bad if broken == name else good))

    t: dict[str, object] = {"action": value("action", ["defer", "bounce"], ["deliver", 5])}
    action = t["action"]
    t["status"] = value("status", [None, *NON_TRANSIENT, *NON_TRANSIENT, [75], [71, 1]],
                        [[True], [0], [256], "bad", 1])
    t["dsn"] = value("dsn", ["4.3.1" if action == "defer" else "5.3.4"],
                     ["5.3.4" if action == "defer" else "4.3.1", "2.0.0", "bogus", 4.3])
    t["output"] = value("output", [None, None, "quota", "invalid user", "no space", SLOW],
                        ["[", "a{99999999999}", "x" * 2000])
    t["bounce_transient"] = value("bounce_transient", [None, None, True, False], ["yes", 1])
    t["reason"] = value("reason", [None, "disk full", ""], ["x\ny", "r" * 300])
    t = {k: v for k, v in t.items() if v is not None}
    valid = broken is None
    status = t.get("status")
    statuses = set(status) if isinstance(status, list) else set()
    if action == "bounce" and t.get("bounce_transient") is not True and (
            not statuses or statuses & TRANSIENT):
        valid = False  # bouncing what pipe(8) would retry must be marked
    return Rule(t, valid)


DEADLINES_OK = ["0.5", "1", "2"]
DEADLINES_BAD = ["nan", "inf", "-5", "0", "1e12", '"ten"', "true", "86401"]
BAD_FILES = ["rule = 5\n", "x = " + "[" * 3000 + "]" * 3000 + "\n", "deadline = \n",
             "deadline = 5 # \udcff\n",  # written as the byte 0xff: not UTF-8
             '[[rule]]\nstatuses = [1]\naction = "defer"\ndsn = "4.3.0"\n']


@st.composite
def configs(draw: st.DrawFn) -> Config:
    kind, _ = pick(draw, ["none", "structured", "structured"], ["broken"])
    if kind == "none":
        return Config(None, True)
    if kind == "broken":
        return Config(draw(st.sampled_from(BAD_FILES)), False)
    lines, valid = [], True
    deadline, ok = pick(draw, [None, *DEADLINES_OK], DEADLINES_BAD)
    if deadline is not None:
        lines.append(f"deadline = {deadline}")
        valid &= ok
    over_quota, ok = pick(draw, [None, "defer", "bounce"], ["ignore", 1])
    if over_quota is not None:
        lines.append(f"over_quota = {json.dumps(over_quota)}")
        valid &= ok
    drawn = draw(st.lists(rules(), max_size=3))
    for rule in drawn:
        lines.append("[[rule]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in rule.toml.items())
        valid &= rule.valid
    return Config("\n".join(lines) + "\n", valid, drawn,
                  over_quota if isinstance(over_quota, str) else None)


@dataclass
class Mda:
    read: str  # all | none | partial | background
    text: str
    end: str  # exit | slow-exit | signal | hang | noexec
    status: int

    def argv(self, work: Path) -> list[str]:
        if self.end == "noexec":
            return [str(work / "no-such-mda")]
        read = {"all": 'cat >/dev/null && touch "$1/consumed"', "none": ":",
                "partial": "dd bs=1 count=1 status=none >/dev/null",
                "background": 'cat >/dev/null &'}[self.read]
        end = {"exit": f'touch "$1/exiting"; exit {self.status}',
               "slow-exit": f'sleep 0.3; touch "$1/exiting"; exit {self.status}',
               "signal": f"kill -{self.status} $$; sleep 5",
               "hang": "exec sleep 30"}[self.end]
        script = f'touch "$1/started"; {read}; printf "%s\\n" "$2" >&2; {end}'
        return ["/bin/sh", "-c", script, "mda", str(work), self.text]


mdas = st.builds(
    Mda, read=st.sampled_from(["all", "all", "none", "partial", "background"]),
    text=st.sampled_from(TEXTS),
    end=st.sampled_from(["exit", "exit", "exit", "exit", "slow-exit", "signal", "hang",
                         "noexec"]),
    status=st.one_of(st.sampled_from([0, 0, 1, 67, 69, 71, 75, 77, 100, 255]),
                     st.sampled_from([0, 1, 67, 75, 77]), st.integers(0, 255)))

OPTIONS = ["--recipient=alice@example.org", "--sender=-bob@x", "--queue-id=4Xyz",
           "--recipient=$(touch /tmp/pwned)", "--over-quota=bounce", "--over-quota=defer",
           "--syslog-socket=/nonexistent"]
BAD_OPTIONS = ["--bogus", "--over-quota=never", "-x", "--help=no",
               # the admin modes print and exit 0; given to a delivery they must defer
               "--help", "--check-config", "--explain 75 x", "--make-launcher /nonexistent/x"]


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], str, bool]:
    """Options (a valid --deadline= last, or a bad one), the deadline, whether valid."""
    options = draw(st.lists(st.sampled_from(OPTIONS), max_size=4))
    valid = True
    if draw(st.sampled_from(range(8))) == 7:
        # last: no later one overrides it
        options += draw(st.sampled_from(BAD_OPTIONS)).split()
        valid = False
    deadline, ok = pick(draw, DEADLINES_OK, ["nan", "inf", "1e12", "-1", "ten", "0", ""])
    return [*options, f"--deadline={deadline}"], str(deadline), valid and ok


def permanent_allowed(config: Config, options: list[str], mda: Mda) -> bool:
    """Is there a configured permanent failure this MDA's exit could meet?"""
    status, text = mda.status, mda.text
    over_quota = config.over_quota
    for opt in options:
        if opt.startswith("--over-quota="):
            over_quota = opt.split("=", 1)[1]
    if over_quota == "bounce" and status in (75, 77) and re.search(r"over\s+quota", text):
        return True
    if status == 67:
        return True  # the default unknown-user rule
    return any(r.bounces and r.matches(status, text) for r in config.rules)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), line=command_lines(), mda=mdas,
       size=st.sampled_from([0, 10, 200_000]), data=st.data())
def test_exit_status_and_time_are_always_safe(config: Config,
                                              line: tuple[list[str], str, bool], mda: Mda,
                                              size: int, data: st.DataObject) -> None:
    options, deadline, options_valid = line
    aimed: list[int] = []
    for rule in config.rules:
        statuses = rule.toml.get("status")
        if rule.bounces and isinstance(statuses, list):
            aimed += [s for s in statuses if type(s) is int]
    if size == 0 and any(o in options for o in ("--help", "--check-config", "--explain",
                                                "--make-launcher")):
        size = 10  # pipe(8) never sends an empty message: Postfix adds headers at least
    if aimed and data.draw(st.booleans()):  # aim at a bounce rule now and then
        mda.end, mda.status = "exit", data.draw(st.sampled_from(aimed))
    with tempfile.TemporaryDirectory(prefix="spamdrill-prop-") as tmp:
        work = Path(tmp)
        argv = [*WRAPPER, *options]
        if config.text is not None:
            (work / "deliver.toml").write_text(config.text, errors="surrogateescape")
            argv.append(f"--config={work / 'deliver.toml'}")
        t0 = time.monotonic()
        done = subprocess.run([*argv, "--", *mda.argv(work)], input=b"x" * size,
                              capture_output=True, timeout=60)
        took = time.monotonic() - t0
        started, exiting = (work / "started").exists(), (work / "exiting").exists()
        consumed = (work / "consumed").exists() or size == 0 or mda.read == "background"
    # no syslog socket here (/nonexistent, or a machine without /dev/log): said once
    lost = [x for x in done.stderr.splitlines(keepends=True)
            if x.startswith(b"spamdrill-deliver: no syslog line: ")]
    assert done.stderr == b"".join(lost) and len(lost) <= 1, done.stderr
    code, out = done.returncode, done.stdout
    valid = config.valid and options_valid
    event(f"exit {code}, {'valid' if valid else 'refused'} config")
    assert code in (0, 67, 69, 75), out
    assert took < (float(deadline) if valid else 0) + 2, took
    assert out.count(b"\n") <= 1 and len(out) <= 4096
    if not valid:
        assert code == 75 and out.startswith(b"4.3.5 ") and not started, out
    if code == 0:
        assert out == b""
        assert mda.end in ("exit", "slow-exit") and mda.status == 0 and exiting and consumed
        assert mda.read != "none" or size == 0
        assert mda.read != "partial" or size == 0
    if code in (67, 69):
        assert out.startswith(b"5.")
        assert exiting and mda.status != 0 and permanent_allowed(config, options, mda), out
    if code == 75:
        assert out.startswith(b"4.")
