"""rspamd's budget: its configuration read as rspamd layers it (shipped < local.d <
override.d), Postfix's milter settings, and each mode's worst case and fate by the rspamc
xfilter and by the milter. The example trees under tests/data/rspamd-etc carry Debian's
shipped options.inc and worker files, with a postmaster's local.d/override.d."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill.budget import inputs
from spamdrill.budget.rspamd import RspamdSetup, predict
from spamdrill.errors import SpamdrillError
from spamdrill.system import postfix, reader
from spamdrill.system import rspamd as conf
from spamdrill.vocab import Fate, Finding, Mode

pytestmark = pytest.mark.unit
TREES = Path(__file__).parent / "data" / "rspamd-etc"


def test_override_d_beats_local_d_beats_the_shipped_file() -> None:
    c = conf.parse({"options.inc": "# shipped\ntask_timeout = 8s;\ndns {\n  timeout = 1s;\n}\n",
                    "local.d/options.inc": "task_timeout = 12s; # slow DNS\n",
                    "override.d/options.inc": "task_timeout: 15000ms\n",
                    "local.d/redis.conf": 'servers = "r:6379"; timeout = 0.5s;\n'
                                          "timeout = 0.25;\n",
                    "worker-normal.inc": "count = 1;\n"}, "/r")
    assert (c.task_timeout.value, c.task_timeout.source) == (15.0,
                                                             "/r/override.d/options.inc:1")
    assert c.redis_timeout.value == 0.25  # the last one of a file wins, as UCL's scalars
    assert c.workers is not None and c.workers.value == 1
    # the dns section's timeout is not the task's, and nothing given keeps rspamd's defaults
    bare = conf.parse({"options.inc": "dns {\n  timeout = 30s;\n}\n"})
    assert bare.task_timeout.value == 8.0 and bare.task_timeout.source.startswith("default")
    assert bare.redis_timeout.value == 1.0 and bare.workers is None
    assert not bare.soft_reject_on_timeout.value and bare.proxy_timeout.value == 120.0


@pytest.mark.parametrize("text", ["task_timeout = soon;", "soft_reject_on_timeout = maybe;"])
def test_a_value_rspamd_would_refuse_is_one_line_naming_its_place(text: str) -> None:
    with pytest.raises(SpamdrillError, match=r"^/r/local.d/options.inc:1: "):
        conf.parse({"local.d/options.inc": text}, "/r")


def test_postfix_milter_settings_with_postfix_defaults() -> None:
    cf = postfix.parse_main_cf("smtpd_milters = inet:localhost:11332\n"
                               "milter_content_timeout = 2m\n", "/p/main.cf", ())
    m = conf.milter(cf)
    assert m.milters.value == "inet:localhost:11332"
    assert (m.default_action.value, m.default_action.source) == ("tempfail",
                                                                 "default of Postfix 3.7")
    assert m.content_timeout.value == 120.0 and m.connect_timeout.value == 30.0
    with pytest.raises(SpamdrillError, match="milter_default_action"):
        conf.milter(postfix.parse_main_cf("milter_default_action = drop\n", "/p/main.cf", ()))


@pytest.mark.parametrize("command,t", [("/usr/bin/rspamc --mime -t 5", 5.0),
                                      ("rspamc --mime -t5 -d $1", 5.0),
                                      ("rspamc --timeout=20 --mime", 20.0),
                                      ("rspamc --mime", 10.0),  # rspamc's own default
                                      ("/usr/bin/spamc -t 5", None)])
def test_rspamc_timeout_of_an_xfilter(command: str, t: float | None) -> None:
    assert inputs.rspamc_timeout(command) == t


def by(ps: list, mode: Mode, via: str):  # type: ignore[no-untyped-def,type-arg]
    [p] = [p for p in ps if p.mode == mode and p.via == via]
    return p


def test_rspamc_at_its_default_sits_at_the_edge_of_a_frozen_redis() -> None:
    """Debian's task_timeout 8 s + two Redis timeouts: the lab answered at 10.0 s, and
    rspamc's default -t 10 failed some messages and not others (redis-frozen)."""
    ps = predict(RspamdSetup(rspamc_t=10.0))
    edge = by(ps, Mode.RSPAMD_TASK_TIMEOUT, "rspamc")
    assert edge.edge and edge.fate == Fate.DELIVERED_UNSCANNED
    longer = by(predict(RspamdSetup(rspamc_t=20.0)), Mode.RSPAMD_TASK_TIMEOUT, "rspamc")
    assert (longer.fate, longer.worst_s, longer.edge) == (Fate.DELIVERED, 10.0, False)
    short = by(predict(RspamdSetup(rspamc_t=5.0)), Mode.RSPAMD_TASK_TIMEOUT, "rspamc")
    assert short.worst_s == 5.0 and short.fate == Fate.DELIVERED_UNSCANNED
    # soft_reject_on_timeout defers nothing through rspamc (redis-frozen-soft-reject):
    # exit 0, X-Spam: yes, maildrop delivers
    soft = by(predict(RspamdSetup(rspamc_t=20.0, soft_reject=True)),
              Mode.RSPAMD_TASK_TIMEOUT, "rspamc")
    assert (soft.fate, soft.worst_s) == (Fate.DELIVERED, 10.0)
    assert "defers nothing" in soft.why and "X-Spam: yes" in soft.why
    # outside exception { } maildrop's 75 goes to the wrapper: never called delivered
    outside = predict(RspamdSetup(rspamc_t=10.0, in_exception=False))
    assert by(outside, Mode.RSPAMD_REFUSED, "rspamc").fate == Fate.DEFERRED
    assert "the wrapper decides" in by(outside, Mode.RSPAMD_REFUSED, "rspamc").why


