"""spamc 4.0.1's flags, read as spamc reads them (sans-IO).

From SpamAssassin 4.0.1's ``spamc/spamc.c`` and ``spamc/getopt.c``:

- ``main``: the first command-line word starting with ``-F`` names the config file (the next
  word); otherwise ``/etc/spamassassin/spamc.conf`` if it exists. ``--config`` is accepted
  by ``read_args`` but never opens a file.
- ``combine_args``: the config file's words come first, then the command line. A line is
  skipped when it *starts* with ``#`` or is empty; words are split on spaces only; a last
  line without a newline is an error (exit 78); at most 24 words in all.
- ``spamc_getopt_long``: a short flag is its first letter only (``-t5`` is ``-t`` followed
  by the next word; ``-xE`` is ``-x``); a flag's value is the next word and must not start
  with ``-``; long flags match exactly (no abbreviations: ``--connect-retry`` is "option not
  found") and take ``--name=value``; the first word not starting with ``-`` ends the flags.
  An unknown flag or a missing value prints the usage and exits 64 (EX_USAGE).
- ``read_args``: numbers go through ``atoi`` (``-t soon`` is 0: no timeout); ``-t`` sets
  the connect timeout too unless one is already set; ``-X`` counts only after ``-x``;
  ``-s`` above 256 MiB is an error.
- ``libspamc.c``: ``--connect-retries 0`` means 3, ``--filter-retries 0`` means 1; with
  ``-x`` a host list is cut to its first host (``transport_setup``).

Unknown or malformed flags are errors naming the flag, where spamc would exit 64; values
spamc reads silently wrong (``-t soon``) are errors too, saying what spamc makes of them.
"""

from __future__ import annotations

from spamdrill.errors import bad

DEFAULT_TIMEOUT = 600
DEFAULT_CONNECT_RETRIES = 3
DEFAULT_RETRY_SLEEP = 1
DEFAULT_FILTER_RETRIES = 1
DEFAULT_FILTER_RETRY_SLEEP = 1
KERNEL_CONNECT_S = 127.0  # no alarm: connect() gives up after tcp_syn_retries (6) resends


