"""spamdrill-deliver's entry point: arguments, config, run, report to Postfix and syslog.

Under Postfix every exit status means something to the sender, so even the wrapper's own
usage and config errors defer (exit 75 with a 4.3.5 reason) instead of bouncing: the mail
waits in the queue while the admin fixes master.cf. Whatever else goes wrong inside the
wrapper reaches ``entry``'s last resort: the MDA's group is killed, 4.3.0, exit 75 (an
uncaught exception would exit 1, which pipe(8) bounces as 5.3.0). Every one of these
paths writes its syslog line.
"""

from __future__ import annotations

import posix as os  # not ``os``: ~2.4 ms of every delivery under python -S (run.py)
import sys
import time

from spamdrill.deliver.args import Args, UsageError, parse_args, policy_for
from spamdrill.proto.deliver_policy import (
    EX_TEMPFAIL,
    Decision,
    MdaResult,
    Policy,
    PolicyError,
    config_error,
    internal_error,
    usage_error,
)

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
       spamdrill-deliver --check-config [--user=USER] [--config=FILE] [--etc=DIR]
                         [-- MDA ARG...]
       spamdrill-deliver --explain STATUS TEXT [--config=FILE]
       spamdrill-deliver --make-launcher PATH [--python=PYTHON] [--user=USER] [-- MDA]

Run an MDA (maildrop) for Postfix's pipe(8) and turn its result into deliver, defer or
bounce without ever losing mail: only a real success exits 0, and nothing transient
bounces. The MDA is run from its argv (no shell), with the message passed through on stdin.

options:
  --recipient=, --sender=, --queue-id=   for the log line (${recipient} ${sender} ${queue_id})
  --config=FILE         policy file (TOML; default /etc/spamdrill/deliver.toml if present)
  --deadline=SECONDS    kill the MDA's process group and defer after this long (default 600,
                        at most 86400; keep below Postfix's time limit, which bounces)
  --over-quota=ACTION   defer (4.2.2, default) or bounce (5.2.2) a full mailbox
  --syslog-socket=PATH  where the one log line per delivery goes (default /dev/log)
  --check-config        validate the config and the MDA command (exactly as a delivery
                        would), print the policy; read Postfix under --etc and refuse a
                        deadline at or above the transport's time limit, and a transport
                        without <transport>_destination_recipient_limit = 1
  --etc=DIR             with --check-config: the root whose etc/postfix is read (default /)
  --user=USER           with --check-config or --make-launcher: check as USER (master.cf's
                        user=) that this program, its Python, the package, the config and
                        the MDA can be run and read (needs root to switch to USER)
  --explain STATUS TEXT what an MDA STATUS (0-255, signal:N, timeout, exec-error) with
                        output TEXT becomes, and what Postfix then does
  --make-launcher PATH  write a launcher that starts Python without site (python -I -S)
                        and use PATH in master.cf: about half the cost per delivery of
                        this console script (benchmarks/deliver_overhead.py)
  --python=PYTHON       with --make-launcher: the Python it names (default: this one)
