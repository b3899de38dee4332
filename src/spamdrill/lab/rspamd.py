"""The lab's rspamd: Debian's shipped configuration (/etc/rspamd), with the lab's overrides
in a local configuration directory of its own, so the machine's instance and /etc are never
touched.

How: rspamd reads ``-c <lab>/rspamd/rspamd.conf``, which only includes Debian's
``$CONFDIR/rspamd.conf``; ``--var LOCAL_CONFDIR=<lab>/rspamd/conf`` (and DBDIR, RUNDIR,
LOGDIR) points Debian's ``.include(try=true; priority=10) "$LOCAL_CONFDIR/override.d/…"``
lines at the lab's files. override.d replaces the keys it names, local.d merges into them
(https://rspamd.com/doc/faq.html#what-are-the-locald-and-overrided-directories). The lab
overrides only what it must:

- every worker's ``bind_socket`` on loopback, at a port picked free: the normal worker, the
  controller (``rspamc stat``) and the proxy in milter mode (Debian's worker-proxy.inc:
  ``milter = yes``), whose upstream is the lab's normal worker;
- ``options.dns.nameserver``: the lab DNS only (rspamd's own resolver, rdns, asks nothing
  else: https://rspamd.com/doc/configuration/options.html, ``dns``);
- ``redis.servers``: the lab's Redis (Bayes, history, ratelimit, reputation all use it:
  https://rspamd.com/doc/configuration/redis.html);
- logging to a lab file; pid, control socket and DBDIR in the lab directory;
- modules that would talk to the outside world off: fuzzy_check (fuzzy1/2.rspamd.com, and
  it resolves them with libc when the config is read), rspamd_update (updates.rspamd.com),
  and those whose maps are fetched over HTTPS from maps.rspamd.com or openphish.com
  (phishing, multimap's freemail lists, mime_types, mid, whitelist, rbl's URL whitelist),
  url_redirector (it follows redirects over HTTP);
- two lab rules (local.d/rspamd.lua): a sleep rule (``slow:S`` messages block the worker)
  and, with ``slow_rule = true``, a rule every scan waits on asynchronously (the lab DNS
  over TCP), which the ``rspamd-slow-rule`` fault makes slow;
- milter_headers (local.d): every message scanned through the milter gets
  ``X-Spamd-Result``, local senders too (Debian ships ``use = []``, and the module skips
  local and authenticated senders by default:
  https://rspamd.com/doc/modules/milter_headers.html), so a delivered message shows
  whether rspamd scanned it, as SpamAssassin's ``X-Spam-Status`` does for spamd.

Hyperscan: rspamd compiles its regular expressions (9,628 TLD suffixes among them) into
``hs_cache_dir`` (DBDIR) on a cold start, which took 36 s on a 2-core machine; a warm start
with that cache takes 1.9 s. Production rspamd keeps its cache in /var/lib/rspamd across
restarts, so the lab keeps one per user (``cache_dir``) and seeds each lab's DBDIR with it.

As root, rspamd runs with ``-i`` (workers as root): the lab directory is root's, and
running as _rspamd would need it handed over; the lab feeds it only its own test mail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from spamdrill.errors import SpamdrillError
from spamdrill.lab.config import RspamdSettings
from spamdrill.lab.layout import default_run_dir, secure_dir

CONFDIR = Path("/etc/rspamd")
# modules that would reach outside the lab (see the module docstring)
OFF_MODULES = ("fuzzy_check", "rspamd_update", "phishing", "multimap", "mime_types", "mid",
               "whitelist", "url_redirector")
# what a lab rspamd's hyperscan cache holds (rspamd's own file names: <hash>.hs*)
_HS_SUFFIXES = (".hs", ".hsmp", ".hsmc", ".hs.unser", ".hsmp.unser")


# A rule that really blocks the worker on ``corpus.slow`` messages (Subject
# SPAMDRILL-SLEEP-S), as spamd's SpamdrillSleep rule does: scan time fixed by the message,
# not the machine. Blocking, not a timer: the worker's event loop stops for S seconds, as
# it does under a CPU-bound or synchronous rule, so one worker serves a burst one at a
# time (rspamd runs one event loop per worker process: https://rspamd.com/doc/architecture/).
# Harmless for any other message.
SLEEP_RULE = """\
-- spamdrill lab (generated): scans of SPAMDRILL-SLEEP-<seconds> messages block the worker
rspamd_config:register_symbol({
  name = 'SPAMDRILL_SLEEP', score = 0.0,
  callback = function(task)
    local subject = task:get_header('Subject') or ''
    local s = tonumber(subject:match('SPAMDRILL%-SLEEP%-(%d+%.?%d*)'))
    if s and s > 0 and s <= 600 then os.execute(string.format('sleep %.3f', s)) end
    return false
  end,
})
"""


# The slow rule (``[lab.rspamd] slow_rule = true``): every scan asks a service the lab
# controls and waits for its answer on the worker's event loop, as a custom rule calling an
# outside reputation or scanning service does. The service is the lab DNS, over TCP: one
# query for SLOW_RULE_NAME (NXDOMAIN at once while the lab is healthy), sent with
# rspamd_tcp, rspamd's asynchronous TCP client: the task waits for the callback, the worker
# serves other tasks meanwhile, nothing spins (https://rspamd.com/doc/lua/rspamd_tcp.html).
# Its own timeout (SLOW_RULE_TIMEOUT_S) is longer than any task_timeout a drill sets, so
# when the lab DNS answers that name late (the ``rspamd-slow-rule`` fault), rspamd's
# task_timeout decides. Over TCP with a timeout of its own, not through rspamd's resolver,
# whose lookups give up at dns.timeout x dns.retransmits (5 s in Debian's options.inc):
# that path is the ``rspamd-dns-dead`` fault's.
SLOW_RULE_NAME = "slow-rule.lab.test"
SLOW_RULE_TIMEOUT_S = 120
SLOW_RULE = """\
-- spamdrill lab (generated): every scan waits for the lab's slow service (the lab DNS
-- over TCP, asked for {name}), asynchronously, with a timeout of its own
local rspamd_tcp = require "rspamd_tcp"
rspamd_config:register_symbol({{
  name = 'SPAMDRILL_SLOW_RULE', score = 0.0,
  callback = function(task)
    local function answered(err, _data)
      if err then
        task:insert_result('SPAMDRILL_SLOW_RULE', 0.0, 'error: ' .. tostring(err))
      end
    end
    rspamd_tcp.request({{
      task = task, host = {host}, port = {port}, timeout = {timeout},
      data = {query}, read = true, callback = answered,
    }})
  end,
}})
"""


def _dns_tcp_query(name: str) -> bytes:
    """One DNS query for ``name`` (A, recursion desired) as sent over TCP: a two-byte
    length, then the message (RFC 1035 4.2.2)."""
    import struct

    qname = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.split(".")) + b"\0"
    msg = struct.pack("!HHHHHH", 0x5344, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(msg)) + msg


def _lua_bytes(data: bytes) -> str:
    """A Lua string literal of any bytes (decimal escapes)."""
    return '"' + "".join(f"\\{b:03d}" for b in data) + '"'


def slow_rule(dns: str) -> str:
    """The slow rule's Lua, asking the lab DNS at ``dns`` (``host:port``)."""
    host, _, port = dns.rpartition(":")
    return SLOW_RULE.format(name=SLOW_RULE_NAME, host=_ucl_string(host.strip("[]")),
                            port=int(port), timeout=SLOW_RULE_TIMEOUT_S,
                            query=_lua_bytes(_dns_tcp_query(SLOW_RULE_NAME)))


