"""Reading the real configs into a budget ``Setup``. Parsers take text (sans-IO); ``gather``
does the file I/O. Anything missing takes the program's own default.

- maildroprc: the ``xfilter "…spamc …"`` line gives spamc's flags (the field report's
  ``xfilter "/usr/bin/spamc -d spamd2-pn -t 100 -u $LOGNAME"``).
- spamc.conf: flags, one or more per line, read before the command line (spamc.c
  ``combine_args``).
- spamd: its command line, or ``OPTIONS="…"`` in Debian's /etc/default/spamd.
- SpamAssassin cf files: ``rbl_timeout``, the SQL DSNs (a host name, and
  ``mysql_connect_timeout``).
- Postfix: ``command_time_limit`` and ``<transport>_time_limit`` in main.cf (postconf time
  units s m h d w); the pipe service in master.cf that runs maildrop, and what wraps it.
- spamdrill-deliver's own config (``deadline``).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import replace
from pathlib import Path

from spamdrill.budget.model import Setup
from spamdrill.budget.spamc import flag_number, parse_args
from spamdrill.errors import SpamdrillError

_XFILTER = re.compile(r"""\bxfilter\s+(?:"([^"]*)"|'([^']*)'|`([^`]*)`)""")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def spamc_args_from_maildroprc(text: str) -> list[str] | None:
    """spamc's arguments from the first xfilter that runs spamc (comments skipped)."""
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        m = _XFILTER.search(line)
        if not m:
            continue
        command = next(g for g in m.groups() if g is not None)
        try:
            argv = shlex.split(command)
        except ValueError:
            continue
        for i, word in enumerate(argv):
            if word.rsplit("/", 1)[-1] == "spamc":
                return argv[i + 1:]
    return None


def spamc_conf_args(text: str) -> list[str]:
    args: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            args += shlex.split(line)
    return args


def spamd_options_from_default(text: str) -> str:
    """``OPTIONS="…"`` from /etc/default/spamd (Debian)."""
    m = re.search(r"""^\s*OPTIONS\s*=\s*(["'])(.*?)\1""", text, re.M)
    return m.group(2) if m else ""


def spamd_flags(args: str) -> dict[str, float]:
    """The spamd flags the model uses (long and short spellings, ``=`` or a space)."""
    names = {"--timeout-child": "timeout_child", "--timeout-tcp": "timeout_tcp",
             "--max-children": "max_children", "-m": "max_children"}
    argv = shlex.split(args)
    out: dict[str, float] = {}
    i = 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if name in names:
            out[names[name]], i = flag_number(argv, i, name, eq, value, "spamd")
        i += 1
    return out


