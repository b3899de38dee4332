#!/usr/bin/env python3
"""Regenerate the real log fixtures of ``spamdrill logs`` (run as root; ~3 minutes).

Everything here is written by the real programs: a lab's spamd and maildrop (``spamdrill
lab up``), and a private Postfix run by hand from its own config directory (never
/etc/postfix, never the machine's instance) whose pipe(8) transports run maildrop with the
field report's maildroprc (its ``logger`` lines included) through spamc to the lab's spamd.
The only thing of ours in the path is a syslog socket (these machines run no syslog
daemon): it receives what ``logger`` and spamdrill-deliver send and writes each line as
rsyslog's traditional file format does (timestamp as sent, this host's name, tag, text).

Faults, one phase each, a few seconds apart (so each is its own episode):

1. normal mail: ham and GTUBE through every transport;
2. a slow first message (the lab's sleeping rule, 6 s) with ``--max-children 1``: the four
   messages behind it outlast spamc's ``-t 3`` and are delivered unscanned -- the field
   report's cascade, started by one message;
3. a scan past ``--timeout-child`` (40 s);
4. spamd silent (SIGSTOP), and maildrop's global timer fired: the real handler
   (``alarm_handler`` in maildrop/main.C, normally after the compiled-in 300 s) run early
   with SIGALRM, through three transports: maildrop alone (defers), the field report's
   wrapper (turns 75 into a bounce), spamdrill-deliver (defers 4.4.7); and Postfix's own
   time limit (``slow_time_limit = 5s``), which bounces;
5. the database's name unresolvable (``lab dns db.lab.test drop``): spamd waits on the
   resolver, spamc gives up;
6. over quota and unknown user;
7. MariaDB killed (SQL errors, ``service unavailable``), then spamd stopped (refused);
8. by hand, as the README shows: maildrop with the lab's maildroprc (its logfile).

Then the deferred mail is flushed (delivered on retry, unscanned: spamd is gone),
Postfix is stopped and the lab taken down. The raw logs land in ``raw/``; ``convert.py``
derives the merged and converted formats from them.

    sudo PYTHONPATH=$PWD/src python3 tests/data/logs/make_fixtures.py
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2] / "src"
sys.path.insert(0, str(SRC))

from spamdrill import corpus  # noqa: E402
from spamdrill.lab import postfix  # noqa: E402

HOST = "mx1"  # the name the syslog socket writes, as rsyslog writes the machine's name
MAIL_USER = "nobody"  # pipe(8)'s user= (must not be root); it owns the lab's Maildirs
LAB_TOML = """\
[spamd]
max_children = 1
min_children = 1
min_spare = 1
max_spare = 1
timeout_child = 40
[maildrop]
spamc_args = ["-t", "3"]
"""

# transport -> recipient domain; main.cf routes each domain to its pipe(8) service
DOMAINS = {"maildrop": "lab.test", "wrapped": "wrapped.lab.test",
           "deliver": "deliver.lab.test", "slow": "slow.lab.test",
           "nouser": "nouser.lab.test"}
SENDER = f"{MAIL_USER}@sender.lab.test"  # bounces go back here, to local(8)


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def wait_for(what: str, pred: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"make_fixtures: timed out waiting for {what}")
        time.sleep(0.1)


def spamdrill(*args: str, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run([sys.executable, "-m", "spamdrill", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, check=False)
    if done.returncode not in ok:
        raise SystemExit(f"spamdrill {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


class SyslogSocket:
    """A datagram socket that writes what it receives as rsyslog's traditional format."""

    def __init__(self, path: Path, out: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o666)
        self.out = out.open("a", encoding="utf-8", errors="replace")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            self.out.write(self.line(data.decode("utf-8", "replace").rstrip("\n\0")) + "\n")
            self.out.flush()

    @staticmethod
    def line(text: str) -> str:
        """``<PRI>Mmm dd hh:mm:ss tag[pid]: msg`` (RFC 3164, as logger and syslog(3)
        send it locally) -> ``Mmm dd hh:mm:ss HOST tag[pid]: msg``; a message without a
        timestamp gets the time of receipt, as rsyslog does."""
        if text.startswith("<") and ">" in text[:5]:
            text = text.split(">", 1)[1]
        stamp, rest = text[:15], text[16:]
        try:
            datetime.strptime(stamp, "%b %d %H:%M:%S")
        except ValueError:
            now = datetime.now()
            stamp, rest = f"{now:%b} {now.day:2d} {now:%H:%M:%S}", text
        return f"{stamp} {HOST} {rest}"

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=2)
        self.out.close()