# what marks a message rspamd scanned through its milter (see the module docstring)
MILTER_HEADERS = """\
# spamdrill lab (generated): mark every scanned message, local senders too
use = ["x-spamd-result"];
skip_local = false;
skip_authenticated = false;
"""


@dataclass(frozen=True)
class Paths:
    """Every path of one lab's rspamd and Redis, under the lab's run directory."""

    root: Path

    @property
    def dir(self) -> Path:
        return self.root / "rspamd"

    @property
    def conf(self) -> Path:
        return self.dir / "rspamd.conf"

    @property
    def local_confdir(self) -> Path:
        return self.dir / "conf"

    @property
    def db(self) -> Path:
        return self.dir / "db"

    @property
    def run(self) -> Path:
        return self.dir / "run"

    @property
    def log(self) -> Path:
        return self.dir / "rspamd.log"

    @property
    def out(self) -> Path:
        return self.dir / "rspamd.out"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def redis_out(self) -> Path:
        return self.redis_dir / "redis.out"

    @property
    def redis_proxy_dir(self) -> Path:
        """The fault proxy between rspamd and Redis (``redis_proxy``): its shape file,
        counters and output."""
        return self.root / "redisproxy"

    @property
    def redis_proxy_shape(self) -> Path:
        return self.redis_proxy_dir / "proxy-shape.json"

    @property
    def redis_proxy_out(self) -> Path:
        return self.redis_proxy_dir / "proxy.out"