def sa_settings(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "rbl_timeout" and len(words) > 1:
            out["rbl_timeout"] = float(words[1])
        elif words[0] in ("user_scores_dsn", "bayes_sql_dsn") and len(words) > 1:
            dsn = words[1]
            host = re.search(r"host=([^;]+)", dsn)
            if host:
                out["db_host_is_name"] = not re.fullmatch(r"[\d.]+|\[?[0-9a-fA-F:]+\]?",
                                                          host.group(1))
            ct = re.search(r"mysql_connect_timeout=(\d+)", dsn)
            if ct:
                out["db_connect_timeout"] = float(ct.group(1))
    return out


def resolv_conf(text: str) -> dict[str, object]:
    """resolv.conf(5): how many servers (glibc uses the first 3) and the timeout/attempts
    options, for the model's cost of one lookup when no server answers."""
    out: dict[str, object] = {}
    servers = 0
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers += 1
        elif words[0] == "options":
            for opt in words[1:]:
                name, _, value = opt.partition(":")
                # glibc caps them: RES_MAXRETRANS 30, RES_MAXRETRY 5
                if name == "timeout" and value.isdigit():
                    out["resolv_timeout"] = float(min(int(value), 30))
                elif name == "attempts" and value.isdigit():
                    out["resolv_attempts"] = min(int(value), 5)
    if servers:
        out["resolv_servers"] = min(servers, 3)
    return out


def postconf_time(value: str) -> float:
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", value)
    if not m:
        raise SpamdrillError(f"not a Postfix time value: {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def main_cf(text: str) -> dict[str, str]:
    """main.cf parameters (continuation lines joined)."""
    params: dict[str, str] = {}
    current = None
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace() and current:
            params[current] += " " + raw.strip()
            continue
        name, eq, value = raw.partition("=")
        if eq:
            current = name.strip()
            params[current] = value.strip()
    return params


def maildrop_entry(master_text: str) -> tuple[str, list[str], int | None] | None:
    """(service name, argv, maxproc) of the master.cf pipe service that runs maildrop;
    maxproc (column 7) is None for ``-`` (main.cf's ``default_process_limit``)."""
    entries: list[str] = []
    for raw in master_text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace() and entries:
            entries[-1] += " " + raw.strip()
        else:
            entries.append(raw.strip())
    for entry in entries:
        fields = entry.split()
        if len(fields) >= 8 and fields[7] == "pipe" and "maildrop" in entry:
            argv_at = entry.find("argv=")
            argv = shlex.split(entry[argv_at + 5:]) if argv_at >= 0 else []
            maxproc = int(fields[6]) if fields[6].isdigit() else None
            return fields[0], argv, maxproc
    return None


def wrapper_of(argv: list[str]) -> tuple[str, float | None]:
    """What runs maildrop: spamdrill-deliver (and its --deadline), maildrop itself, or an
    unknown wrapper (assumed to turn 75 into a bounce, as the field report's did)."""
    if not argv:
        return "none", None
    prog = argv[0].rsplit("/", 1)[-1]
    if prog == "spamdrill-deliver":
        deadline = None
        for a in argv[1:]:
            if a.startswith("--deadline="):
                deadline = float(a.split("=", 1)[1])
        return "spamdrill-deliver", deadline
    if prog == "maildrop":
        return "none", None
    return "bounce-on-75", None


SYN_LINEAR = Path("/proc/sys/net/ipv4/tcp_syn_linear_timeouts")


def kernel_syn_linear_timeouts(path: Path = SYN_LINEAR) -> int:
    """This machine's ``net.ipv4.tcp_syn_linear_timeouts``; 0 where the kernel has none
    (before 6.x: every SYN resend waits twice as long as the one before)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def gather(*, maildroprc: Path | None = None, spamc_args: str | None = None,
           spamc_conf: Path | None = None, spamd_args: str | None = None,
           spamd_default: Path | None = None, sa_dir: Path | None = None,
           postfix_dir: Path | None = None, deliver_config: Path | None = None,
           maildrop_timeout: float | None = None, wrapper: str | None = None,
           resolv: Path | None = None, link_rate: float | None = None,
           concurrency: int | None = None) -> Setup:
    """Build a Setup from the files and flags given (thin I/O around the parsers above)."""
    setup = Setup(syn_linear_timeouts=kernel_syn_linear_timeouts())
    sources: dict[str, str] = {}
    args: list[str] = []
    spamc_source = "spamc defaults"
    if spamc_conf is not None:
        args += spamc_conf_args(_read(spamc_conf))
        spamc_source = str(spamc_conf)
    if maildroprc is not None:
        found = spamc_args_from_maildroprc(_read(maildroprc))
        if found is None:
            raise SpamdrillError(f"{maildroprc}: no xfilter line runs spamc",
                                 "give the flags with --spamc-args")
        args += found
        spamc_source = f"{maildroprc} (xfilter)"
    if spamc_args is not None:
        args += shlex.split(spamc_args)
        spamc_source = "--spamc-args"
    setup = replace(setup, spamc=parse_args(args, spamc_source))
    spamd_text = spamd_args
    if spamd_text is None and spamd_default is not None:
        spamd_text = spamd_options_from_default(_read(spamd_default))
        sources["spamd"] = str(spamd_default)
    if spamd_text is not None:
        flags = spamd_flags(spamd_text)
        sources.setdefault("spamd", "--spamd-args")
        setup = replace(setup,
                        spamd_timeout_child=flags.get("timeout_child", setup.spamd_timeout_child),
                        spamd_timeout_tcp=flags.get("timeout_tcp", setup.spamd_timeout_tcp),
                        spamd_max_children=int(flags.get("max_children",
                                                         setup.spamd_max_children)))
    if sa_dir is not None:
        if not sa_dir.is_dir():
            raise SpamdrillError(f"SpamAssassin config directory {sa_dir} not found")
        settings: dict[str, object] = {}
        for cf in sorted(sa_dir.glob("*.cf")):
            settings.update(sa_settings(_read(cf)))
        setup = replace(setup, **settings)  # type: ignore[arg-type]
        sources["sa"] = str(sa_dir)
    if resolv is not None:
        setup = replace(setup, **resolv_conf(_read(resolv)))  # type: ignore[arg-type]
        sources["resolv"] = str(resolv)
    if postfix_dir is not None:
        setup = _postfix(setup, postfix_dir, sources)
    if deliver_config is not None:
        try:
            raw = tomllib.loads(_read(deliver_config))
        except tomllib.TOMLDecodeError as exc:
            raise SpamdrillError(f"{deliver_config}: not valid TOML: {exc}") from None
        if "deadline" in raw:
            setup = replace(setup, wrapper="spamdrill-deliver",
                            wrapper_deadline=float(raw["deadline"]))
            sources["wrapper"] = str(deliver_config)
    if wrapper is not None:
        setup = replace(setup, wrapper=wrapper)
        sources.setdefault("wrapper", "--wrapper")
    if maildrop_timeout is not None:
        setup = replace(setup, maildrop_timeout=maildrop_timeout)
        sources["maildrop"] = "--maildrop-timeout"
    if link_rate is not None:
        setup = replace(setup, link_rate=link_rate)
    if concurrency is not None:
        setup = replace(setup, concurrency=concurrency)
    return replace(setup, sources=sources)


def _postfix(setup: Setup, d: Path, sources: dict[str, str]) -> Setup:
    params = main_cf(_read(d / "main.cf"))
    limit = postconf_time(params.get("command_time_limit", "1000s"))
    source = f"{d / 'main.cf'} command_time_limit" if "command_time_limit" in params \
        else "Postfix default command_time_limit"
    concurrency = int(params.get("default_process_limit", "100"))
    master = d / "master.cf"
    if master.exists():
        service = maildrop_entry(_read(master))
        if service is not None:
            name, argv, maxproc = service
            concurrency = maxproc or concurrency
            key = f"{name}_time_limit"
            if key in params:
                limit, source = postconf_time(params[key]), f"{d / 'main.cf'} {key}"
            kind, deadline = wrapper_of(argv)
            setup = replace(setup, wrapper=kind, wrapper_deadline=deadline)
            sources["wrapper"] = f"{master} ({name})"
    sources["postfix"] = source
    return replace(setup, postfix_time_limit=limit, concurrency=concurrency)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        raise SpamdrillError(f"{path} not found") from None
    except OSError as exc:
        raise SpamdrillError(f"cannot read {path}: {exc.strerror}") from None
