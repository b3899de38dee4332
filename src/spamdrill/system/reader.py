"""Read a whole system's configuration from one root directory (thin I/O around the
sans-IO parsers of this package). ``root`` is ``/`` for this machine, or a copy of a
production host's files (``ROOT/etc/postfix/main.cf``, ``ROOT/etc/maildroprc``, ...).

Each file can be replaced by one given on the command line (``Overrides``), as
``spamdrill budget``'s older flags do."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.system import maildroprc as mrc
from spamdrill.system import net, postfix
from spamdrill.system import rspamd as rspamd_conf
from spamdrill.system import sa as sa_conf
from spamdrill.system import spamc as spamc_reader
from spamdrill.system import spamd as spamd_conf
from spamdrill.system import wrapper as wrapper_conf
from spamdrill.system.values import Sourced

UNITS = ("etc/systemd/system/spamd.service", "lib/systemd/system/spamd.service",
         "usr/lib/systemd/system/spamd.service")
DROPINS = ("lib/systemd/system/spamd.service.d", "usr/lib/systemd/system/spamd.service.d",
           "etc/systemd/system/spamd.service.d")
DEFAULT_DELIVER_CONFIG = "etc/spamdrill/deliver.toml"


@dataclass(frozen=True)
class Overrides:
    maildroprc: Path | None = None
    spamc_args: str | None = None
    spamc_conf: Path | None = None
    spamd_args: str | None = None
    spamd_default: Path | None = None
    sa_dir: Path | None = None
    postfix_dir: Path | None = None
    resolv: Path | None = None
    deliver_config: Path | None = None


@dataclass(frozen=True)
class Filter:
    """One xfilter that runs spamc, and what spamc makes of its words."""

    xfilter: mrc.XFilter | None  # None: --spamc-args without a maildroprc filter
    spamc: spamc_reader.SpamcCommand


@dataclass
class System:
    root: Path
    filters: list[Filter] = field(default_factory=list)
    maildroprc: mrc.Maildroprc | None = None
    spamd: spamd_conf.SpamdCommand = field(default_factory=spamd_conf.SpamdCommand)
    sa: sa_conf.SaConfig = field(default_factory=sa_conf.SaConfig)
    user_dsn: sa_conf.Dsn | None = None
    bayes_dsn: sa_conf.Dsn | None = None
    resolv: dict[str, Sourced[float]] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    hosts_first: bool = True  # nsswitch.conf's hosts: asks files before dns
    hosts_source: str = "Debian's nsswitch.conf (hosts: files dns)"
    main_cf: postfix.MainCf | None = None
    service: postfix.MasterEntry | None = None
    time_limit: Sourced[float] = field(default_factory=lambda: Sourced(
        1000.0, "default of Postfix 3.7 (command_time_limit)"))
    concurrency: Sourced[int] = field(default_factory=lambda: Sourced(
        100, "default of Postfix 3.7 (default_process_limit)"))
    wrapper: wrapper_conf.Wrapper = field(
        default_factory=lambda: wrapper_conf.Wrapper("none", "", True))
    wrapper_source: str = "no Postfix maildrop service found"
    deliver_deadline: Sourced[float] | None = None
    deliver_config: Path | None = None  # spamdrill-deliver's policy file, if it has one
    notes: list[str] = field(default_factory=list)
    found_spamassassin: bool = False  # a site directory, spamd's unit or its defaults
    maildrop_unused: str | None = None  # why no mail reaches the maildrop service
    no_spamc: str | None = None  # why no spamc runs
    rspamd: rspamd_conf.RspamdConf | None = None  # when ROOT/etc/rspamd exists
    milter: rspamd_conf.MilterConf | None = None  # main.cf's milter settings
    # master.cf's "smtp inet" smtpd service's -o settings (name -> (value, where))
    smtpd_options: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def db_dsn(self) -> sa_conf.Dsn | None:
        """The DSN spamd connects to on every scan: user prefs (with --sql-config), else
        SQL Bayes."""
        return self.user_dsn or self.bayes_dsn


def read(root: Path = Path("/"), o: Overrides = Overrides()) -> System:
    if not root.is_dir():
        raise SpamdrillError(f"--etc {root}: no such directory",
                             "give the root of a system's files, e.g. / or a copy of it")
    s = System(root)
    _postfix(s, o.postfix_dir or root / "etc/postfix")
    _spamd(s, o)
    _sa(s, o.sa_dir or _site_dir(s))
    _net(s, o.resolv or root / "etc/resolv.conf")
    _maildrop(s, o)
    _rspamd(s, root / "etc/rspamd")
    if o == Overrides() and s.main_cf is None and s.maildroprc is None \
            and not s.found_spamassassin and s.rspamd is None:
        raise SpamdrillError(
            f"--etc {root}: no Postfix (etc/postfix/main.cf, master.cf), maildrop "
            "(etc/maildroprc) or SpamAssassin (etc/spamassassin, spamd.service, "
            "etc/default/spamd) configuration found there",
            "give the root of a system's files, e.g. / or a copy of its /etc")
    if o.deliver_config is not None or (s.wrapper.kind == "spamdrill-deliver"):
        _deliver(s, o.deliver_config)
    return s


def read_postfix(root: Path = Path("/")) -> System:
    """Postfix's part alone (main.cf, master.cf, the maildrop service, its time limit), as
    ``read`` reads it: ``spamdrill-deliver --check-config --etc`` uses it."""
    if not root.is_dir():
        raise SpamdrillError(f"--etc {root}: no such directory",
                             "give the root of a system's files, e.g. / or a copy of it")
    s = System(root)
    _postfix(s, root / "etc/postfix")
    return s


def _text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise SpamdrillError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise SpamdrillError(f"cannot read {path}: {exc.strerror}") from None


def _required(path: Path) -> str:
    text = _text(path)
    if text is None:
        raise SpamdrillError(f"{path} not found")
    return text


def _in_root(s: System, path: str) -> Path:
    return s.root / path.lstrip("/")


def _rspamd(s: System, d: Path) -> None:
    """rspamd's files under ``d`` (its shipped ones, local.d, override.d), when it has a
    configuration there; Postfix's milter settings come from main.cf."""
    if s.main_cf is not None:
        s.milter = rspamd_conf.milter(s.main_cf, s.smtpd_options)
    if not (d / "rspamd.conf").is_file() and not (d / "options.inc").is_file():
        return
    texts = {f"{sub}{name}": _text(d / sub / name)
             for name in rspamd_conf.FILES for sub in ("", "local.d/", "override.d/")}
    s.rspamd = rspamd_conf.parse(texts, str(d))


