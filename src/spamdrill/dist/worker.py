"""A Locust worker that floods with real spamc: ``spamdrill flood --worker --master-host H``.

It is a plain ``WorkerRunner`` (``Environment.create_worker_runner``; no ``User`` classes:
its work arrives as custom messages), in a process of its own as Locust's docs ask of
workers ("Using Locust as a library": every worker needs a separate Python process). It
connects to the master (``client_ready``, retried for five minutes by Locust), beats its
heartbeat every second, and answers spamdrill's messages (``dist.messages``): clock pings
at once, a plan by starting a shot (``dist.shot``, unpatched) and relaying between the two
(registered ``concurrent=True``: Locust runs a listener in its receiving greenlet, so one
that lasts the whole load would hold up heartbeats -- ``docs/running-distributed.rst``).
Each spamc that exits becomes a Locust request (type ``spamc``, named by its target, failed
when spamc's exit status is not 0) so the master's statistics -- its web UI, its CSV --
move while the load runs. It serves one master and exits when the master quits.

    python -m spamdrill.dist.worker --master-host H [--master-port 5557] [--i-own-this-target]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from spamdrill.dist import messages as m

SHOT = [sys.executable, "-m", "spamdrill.dist.shot"]


def _status_error(status: int) -> Exception | None:
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return None if code == 0 else Exception(f"spamc exit {code}")
    return Exception(f"spamc killed by signal {os.WTERMSIG(status)}")


class Worker:
    """spamdrill's side of one Locust worker."""

    def __init__(self, runner: Any, owned: bool) -> None:
        self.runner = runner
        self.owned = owned
        self.shot: subprocess.Popen[bytes] | None = None
        runner.register_message(m.PING, self.on_ping)
        runner.register_message(m.PLAN, self.on_plan, concurrent=True)
        runner.register_message(m.RELEASE, self.on_release)
        self.send(m.HELLO, {})

    def send(self, kind: str, data: dict[str, Any]) -> None:
        self.runner.send_message(kind, data)

    def on_ping(self, environment: Any, msg: Any, **_: Any) -> None:
        self.send(m.PONG, {**msg.data, "peer_ns": time.time_ns(),
                           "host": socket.gethostname(), "machine": m.machine_id()})

    def on_release(self, environment: Any, msg: Any, **_: Any) -> None:
        shot = self.shot
        if shot is not None and shot.stdin is not None:
            shot.stdin.write(json.dumps({"release_real_ns": msg.data["at_real_ns"]})
                             .encode() + b"\n")
            shot.stdin.flush()

    def on_plan(self, environment: Any, msg: Any, **_: Any) -> None:
        """Start the shot with this share and relay its lines until it ends."""
        target = msg.data["target"]
        name = f"{target['host']}:{target['port']}"
        argv = [*SHOT, *(["--i-own-this-target"] if self.owned else [])]
        self.shot = shot = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE)
        assert shot.stdin is not None and shot.stdout is not None
        shot.stdin.write(json.dumps(msg.data).encode() + b"\n")
        shot.stdin.flush()
        finished = False
        for line in shot.stdout:
            finished = self.relay(json.loads(line), environment, name) or finished
        code = shot.wait()
        if not finished:
            self.send(m.FAILED, {"error": f"its spamc load ended (status {code}) "
                                          "without reporting"})

    def relay(self, doc: dict[str, Any], environment: Any, name: str) -> bool:
        """One line of the shot; True once it has said its last (done or error)."""
        if "x" in doc:
            for _index, start_ns, end_ns, status in doc["x"]:
                environment.events.request.fire(
                    request_type="spamc", name=name, response_time=(end_ns - start_ns) / 1e6,
                    response_length=0, exception=_status_error(status), context={})
        elif "ready" in doc:
            self.send(m.READY, {"pair": doc["ready"]})
        elif "records" in doc:
            self.send(m.RECORDS, {"records": doc["records"]})
        elif "done" in doc:
            self.runner._send_stats()  # the last statistics before the master counts up
            self.send(m.DONE, doc["done"])
            return True
        elif "error" in doc:
            self.send(m.FAILED, {"error": doc["error"]})
            return True
        return False

    def close(self) -> None:
        """SIGTERM, not SIGKILL: the shot kills its spamc *before* their stdin closes --
        a spamc whose stdin closes sends its message, so a shot killed outright would
        release what it held."""
        if self.shot is not None and self.shot.poll() is None:
            self.shot.terminate()
            try:
                self.shot.wait(30)
            except subprocess.TimeoutExpired:
                self.shot.kill()
                self.shot.wait()


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="spamdrill flood --worker")
    p.add_argument("--master-host", required=True)
    p.add_argument("--master-port", type=int, default=m.DEFAULT_PORT)
    p.add_argument("--i-own-this-target", dest="owned", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from spamdrill.dist import require_locust
    from spamdrill.errors import SpamdrillError

    try:
        require_locust()
    except SpamdrillError as exc:
        print(f"spamdrill: error: {exc.one_line()}", file=sys.stderr)
        return 2
    from locust.env import Environment  # gevent's monkey-patching happens here

    env = Environment(user_classes=[])
    try:
        runner = env.create_worker_runner(args.master_host, args.master_port)
    except ConnectionError:
        print(f"spamdrill: error: no master answered at {args.master_host}:"
              f"{args.master_port}", file=sys.stderr)
        return 2
    worker = Worker(runner, args.owned)
    print(f"spamdrill worker: connected to {args.master_host}:{args.master_port}",
          file=sys.stderr, flush=True)
    try:
        runner.greenlet.join()
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