@dataclass(frozen=True)
class Ports:
    """Where the lab's rspamd workers and its Redis listen (all on ``host``);
    ``redis_proxy``: the fault proxy's port, where rspamd's ``redis.servers`` points
    instead (0: none)."""

    host: str
    normal: int
    controller: int
    proxy: int
    redis: int
    redis_proxy: int = 0


def _ucl_string(text: str) -> str:
    """A UCL double-quoted string (paths and addresses the lab chose; checked anyway)."""
    if any(c in text for c in '"\\\n$'):
        raise SpamdrillError(f"{text!r} cannot go into rspamd's configuration")
    return f'"{text}"'


def render(paths: Paths, settings: RspamdSettings, ports: Ports, dns: str,
           ) -> dict[str, str]:
    """The lab's files, relative to ``paths.dir``: its top-level rspamd.conf and its
    override.d (sans-IO). ``dns`` is the lab DNS as ``host:port``."""
    host = ports.host
    options = [
        f"pidfile = {_ucl_string(str(paths.run / 'rspamd.pid'))};",
        "dns { " + " ".join([f"nameserver = [{_ucl_string(dns)}];"]
                            + ([f"timeout = {settings.dns_timeout}s;"]
                               if settings.dns_timeout else [])
                            + ([f"retransmits = {settings.dns_retransmits};"]
                               if settings.dns_retransmits else [])) + " }",
        f"control_socket = {_ucl_string(str(paths.db / 'rspamd.sock') + ' mode=0600')};",
        f"tempdir = {_ucl_string(str(paths.run))};",
    ]
    if settings.task_timeout:
        options.append(f"task_timeout = {settings.task_timeout}s;")
    if settings.soft_reject_on_timeout:
        options.append("soft_reject_on_timeout = true;")
    normal = [f"bind_socket = {_ucl_string(f'{host}:{ports.normal}')};"]
    if settings.workers:
        normal.append(f"count = {settings.workers};")
    redis = [f"servers = {_ucl_string(f'{host}:{ports.redis_proxy or ports.redis}')};"]
    if settings.redis_timeout:
        redis.append(f"timeout = {settings.redis_timeout}s;")
    files = {
        "rspamd.conf": "# spamdrill lab (generated): Debian's rspamd configuration, with the "
                       "lab's\n# overrides in $LOCAL_CONFDIR (set on rspamd's command line)\n"
                       '.include "$CONFDIR/rspamd.conf"\n',
        "conf/override.d/options.inc": "\n".join(options) + "\n",
        "conf/override.d/logging.inc": "type = \"file\";\n"
        f"filename = {_ucl_string(str(paths.log))};\nlevel = \"info\";\n",
        "conf/override.d/worker-normal.inc": "\n".join(normal) + "\n",
        "conf/override.d/worker-controller.inc":
            f"bind_socket = {_ucl_string(f'{host}:{ports.controller}')};\n",
        "conf/override.d/worker-proxy.inc":
            f"bind_socket = {_ucl_string(f'{host}:{ports.proxy}')};\n"
            "milter = yes;\n"
            f"upstream \"local\" {{ default = yes; "
            f"hosts = {_ucl_string(f'{host}:{ports.normal}')}; }}\n",
        "conf/override.d/redis.conf": "\n".join(redis) + "\n",
        # the surbl whitelist map of the rbl module comes from maps.rspamd.com
        "conf/override.d/rbl.conf": "url_whitelist = [];\n",
    }
    # Debian's rules/rspamd.lua runs $LOCAL_CONFDIR/local.d/rspamd.lua after its own rules
    files["conf/local.d/rspamd.lua"] = SLEEP_RULE + (slow_rule(dns) if settings.slow_rule
                                                     else "")
    files["conf/local.d/milter_headers.conf"] = MILTER_HEADERS
    for module in OFF_MODULES:
        files[f"conf/override.d/{module}.conf"] = "enabled = false;\n"
    return files


def write_config(paths: Paths, settings: RspamdSettings, ports: Ports, dns: str) -> None:
    """The lab's configuration directory, DBDIR (seeded with the hyperscan cache) and
    RUNDIR, all new."""
    for d in (paths.dir, paths.local_confdir / "override.d", paths.local_confdir / "local.d",
              paths.db, paths.run, paths.redis_dir, paths.redis_proxy_dir):
        d.mkdir(parents=True, exist_ok=True)
    for rel, text in render(paths, settings, ports, dns).items():
        (paths.dir / rel).write_text(text)
    seed_hs_cache(paths)


