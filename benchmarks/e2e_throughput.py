"""Benchmark: the end-to-end lab with spamd healthy -- Postfix -> pipe(8) -> [wrapper] ->
maildrop -> spamc -> spamd (SQL prefs, Bayes in MariaDB) -> Maildir.

    python benchmarks/e2e_throughput.py [--count 100] [--rounds 20]      (as root)

1. Throughput: ``--count`` messages (ham and GTUBE) injected over SMTP at once, timed from
   the release to an empty queue (every message delivered), for three pipelines that add
   one stage at a time: Postfix alone (pipe(8) to ``dd of=/dev/null``), + maildrop
   delivering to the Maildir (no filter), + spamc and spamd (the lab's maildroprc, as the
   field report's). The stage whose addition costs the most is the bottleneck; spamd's
   own log says how busy its children were (sum of its scan times / wall / children).
2. The wrapper's share of one delivery: ``--rounds`` rounds of one message at a time
   through four transports of one Postfix, interleaved -- maildrop alone, and maildrop
   behind spamdrill-deliver's console script, its ``--make-launcher`` launcher, and the
   field report's final Perl wrapper. Per delivery, Postfix's own ``delays=a/b/c/d``: d
   is the whole run of the pipe command; the wrapper's share is what d grows by over
   maildrop alone in the same round. Postfix logs each delay with two significant
   digits (10 ms steps at these sizes), and spamd's scan time varies by more than the
   wrappers differ: read the medians with their spread.

Postfix's ``a`` (before the queue manager) starts at MAIL FROM, so for a barrier release it
includes the wait at the barrier; it is not shown.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from spamdrill import corpus
from spamdrill.fates import Injected
from spamdrill.lab import lab as lab_ops
from spamdrill.lab import outcomes, wrappers
from spamdrill.lab import postfix as pf
from spamdrill.lab.config import LabConfig
from spamdrill.lab.procs import session_members
from spamdrill.load.smtp import Job, inject
from spamdrill.proto import postfix_log

HERE = Path(__file__).resolve().parent
PERL_WRAPPER = HERE.parent / "src" / "spamdrill" / "drills" / "wrappers" / \
    "maildrop_wrapper_final.pl"
SCAN = re.compile(r"spamd: (?:clean message|identified spam) .* in ([\d.]+) seconds")


def noscan_filter(state: lab_ops.LabState, paths: pf.Paths) -> Path:
    """A maildroprc that only delivers: the field report's, less its xfilter."""
    path = paths.root / "maildroprc-noscan"
    path.write_text(f'LABUSER="$1"\nSHELL="/bin/sh"\n'
                    f'DEFAULT="{state.layout.mail_dir}/$LABUSER/Maildir"\nto "$DEFAULT/"\n')
    user = pwd.getpwnam(pf.PIPE_USER)
    os.chmod(path, 0o600)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def delays(run: Path, sent: list[Injected]) -> list[postfix_log.Delays]:
    stories = outcomes.log_stories(pf.Paths.of(run))
    out = []
    for s in sent:
        story = stories.get(s.queue_id or "")
        last = story.last if story else None
        if last is not None and last.delays is not None:
            out.append(last.delays)
    return out


def scan_seconds(state: lab_ops.LabState, since: int) -> list[float]:
    text = state.layout.spamd_log.read_text(errors="replace")[since:]
    return [float(m[1]) for m in SCAN.finditer(text)]


def machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_s(state: lab_ops.LabState, name: str) -> float:
    """CPU seconds a lab process has used: the leader, its session (spamd's children), and
    the children it reaped."""
    pid, ticks = state.pids[name]
    assert isinstance(pid, int) and isinstance(ticks, int)
    total = 0
    for member in session_members(pid, ticks):
        with contextlib.suppress(OSError):
            rest = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in rest[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def burst(state: lab_ops.LabState, transport: pf.Transport, count: int, seed: int,
          label: str) -> None:
    run = Path(state.run_dir)
    settings = pf.Settings(transports=(transport,), process_limit=max(100, count + 20))
    pf_state = pf.up(run, settings, marker=state.marker)
    msgs = [corpus.make("spam" if i % 4 == 3 else "ham", seed * 10_000 + i) for i in
            range(count)]
    log_from = state.layout.spamd_log.stat().st_size
    cpu0 = {n: cpu_s(state, n) for n in ("spamd", "mariadb")}
    busy0 = machine_busy()
    sent, released = inject(pf_state.address, pf_state.port,
                            [Job(m, "alice@lab.test") for m in msgs])
    accepted = (max(s.end_ns for s in sent) - released) / 1e9
    pf.wait_drained(pf_state.paths, 600)
    wall = (time.monotonic_ns() - released) / 1e9
    cpu = {n: cpu_s(state, n) - v for n, v in cpu0.items()}
    busy1 = machine_busy()
    machine = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    results = outcomes.read(run, state.layout.mail_dir, sent)
    fates = {o.fate.value if o.fate else "not accepted" for o in results}
    ds = delays(run, sent)
    scans = scan_seconds(state, log_from)
    busy = (f"; spamd: {len(scans)} scans, median {statistics.median(scans):.1f} s, "
            f"children busy {sum(scans) / wall / 5:.0%} of {wall:.1f} s x 5; CPU: spamd "
            f"{cpu['spamd']:.1f} s, MariaDB {cpu['mariadb']:.1f} s, the machine (all "
            f"processes, {os.cpu_count()} cores) {machine:.0%} busy; spamd "
            f"{cpu['spamd'] / len(scans):.2f} CPU-s per scan: at most "
            f"{(os.cpu_count() or 1) * len(scans) / cpu['spamd']:.1f} msg/s on these cores"
            if scans else "")
    print(f"  {label:32s} {count / wall:6.1f} msg/s  (all {count} accepted "
          f"{accepted:.2f} s after the release, delivered after {wall:.2f} s; fates "
          f"{sorted(fates)}; median delays b/d "
          f"{statistics.median(d.in_qmgr for d in ds):.3f}/"
          f"{statistics.median(d.transmission for d in ds):.3f} s{busy})")
    pf.down(run)


def throughput(state: lab_ops.LabState, count: int) -> None:
    run = Path(state.run_dir)
    paths = pf.Paths.of(run)
    print(f"throughput, {count} messages at once (pipe concurrency 20 per domain, spamd "
          f"--max-children 5):")
    burst(state, pf.Transport("maildrop", ("/bin/dd", "of=/dev/null", "status=none")),
          count, 1, "Postfix alone (pipe to dd)")
    burst(state, pf.maildrop_transport(noscan_filter(state, paths)), count, 2,
          "+ maildrop to the Maildir")
    burst(state, pf.maildrop_transport(paths.filter_file), count, 3,
          "+ spamc -> spamd (the full chain)")


def wrapper_share(state: lab_ops.LabState, rounds: int) -> None:
    run = Path(state.run_dir)
    paths = pf.Paths.of(run)
    deliver = wrappers.install_deliver(run)
    perl = str(wrappers.install_wrapper(run, PERL_WRAPPER))
    rc = paths.filter_file
    transports = {
        "maildrop alone": pf.maildrop_transport(rc, name="maildrop", domain="bare.test"),
        "spamdrill-deliver console script": pf.deliver_transport(
            rc, str(deliver.console_script), name="console", domain="console.test"),
        "spamdrill-deliver launcher": pf.deliver_transport(
            rc, str(deliver.launcher), name="launcher", domain="launcher.test"),
        "field report's final Perl wrapper": pf.maildrop_transport(
            rc, wrapper=(perl,), name="perl", domain="perl.test"),
    }
    pf_state = pf.up(run, pf.Settings(transports=tuple(transports.values())),
                     marker=state.marker)
    d: dict[str, list[float]] = {k: [] for k in transports}
    for r in range(rounds + 1):  # round 0 warms caches and is not counted
        for i, (label, t) in enumerate(transports.items()):
            msg = corpus.make("ham", 900_000 + r * 10 + i)
            sent, _ = inject(pf_state.address, pf_state.port, [Job(msg, f"alice@{t.domain}")])
            pf.wait_drained(pf_state.paths, 120)
            if r:
                d[label] += [x.transmission for x in delays(run, sent)]
    pf.down(run)
    base = d["maildrop alone"]
    print(f"one delivery at a time, {rounds} interleaved rounds (python {deliver.python}); "
          "wrapper = its pipe command minus maildrop alone's in the same round:")
    for label, xs in d.items():
        med = statistics.median(xs)
        if label == "maildrop alone":
            share = "(maildrop + spamc + spamd)"
        else:
            extra = [w - b for w, b in zip(xs, base, strict=True)]
            q1, mid, q3 = statistics.quantiles(extra, n=4)
            share = (f"wrapper median {mid * 1000:+5.0f} ms (IQR {q1 * 1000:+.0f} to "
                     f"{q3 * 1000:+.0f}) = {mid / med:4.0%} of its delivery")
        print(f"  {label:36s} pipe command median {med * 1000:4.0f} ms, p90 "
              f"{sorted(xs)[int(len(xs) * 0.9)] * 1000:4.0f} ms  {share}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    if args.rounds < 2 or args.count < 1:
        parser.error("--rounds must be at least 2 and --count at least 1")
    base = Path(tempfile.mkdtemp(prefix="spamdrill-bench-", dir="/tmp"))
    base.chmod(0o755)
    run = base / "lab"
    try:
        state = lab_ops.up(run, LabConfig())
        pf.grant_mail(state.layout)
        throughput(state, args.count)
        wrapper_share(state, args.rounds)
    finally:
        pf.down(run)
        lab_ops.down(run)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
