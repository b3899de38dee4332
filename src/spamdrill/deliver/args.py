"""spamdrill-deliver's command line and the policy it names: parsed by hand (argparse
costs start-up time on every delivery), every value option ``--name=value`` so recipient
text is never read as an option. The delivery (``main``) and the admin's views
(``admin``) both start here."""

from __future__ import annotations

import posix as os  # not ``os``: ~2.4 ms of every delivery under python -S (run.py)

from spamdrill import lean
from spamdrill.proto.deliver_policy import Policy, PolicyError

DEFAULT_CONFIG = "/etc/spamdrill/deliver.toml"

VALUE_OPTIONS = ("--recipient", "--sender", "--queue-id", "--config", "--deadline",
                 "--over-quota", "--syslog-socket", "--user", "--python", "--etc")


class UsageError(Exception):
    pass


class Args:
    """The parsed command line. Hand-parsed: argparse costs start-up time on every
    delivery, and here every option is ``--name=value`` so recipient text is never read as
    an option."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.check_config = False
        self.help = False
        self.explain: tuple[str, str] | None = None
        self.make_launcher = ""
        self.mda: list[str] = []

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def admin_mode(self) -> str:
        """The admin option given, if any: these print and exit, never run the MDA."""
        for name, given in (("--help", self.help), ("--make-launcher", self.make_launcher),
                            ("--explain", self.explain), ("--check-config",
                                                          self.check_config)):
            if given:
                return name
        return ""


def parse_args(argv: list[str], args: Args | None = None) -> Args:
    """Fill ``args`` (what was read before a usage error stays there, for the log line)."""
    args = Args() if args is None else args
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.mda = argv[i + 1 :]
            break
        if not arg.startswith("-"):  # the MDA's argv, without '--'
            args.mda = argv[i:]
            break
        i = _option(argv, i, args) + 1
    return args


def _option(argv: list[str], i: int, args: Args) -> int:
    """Read the option at ``argv[i]``; return the index of its last word."""
    arg = argv[i]
    name = arg.partition("=")[0]
    if arg in ("-h", "--help"):
        args.help = True
    elif arg == "--check-config":
        args.check_config = True
    elif arg == "--explain":
        if len(argv) - i < 3:
            raise UsageError("--explain needs STATUS and TEXT")
        args.explain = (argv[i + 1], argv[i + 2])
        return i + 2
    elif arg == "--make-launcher":
        if len(argv) - i < 2:
            raise UsageError("--make-launcher needs a PATH")
        args.make_launcher = argv[i + 1]
        return i + 1
    elif name in VALUE_OPTIONS:
        args.values[name], i = lean.value_of(argv, i, UsageError)
    else:
        raise UsageError(f"unknown option {name[:40]}")
    return i



def config_path(args: Args) -> str | None:
    """The policy file, or None for the built-in policy. Only a default file that is not
    there (ENOENT) means the built-in policy: one the pipe user cannot see (a directory it
    cannot search, say) may hold the admin's deadline and rules, so it defers instead."""
    if "--config" in args.values:
        if not args.get("--config"):
            raise PolicyError("--config needs a file name")
        return args.get("--config")
    try:
        os.lstat(DEFAULT_CONFIG)  # a dangling symlink is a config that cannot be read
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PolicyError(f"cannot tell whether {DEFAULT_CONFIG} exists ({exc.strerror}): "
                          "its policy may not be ignored; let the pipe user search its "
                          "directory") from None
    return DEFAULT_CONFIG


def policy_for(args: Args) -> Policy:
    """The policy a delivery with these arguments runs under; ``--check-config`` calls
    exactly this, so it refuses exactly what a delivery would."""
    path = config_path(args)
    overrides: dict[str, object] = {}
    if "--over-quota" in args.values:
        overrides["over_quota"] = args.get("--over-quota")
    if "--deadline" in args.values:
        text = args.get("--deadline")
        try:
            seconds = float(text)
        except ValueError:
            raise PolicyError(f"--deadline must be seconds, not {text[:40]!r}") from None
        overrides["deadline"] = seconds
    if path is None and not overrides:
        return Policy()
    from spamdrill.system.deliver_conf import load_policy  # only with something to check

    return load_policy(path, overrides)
