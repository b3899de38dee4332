"""Run a delivery wrapper in a sandbox, its MDA replaced by a stand-in, once per case of
``wrappertable.CASES`` (the I/O half; the judging is ``wrappertable``'s).

The sandbox is ``unshare``: a user namespace (root inside, the caller outside: no root
needed where user namespaces work; as root, root's own files stay untouchable because
every mount but a private /tmp is made read-only), no network (an empty network
namespace), a PID namespace (a wrapper's ``kill -1`` reaches only itself), a private
mount namespace: tmpfs over /tmp and /run (the syslog and D-Bus sockets live there), the
stand-in bind-mounted over each maildrop the wrapper may call by path and first in PATH.
Each run gets the message on a pipe and its stdout and stderr on one pipe, as pipe(8)
does, and a bounded time; the stand-in counts its calls and keeps what it read.

``python -m spamdrill.budget.sandbox`` is the inside: it reads its task as JSON on
stdin and writes the observations as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spamdrill.budget import wrappertable as wt

RUN_TIMEOUT_S = 5.0  # one run of the wrapper; longer counts as hung
HUNG_IN_A_ROW = 3  # then the sandbox stops: the table is not measured
AT_ONCE = 4  # runs at a time (each waits mostly on process start-up)
WORK = "/tmp/.spamdrill-sandbox"
STANDIN = """#!/bin/sh
# spamdrill's stand-in for maildrop: finds its case by its ancestry (the wrapper's pid
# names the case's directory) and ends as the case says
w=@WORK@
p=$$
d=
while [ "$p" -gt 1 ]; do
  if [ -d "$w/by-pid/$p" ]; then d="$w/by-pid/$p"; break; fi
  read -r s < "/proc/$p/stat" || break
  s="${s##*) }"
  set -- $s
  p=$2
done
if [ -z "$d" ]; then echo "maildrop stand-in: no case for this run" >&2; exit 75; fi
echo x >> "$d/calls"
read -r status reads < "$d/case"
if [ "$reads" = 1 ]; then cat > "$d/got"; fi
if [ -s "$d/stderr" ]; then cat "$d/stderr" >&2; fi
if [ "$status" = kill ]; then kill -KILL $$; fi
exit "$status"
""".replace("@WORK@", WORK)
HOST_MDAS = ("/usr/bin/maildrop", "/usr/local/bin/maildrop", "/bin/maildrop")
UNSHARE = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork",
           "--ipc", "--uts", "--mount-proc", "--propagation", "private", "--"]


def measure(path: Path, argv: list[str], shown: str = "",
            timeout_s: float = RUN_TIMEOUT_S) -> wt.Table:
    """Run the wrapper file at ``path`` (argv[0] on the system measured) with pipe(8)'s
    ``argv`` through every case; a table that says why when it cannot be run."""
    shown = shown or str(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        return wt.unmeasured(shown, f"cannot read {path}: {exc.strerror}")
    interp = wt.interpreter(text)
    if interp is None and not text.startswith(b"\x7fELF"):
        interp = ["/bin/sh"]  # execvp() runs a script without #! under /bin/sh
    if interp is not None and not os.path.exists(interp[0]):
        return wt.unmeasured(shown, f"its interpreter {interp[0]} is not on this host")
    runner = " ".join(interp) if interp else "itself"
    if interp and os.path.realpath(interp[0]) != interp[0]:
        runner += f" ({os.path.realpath(interp[0])})"
    command = [*(interp or []), f"{WORK}/wrapper", *wt.expand_argv(argv)[1:]]
    return _measured(shown, f"run under {runner}", command, {"wrapper": text},
                     wt.mda_paths(argv, text), {}, timeout_s)


def measure_deliver(argv: list[str], config: bytes | None, shown: str = "",
                    timeout_s: float = RUN_TIMEOUT_S) -> wt.Table:
    """spamdrill-deliver as master.cf runs it (``argv``), this host's copy of the program
    (the same package as this spamdrill), under the system's own policy file."""
    import spamdrill

    words = [w for w in wt.expand_argv(argv)[1:] if not w.startswith(("--config=",
                                                                     "--syslog-socket="))]
    files = {} if config is None else {"deliver.toml": config}
    policy = [f"--config={WORK}/deliver.toml"] if config is not None else \
        [f"--config={WORK}/none.toml"]
    if config is None:  # no policy file on the system: the defaults, not this host's file
        files["none.toml"] = b""
    package = str(Path(spamdrill.__file__).resolve().parent.parent)
    command = [sys.executable, "-IS", "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
               "from spamdrill.deliver.main import entry; entry()", package, *policy,
               f"--syslog-socket={WORK}/log", *words]
    return _measured(shown or argv[0], f"run as this host's spamdrill-deliver ("
                     f"{sys.executable})", command, files, wt.mda_paths(argv, b""), {},
                     timeout_s)


