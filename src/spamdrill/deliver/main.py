"""spamdrill-deliver's entry point: arguments, config, run, report to Postfix and syslog.

Under Postfix every exit status means something to the sender, so even the wrapper's own
usage and config errors defer (exit 75 with a 4.3.5 reason) instead of bouncing: the mail
waits in the queue while the admin fixes master.cf.
"""

from __future__ import annotations

import os
import sys
import time

from spamdrill.deliver.policy import EX_TEMPFAIL, MdaResult, Policy, PolicyError, from_dict

DEFAULT_CONFIG = "/etc/spamdrill/deliver.toml"

EPILOG = """\
master.cf (one recipient per delivery; note the '--opt=${macro}' form, so an address that
starts with '-' can never be read as an option):

  maildrop  unix  -  n  n  -  -  pipe
    flags=DRhu user=vmail argv=/usr/local/bin/spamdrill-deliver
      --recipient=${recipient} --sender=${sender} --queue-id=${queue_id}
      -- /usr/bin/maildrop -d ${recipient}

main.cf:
  maildrop_destination_recipient_limit = 1
  # keep the wrapper's --deadline (default 600 s) below this, which bounces:
  # maildrop_time_limit = 1000s   (default: command_time_limit)

outcomes: success -> 0; maildrop's 'Timeout quota exceeded.' -> defer 4.4.7;
over quota -> defer 4.2.2 (or bounce 5.2.2 with over_quota = "bounce");
unknown user (67) -> bounce 5.1.1; anything else -> defer, never 0, never a bounce.
"""


USAGE = """\
usage: spamdrill-deliver [--recipient=ADDR] [--sender=ADDR] [--queue-id=ID]
                         [--config=FILE] [--deadline=SECONDS] [--over-quota=defer|bounce]
                         [--syslog-socket=PATH] -- MDA [ARG...]
       spamdrill-deliver --check-config [--config=FILE] [-- MDA ARG...]
       spamdrill-deliver --explain STATUS TEXT [--config=FILE]
       spamdrill-deliver --make-launcher PATH

Run an MDA (maildrop) for Postfix's pipe(8) and turn its result into deliver, defer or
bounce without ever losing mail: only a real success exits 0, and nothing transient
bounces. The MDA is run from its argv (no shell), with the message passed through on stdin.

options:
  --recipient=, --sender=, --queue-id=   for the log line (${recipient} ${sender} ${queue_id})
  --config=FILE         policy file (TOML; default /etc/spamdrill/deliver.toml if present)
  --deadline=SECONDS    kill the MDA's process group and defer after this long (default 600;
                        keep below Postfix's time limit, which bounces)
  --over-quota=ACTION   defer (4.2.2, default) or bounce (5.2.2) a full mailbox
  --syslog-socket=PATH  where the one log line per delivery goes (default /dev/log)
  --check-config        validate the config and the MDA command, print the policy
  --explain STATUS TEXT what an MDA STATUS (0-255, signal:N, timeout, exec-error) with
                        output TEXT becomes, and what Postfix then does
  --make-launcher PATH  write a launcher that starts Python without site (python -I -S)
                        and use PATH in master.cf: about half the cost per delivery of
                        this console script (benchmarks/deliver_overhead.py)
"""

VALUE_OPTIONS = ("--recipient", "--sender", "--queue-id", "--config", "--deadline",
                 "--over-quota", "--syslog-socket")


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


def parse_args(argv: list[str]) -> Args:
    args = Args()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.mda = argv[i + 1 :]
            break
        name, eq, value = arg.partition("=")
        if arg in ("-h", "--help"):
            args.help = True
        elif arg == "--check-config":
            args.check_config = True
        elif arg == "--explain":
            if len(argv) - i < 3:
                raise UsageError("--explain needs STATUS and TEXT")
            args.explain = (argv[i + 1], argv[i + 2])
            i += 2
        elif arg == "--make-launcher":
            if len(argv) - i < 2:
                raise UsageError("--make-launcher needs a PATH")
            args.make_launcher = argv[i + 1]
            i += 1
        elif name in VALUE_OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"{name} needs a value")
                i += 1
                value = argv[i]
            args.values[name] = value
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {name}")
        else:  # the MDA's argv, without '--'
            args.mda = argv[i:]
            break
        i += 1
    return args


def _emit(data: bytes) -> None:
    try:
        os.write(1, data)
    except OSError:  # Postfix went away; the exit status still counts
        return


def load_policy(args: Args) -> Policy:
    path = args.get("--config") or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG)
                                     else None)
    raw: dict[str, object] = {}
    if path is not None:
        import tomllib  # only when there is a file to read

        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except OSError as exc:
            raise PolicyError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path} is not valid TOML: {exc}") from None
    if "--over-quota" in args.values:
        raw["over_quota"] = args.get("--over-quota")
    if "--deadline" in args.values:
        try:
            raw["deadline"] = float(args.get("--deadline"))
        except ValueError:
            raise PolicyError(
                f"--deadline must be seconds, not {args.get('--deadline')!r}") from None
    return from_dict(raw)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        # a usage error under Postfix must not bounce (exit 2 would): defer
        _emit(f"4.3.5 spamdrill-deliver usage error: {exc}, will retry\n".encode())
        return EX_TEMPFAIL
    if args.help:
        sys.stdout.write(USAGE + "\n" + EPILOG)
        return 0
    if args.make_launcher:
        from spamdrill.deliver.admin import make_launcher

        return make_launcher(args.make_launcher)
    try:
        policy = load_policy(args)
    except PolicyError as exc:
        if args.check_config or args.explain:
            print(f"spamdrill-deliver: config error: {exc}", file=sys.stderr)
            return 1
        _emit(f"4.3.5 spamdrill-deliver config error: {exc}, will retry\n".encode())
        return EX_TEMPFAIL
    if args.explain:
        from spamdrill.deliver.admin import explain

        return explain(policy, *args.explain)
    mda = args.mda
    if args.check_config:
        from spamdrill.deliver.admin import check_config

        return check_config(policy, mda)
    if not mda:
        _emit(b"4.3.5 spamdrill-deliver: no MDA command after '--', will retry\n")
        return EX_TEMPFAIL

    from spamdrill.deliver import syslog
    from spamdrill.deliver.run import run_mda

    t0 = time.monotonic()
    result = run_mda(mda, policy.deadline)
    outcome = policy.classify(result)
    _emit(outcome.message(result.output))
    syslog.send(_log_line(args, result, outcome.action, outcome.dsn, outcome.rule,
                          time.monotonic() - t0), args.get("--syslog-socket", "/dev/log"))
    return outcome.exit_code


def _log_line(args: Args, result: MdaResult, action: str, dsn: str, rule: str,
              seconds: float) -> str:
    if result.exit_status is not None:
        mda = f"status={result.exit_status}"
    elif result.signal is not None:
        mda = f"signal={result.signal}"
    elif result.timed_out:
        mda = "deadline"
    elif result.interrupted is not None:
        mda = f"interrupted={result.interrupted}"
    else:
        mda = "exec-error"
    return (f"{args.get('--queue-id') or '-'}: to=<{args.get('--recipient')}> "
            f"from=<{args.get('--sender')}> mda {mda} "
            f"outcome={action} dsn={dsn} rule={rule} delay={seconds:.3f}s")


def entry() -> None:
    sys.exit(main())