def maildroprc(lab: dict[str, str], spamc_t: int, syslog: Path) -> str:
    """The field report's /etc/maildroprc (its ``logger`` lines to our socket), in filter
    mode: ``$1`` is the user, ``$2`` the envelope sender."""
    logger = f"/usr/bin/logger -u {syslog} -i -t maildrop -p mail.info"
    return f"""\
SHELL="/bin/sh"
LABUSER="$1"
FR="$2"
TO="$1"
DEFAULT="{lab['mail']}/$LABUSER/Maildir"
exception {{
  if ( $SIZE < 250000 )
  {{
    `{logger} "Checking for spam: $FR $TO"`
    xfilter "/usr/bin/spamc -d {lab['spamd_host']} -p {lab['spamd_port']} -t {spamc_t} -u $LABUSER"
  }}
  if (/^X-Spam-Flag: YES/)
  {{
    exception {{
      `{logger} "Found spam: $FR $TO"`
      to "$DEFAULT/.Spam/"
    }}
  }}
  else
  {{
    `{logger} "Delivering: $FR $TO $DEFAULT"`
  }}
}}
to "$DEFAULT/"
"""


WRAPPER = """\
#!/bin/sh
# The field report's first maildrop_wrapper, in POSIX sh: maildrop's 75 (temporary) and
# 77 become 100, which Postfix bounces. Kept for the fixtures only: it bounces mail.
/usr/bin/maildrop "$@"
rc=$?
if [ "$rc" -eq 75 ] || [ "$rc" -eq 77 ]; then
  exit 100
fi
exit "$rc"
"""


