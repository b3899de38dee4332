"""The system reader on config fragments, one table per form, each bad input with its
message; the example systems end to end (sans-IO apart from reading the examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill.budget import inputs, model
from spamdrill.errors import SpamdrillError
from spamdrill.shaped import labconfig
from spamdrill.system import maildroprc, net, postfix, reader, sa, spamd, wrapper
from spamdrill.system import spamc as sc

pytestmark = pytest.mark.unit
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def spamc_of(args: str) -> sc.SpamcCommand:
    return sc.parse([(w, "rc:1") for w in args.split()])


# ---- spamc: every flag of spamc 4.0.1's -h, as its getopt reads them -------------------

@pytest.mark.parametrize("args,field,value", [
    ("-t 100", "timeout", 100),
    ("--timeout=100", "timeout", 100),
    ("--timeout 100", "timeout", 100),
    ("-t 100", "connect_timeout", 100),  # -t sets the connect timeout too ...
    ("-n 5 -t 100", "connect_timeout", 5),  # ... unless one was set before
    ("-t 100 -t 50", "connect_timeout", 100),  # the first -t's, as spamc.c does
    ("-t 100 -n 5", "connect_timeout", 5),
    ("", "connect_timeout", 0),  # no alarm at all: the kernel's connect timeout
    ("--connect-timeout 7", "connect_timeout", 7),
    ("--connect-retries 1", "connect_retries", 1),
    ("--connect-retries 0", "connect_retries", 3),  # libspamc: 0 means the default
    ("--retry-sleep 4", "retry_sleep", 4),
    ("--filter-retries 3", "filter_retries", 3),
    ("--filter-retries 0", "filter_retries", 1),
    ("--filter-retry-sleep 2", "filter_retry_sleep", 2),
    ("-s 1000", "max_size", 1000),
    ("--max-size 1000", "max_size", 1000),
    ("-x", "safe_fallback", False),
    ("--no-safe-fallback", "safe_fallback", False),
    ("-x -X", "unavail_tempfail", True),
    ("-x --unavailable-tempfail", "unavail_tempfail", True),
    ("-X -x", "unavail_tempfail", False),  # only valid after -x
    ("-d a,b", "hosts", ("a", "b")),
    ("--dest a", "hosts", ("a",)),
    ("-p 7830", "port", 7830),
    ("--port 7830", "port", 7830),
    ("-U /run/spamd.sock", "unix_socket", "/run/spamd.sock"),
    ("--socket /run/spamd.sock", "unix_socket", "/run/spamd.sock"),
    ("-4", "family", 4),
    ("-6", "family", 6),
    ("-H", "randomize", True),
    ("--randomize", "randomize", True),
    ("-0 2", "connect_retries", 2),  # spamc's undocumented short spellings
    ("-1 3", "retry_sleep", 3),
    ("-t 100 stop -x", "safe_fallback", True),  # the first non-flag ends the flags
])
def test_spamc_flags(args: str, field: str, value: object) -> None:
    assert getattr(spamc_of(args).flags, field) == value


@pytest.mark.parametrize("args", [
    "-u someone", "--username someone", "-B", "--bsmtp", "-c", "--check", "-y", "--tests",
    "-r", "--full-spam", "-R", "--full", "--headers", "-E", "--exitcode", "-l",
    "--log-to-stderr", "-e /bin/cat", "--pipe-to /bin/cat", "-h", "--help", "-V",
    "--version", "-K", "-f", "-z", "--compress", "-S", "--ssl", "-L spam", "-L ham",
    "-L forget", "--learntype spam", "-C report", "-C revoke", "--reporttype revoke",
    "--ssl-cert c.pem --ssl-key k.pem", "--ssl-ca-file ca.pem", "--ssl-ca-path /etc/ssl",
    "-F /etc/spamc.conf", "--config /etc/spamc.conf", "-2",
])
def test_every_other_spamc_flag_is_accepted(args: str) -> None:
    spamc_of(args)


@pytest.mark.parametrize("args", ["-c", "-y", "-r", "-R", "-L spam", "-C report", "-K",
                                  "-B", "-e /bin/cat", "-h", "-V"])
def test_flags_that_make_spamc_no_filter_are_said(args: str) -> None:
    assert spamc_of(args).modes


@pytest.mark.parametrize("args,message", [
    ("--connect-retry 1", "spamc flag --connect-retry: option not found"),
    ("-q", "spamc flag -q: option not found"),
    ("-t", "spamc flag -t: argument required"),
    ("-t5", "spamc flag -t5: argument required"),  # spamc reads -t and wants the next word
    ("-t -5", "spamc flag -t: argument required"),
    ("--timeout", "spamc flag --timeout: argument required"),
    ("-t soon", "spamc flag -t 'soon' is not a whole number of seconds (spamc's atoi "
                "reads it as 0)"),
    ("-t 2.5", "spamc flag -t '2.5' is not a whole number of seconds (spamc's atoi "
               "reads it as 2)"),
    ("--retry-sleep=-1", "spamc flag --retry-sleep -1: must not be negative"),
    ("-p http", "spamc flag -p 'http' is not a whole number of a port"),
    ("-s 300000000", "-s parameter is beyond max of 268435456"),
    ("-L maybe", "spamc flag -L 'maybe' is not one of spam, ham, forget"),
    ("-C undo", "spamc flag -C 'undo' is not one of report, revoke"),
    ("--ssl=tlsv1", "Explicit specification of an SSL/TLS version no longer supported"),
    ("--ssl-cert c.pem", "--ssl-cert and --ssl-key must be used together"),
    ("-:", "spamc flag -:: option not found"),
])
def test_spamc_bad_flags_name_the_flag(args: str, message: str) -> None:
    with pytest.raises(SpamdrillError) as exc:
        spamc_of(args)
    assert message in str(exc.value) and exc.value.one_line().startswith("rc:1: ")


@pytest.mark.parametrize("args,note", [
    ("-X -x", "-X before -x is ignored"),
    ("-xE", "'-xE': 'E' ignored"),
    ("-t 1 foo -x", "stops reading flags at 'foo'"),
    ("--config /etc/x", "opens no file"),
    ("-x -d a,b", "with -x spamc uses only the first host"),
])
def test_spamc_quirks_are_said(args: str, note: str) -> None:
    assert any(note in n for n in spamc_of(args).notes), spamc_of(args).notes


def test_spamc_conf_words_and_the_command_line_after_them() -> None:
    words = sc.conf_words("# comment\n-t 30\n\n--connect-retries 1 -x\n", "/c")
    assert words[0] == ("-t", "/c:2") and len(words) == 5
    cmd = sc.parse([*words, ("-t", "rc:3"), ("100", "rc:3")])
    assert cmd.flags.timeout == 100 and cmd.sources["timeout"] == "rc:3"
    assert cmd.flags.connect_timeout == 30 and cmd.sources["connect_timeout"] == "/c:2"
    assert cmd.flags.origin("connect_retries") == "/c:4"
    assert sc.config_file_of(["-t", "1", "-F", "/x"]) == "/x"
    with pytest.raises(SpamdrillError, match="last line has no newline"):
        sc.conf_words("-t 30", "/c")
    # a line that starts with a space is not a comment: '#' ends spamc's flags there
    assert ("#", "/c:1") in sc.conf_words(" # not a comment\n", "/c")
    with pytest.raises(SpamdrillError, match="more than 23 spamc words"):
        sc.parse([("-x", "/c:1")] * 24)


def test_spamc_model_follows_connect_loop_and_addresses() -> None:
    one = spamc_of("-d 10.0.0.1 -t 100").flags
    assert model.spamc_model.refused(one) == 2
    assert model.spamc_model.accept_queue_full(one) == 302
    # two hosts, refused: no sleep while an untried host remains ("innocent")
    two = spamc_of("-d 10.0.0.1,10.0.0.2 -t 100").flags
    assert model.spamc_model.refused(two) == 1
    assert model.spamc_model.accept_queue_full(two) == 302
    # -x cuts the list to its first host: the sleeps come back
    assert model.spamc_model.refused(spamc_of("-x -d 10.0.0.1,10.0.0.2").flags) == 2
    # no -d: localhost is ::1 and 127.0.0.1, connect() on each in every try
    assert model.spamc_model.accept_queue_full(spamc_of("-t 100").flags) == 602
    assert model.spamc_model.accept_queue_full(spamc_of("-t 100 -4").flags) == 302
    # no -t: no alarm, the kernel's connect timeout
    assert spamc_of("-d 10.0.0.1").flags.connect_wait == model.spamc_model.KERNEL_CONNECT_S
    # a UNIX socket: one try, no sleeps
    assert model.spamc_model.refused(spamc_of("-U /s").flags) == 0


def test_minus_x_outcome_depends_on_exception_and_wrapper() -> None:
    plain = model.Setup(spamc=spamc_of("-d 10.0.0.1 -t 100").flags)
    x = model.Setup(spamc=spamc_of("-d 10.0.0.1 -t 100 -x").flags)
    out = {r.mode: r for r in model.evaluate(plain)}
    assert out["spamd-refused"].outcome == "delivered unscanned"
    failed = {r.mode: r for r in model.evaluate(x)}["spamd-refused"]
    assert failed.outcome == "deferred" and failed.worst_s == 2  # same time, not the outcome
    caught = {r.mode: r for r in model.evaluate(model.Setup(
        spamc=x.spamc, xfilter_in_exception=True))}["spamd-refused"]
    assert caught.outcome == "delivered unscanned"
    bounced = {r.mode: r for r in model.evaluate(model.Setup(
        spamc=x.spamc, wrapper="bounce-on-75"))}["spamd-refused"]
    assert bounced.outcome == "bounced" and bounced.violations


# ---- Postfix ---------------------------------------------------------------------------

@pytest.mark.parametrize("main,name,raw,expanded", [
    ("command_time_limit = 20m\nmaildrop_time_limit = $command_time_limit\n",
     "maildrop_time_limit", "$command_time_limit", "20m"),
    ("command_time_limit = 20m\nmaildrop_time_limit = ${command_time_limit}\n",
     "maildrop_time_limit", "${command_time_limit}", "20m"),
    ("command_time_limit = 20m\nmaildrop_time_limit = $(command_time_limit)\n",
     "maildrop_time_limit", "$(command_time_limit)", "20m"),
    ("", "maildrop_time_limit", "$command_time_limit", "1000s"),  # the default
    ("mydomain = example.org\nmyorigin = ${mydomain?$mydomain}\n", "myorigin",
     "${mydomain?$mydomain}", "example.org"),
    ("myorigin = ${nosuch?yes}x\n", "myorigin", "${nosuch?yes}x", "x"),
    ("myorigin = ${nosuch:fallback}\n", "myorigin", "${nosuch:fallback}", "fallback"),
    ("mydomain = e\nmyorigin = ${mydomain:fallback}\n", "myorigin", "${mydomain:fallback}",
     ""),
    ("mydomain = e\nmyorigin = ${mydomain?{set}:{unset}}\n", "myorigin",
     "${mydomain?{set}:{unset}}", "set"),
    ("myorigin = a$$b\n", "myorigin", "a$$b", "a$b"),
    ("myorigin = a\n  b\n", "myorigin", "a b", "a b"),  # joined with one space
    ("myorigin = a\n  # comment\n b\n", "myorigin", "a b", "a b"),
    ("myorigin = 1\nmyorigin = 2\n", "myorigin", "2", "2"),
    ("myorigin = $nosuch\n", "myorigin", "$nosuch", ""),
])
def test_main_cf_as_postfix_reads_it(main: str, name: str, raw: str, expanded: str) -> None:
    cf = postfix.parse_main_cf(main, "/m", ("maildrop",))
    got_raw, got = cf.raw(name), cf.expanded(name)
    assert got_raw is not None and got is not None
    assert (got_raw.value, got.value) == (raw, expanded)


@pytest.mark.parametrize("main,message", [
    ("just words\n", "/m:1: not a 'name = value' line"),
    ("maildrop_time_limit = ten\n", "/m:1: maildrop_time_limit = 'ten' is not a Postfix "
                                    "time value -- a whole number with an optional unit"),
    ("maildrop_time_limit = 5x\n", "is not a Postfix time value"),
    ("maildrop_time_limit = ${command_time_limit\n", "unbalanced {"),
    ("maildrop_time_limit = $maildrop_time_limit\n", "does not end"),
    ("maildrop_time_limit = ${command_time_limit == 2 ?{a}:{b}}\n",
     "unsupported expansion"),
])
def test_main_cf_bad_values(main: str, message: str) -> None:
    with pytest.raises(SpamdrillError) as exc:
        postfix.parse_main_cf(main, "/m", ("maildrop",)).time("maildrop_time_limit")
    assert message in exc.value.one_line()


def test_master_cf_entries_options_and_pipe_argv() -> None:
    text = ("smtp inet n - y - - smtpd\n"
            "  -o smtpd_tls_security_level=may\n"
            "maildrop unix - n n - 7 pipe\n"
            "  flags=DRhu user=vmail argv=/usr/local/bin/wrap -d ${recipient}\n"
            "  -o maildrop_time_limit=5m\n")
    smtp, md = postfix.parse_master_cf(text, "/ms")
    assert smtp.options["smtpd_tls_security_level"][0] == "may"
    assert md.maxproc == "7" and md.attribute("flags") == "DRhu" and md.line == 3
    # pipe(8): everything after argv= is the command, -o included
    assert md.pipe_argv() == ["/usr/local/bin/wrap", "-d", "${recipient}", "-o",
                              "maildrop_time_limit=5m"]
    braced = postfix.parse_master_cf("x unix - n n - - pipe argv=/bin/a { b c } d\n", "/ms")
    assert braced[0].pipe_argv() == ["/bin/a", "b c", "d"]
    opt = postfix.parse_master_cf("x unix - n n - - pipe -o x_time_limit=5m argv=/bin/a\n",
                                  "/ms")[0]
    cf = postfix.parse_main_cf("", "/m", ("x",))
    limit = cf.time("x_time_limit", opt.options)
    assert limit is not None and limit.value == 300 and "-o x_time_limit" in limit.source
    with pytest.raises(SpamdrillError, match=r"/ms:1: a master\.cf entry has 8 fields"):
        postfix.parse_master_cf("maildrop unix - n n pipe\n", "/ms")


# ---- maildrop ----------------------------------------------------------------------------

def test_maildroprc_variables_every_xfilter_and_includes() -> None:
    files = {"/etc/maildrop/spam": 'xfilter "$SPAMC -t 50"\n'}
    text = ('SPAMC="/usr/bin/spamc -d spamd2-pn"\nMAILDIRQUOTA="5000000S"\n'
            'exception {\n  if ( $SIZE < 250000 )\n  {\n'
            '    xfilter "${SPAMC} -t 100 -u $LOGNAME"\n  }\n'
            '  else\n  {\n    include "/etc/maildrop/spam"\n  }\n}\n'
            "xfilter '/usr/bin/spamc $NOT_EXPANDED'\n"
            'xfilter "/usr/bin/reformail -A X-Seen:yes"\n')
    rc = maildroprc.parse(text, "/rc", files.get)
    assert rc.variables["MAILDIRQUOTA"].value == "5000000S"
    first, second, third, other = rc.xfilters
    assert first.where == "/rc:6" and first.in_exception and first.size_limit == 250000
    assert [w for w, _ in first.spamc or []] == ["-d", "spamd2-pn", "-t", "100", "-u",
                                                 "${LOGNAME}"]
    assert first.unresolved == ("LOGNAME",)
    assert second.where == "/etc/maildrop/spam:1" and second.in_exception
    assert [w for w, _ in second.spamc or []] == ["-d", "spamd2-pn", "-t", "50"]
    assert second.conditions == ("else",)
    assert not third.in_exception and [w for w, _ in third.spamc or []] == ["$NOT_EXPANDED"]
    assert other.spamc is None and len(rc.spamc_filters) == 3
    assert rc.includes == ["/etc/maildrop/spam"]


@pytest.mark.parametrize("text,message", [
    ('xfilter "/usr/bin/spamc -t 1\n', "/rc:1: unterminated \" string"),
    ('include "/nope"\n', "/rc:1: include '/nope': no such file"),
    ("if ( $SIZE < 1\n{ }\n", "/rc:1: unbalanced ( in a condition"),
    ("xfilter \"/usr/bin/spamc -t 'x\"\n", "the shell cannot run it"),
])
def test_maildroprc_bad_input(text: str, message: str) -> None:
    with pytest.raises(SpamdrillError) as exc:
        maildroprc.parse(text, "/rc", lambda _p: None)
    assert message in exc.value.one_line()


def test_maildroprc_unset_and_runtime_variables_are_said() -> None:
    rc = maildroprc.parse('xfilter "/usr/bin/spamc -t $TIMEOUT"\n'
                          'include "$HOME/.mailfilter"\n', "/rc")
    assert any("$TIMEOUT is set nowhere" in n for n in rc.notes)
    assert any("depends on the recipient" in n for n in rc.notes)


# ---- spamd ---------------------------------------------------------------------------

@pytest.mark.parametrize("words,name,value", [
    ("--max-children 5", "max-children", 5),
    ("--max-children=5", "max-children", 5),
    ("-m 5", "max-children", 5),
    ("-m5", "max-children", 5),
    ("--max-ch=7", "max-children", 7),  # Getopt::Long: a unique abbreviation
    ("--timeout-child=60", "timeout-child", 60),
    ("-t 60", "timeout-child", 60),
    ("--timeout-tcp 9", "timeout-tcp", 9),
    ("-T 9", "timeout-tcp", 9),
    ("--min-children=2 --min-spare=2 --max-spare=4", "max-spare", 4),
    ("--max-conn-per-child=1", "max-conn-per-child", 1),
    ("-q", "sql-config", True),
    ("--sql-config", "sql-config", True),
    ("--nosql-config", "sql-config", False),
    ("-cdx", "nouser-config", True),
    ("--helper-home-dir", "helper-home-dir", True),
    ("-H /var/lib/spamd", "helper-home-dir", "/var/lib/spamd"),
    ("--siteconfigpath=/srv/sa", "siteconfigpath", "/srv/sa"),
])
def test_spamd_options(words: str, name: str, value: object) -> None:
    cmd = spamd.parse_options([(w, "/d:1") for w in words.split()], "/d:1")
    assert cmd.options[name].value == value and cmd.options[name].source == "/d:1"


@pytest.mark.parametrize("words,message", [
    ("--max-children=five", "/d:1: spamd: Value 'five' invalid for option max-children"),
    ("--max-childs 5", "spamd: Unknown option: max-childs"),
    ("--m 5", "is ambiguous"),
    ("-Z", "spamd: Unknown option: Z"),
    ("--timeout-child", "Option timeout-child requires an argument"),
    ("-F 0", "has been removed from spamd"),
])
def test_spamd_bad_options(words: str, message: str) -> None:
    with pytest.raises(SpamdrillError) as exc:
        spamd.parse_options([(w, "/d:1") for w in words.split()], "/d:1")
    assert message in exc.value.one_line()


def test_spamd_unit_default_file_and_drop_in() -> None:
    default = spamd.shell_assignments('# c\nOPTIONS="--max-children 9 -q"\n'
                                      "export NICE='--nicelevel 15'\n", "/etc/default/spamd")
    assert default["OPTIONS"].value == "--max-children 9 -q"
    assert default["NICE"].source == "/etc/default/spamd:3"
    unit = spamd.parse_unit("[Service]\nEnvironmentFile=-/etc/default/spamd\n"
                            "ExecStart=/usr/sbin/spamd --pidfile=/run/spamd.pid $OPTIONS\n",
                            "/u")
    unit = spamd.parse_unit("[Service]\nExecStart=\nExecStart=/usr/sbin/spamd \\\n"
                            "  ${OPTIONS} --timeout-child=60\n", "/d.conf", unit)
    assert unit.exec_start is not None and unit.exec_start.source == "/d.conf:3"
    assert unit.environment_files == [("/etc/default/spamd", True)]
    words = spamd.exec_words(unit.exec_start.value, default, unit.exec_start.source)
    # ${OPTIONS} stays one word (systemd): spamd then sees one odd argument
    assert ("--max-children 9 -q", "/d.conf:3") in words
    split = spamd.exec_words("/usr/sbin/spamd $OPTIONS", default, "/u:3")
    assert split[1:] == [("--max-children", "/etc/default/spamd:2"),
                         ("9", "/etc/default/spamd:2"), ("-q", "/etc/default/spamd:2")]


# ---- SpamAssassin and DSNs -----------------------------------------------------------

@pytest.mark.parametrize("dsn,kind,host,port,timeout", [
    ("DBI:mysql:spamassassin:db1.example.net:3306", "name", "db1.example.net", 3306, None),
    ("DBI:mysql:spamassassin:db1.example.net", "name", "db1.example.net", None, None),
    ("DBI:mysql:spamassassin", "socket", "", None, None),
    ("DBI:mysql:spamassassin:localhost", "socket", "localhost", None, None),
    ("DBI:mysql:spamassassin:10.0.2.1:3306", "ip", "10.0.2.1", 3306, None),
    ("DBI:mysql:database=sa;host=dbw-pn;port=3306", "name", "dbw-pn", 3306, None),
    ("DBI:mysql:database=sa;host=10.0.2.1", "ip", "10.0.2.1", None, None),
    ("DBI:mysql:db=sa;hostname=dbw-pn", "name", "dbw-pn", None, None),
    ("DBI:mysql:database=sa;host=dbw-pn:3307", "name", "dbw-pn", 3307, None),
    ("DBI:mysql:database=sa;host=[::1]", "ip", "[::1]", None, None),
    ("DBI:mysql:database=sa;host=dbw-pn;mysql_connect_timeout=5", "name", "dbw-pn", None, 5),
    ("DBI:mysql:database=sa;mysql_socket=/run/mysqld/mysqld.sock", "socket", "", None, None),
    ("DBI:mysql:database=sa;host=dbw-pn;mysql_socket=/run/m.sock", "socket", "dbw-pn",
     None, None),
    ("dbi:MariaDB:database=sa;host=dbw-pn", "name", "dbw-pn", None, None),
    ("DBI:Pg:dbname=sa;host=/var/run/postgresql", "socket", "/var/run/postgresql", None,
     None),
    ("DBI:Pg:dbname=sa;host=db.example.net", "name", "db.example.net", None, None),
    ("DBI:SQLite:dbname=/var/lib/sa/prefs.db", "socket", "", None, None),
    ("DBI:mysql:sa@dbw-pn", "name", "dbw-pn", None, None),
])
def test_dsn_forms(dsn: str, kind: str, host: str, port: int | None,
                   timeout: float | None) -> None:
    d = sa.parse_dsn(dsn, "/sa:1")
    assert (d.kind, d.host, d.port, d.connect_timeout) == (kind, host, port, timeout)


@pytest.mark.parametrize("dsn,message", [
    ("mysql://db/sa", "/sa:1: 'mysql://db/sa' is not a DBI DSN -- DBI:mysql:database="),
    ("DBI:mysql:sa:db:3306:x", "too many ':' fields"),
    ("DBI:mysql:sa:db:port", "DSN port 'port' is not a port number"),
    ("DBI:mysql:database=sa;host", "DSN field 'host' is not key=value"),
    ("DBI:mysql:database=sa;mysql_connect_timeout=soon", "mysql_connect_timeout='soon'"),
])
def test_dsn_bad_forms(dsn: str, message: str) -> None:
    with pytest.raises(SpamdrillError) as exc:
        sa.parse_dsn(dsn, "/sa:1")
    assert message in exc.value.one_line()


def test_sa_cf_settings_comments_includes_and_conditionals() -> None:
    cfg = sa.SaConfig()
    files = {"/etc/spamassassin/sql.cf": "user_scores_dsn DBI:mysql:sa:db:3306\n"}
    sa.read_lines(cfg, "rbl_timeout 30 5 # comment\ndns_server 127.0.0.1\n"
                  "dns_server [::1]:53\ninclude sql.cf\nifplugin Mail::SpamAssassin::"
                  "Plugin::X\ntime_limit 60\nendif\nbayes_store_module Mail::"
                  "SpamAssassin::BayesStore::MySQL\nbayes_sql_dsn DBI:mysql:b\\#x:db\n",
                  "/etc/spamassassin/local.cf", files.get)
    assert cfg.rbl_timeout().value == 30 and cfg.rbl_timeout().source.endswith("cf:1")
    assert [d.value for d in cfg.dns_servers] == ["127.0.0.1", "[::1]:53"]
    user = cfg.dsn("user_scores_dsn")
    assert user is not None and user.source == "/etc/spamassassin/sql.cf:1"
    assert cfg.time_limit().value == 60 and any("inside if/ifplugin" in n for n in cfg.notes)
    bayes = cfg.dsn("bayes_sql_dsn")
    assert cfg.bayes_sql and bayes is not None and bayes.database == "b#x"
    empty = sa.SaConfig()
    assert empty.rbl_timeout().source == "default of SpamAssassin 4.0.1"
    with pytest.raises(SpamdrillError, match="/x:1: rbl_timeout 'soon' is not seconds"):
        sa.read_lines(empty, "rbl_timeout soon\n", "/x", files.get)
        empty.rbl_timeout()


# ---- wrapper, resolver -----------------------------------------------------------------

@pytest.mark.parametrize("argv0,text,kind,timeout_defers", [
    ("/usr/bin/maildrop", None, "none", True),
    ("/usr/local/bin/spamdrill-deliver", None, "spamdrill-deliver", True),
    ("/usr/local/libexec/deliver", "#!/usr/bin/python3 -IS\n# spamdrill-deliver launcher\n",
     "spamdrill-deliver", True),
    ("/w", '#!/bin/sh\n/usr/bin/maildrop $1 $2\nif [[ "$?" == "77" || "$?" == "75" ]]; '
           "then\n exit 100\nfi\n", "bounce-on-75", False),
    ("/w", "#!/usr/bin/perl\nuse String::ShellQuote;\nmy $a = shell_quote(@ARGV);\n"
           "exit(75) if (`/usr/bin/maildrop $a` =~ /timeout/is);\n"
           "exit(100) if ($? == 75 || $? == 77);\n", "bounce-on-75", True),
    ("/w", '#!/bin/sh\nexec /usr/bin/maildrop "$@"\n', "none", True),
    ("/w", "#!/usr/bin/perl\nsystem('/usr/bin/maildrop', @ARGV);\nexit($? >> 8);\n",
     "none", True),
    ("/w", "#!/usr/bin/python3\nimport sys\n", "unknown", False),
    ("/w", "#!/bin/sh\n/usr/bin/maildrop \"$@\" || logger failed\n", "unknown", False),
    ("/w", None, "unknown", False),
])
def test_wrapper_recognised_analysed_or_unknown(argv0: str, text: str | None, kind: str,
                                                timeout_defers: bool) -> None:
    w = wrapper.recognise([argv0, "-d", "x"], text)
    assert (w.kind, w.timeout_defers) == (kind, timeout_defers)
    assert bool(w.assumption) == (kind == "unknown")


def test_perl_wrapper_that_falls_off_the_end_loses_mail() -> None:
    w = wrapper.analyse("/w", "#!/usr/bin/perl\nexit(75) if (`maildrop` =~ /timeout/is);\n"
                              "exit(100) if ($? == 75 || $? == 77);\n")
    assert any("falls off the end: exit 0" in f for f in w.findings)


def test_resolv_conf_and_hosts() -> None:
    r = net.resolv_conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\n"
                        "options timeout:2 attempts:9\n", "/r")
    assert (r["resolv_servers"].value, r["resolv_timeout"].value,
            r["resolv_attempts"].value) == (2, 2, 5)
    assert r["resolv_attempts"].source == "/r:3"
    hosts = net.hosts_names("10.0.2.20 dbw-pn dbw-pn.example.net # db\n")
    assert not net.needs_dns("dbw-pn", hosts) and net.needs_dns("spamd2-pn", hosts)
    assert not net.needs_dns("10.0.0.1", hosts) and not net.needs_dns("[::1]", hosts)


# ---- the example systems -----------------------------------------------------------

def budget_of(name: str) -> dict[str, model.ModeResult]:
    system = reader.read(EXAMPLES / name)
    setups = inputs.setups(system)
    return {r.mode: r for r in model.evaluate(setups[inputs.limiting(setups)])}


def test_field_report_example_without_its_wrapper_measured_assumes_the_worst() -> None:
    r = budget_of("field-report")  # no measured table: every maildrop failure lost
    assert r["spamd-accept-queue-full"].outcome == "lost"
    assert any("not measured" in a for a in r["spamd-accept-queue-full"].assumptions)
    assert r["spamd-accept-queue-full"].worst_s == 302
    assert "-n 89" in r["spamd-accept-queue-full"].violations[0].fix
    # the DSN names dbw-pn in DBI:mysql:db:host:port form: by name, ~33 s, not 0
    assert r["dns-db-servfail"].spamd_s == pytest.approx(33.55, abs=0.01)
    # spamc -d spamd2-pn needs DNS too: a dead resolver stops spamc before spamd
    assert r["dns-dead"].spamc_s == 10 and r["dns-dead"].outcome == "delivered unscanned"


def test_stock_debian_example_uses_spamc_defaults_and_bounces_a_drip() -> None:
    system = reader.read(EXAMPLES / "debian-stock")
    assert system.wrapper.kind == "none" and system.filters[0].spamc.flags.timeout == 600
    assert system.spamd.number("max-children").source.endswith("etc/default/spamd:14")
    r = budget_of("debian-stock")
    assert r["spamd-slow-drip"].outcome == "bounced"
    assert r["spamd-accept-queue-full"].worst_s == 3 * 2 * 127 + 2  # ::1 and 127.0.0.1


def test_fixed_example_has_no_violation() -> None:
    r = budget_of("fixed")
    assert all(not m.violations for m in r.values()), r
    assert all(m.outcome != "bounced" for m in r.values())


# ---- a lab shaped like the system ----------------------------------------------------

def test_lab_config_from_the_field_report() -> None:
    config, missing = labconfig.lab_config(reader.read(EXAMPLES / "field-report"))
    assert config.maildrop.spamc_args == ("-t", "100")  # -d and -u are the lab's own
    assert config.maildrop.size_limit == 250000 and config.maildrop.in_exception
    assert config.delivery.wrapper == "bounce-on-75"
    assert config.delivery.wrapper_argv[0] == "/usr/local/bin/maildrop_wrapper"
    assert config.spamd.max_children == 5 and config.spamd.timeout_child == 300
    assert not config.database.by_ip and config.database.user_prefs
    assert config.database.bayes_sql
    assert any("hardware" in m for m in missing) and any("spamd2-pn" in m for m in missing)


def test_lab_config_from_the_fixed_system() -> None:
    config, missing = labconfig.lab_config(reader.read(EXAMPLES / "fixed"))
    assert config.maildrop.spamc_args == ("-t", "100", "-n", "30")
    assert config.delivery.wrapper == "spamdrill-deliver"
    assert config.delivery.deadline == 600
    assert config.database.by_ip and config.database.connect_timeout == 5  # in /etc/hosts
    assert any("hosts file" in m for m in missing)


def test_lab_config_from_stock_debian() -> None:
    config, missing = labconfig.lab_config(reader.read(EXAMPLES / "debian-stock"))
    assert config.maildrop.spamc_args == ()
    assert config.maildrop.size_limit == labconfig.NO_SIZE_LIMIT
    assert not config.maildrop.in_exception and config.delivery.wrapper == "none"
    assert not config.database.user_prefs and not config.database.bayes_sql
    assert any("no user preferences or Bayes in SQL" in m for m in missing)