class _Frozen:
    """A frozen record without ``dataclasses``: spamdrill-spamc reads spamc's flags once
    per message, and importing dataclasses (inspect, ast, re) costs more start-up than all
    of its parsing. Equality, hashing and repr over ``__slots__``; ``replace`` as
    ``dataclasses.replace``."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and type(other) is type(self) \
            and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple(v if not isinstance(v, dict) else tuple(sorted(v.items()))
                          for v in self._values()))

    def __copy__(self) -> _Frozen:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, object]) -> _Frozen:
        return self  # immutable (values are tuples, strings, numbers; a dict never changed)

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild, (type(self), tuple(zip(self.__slots__, self._values(), strict=True)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(
            f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def _rebuild(cls: type[_Frozen], values: tuple[tuple[str, object], ...]) -> _Frozen:
    obj = object.__new__(cls)
    _init(obj, **dict(values))
    return obj


def _init(obj: _Frozen, **values: object) -> None:
    for key, value in values.items():
        object.__setattr__(obj, key, value)


def replace(obj: SpamcFlags, **changes: object) -> SpamcFlags:
    """A copy of ``obj`` with ``changes`` (``dataclasses.replace``)."""
    new = object.__new__(type(obj))
    for key in obj.__slots__:
        object.__setattr__(new, key, changes.pop(key) if key in changes else getattr(obj, key))
    if changes:
        raise TypeError(f"unknown fields {', '.join(changes)}")
    return new


class SpamcFlags(_Frozen):
    __slots__ = (
        "connect_retries",
        "connect_timeout",
        "family",
        "filter_retries",
        "filter_retry_sleep",
        "hosts",
        "max_size",
        "origins",
        "port",
        "randomize",
        "retry_sleep",
        "safe_fallback",
        "source",
        "timeout",
        "unavail_tempfail",
        "unix_socket",
    )
    timeout: float  # -t; 0 = none
    # -n; None = as -t; 0 = no alarm (spamc.c: no -t and no -n), the kernel's connect timeout
    connect_timeout: float | None
    connect_retries: int
    retry_sleep: float
    filter_retries: int
    filter_retry_sleep: float
    max_size: int  # -s
    safe_fallback: bool  # -x turns it off: failures are errors, not unscanned mail
    unavail_tempfail: bool  # -X after -x: exit 75 instead of 69 for "unavailable"
    hosts: tuple[str, ...]  # -d a,b; () = localhost (getaddrinfo(NULL): ::1, 127.0.0.1)
    unix_socket: str | None  # -U
    port: int
    family: int  # -4 / -6; 0 = both
    randomize: bool  # -H
    source: str
    origins: tuple[tuple[str, str], ...]  # (field, where it was set)

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, connect_timeout: float | None = None,
                 connect_retries: int = DEFAULT_CONNECT_RETRIES,
                 retry_sleep: float = DEFAULT_RETRY_SLEEP,
                 filter_retries: int = DEFAULT_FILTER_RETRIES,
                 filter_retry_sleep: float = DEFAULT_FILTER_RETRY_SLEEP,
                 max_size: int = 500 * 1024, safe_fallback: bool = True,
                 unavail_tempfail: bool = False, hosts: tuple[str, ...] = (),
                 unix_socket: str | None = None, port: int = 783, family: int = 0,
                 randomize: bool = False, source: str = "spamc defaults",
                 origins: tuple[tuple[str, str], ...] = ()) -> None:
        _init(self, timeout=timeout, connect_timeout=connect_timeout,
              connect_retries=connect_retries, retry_sleep=retry_sleep,
              filter_retries=filter_retries, filter_retry_sleep=filter_retry_sleep,
              max_size=max_size, safe_fallback=safe_fallback,
              unavail_tempfail=unavail_tempfail, hosts=hosts, unix_socket=unix_socket,
              port=port, family=family, randomize=randomize, source=source, origins=origins)

    @property
    def connect_wait(self) -> float:
        """One connect()'s longest wait: the alarm of -n/-t, else the kernel's."""
        if self.connect_timeout is None:
            return self.timeout or KERNEL_CONNECT_S
        return self.connect_timeout or KERNEL_CONNECT_S

    @property
    def tried_hosts(self) -> int:
        """Hosts in the connect loop: -x cuts a list to its first (transport_setup)."""
        if self.unix_socket is not None:
            return 1
        n = max(1, len(self.hosts))
        return n if self.safe_fallback else 1

    @property
    def tries(self) -> int:
        """Connect tries: one for a UNIX socket (_try_to_connect_unix has no loop)."""
        return 1 if self.unix_socket is not None else self.connect_retries

    @property
    def addresses_per_try(self) -> int:
        """Addresses connect() is called on in one try. localhost (no -d) is ::1 and
        127.0.0.1 unless -4/-6; a name is assumed to resolve to one address."""
        if self.unix_socket is None and not self.hosts and not self.family:
            return 2
        return 1

    def origin(self, key: str) -> str:
        return dict(self.origins).get(key, self.source)

    def render(self) -> str:
        parts = [f"-t {self.timeout:g}"]
        if self.connect_timeout and self.connect_timeout != self.timeout:
            parts.append(f"-n {self.connect_timeout:g}")
        if self.connect_retries != DEFAULT_CONNECT_RETRIES:
            parts.append(f"--connect-retries {self.connect_retries}")
        if self.retry_sleep != DEFAULT_RETRY_SLEEP:
            parts.append(f"--retry-sleep {self.retry_sleep:g}")
        if self.filter_retries != DEFAULT_FILTER_RETRIES:
            parts.append(f"--filter-retries {self.filter_retries}")
        if len(self.hosts) > 1:
            parts.append(f"-d {','.join(self.hosts)}")
        if not self.safe_fallback:
            parts.append("-x -X" if self.unavail_tempfail else "-x")
        return " ".join(parts)



VERSION = "spamc 4.0.1"
CONFIG_FILE = "/etc/spamassassin/spamc.conf"
COMBO_ARGV_SIZE = 24
MAX_MESSAGE_LEN = 256 * 1024 * 1024

SHORT = "BcrR46d:e:fyp:n:t:s:u:L:C:xXzSHU:ElhVKF:0:1:2"  # read_args' optstring
# long name -> (code, argument: "none" | "required" | "optional")
LONG: dict[str, tuple[str, str]] = {
    "dest": ("d", "required"), "randomize": ("H", "none"), "port": ("p", "required"),
    "ssl": ("S", "optional"), "ssl-cert": ("ssl-cert", "optional"),
    "ssl-key": ("ssl-key", "optional"), "ssl-ca-file": ("ssl-ca-file", "optional"),
    "ssl-ca-path": ("ssl-ca-path", "optional"), "socket": ("U", "required"),
    "config": ("F", "required"), "timeout": ("t", "required"),
    "connect-timeout": ("n", "required"), "connect-retries": ("0", "required"),
    "retry-sleep": ("1", "required"), "filter-retries": ("filter-retries", "required"),
    "filter-retry-sleep": ("filter-retry-sleep", "required"),
    "max-size": ("s", "required"), "username": ("u", "required"),
    "learntype": ("L", "required"), "reporttype": ("C", "required"),
    "bsmtp": ("B", "none"), "check": ("c", "none"), "tests": ("y", "none"),
    "full-spam": ("r", "none"), "full": ("R", "none"), "headers": ("2", "none"),
    "exitcode": ("E", "none"), "no-safe-fallback": ("x", "none"),
    "unavailable-tempfail": ("X", "none"), "log-to-stderr": ("l", "none"),
    "pipe-to": ("e", "required"), "help": ("h", "none"), "version": ("V", "none"),
    "compress": ("z", "none"),
}
# code -> (SpamcFlags field, what it counts)
NUMBERS = {"t": ("timeout", "seconds"), "n": ("connect_timeout", "seconds"),
           "0": ("connect_retries", "tries"), "1": ("retry_sleep", "seconds"),
           "filter-retries": ("filter_retries", "tries"),
           "filter-retry-sleep": ("filter_retry_sleep", "seconds"),
           "s": ("max_size", "bytes")}
# flags that make spamc something other than a filter of the whole message
MODES = {"c": "prints only the score", "y": "prints only the rules hit",
         "r": "prints a report instead of the message for spam",
         "R": "prints a report instead of the message", "L": "learns instead of scanning",
         "C": "reports to collaborative databases instead of scanning",
         "K": "only pings spamd", "B": "reads BSMTP", "e": "pipes its output to a command",
         "h": "prints its usage and scans nothing", "V": "prints its version and scans nothing"}

Word = tuple[str, str]  # (word, where it was read)


class SpamcCommand(_Frozen):
    """What spamc will do with these words: its flags, where each came from, and what a
    reader should know (flags spamc ignores, modes that are not a plain filter)."""

    __slots__ = ("flags", "modes", "notes", "options", "sources")
    flags: SpamcFlags
    sources: dict[str, str]
    notes: tuple[str, ...]
    modes: tuple[str, ...]
    # every flag read, in order, as (code, value): what a program acting as spamc needs
    options: tuple[tuple[str, str | None], ...]

    def __init__(self, flags: SpamcFlags, sources: dict[str, str] | None = None,
                 notes: tuple[str, ...] = (), modes: tuple[str, ...] = (),
                 options: tuple[tuple[str, str | None], ...] = ()) -> None:
        _init(self, flags=flags, sources={} if sources is None else sources, notes=notes,
              modes=modes, options=options)


def config_file_of(argv: list[str]) -> str | None:
    """``-F path`` as spamc.c's ``main`` finds it: the first word starting with ``-F``."""
    for i, word in enumerate(argv):
        if word.startswith("-F"):
            return argv[i + 1] if i + 1 < len(argv) else None
    return None


