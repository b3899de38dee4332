"""The custom message types spamdrill's master and workers exchange over Locust's channel
(``runner.register_message`` / ``runner.send_message``), in the order of a run:

- ``HELLO`` worker -> master once its listeners are registered (Locust connects a worker
  while it is created, before it can register any: a message sent before then is dropped
  as "Unknown message type"), so the master counts only workers that said hello;
- ``PING`` master -> worker ``{"seq", "sent_ns"}``; ``PONG`` back ``{"seq", "sent_ns",
  "peer_ns", "host", "machine"}``: the worker's wall clock (``clock.estimate``), its host
  name (the records' worker name) and machine id (the lab target needs workers on the
  lab's machine);
- ``PLAN`` master -> worker: its ``plan.Share``; ``READY`` back ``{"pair"}`` when every
  spamc holds its message; ``FAILED`` back ``{"error"}`` if it cannot run;
- ``RELEASE`` master -> worker ``{"at_real_ns"}``: the release instant on that worker's
  own wall clock;
- ``RECORDS`` worker -> master ``{"records"}`` (chunks of ``tally.CHUNK``), then ``DONE``
  ``{"released": [first, last], "pair"}`` (its monotonic clock, read with ``pair``).
"""

from __future__ import annotations

from pathlib import Path

HELLO = "spamdrill_hello"
PING = "spamdrill_ping"
PONG = "spamdrill_pong"
PLAN = "spamdrill_plan"
READY = "spamdrill_ready"
FAILED = "spamdrill_failed"
RELEASE = "spamdrill_release"
RECORDS = "spamdrill_records"
DONE = "spamdrill_done"

DEFAULT_PORT = 5557  # Locust's own master port


def machine_id() -> str:
    """What tells two machines apart (systemd's machine id; the host name without one)."""
    import socket

    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return socket.gethostname()