"""

# syslog field lengths: an address is at most 256 octets (RFC 5321 4.5.3.1.3)
QUEUE_ID_CHARS = 64
ADDRESS_CHARS = 256
REASON_CHARS = 400


def _emit(data: bytes) -> None:
    try:
        os.write(1, data)
    except OSError:  # Postfix went away; the exit status still counts
        return


_CURRENT: list[Args] = []  # the delivery's arguments, for the last resort's log line


def main(argv: list[str] | None = None, start: float | None = None) -> int:
    start = time.monotonic() if start is None else start
    args = Args()
    _CURRENT[:] = [args]
    try:
        parse_args(sys.argv[1:] if argv is None else argv, args)
    except UsageError as exc:
        return _refuse(args, usage_error(str(exc)), start)
    mode = args.admin_mode()
    if mode:
        if _message_waiting():
            return _refuse(args, usage_error(f"{mode} given to a delivery (a message is "
                                             "waiting on stdin)"), start)
        if args.help:
            sys.stdout.write(USAGE + "\n" + EPILOG)
            return 0
        from spamdrill.deliver.admin import admin

        return admin(args)
    try:
        policy = policy_for(args)
    except PolicyError as exc:
        return _refuse(args, config_error(str(exc)), start)
    if not args.mda:
        return _refuse(args, usage_error("no MDA command after '--'"), start)
    return _deliver(args, policy, start)


def _message_waiting() -> bool:
    """Is this a delivery? pipe(8) writes the message into our stdin pipe at once. The
    admin modes exit 0, which Postfix would take as delivered: in a master.cf line they
    must defer instead. A terminal, /dev/null, or an empty pipe (ssh, a script) is not a
    delivery."""
    import stat

    try:
        mode = os.fstat(0).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return False
        import fcntl
        import select
        import termios

        poller = select.poll()
        poller.register(0, select.POLLIN)
        poller.poll(100)  # a moment for the writer to begin
        waiting = fcntl.ioctl(0, termios.FIONREAD, b"\0" * 4)
        return int.from_bytes(waiting, sys.byteorder) > 0
    except OSError:
        return False


def _refuse(args: Args, outcome: Decision, start: float) -> int:
    """The wrapper cannot run the MDA at all: say why to Postfix and to syslog."""
    _emit(outcome.message(b""))
    _log(args, "not-run", outcome, start)
    return outcome.exit_code


def _deliver(args: Args, policy: Policy, start: float) -> int:
    from spamdrill.deliver import run

    end = start + policy.deadline
    result = run.run_mda(args.mda, end)
    if result.exit_status in (None, 0):  # no rule runs: nothing to bound
        outcome = policy.classify(result)
    else:
        try:
            outcome = run.within(end - time.monotonic(), policy.classify, result)
        except run.TimeUp:
            outcome = policy.out_of_time(result)
    _emit(outcome.message(result.output))
    _log(args, _mda_field(result), outcome, start,
         " killed-leftovers" if result.leftovers else "")
    return outcome.exit_code


def _mda_field(result: MdaResult) -> str:
    if result.exit_status is not None:
        return f"status={result.exit_status}"
    if result.signal is not None:
        return f"signal={result.signal}"
    if result.timed_out:
        return "deadline"
    if result.interrupted is not None:
        return f"interrupted={result.interrupted}"
    return "exec-error"


def _log(args: Args, mda: str, outcome: Decision, start: float, extra: str = "") -> None:
    from spamdrill import lean as syslog

    f = syslog.field
    line = (f"{f(args.get('--queue-id') or '-', QUEUE_ID_CHARS)}: "
            f"to=<{f(args.get('--recipient'), ADDRESS_CHARS)}> "
            f"from=<{f(args.get('--sender'), ADDRESS_CHARS)}> mda {mda} "
            f"outcome={outcome.action} dsn={outcome.dsn} rule={outcome.rule} "
            f"delay={time.monotonic() - start:.3f}s{extra} "
            f'reason="{f(outcome.reason, REASON_CHARS)}"')
    syslog.send(line, args.get("--syslog-socket") or "/dev/log")


def _last_resort(exc: BaseException, start: float) -> int:
    """Anything the wrapper did not foresee: kill the MDA's group if it was started (it
    could deliver after Postfix was told to retry), defer with a reason, log. Each step
    guarded: this must reach ``return``."""
    run = sys.modules.get("spamdrill.deliver.run")
    try:
        if run is not None:
            run.kill_started()
    except BaseException:  # nothing else is left to try
        pass
    try:
        text = f"{type(exc).__name__}: {exc}"[:300]
    except BaseException:  # an exception whose str() fails too
        text = type(exc).__name__
    outcome = internal_error(text)
    try:
        _emit(outcome.message(b""))
        _log(_CURRENT[0] if _CURRENT else Args(), "unknown", outcome, start)
    except BaseException:  # the exit status is what counts
        pass
    return EX_TEMPFAIL


def entry() -> None:
    start = time.monotonic()
    try:
        code = main(None, start)
    except BaseException as exc:  # the last resort: never exit 1, which bounces
        code = _last_resort(exc, start)
    sys.exit(code)