def conf_words(text: str, path: str) -> list[Word]:
    """spamc.conf's words, as ``combine_args`` splits them."""
    words: list[Word] = []
    lines = text.split("\n")
    for n, line in enumerate(lines, 1):
        if n == len(lines):
            if line:
                raise bad(f"{path}:{n}", "the last line has no newline (spamc exits 78: "
                          "'Line not terminated with a newline')", "end the file with one")
            break
        if not line or line.startswith("#"):
            continue
        words += [(w, f"{path}:{n}") for w in line.split(" ") if w]
    return words


def parse(words: list[Word], *, defaults_source: str = f"default of {VERSION}"
          ) -> SpamcCommand:
    """Read spamc's words (config file's first) as ``read_args`` does."""
    if len(words) >= COMBO_ARGV_SIZE:
        raise bad(words[COMBO_ARGV_SIZE - 1][1], f"more than {COMBO_ARGV_SIZE - 1} spamc "
                  "words in all (spamc exits 78: 'Exceeded max number of arguments')")
    state = _State(defaults_source)
    i = 0
    while i < len(words):
        word, where = words[i]
        if not word.startswith("-") or word in ("-", "--"):
            rest = [w for w, _ in words[i:] if w != "--"]
            if rest:
                state.notes.append(f"{where}: spamc stops reading flags at {word!r}: "
                                   f"{' '.join(rest)} ignored")
            break
        i = state.flag(words, i)
        if state.stopped:
            break
    return state.result()