def _postfix(s: System, d: Path) -> None:
    master_text = _text(d / "master.cf")
    main_text = _text(d / "main.cf")
    if master_text is None and main_text is None:
        s.notes.append(f"{d}: no main.cf or master.cf: Postfix's defaults assumed")
        return
    entries = postfix.parse_master_cf(master_text or "", str(d / "master.cf"))
    names = tuple(e.service for e in entries)
    cf = postfix.parse_main_cf(main_text or "", str(d / "main.cf"), names)
    s.main_cf = cf
    smtpd = [e for e in entries if e.type == "inet" and e.command == "smtpd"
             and e.service.rsplit(":", 1)[-1] in ("smtp", "25")]
    if smtpd:
        s.smtpd_options = dict(smtpd[0].options)
    service = _maildrop_service(s, cf, entries)
    if service is None:
        s.notes.append(f"{d / 'master.cf'}: no pipe service runs maildrop")
        limit = cf.time("command_time_limit")
        if limit is not None:
            s.time_limit = limit
        return
    s.service = service
    s.maildrop_unused = _unrouted(cf, service)
    limit = cf.time(f"{service.service}_time_limit", service.options)
    if limit is not None:
        s.time_limit = limit
    if service.maxproc.isdigit():
        s.concurrency = Sourced(int(service.maxproc), f"{service.where} (maxproc)")
    else:
        dpl = cf.integer("default_process_limit")
        if dpl is not None:
            s.concurrency = dpl
    argv = service.pipe_argv()
    text = _text(_in_root(s, argv[0])) if argv and argv[0].startswith("/") else None
    s.wrapper = wrapper_conf.recognise(argv, text)
    s.wrapper_source = f"{service.where} ({service.service}: argv={' '.join(argv[:1])})"


ROUTES = ("virtual_transport", "mailbox_transport", "local_transport", "default_transport",
          "fallback_transport", "relay_transport", "mailbox_transport_maps",
          "transport_maps", "virtual_mailbox_maps")


def _unrouted(cf: postfix.MainCf, service: postfix.MasterEntry) -> str | None:
    """Why no mail reaches the maildrop service, or None when some may: a transport
    parameter names it, or a lookup table (transport_maps) may."""
    named = []
    for param in ROUTES[:6]:
        value = cf.expanded(param)
        if value is None:
            continue
        if value.value.split(":", 1)[0].strip() == service.service:
            return None
        if param in cf.params:
            named.append(f"{param} = {value.value} ({value.source})")
    for param in ("transport_maps", "mailbox_transport_maps", "mailbox_command"):
        if param in cf.params and cf.params[param][0].strip():
            return None  # a table (or local(8)'s command) may send mail its way
    return (f"main.cf sends no mail to the {service.service} service ({service.where}): "
            + ("; ".join(named) if named else "no transport parameter names it"))