@pytest.mark.parametrize("action,fate", [("accept", Fate.DELIVERED_UNSCANNED),
                                         ("tempfail", Fate.DEFERRED),
                                         ("reject", Fate.BOUNCED)])
def test_an_unavailable_milter_gets_the_default_action(action: str, fate: Fate) -> None:
    ps = predict(RspamdSetup(rspamc_t=None, milter_action=action))
    p = by(ps, Mode.MILTER_UNAVAILABLE, "milter")
    assert p.fate == fate and action in p.why
    assert p.finding.crosses_budget == (action == "reject")


def test_the_milter_waits_out_a_task_timeout_unless_postfix_gives_up_first() -> None:
    ok = by(predict(RspamdSetup(rspamc_t=None, milter_action="accept")),
            Mode.RSPAMD_TASK_TIMEOUT, "milter")
    assert ok.fate == Fate.DELIVERED and ok.worst_s == 10.0
    soft = by(predict(RspamdSetup(rspamc_t=None, milter_action="accept", soft_reject=True)),
              Mode.RSPAMD_TASK_TIMEOUT, "milter")
    assert soft.fate == Fate.DEFERRED  # soft reject: the milter tempfails
    cut = by(predict(RspamdSetup(rspamc_t=None, milter_action="tempfail",
                                 milter_content_timeout=5.0)),
             Mode.RSPAMD_TASK_TIMEOUT, "milter")
    assert (cut.worst_s, cut.fate) == (5.0, Fate.DEFERRED)


def test_budget_reads_the_example_trees() -> None:
    milter = reader.read(TREES / "milter-accept")
    s = inputs.rspamd_setup(milter)
    assert s is not None
    assert (s.task_timeout, s.redis_timeout, s.workers, s.rspamc_t, s.milter_action) == (
        20.0, 0.5, 2, None, "accept")
    assert milter.rspamd is not None and milter.rspamd.task_timeout.source.endswith(
        "local.d/options.inc:2")
    assert {p.via for p in predict(s)} == {"milter"}
    xfilter = reader.read(TREES / "rspamc-xfilter")
    s = inputs.rspamd_setup(xfilter)
    assert s is not None and (s.rspamc_t, s.soft_reject, s.milter_action) == (5.0, True, None)
    assert s.in_exception
    worst = Finding.worst([p.finding for p in predict(s)])
    assert worst == Finding.DELIVERS_UNSCANNED
    # no rspamd configuration: no rspamd budget
    field_report = Path(__file__).parents[1] / "examples" / "field-report"
    assert inputs.rspamd_setup(reader.read(field_report)) is None