class _State:
    """``read_args``' state while it walks the words."""

    def __init__(self, defaults_source: str) -> None:
        self.flags = SpamcFlags(connect_timeout=0, source=defaults_source)
        self.sources: dict[str, str] = {}
        self.notes: list[str] = []
        self.modes: list[str] = []
        self.options: list[tuple[str, str | None]] = []
        self.stopped = False
        self.ssl_cert = self.ssl_key = False
        self.ssl_where = defaults_source

    def flag(self, words: list[Word], i: int) -> int:
        """Read the flag at ``i``; returns the index of the next word."""
        word, where = words[i]
        if word.startswith("--"):
            name, eq, inline = word[2:].partition("=")
            if name not in LONG:
                raise _usage(where, word, "option not found")
            code, arg = LONG[name]
            word = "--" + name
            value: str | None = inline if eq else None
            i += 1
            if value is None and arg != "none" and i < len(words) \
                    and not words[i][0].startswith("-"):
                value, i = words[i][0], i + 1
            if arg == "required" and value is None:
                raise _usage(where, word, "argument required")
        else:
            code = word[1]
            if code == ":" or code not in SHORT:
                raise _usage(where, word, "option not found")
            if len(word) > 2:
                self.notes.append(f"{where}: spamc reads only '-{code}' of {word!r}"
                                  + (": the value is the next word" if _takes(code) else
                                     f": {word[2:]!r} ignored"))
            value, i = None, i + 1
            if _takes(code):
                if i >= len(words) or words[i][0].startswith("-"):
                    raise _usage(where, word, "argument required")
                value, i = words[i][0], i + 1
        self.apply(code, word, value, where)
        return i

    def apply(self, code: str, word: str, value: str | None, where: str) -> None:
        self.options.append((code, value))
        if code in NUMBERS:
            self.number(code, word, value or "", where)
        elif code == "d":
            hosts = tuple((value or "").split(","))
            self.set("hosts", hosts, where)
            self.set("unix_socket", None, where)
        elif code == "U":
            self.set("unix_socket", value, where)
        elif code == "p":
            self.set("port", _whole(word, value or "", where, "a port"), where)
        elif code == "x":
            self.set("safe_fallback", False, where)
        elif code == "X":
            self.unavailable_tempfail(where)
        elif code in ("4", "6"):
            self.set("family", int(code), where)
        elif code == "H":
            self.set("randomize", True, where)
        else:
            self.other(code, word, value, where)

    def other(self, code: str, word: str, value: str | None, where: str) -> None:
        if code == "S" and value is not None:
            raise bad(where, f"spamc flag {word} {value!r}: 'Explicit specification of an "
                      "SSL/TLS version no longer supported' (spamc exits 64)", "write --ssl")
        if code in ("L", "C"):
            allowed = ("spam", "ham", "forget") if code == "L" else ("report", "revoke")
            if value not in allowed:
                raise bad(where, f"spamc flag {word} {value!r} is not one of "
                          f"{', '.join(allowed)} (spamc exits 64)")
        if code in ("ssl-cert", "ssl-key"):
            self.ssl_where = where
        self.ssl_cert |= code == "ssl-cert"
        self.ssl_key |= code == "ssl-key"
        if code == "F":
            self.notes.append(f"{where}: {word} is accepted by spamc but opens no file: only "
                              "-F PATH on the command line names spamc's config file")
        if code in MODES:
            self.modes.append(f"{where}: {word} {MODES[code]}")
            self.stopped = code == "e"

    def number(self, code: str, word: str, value: str, where: str) -> None:
        key, unit = NUMBERS[code]
        n = _whole(word, value, where, unit)
        if code == "t" and not self.flags.connect_timeout:
            self.set("connect_timeout", n, where)  # spamc.c: -t sets it unless set before
        if code == "0" and n == 0:
            n = 3  # libspamc: 0 connect retries means the default
            self.notes.append(f"{where}: {word} 0 means 3 tries (libspamc.c)")
        if code == "filter-retries" and n == 0:
            n = 1
        if code == "s" and n > MAX_MESSAGE_LEN:
            raise bad(where, f"spamc flag {word} {value}: '-s parameter is beyond max of "
                      f"{MAX_MESSAGE_LEN}' (spamc exits 64)")
        self.set(key, n, where)

    def unavailable_tempfail(self, where: str) -> None:
        if self.flags.safe_fallback:
            self.notes.append(f"{where}: -X before -x is ignored by spamc ('This option is "
                              "only valid if -x is set first')")
        else:
            self.set("unavail_tempfail", True, where)

    def set(self, key: str, value: object, where: str) -> None:
        self.flags = replace(self.flags, **{key: value})
        self.sources[key] = where

    def result(self) -> SpamcCommand:
        if self.ssl_cert != self.ssl_key:
            raise bad(self.ssl_where, "spamc: '--ssl-cert and --ssl-key must be used "
                      "together' (spamc exits 64)")
        flags = self.flags
        if not flags.safe_fallback and len(flags.hosts) > 1:
            self.notes.append(f"{self.sources['hosts']}: with -x spamc uses only the first "
                              f"host of {','.join(flags.hosts)} (libspamc.c transport_setup)")
        flags = replace(flags, source=_summary(self.sources, flags.source),
                        origins=tuple(sorted(self.sources.items())))
        return SpamcCommand(flags, dict(self.sources), tuple(self.notes), tuple(self.modes),
                            tuple(self.options))