def _maildrop_service(s: System, cf: postfix.MainCf,
                      entries: list[postfix.MasterEntry]) -> postfix.MasterEntry | None:
    """The pipe service that runs maildrop; among several, the one main.cf routes mail
    to (virtual_transport, mailbox_transport, fallback_transport, default_transport)."""
    pipes = [e for e in entries if e.command == "pipe" and any(
        "maildrop" in w for w in e.pipe_argv())]
    if len(pipes) <= 1:
        return pipes[0] if pipes else None
    for param in ("virtual_transport", "mailbox_transport", "fallback_transport",
                  "default_transport"):
        value = cf.expanded(param)
        name = value.value.split(":", 1)[0] if value else ""
        for e in pipes:
            if e.service == name:
                s.notes.append(f"{e.where}: of {len(pipes)} maildrop services, {name} is "
                               f"the one {param} names")
                return e
    s.notes.append(f"{pipes[0].where}: {len(pipes)} maildrop services and none named by "
                   f"main.cf's transports: {pipes[0].service} read")
    return pipes[0]


def _spamd(s: System, o: Overrides) -> None:
    if o.spamd_args is not None:
        words = [(w, "--spamd-args") for w in _split(o.spamd_args, "--spamd-args")]
        s.spamd = spamd_conf.parse_options(words, "--spamd-args")
        return
    default_path = o.spamd_default or s.root / "etc/default/spamd"
    default_text = _text(default_path) if o.spamd_default is None else \
        _required(default_path)
    env = spamd_conf.shell_assignments(default_text, str(default_path)) if default_text else {}
    unit = _unit(s)
    s.found_spamassassin = unit is not None or default_text is not None
    if unit is not None and unit.exec_start is not None and o.spamd_default is None:
        env = {**env, **unit.environment}
        words = spamd_conf.exec_words(unit.exec_start.value, env, unit.exec_start.source)[1:]
        s.spamd = spamd_conf.parse_options(words, unit.exec_start.source)
    elif "OPTIONS" in env:
        opts = env["OPTIONS"]
        s.spamd = spamd_conf.parse_options([(w, opts.source) for w in opts.value.split()],
                                      opts.source)
    else:
        s.notes.append("spamd: no systemd unit and no /etc/default/spamd OPTIONS: its "
                       "defaults assumed")
    s.notes += s.spamd.notes


def _unit(s: System) -> spamd_conf.Unit | None:
    unit: spamd_conf.Unit | None = None
    for rel in UNITS:
        text = _text(s.root / rel)
        if text is not None:
            unit = spamd_conf.parse_unit(text, str(s.root / rel))
            break
    if unit is None:
        return None
    for rel in DROPINS:
        d = s.root / rel
        if d.is_dir():
            for f in sorted(d.glob("*.conf")):
                spamd_conf.parse_unit(_required(f), str(f), unit)
    for path, optional in unit.environment_files:
        text = _text(_in_root(s, path))
        if text is None and not optional:
            raise SpamdrillError(f"{path} (EnvironmentFile of spamd.service) not found "
                                 "under the root: systemd would not start spamd")
        if text is not None:
            unit.environment = {**spamd_conf.shell_assignments(text, str(_in_root(s, path))),
                                **unit.environment}
    return unit


def _site_dir(s: System) -> Path:
    site = s.spamd.text("siteconfigpath")
    return _in_root(s, site.value) if site else s.root / "etc/spamassassin"


def _sa(s: System, d: Path) -> None:
    s.found_spamassassin = s.found_spamassassin or d.is_dir()
    if not d.is_dir():
        s.notes.append(f"{d}: no SpamAssassin site directory: its defaults assumed")
        return

    def read(path: str) -> str | None:
        return _text(Path(path))

    for pattern in ("*.pre", "*.cf"):
        for f in sorted(d.glob(pattern)):
            sa_conf.read_lines(s.sa, _required(f), str(f), read)
    for opt in ("pre", "cf"):
        lines = s.spamd.text(opt)
        if lines:
            sa_conf.read_lines(s.sa, lines.value, f"spamd --{opt} ({lines.source})", read)
    s.notes += s.sa.notes
    s.bayes_dsn = s.sa.dsn("bayes_sql_dsn") if s.sa.bayes_sql else None
    user = s.sa.dsn("user_scores_dsn")
    sql_config = s.spamd.flag("sql-config") or s.spamd.flag("setuid-with-sql")
    if user is not None and not sql_config:
        s.notes.append(f"{user.source}: user_scores_dsn is used only with spamd "
                       "--sql-config (-q) or --setuid-with-sql (-Q), which spamd is not "
                       "given")
        user = None
    s.user_dsn = user