def argv(paths: Paths) -> list[str]:
    """rspamd in the foreground (``-f``), so it stays the session leader the lab journals."""
    binary = shutil.which("rspamd") or "/usr/bin/rspamd"
    out = [binary, "-f", "-c", str(paths.conf),
           f"--var=LOCAL_CONFDIR={paths.local_confdir}", f"--var=DBDIR={paths.db}",
           f"--var=RUNDIR={paths.run}", f"--var=LOGDIR={paths.dir}"]
    if os.geteuid() == 0:
        out.insert(2, "-i")  # see the module docstring
    return out


def cache_dir() -> Path:
    """This user's rspamd hyperscan cache, beside the labs (checked like a run directory)."""
    return secure_dir(default_run_dir().parent / "rspamd-hs-cache", 0o700)


def _hs_files(directory: Path) -> list[Path]:
    with contextlib.suppress(OSError):
        return [p for p in directory.iterdir() if p.name.endswith(_HS_SUFFIXES)
                and p.is_file() and not p.is_symlink()]
    return []


def seed_hs_cache(paths: Paths) -> int:
    """Copy this user's cache into the lab's DBDIR; returns the files copied."""
    files = _hs_files(cache_dir())
    for f in files:
        shutil.copyfile(f, paths.db / f.name, follow_symlinks=False)
    return len(files)


def keep_hs_cache(paths: Paths) -> int:
    """Copy what this lab's rspamd compiled into this user's cache (new names only)."""
    cache = cache_dir()
    have = {p.name for p in _hs_files(cache)}
    n = 0
    for f in _hs_files(paths.db):
        if f.name not in have:
            tmp = cache / f".{f.name}.tmp"
            shutil.copyfile(f, tmp, follow_symlinks=False)
            os.replace(tmp, cache / f.name)
            n += 1
    return n


def rspamc() -> str:
    return shutil.which("rspamc") or "/usr/bin/rspamc"


def stat(host: str, port: int, timeout: float = 2.0) -> bool:
    """``rspamc -h HOST:PORT stat`` against the controller exits 0."""
    try:
        done = subprocess.run([rspamc(), "-h", f"{host}:{port}", "-t", str(timeout), "stat"],
                              capture_output=True, timeout=timeout + 2)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and b"Messages scanned" in done.stdout


def milter_negotiates(host: str, port: int, timeout: float = 2.0) -> bool:
    """The proxy worker speaks milter: it answers an MTA's option negotiation
    (``SMFIC_OPTNEG``, 'O': version 6, actions, protocol steps; libmilter's mfdef.h and
    Postfix's milter8.c) with its own 'O' packet, then the connection is quit ('Q')."""
    import struct

    body = b"O" + struct.pack("!III", 6, 0x1FF, 0x1FFFFF)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack("!I", len(body)) + body)
            reply = b""
            while len(reply) < 5:
                chunk = s.recv(64)
                if not chunk:
                    return False
                reply += chunk
            s.sendall(struct.pack("!I", 1) + b"Q")
    except OSError:
        return False
    return struct.unpack("!I", reply[:4])[0] >= 13 and reply[4:5] == b"O"


def scan(host: str, port: int, message: bytes, timeout: float = 10.0,
         ) -> subprocess.CompletedProcess[bytes] | None:
    """One message through ``rspamc -h HOST:PORT``; None when it did not finish."""
    try:
        return subprocess.run([rspamc(), "-h", f"{host}:{port}", "-t", str(timeout)],
                              input=message, capture_output=True, timeout=timeout + 2)
    except (OSError, subprocess.TimeoutExpired):
        return None


def scans_gtube(host: str, port: int) -> bool:
    """A known message gets its known verdict: GTUBE is rspamd's ``reject`` (its GTUBE
    symbol, https://rspamd.com/doc/gtube_patterns.html)."""
    from spamdrill import corpus

    done = scan(host, port, corpus.gtube(0))
    return done is not None and done.returncode == 0 and b"Action: reject" in done.stdout



# binary -> Debian package, checked before a lab with rspamd starts anything
REQUIRED = {"rspamd": "rspamd", "rspamc": "rspamd", "redis-server": "redis-server"}


def preflight() -> None:
    for name, package in REQUIRED.items():
        if shutil.which(name) is None:
            raise SpamdrillError(f"{name} not found (Debian package {package})",
                                 f"run: sudo scripts/setup.sh (or apt-get install {package})")
    if not (CONFDIR / "rspamd.conf").is_file():
        raise SpamdrillError(f"{CONFDIR}/rspamd.conf missing: the lab builds on Debian's "
                             "shipped configuration", "apt-get install --reinstall rspamd")