def test_the_port_25_smtpds_own_milter_settings_win(tmp_path: Path) -> None:
    """master.cf's ``smtp inet ... smtpd -o milter_default_action=accept`` overrides
    main.cf's for the mail from the Internet."""
    etc = tmp_path / "etc"
    (etc / "postfix").mkdir(parents=True)
    (etc / "rspamd").mkdir()
    (etc / "rspamd" / "options.inc").write_text("task_timeout = 8s;\n")
    (etc / "postfix" / "main.cf").write_text("smtpd_milters = inet:localhost:11332\n"
                                             "milter_default_action = tempfail\n")
    (etc / "postfix" / "master.cf").write_text(
        "smtp      inet  n       -       y       -       -       smtpd\n"
        "  -o milter_default_action=accept\n"
        "submission inet n       -       y       -       -       smtpd\n"
        "  -o milter_default_action=reject\n")
    system = reader.read(tmp_path)
    assert system.milter is not None
    assert system.milter.default_action.value == "accept"
    assert "master.cf" in system.milter.default_action.source
    s = inputs.rspamd_setup(system)
    assert s is not None and s.milter_action == "accept"


@pytest.mark.parametrize("action,fate", [("accept", Fate.DELIVERED_UNSCANNED),
                                         ("tempfail", Fate.DEFERRED)])
def test_a_stopping_rspamd_behind_the_milter_is_the_default_action(action: str,
                                                                   fate: Fate) -> None:
    """A message arriving while rspamd stops waits unaccepted until rspamd exits, or
    until Postfix's milter_command_timeout, whichever is first; then the default action."""
    p = by(predict(RspamdSetup(rspamc_t=None, milter_action=action)),
           Mode.RSPAMD_STOPPING, "milter")
    assert (p.worst_s, p.fate) == (16.0, fate) and action in p.why
    short = by(predict(RspamdSetup(rspamc_t=None, milter_action=action,
                                   milter_command_timeout=5.0)),
               Mode.RSPAMD_STOPPING, "milter")
    assert short.worst_s == 5.0


def test_a_slow_redis_behind_the_milter() -> None:
    """Never later than a frozen Redis: 250 within milter_content_timeout; soft reject
    defers (451 4.7.1) a scan held to task_timeout; Postfix's shorter wait: the default
    action."""
    ok = by(predict(RspamdSetup(rspamc_t=None, milter_action="accept")),
            Mode.REDIS_SLOW, "milter")
    assert (ok.worst_s, ok.fate) == (10.0, Fate.DELIVERED) and "250" in ok.why
    soft = by(predict(RspamdSetup(rspamc_t=None, milter_action="accept", soft_reject=True)),
              Mode.REDIS_SLOW, "milter")
    assert soft.fate == Fate.DEFERRED and "451 4.7.1" in soft.why
    cut = by(predict(RspamdSetup(rspamc_t=None, milter_action="tempfail",
                                 milter_content_timeout=5.0)), Mode.REDIS_SLOW, "milter")
    assert (cut.worst_s, cut.fate) == (5.0, Fate.DEFERRED)


def test_every_rspamd_mode_is_predicted_by_each_path_but_overload() -> None:
    """Both paths, each mode once; overload is measured by the rspamc drills only."""
    ps = predict(RspamdSetup(rspamc_t=10.0, milter_action="accept"))
    by_path = {via: {p.mode for p in ps if p.via == via} for via in ("rspamc", "milter")}
    rspamd_modes = {Mode.RSPAMD_TASK_TIMEOUT, Mode.REDIS_DOWN, Mode.RSPAMD_SLOW_RULE,
                    Mode.RSPAMD_DNS_DEAD, Mode.REDIS_SLOW, Mode.RSPAMD_STOPPING}
    assert rspamd_modes <= by_path["milter"] and rspamd_modes <= by_path["rspamc"]
    assert len(ps) == len({(p.mode, p.via) for p in ps})


def test_budget_reads_milter_command_timeout(tmp_path: Path) -> None:
    s = inputs.rspamd_setup(reader.read(TREES / "milter-accept"))
    assert s is not None and s.milter_command_timeout == 30.0  # Postfix's default
    etc = tmp_path / "etc"
    (etc / "postfix").mkdir(parents=True)
    (etc / "rspamd").mkdir()
    (etc / "rspamd" / "options.inc").write_text("task_timeout = 20s;\n")
    (etc / "postfix" / "main.cf").write_text("smtpd_milters = inet:localhost:11332\n"
                                             "milter_command_timeout = 7s\n")
    s = inputs.rspamd_setup(reader.read(tmp_path))
    assert s is not None and s.milter_command_timeout == 7.0
    assert by(predict(s), Mode.RSPAMD_STOPPING, "milter").worst_s == 7.0