class Postfix:
    """A private Postfix: its own config, queue and data directories under ``root``."""

    def __init__(self, root: Path, port: int, lab: dict[str, str], syslog: Path) -> None:
        self.root = root
        self.etc = root / "etc"
        self.port = port
        self.maillog = root / "maillog"
        self.lab = lab
        self.syslog = syslog

    def pf(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["postfix", "-c", str(self.etc), *args], capture_output=True,
                              text=True, check=False)
        if check and done.returncode != 0:
            raise SystemExit(f"postfix {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout + done.stderr

    def configure(self) -> None:
        for d in ("etc", "queue", "data", "rc", "bin", "spool"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        # the package's own files (postfix-files lists what set-permissions fixes), copied:
        # /etc/postfix is only ever read
        shutil.copytree("/etc/postfix", self.etc, dirs_exist_ok=True)
        rc = self.root / "rc"
        (rc / "maildroprc").write_text(maildroprc(self.lab, 3, self.syslog))
        (rc / "maildroprc-t30").write_text(maildroprc(self.lab, 30, self.syslog))
        wrapper = self.root / "bin" / "maildrop_wrapper"
        wrapper.write_text(WRAPPER)
        wrapper.chmod(0o755)
        launcher = self.root / "bin" / "spamdrill-deliver"
        # the system's python: pipe(8) runs it as an unprivileged user
        subprocess.run(["/usr/bin/python3", "-m", "spamdrill.deliver", "--make-launcher",
                        str(launcher)], env={**os.environ, "PYTHONPATH": str(SRC)},
                       check=True, capture_output=True)
        nobody = pwd.getpwnam(MAIL_USER)
        for f in rc.iterdir():  # maildrop wants its filter owned by its user, mode 0600
            os.chown(f, nobody.pw_uid, nobody.pw_gid)
            f.chmod(0o600)
        (self.root / "spool").chmod(0o1777)
        (self.etc / "main.cf").write_text(self.main_cf())
        (self.etc / "master.cf").write_text(self.master_cf(launcher, wrapper))
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        self.pf("set-permissions")
        self.pf("check")

    def main_cf(self) -> str:
        r = self.root
        relay = ", ".join(d for d in DOMAINS.values())
        transports = ", ".join(f"{d}={t}:" for t, d in DOMAINS.items())
        return f"""\
compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
meta_directory = {self.etc}
myhostname = {HOST}.lab.test
mydomain = lab.test
myorigin = $mydomain
mydestination = sender.lab.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {relay}
transport_maps = inline:{{ {transports} }}
default_transport = error:no outside mail from this lab
relay_transport = error:no outside mail from this lab
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
mail_spool_directory = {r}/spool/
biff = no
maillog_file_prefixes = {r}
maillog_file = {self.maillog}
maildrop_destination_recipient_limit = 1
wrapped_destination_recipient_limit = 1
deliver_destination_recipient_limit = 1
slow_destination_recipient_limit = 1
nouser_destination_recipient_limit = 1
slow_time_limit = 5s
"""

    def master_cf(self, launcher: Path, wrapper: Path) -> str:
        rc = self.root / "rc" / "maildroprc"
        pipe = (f"unix  -       n       n       -       -       pipe\n"
                f"  flags=DRhu user={MAIL_USER} argv=")
        return f"""\
127.0.0.1:{self.port} inet n -  n       -       -       smtpd
{postfix.SERVICES}local     unix  -       n       n       -       -       local
maildrop  {pipe}/usr/bin/maildrop {rc} ${{user}} ${{sender}}
wrapped   {pipe}{wrapper} {rc} ${{user}} ${{sender}}
deliver   {pipe}{launcher} --recipient=${{recipient}} --sender=${{sender}}
    --queue-id=${{queue_id}} --syslog-socket={self.syslog}
    -- /usr/bin/maildrop {rc} ${{user}} ${{sender}}
slow      {pipe}/usr/bin/maildrop {rc}-t30 ${{user}} ${{sender}}
nouser    {pipe}/usr/bin/maildrop -d ${{user}}
"""

    def send(self, data: bytes, rcpt: str) -> str:
        """One message over SMTP; the queue id from Postfix's reply."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo("client.lab.test")
            s.mail(SENDER)
            s.rcpt(rcpt)
            code, reply = s.data(data)
            if code != 250:
                raise SystemExit(f"Postfix refused a message: {code} {reply!r}")
        return reply.decode().rsplit(" ", 1)[-1]

    def text(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def finished(self, qid: str) -> bool:
        """The queue id's delivery attempt is over: delivered, deferred or bounced."""
        return any(f"{qid}: to=<" in line and "status=" in line
                   for line in self.text().splitlines())


def maildrops_with_spamc(rc_part: str) -> list[int]:
    """maildrop processes running a filter whose path contains ``rc_part`` that have
    started spamc (xfilter runs it through /bin/sh)."""
    procs: dict[int, tuple[int, str]] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        procs[int(p.name)] = (ppid, cmd)

    def ancestors(pid: int) -> list[int]:
        out = []
        while pid in procs and pid > 1:
            pid = procs[pid][0]
            out.append(pid)
        return out

    found = set()
    for _pid, (ppid, cmd) in procs.items():
        if cmd.startswith("/usr/bin/spamc"):
            for a in [ppid, *ancestors(ppid)]:
                if a in procs and procs[a][1].startswith("/usr/bin/maildrop") and \
                        rc_part in procs[a][1]:
                    found.add(a)
    return sorted(found)


class Run:
    def __init__(self, work: Path, out: Path) -> None:
        self.work = work
        self.out = out
        self.run_dir = work / "lab"
        self.seed = 7000
        self.lab: dict[str, str] = {}
        self.syslog_path = work / "dev-log"
        self.syslog: SyslogSocket | None = None
        self.postfix: Postfix | None = None
        # what was done, for the tests: phase -> its messages (queue id, Message-ID, ...)
        self.manifest: dict[str, list[dict[str, str]]] = {}
        self.phase = "setup"

    def status(self) -> dict[str, dict[str, object]]:
        # exit status 1: some component is down (a phase killed it)
        doc = json.loads(spamdrill("lab", "status", "--run-dir", str(self.run_dir), "--json",
                                   ok=(0, 1)) if self._lab_up() else '{"components": []}')
        return {c["name"]: c for c in doc["components"]}

    def _lab_up(self) -> bool:
        return (self.run_dir / "lab.json").exists()

    def pid(self, name: str) -> int:
        pid = self.status()[name]["pid"]
        assert isinstance(pid, int)
        return pid

    def message(self, kind: str, to: str) -> bytes:
        self.seed += 1
        return corpus.make(kind, self.seed, to).data

    def send(self, kind: str, user: str, transport: str = "maildrop") -> str:
        assert self.postfix is not None
        to = f"{user}@{DOMAINS[transport]}"
        data = self.message(kind, to)
        qid = self.postfix.send(data, to)
        self.record(kind, to, data, qid, transport)
        return qid

    def record(self, kind: str, to: str, data: bytes, qid: str, transport: str) -> None:
        mid = data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        self.manifest.setdefault(self.phase, []).append(
            {"kind": kind, "to": to, "queue_id": qid, "message_id": mid,
             "transport": transport})

    def wait_done(self, qids: list[str], timeout: float = 90.0) -> None:
        assert self.postfix is not None
        pf = self.postfix
        wait_for(f"deliveries of {qids}", lambda: all(pf.finished(q) for q in qids), timeout)

    def spamd_idle(self) -> None:
        log_path = self.run_dir / "spamd" / "spamd.log"

        def idle() -> bool:
            states = [ln for ln in log_path.read_text(errors="replace").splitlines()
                      if "child states:" in ln]
            return bool(states) and "B" not in states[-1].rsplit(":", 1)[1]
        wait_for("spamd idle", idle, 60)

    def pause(self, seconds: float = 6.0) -> None:
        """Quiet time between phases, so each fault is an episode of its own."""
        time.sleep(seconds)

    # -- setup and teardown -------------------------------------------------------------

    def start(self, port: int) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.work.chmod(0o755)
        (self.work / "lab.toml").write_text(LAB_TOML)
        log("lab up")
        spamdrill("lab", "up", "--run-dir", str(self.run_dir), "--config",
                  str(self.work / "lab.toml"))
        comps = self.status()
        self.lab = {"mail": str(self.run_dir / "mail"),
                    "spamd_host": str(comps["spamd"]["host"]),
                    "spamd_port": str(comps["spamd"]["port"])}
        nobody = pwd.getpwnam(MAIL_USER)
        for path in [self.run_dir / "mail", *(self.run_dir / "mail").rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        self.syslog = SyslogSocket(self.syslog_path, self.work / "syslog.log")
        self.postfix = Postfix(self.work / "postfix", port, self.lab, self.syslog_path)
        log("postfix: configure and start")
        self.postfix.configure()
        self.postfix.pf("start")
        pf = self.postfix
        wait_for("postfix's smtpd", lambda: _port_open(pf.port), 30)

    def stop(self) -> None:
        if self.postfix is not None:
            self.postfix.pf("stop", check=False)
        if self._lab_up() or self.run_dir.exists():
            spamdrill("lab", "down", "--run-dir", str(self.run_dir))
        if self.syslog is not None:
            self.syslog.close()

    def collect(self) -> None:
        raw = self.out / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        assert self.postfix is not None
        pairs = {"postfix.log": self.postfix.maillog,
                 "spamd.log": self.run_dir / "spamd" / "spamd.log",
                 "maildrop.log": self.run_dir / "maildrop" / "maildrop.log",
                 "syslog.log": self.work / "syslog.log"}
        for name, src in pairs.items():
            text = src.read_text(errors="replace") if src.exists() else ""
            (raw / name).write_text(text.replace(str(self.work), "/srv/fixture"))
            log(f"raw/{name}: {len(text.splitlines())} lines")
        (raw / "manifest.json").write_text(json.dumps(self.manifest, indent=1) + "\n")

    # -- the phases -------------------------------------------------------------------

    def normal(self) -> None:
        self.phase = "normal"
        log("phase: normal mail")
        qids = [self.send("ham", "alice"), self.send("spam", "alice"),
                self.send("ham", "bob", "wrapped"), self.send("ham", "carol", "deliver")]
        self.wait_done(qids)

    def slow_first(self) -> None:
        self.phase = "slow-first"
        log("phase: a slow first message, then a cascade behind it")
        first = self.send("slow:6", "alice")
        qids = [first]
        for user in ("bob", "carol", "alice", "bob"):
            time.sleep(0.4)
            qids.append(self.send("ham", user))
        self.wait_done(qids)
        self.spamd_idle()

    def child_timeout(self) -> None:
        self.phase = "child-timeout"
        log("phase: a scan past --timeout-child")
        qid = self.send("slow:45", "carol")
        self.wait_done([qid])
        # spamd 4.0.1 gives the rules --timeout-child as their time limit: "check: exceeded
        # time limit", TIME_LIMIT_EXCEEDED; its alarm ("timeout: (N second timeout while
        # trying to PROCESS)") is for what the limit cannot interrupt
        wait_for("spamd's child timeout", lambda: "exceeded time limit" in
                 (self.run_dir / "spamd" / "spamd.log").read_text(errors="replace"), 90)
        self.spamd_idle()

    def maildrop_timeout(self) -> None:
        self.phase = "maildrop-timeout"
        log("phase: spamd silent; maildrop's global timer; Postfix's time limit")
        pgid = self.pid("spamd")
        os.killpg(pgid, signal.SIGSTOP)
        try:
            qids = [self.send("ham", "alice"), self.send("ham", "bob", "wrapped"),
                    self.send("ham", "carol", "deliver")]
            fired: set[int] = set()

            def alarm_all() -> bool:
                for pid in maildrops_with_spamc("/rc/maildroprc "):
                    if pid not in fired:
                        os.kill(pid, signal.SIGALRM)
                        fired.add(pid)
                return len(fired) >= len(qids)
            wait_for("three maildrops running spamc", alarm_all, 30)
            slow = self.send("ham", "alice", "slow")
            self.wait_done([*qids, slow])
        finally:
            os.killpg(pgid, signal.SIGCONT)
        self.spamd_idle()

    def dns_dead(self) -> None:
        self.phase = "dns-dead"
        log("phase: the database's name does not resolve (dropped)")
        spamdrill("lab", "dns", "--run-dir", str(self.run_dir), "db.lab.test", "drop")
        qids = [self.send("ham", "alice"), self.send("ham", "bob")]
        self.wait_done(qids)
        # Connector/C asks the resolver again for 30 s, inside --timeout-child (40 s)
        wait_for("spamd's SQL error", lambda: "failed to load user (bob)" in
                 (self.run_dir / "spamd" / "spamd.log").read_text(errors="replace"), 90)
        spamdrill("lab", "dns", "--run-dir", str(self.run_dir), "db.lab.test", "answer")
        self.spamd_idle()

    def quota_and_users(self) -> None:
        self.phase = "quota-and-users"
        log("phase: over quota, unknown user")
        maildir = self.run_dir / "mail" / "bob" / "Maildir"
        subprocess.run(["maildirmake", "-q", "2000S", str(maildir)], check=True)
        nobody = pwd.getpwnam(MAIL_USER)
        os.chown(maildir / "maildirsize", nobody.pw_uid, nobody.pw_gid)
        qids = [self.send("large:5000", "bob"), self.send("large:5000", "bob", "wrapped"),
                self.send("large:5000", "bob", "deliver"),
                self.send("ham", "nosuchuser", "nouser")]
        self.wait_done(qids)

    def db_and_spamd_down(self) -> None:
        log("phase: MariaDB killed, then spamd stopped")
        self.phase = "db-down"
        os.kill(self.pid("mariadb"), signal.SIGKILL)
        qids = [self.send("ham", "alice"), self.send("ham", "carol", "wrapped")]
        self.wait_done(qids)
        self.spamd_idle()
        self.pause()
        os.kill(self.pid("spamd"), signal.SIGTERM)
        self.phase = "spamd-down"
        wait_for("spamd gone", lambda: "server killed by SIGTERM" in
                 (self.run_dir / "spamd" / "spamd.log").read_text(errors="replace"), 30)
        qids = [self.send("ham", "alice"), self.send("encoded", "carol")]
        self.wait_done(qids)

    def by_hand(self) -> None:
        self.phase = "by-hand"
        """maildrop and spamc by hand with the lab's own maildroprc (README), before the
        faults: ham and GTUBE, then a slow one."""
        log("phase: maildrop by hand")
        rc = self.run_dir / "maildrop" / "maildroprc"
        for kind, user in (("ham", "alice"), ("spam", "carol"), ("slow:2", "bob")):
            data = self.message(kind, f"{user}@lab.test")
            subprocess.run(["maildrop", str(rc), user], input=data, check=True, timeout=60)
            self.record(kind, f"{user}@lab.test", data, "", "by hand")

    def flush(self) -> None:
        """Retry the deferred mail now (spamd is gone: delivered unscanned; bob stays over
        quota) and wait until each retry is logged."""
        log("flush: the deferred mail, retried")
        assert self.postfix is not None
        pf = self.postfix
        before = pf.text().count("status=")
        deferred = pf.text().count("status=deferred")
        subprocess.run(["postqueue", "-c", str(pf.etc), "-f"], check=True)
        wait_for("the retries", lambda: pf.text().count("status=") >= before + deferred, 90)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--keep-work", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("make_fixtures: run as root (Postfix, spamd's own user)")
    if shutil.which("postfix") is None:
        raise SystemExit("make_fixtures: postfix not found (apt-get install postfix)")
    work = Path(tempfile.mkdtemp(prefix="spamdrill-logfx-", dir="/tmp"))
    run = Run(work, args.out)
    try:
        run.start(_free_port())
        run.by_hand()
        for phase in (run.normal, run.slow_first, run.child_timeout, run.maildrop_timeout,
                      run.dns_dead, run.quota_and_users, run.db_and_spamd_down):
            phase()
            run.pause()
        run.flush()
        run.collect()
    finally:
        run.stop()
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    subprocess.run([sys.executable, str(HERE / "convert.py"), "--dir", str(args.out)],
                   check=True)


if __name__ == "__main__":
    main()