def _net(s: System, resolv: Path) -> None:
    text = _text(resolv)
    if text is not None:
        s.resolv = net.resolv_conf(text, str(resolv))
    hosts = _text(s.root / "etc/hosts")
    if hosts is not None:
        s.hosts = net.hosts_names(hosts)
    nsswitch = _text(s.root / "etc/nsswitch.conf")
    if nsswitch is None:
        s.notes.append(f"{s.root / 'etc/nsswitch.conf'}: not there: Debian's 'hosts: files "
                       "dns' assumed (without the file glibc would ask DNS first)")
        s.hosts_first = True
    else:
        s.hosts_first = net.hosts_files_first(nsswitch)
        s.hosts_source = str(s.root / "etc/nsswitch.conf")


def _maildrop(s: System, o: Overrides) -> None:
    path = o.maildroprc or s.root / "etc/maildroprc"
    text = _required(path) if o.maildroprc else _text(path)
    if text is not None:

        def read(p: str) -> str | None:
            return _text(_in_root(s, p))

        s.maildroprc = mrc.parse(text, str(path), read)
        s.notes += s.maildroprc.notes
    extra = [(w, "--spamc-args") for w in _split(o.spamc_args, "--spamc-args")] \
        if o.spamc_args is not None else []
    found = s.maildroprc.spamc_filters if s.maildroprc else []
    if not found and o.maildroprc is not None and o.spamc_args is None:
        raise SpamdrillError(f"{path}: no xfilter line runs spamc",
                             "give the flags with --spamc-args")
    if not found:
        if s.maildroprc is not None and o.spamc_args is None:
            s.no_spamc = (f"no xfilter in {path} runs spamc (users' own ~/.mailfilter "
                          "not read)")
        s.filters = [Filter(None, _spamc(s, o, [], extra))]
        return
    s.filters = [Filter(x, _spamc(s, o, x.spamc or [], extra)) for x in found]


def _spamc(s: System, o: Overrides, words: list[tuple[str, str]],
           extra: list[tuple[str, str]]) -> spamc_reader.SpamcCommand:
    argv = [w for w, _ in words + extra]
    named = spamc_reader.config_file_of(argv)
    conf: list[tuple[str, str]] = []
    if named is not None:
        path = _in_root(s, named)
        text = _text(path)
        if text is None:
            raise SpamdrillError(f"spamc -F {named}: no such file under the root (spamc "
                                 "exits 78: 'Failed to open config file')")
        conf = spamc_reader.conf_words(text, str(path))
    else:
        path = o.spamc_conf or s.root / spamc_reader.CONFIG_FILE.lstrip("/")
        text = _required(path) if o.spamc_conf else _text(path)
        if text is not None:
            conf = spamc_reader.conf_words(text, str(path))
    return spamc_reader.parse(conf + words + extra)


def _deliver(s: System, path: Path | None) -> None:
    """spamdrill-deliver's deadline, read by its own policy loader."""
    from spamdrill.proto.deliver_policy import PolicyError
    from spamdrill.system.deliver_conf import load_policy

    argv = s.service.pipe_argv() if s.service else []
    if path is None:
        named = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
        path = _in_root(s, named) if named else s.root / DEFAULT_DELIVER_CONFIG
        if not path.exists():
            path = None
    where = "default of spamdrill-deliver"
    if path is not None:  # missing or unreadable: the reader's own one line
        sets = re.search(r"(?m)^\s*deadline\s*=", _required(path)) is not None
        where = f"{path} (deadline)" if sets else \
            f"{path} (no deadline: spamdrill-deliver's default)"
    overrides: dict[str, object] = {}
    deadline_flag = next((a.split("=", 1)[1] for a in argv if a.startswith("--deadline=")),
                         None)
    if deadline_flag is not None:
        overrides["deadline"] = _float(deadline_flag)
        where = f"{s.wrapper_source} (--deadline)"
    try:  # the very validation spamdrill-deliver applies to its own file and flags
        loaded = load_policy(path, overrides or None)
    except PolicyError as exc:
        raise SpamdrillError(f"{path or where}: {exc}") from None
    s.deliver_deadline = Sourced(loaded.deadline, where)
    s.deliver_config = path
    if s.wrapper.kind != "spamdrill-deliver":
        s.wrapper = wrapper_conf.Wrapper("spamdrill-deliver", str(path), True)
        s.wrapper_source = str(path)


def _float(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text  # the policy loader says what is wrong with it


def _split(text: str | None, what: str) -> list[str]:
    try:
        return shlex.split(text or "")
    except ValueError as exc:
        raise SpamdrillError(f"{what}: {exc}") from None