def _summary(sources: dict[str, str], default: str) -> str:
    """One source for the whole command: the distinct places its flags came from."""
    places = list(dict.fromkeys(s.rsplit(":", 1)[0] if s[-1:].isdigit() else s
                                for s in sources.values()))
    return ", ".join(places) or default


def _takes(code: str) -> bool:
    i = SHORT.find(code)
    return i >= 0 and SHORT[i + 1: i + 2] == ":"


def _usage(where: str, word: str, why: str) -> Exception:
    return bad(where, f"spamc flag {word}: {why} (spamc {VERSION[6:]} prints its usage "
               "and exits 64: every message fails)", "its flags: spamc -h")


def _whole(word: str, value: str, where: str, unit: str) -> int:
    if value.isdigit():
        return int(value)
    read_as = _atoi(value)
    if read_as < 0 and value.lstrip().lstrip("-").isdigit():
        raise bad(where, f"spamc flag {word} {value}: must not be negative")
    raise bad(where, f"spamc flag {word} {value!r} is not a whole number of {unit} "
              f"(spamc's atoi reads it as {read_as})")


def _atoi(text: str) -> int:
    s = text.lstrip()
    sign = -1 if s[:1] == "-" else 1
    s = s[1:] if s[:1] in "+-" else s
    digits = ""
    for ch in s:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits or "0")