def _measured(shown: str, runner: str, command: list[str], files: dict[str, bytes],
              mdas: list[str], env: dict[str, str], timeout_s: float) -> wt.Table:
    if shutil.which("unshare") is None:
        return wt.unmeasured(shown, "unshare(1) is not installed")
    task = {"files": {k: v.decode("latin-1") for k, v in files.items()},
            "command": command, "mdas": mdas, "env": env, "timeout": timeout_s,
            "cases": [[c.status, c.stderr, c.reads] for c in wt.CASES]}
    try:
        done = subprocess.run([*UNSHARE, sys.executable, "-m", "spamdrill.budget.sandbox"],
                              input=json.dumps(task).encode(), capture_output=True,
                              timeout=len(wt.CASES) * (timeout_s + 2) + 30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return wt.unmeasured(shown, f"the sandbox did not run: {exc}")
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        return wt.unmeasured(shown, f"the sandbox could not be set up: "
                             f"{why[-1] if why else done.returncode}")
    seen = [_observed(wt.CASES[i], o) for i, o in enumerate(json.loads(done.stdout))]
    if len(seen) < len(wt.CASES):
        return wt.unmeasured(shown, f"it hung in {HUNG_IN_A_ROW} runs in a row (each "
                             f"stopped after {timeout_s:g} s)")
    if not any(o.calls for o in seen):
        out = next((o.output for o in seen if o.output), b"").decode(errors="replace")
        return wt.unmeasured(shown, "the wrapper never ran maildrop in the sandbox"
                             + (f"; it said: {out.strip()[:200]}" if out.strip() else ""))
    return wt.Table(shown, True, f"measured: {runner} in a sandbox (no network, private "
                    f"mounts), maildrop replaced by a stand-in, {len(seen)} cases",
                    [wt.row(o) for o in seen])


def _observed(case: wt.Case, o: dict[str, object]) -> wt.Observed:
    got = o["got"]
    return wt.Observed(case, o["status"] if isinstance(o["status"], int) else None,
                       o["signal"] if isinstance(o["signal"], int) else None,
                       bool(o["timed_out"]), str(o["output"]).encode("latin-1"),
                       int(str(o["calls"])),
                       None if got is None else str(got).encode("latin-1"))


def direct(argv0: str) -> wt.Table:
    """pipe(8) runs maildrop itself: Postfix judges maildrop's own status (no wrapper to
    measure)."""
    seen = [wt.Observed(c, None if c.status == wt.KILLED else c.status,
                        9 if c.status == wt.KILLED else None, False,
                        c.stderr.encode(), 1, wt.MESSAGE if c.reads else None)
            for c in wt.CASES]
    return wt.Table(argv0, True, "no wrapper: pipe(8) runs maildrop and judges its own "
                    "status (pipe_command.c)", [wt.row(o) for o in seen])


# -- inside the sandbox ----------------------------------------------------------------

def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _inside() -> None:
    task = json.loads(sys.stdin.buffer.read())
    work = _prepare(task)
    env = {"PATH": f"{work / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp",
           "LOGNAME": "user", "USER": "user", "SHELL": "/bin/sh", "LANG": "C",
           **task["env"]}
    argv = task["command"]
    cases = task["cases"]
    results: list[dict[str, object]] = []
    for start in range(0, len(cases), AT_ONCE):
        if len(results) >= HUNG_IN_A_ROW and all(
                r["timed_out"] for r in results[-HUNG_IN_A_ROW:]):
            break  # a wrapper that hangs whatever maildrop does: the rest would too
        batch = []
        for i in range(start, min(start + AT_ONCE, len(cases))):
            status, stderr, reads = cases[i]
            d = work / "cases" / str(i)
            d.mkdir(parents=True)
            word = "kill" if status == wt.KILLED else str(status)
            (d / "case").write_text(f"{word} {1 if reads else 0}\n")
            (d / "stderr").write_text(stderr + "\n" if stderr else "")
            batch.append((d, _spawn(argv, env, work, d)))
        results += [_collect(p, began + task["timeout"], d) for d, (p, began) in batch]
    sys.stdout.write(json.dumps(results))


def _prepare(task: dict[str, Any]) -> Path:
    """The private mounts: tmpfs over /tmp and /run, the stand-in over every maildrop,
    the rest read-only (checked)."""
    _mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/tmp")
    if os.path.isdir("/run"):
        _mount("-t", "tmpfs", "tmpfs", "/run")
    if os.path.exists("/dev/log") and not os.path.islink("/dev/log"):
        _mount("--bind", "/dev/null", "/dev/log")
    work = Path(WORK)
    (work / "bin").mkdir(parents=True)
    standin = work / "bin" / wt.MDA_NAME
    standin.write_text(STANDIN)
    standin.chmod(0o755)
    for name, text in task["files"].items():
        (work / name).write_bytes(text.encode("latin-1"))
        (work / name).chmod(0o755)
    host = [shutil.which(wt.MDA_NAME) or "", *HOST_MDAS, *task["mdas"]]
    for mda in dict.fromkeys(m for m in host if m and os.path.isfile(m)):
        _mount("--bind", str(standin), mda)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(("/proc", "/sys", "/dev", "/tmp", "/run")):
            continue
        _mount("-o", "remount,bind,ro", point)
    try:  # refuse to run a wrapper where it could write the host's files
        os.close(os.open("/.spamdrill-rw-check", os.O_CREAT | os.O_WRONLY))
        os.unlink("/.spamdrill-rw-check")
        sys.exit("the root file system stayed writable")
    except OSError:
        pass
    return work


def _spawn(argv: list[str], env: dict[str, str], work: Path, case: Path
           ) -> tuple[subprocess.Popen[bytes], float]:
    """Start one run (a session of its own, as pipe(8) does) with the message written
    and stdin closed; the stand-in finds ``case`` through the wrapper's pid."""
    def mark() -> None:  # in the child before exec: no threads run in this process
        os.symlink(case, work / "by-pid" / str(os.getpid()))

    (work / "by-pid").mkdir(exist_ok=True)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, cwd="/tmp",
                         start_new_session=True, preexec_fn=mark)
    began = time.monotonic()
    assert p.stdin is not None
    try:
        p.stdin.write(wt.MESSAGE)  # smaller than a pipe's buffer: never blocks
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.stdin = None  # written and closed: communicate() only reads
    return p, began


def _collect(p: subprocess.Popen[bytes], deadline: float, case: Path) -> dict[str, object]:
    timed_out = False
    try:
        out, _ = p.communicate(timeout=max(0.01, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(p.pid, signal.SIGKILL)
        try:
            out, _ = p.communicate(timeout=2)
        except subprocess.TimeoutExpired:  # a descendant in a session of its own
            out = b""
            p.kill()
            p.wait()
    code = p.returncode
    calls = (case / "calls").read_text().count("x") if (case / "calls").exists() else 0
    got = (case / "got").read_bytes() if (case / "got").exists() else None
    return {"status": code if code >= 0 else None, "signal": -code if code < 0 else None,
            "timed_out": timed_out, "output": out[:8192].decode("latin-1"),
            "calls": calls, "got": None if got is None else got.decode("latin-1")}


if __name__ == "__main__":
    _inside()
