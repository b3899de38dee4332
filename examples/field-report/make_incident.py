"""Write examples/field-report/incident/mail.log: the field report's incident, in its real
formats, from the lines the real programs wrote in tests/data/logs/mail.log (see
tests/data/logs/README.md: a lab's spamd, a private Postfix 3.7, the field report's
maildroprc and first wrapper).

Two phases of that run, as the field report's host would have logged them:

- ``slow-first``: one slow scan and the deliveries queued behind it at spamd (the cascade
  and the message that started it), every line as written;
- ``maildrop-timeout``: the wrapped transport's delivery, whose maildrop timed out and
  whose wrapper turned exit 75 into 100 (a bounce). The lab fired maildrop's timer early
  (SIGALRM after 3 s); production's fires after 300 s, while spamc waits out 3 x -t 100
  + 2 s on a full accept queue. So this delivery's pipe(8) line, bounce and DSN are moved
  to the time the timer would fire, and its ``delay=``/``delays=`` say 302 s: the only
  numbers changed. The lab's transport, wrapper path and recipient domain become the
  field report's (``maildrop``, /usr/local/bin/maildrop_wrapper, lab.test).

Run: python3 examples/field-report/make_incident.py
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1] / "tests/data/logs/mail.log"
OUT = HERE / "incident/mail.log"
CASCADE = ("456C020CA16", "A8DA820CA17", "1890C20C7EE", "7B5CE20CA18", "DEE2320CA19")
BOUNCED, DSN = "4CE0F20CC80", "5D57D20CD33"
PRODUCTION_PIPE_S = 302  # spamc: 3 connect() x -t 100 + 2 retry sleeps; maildrop at 300 s
STAMP = "%b %d %H:%M:%S"


def qid(line: str) -> str | None:
    m = re.search(r"\]: ([0-9A-F]{10,12}): ", line)
    return m.group(1) if m else None


def shift(line: str, seconds: float) -> str:
    when = datetime.strptime("2026 " + line[:15], "%Y " + STAMP) + timedelta(
        seconds=seconds)
    stamp = when.strftime(STAMP)
    if when.day < 10:  # syslog pads the day with a space
        stamp = stamp[:4] + " " + stamp[5:]
    return stamp + line[15:]


def production(line: str) -> str:
    return (line.replace("relay=wrapped", "relay=maildrop")
            .replace("/srv/fixture/postfix/bin/maildrop_wrapper",
                     "/usr/local/bin/maildrop_wrapper")
            .replace("@wrapped.lab.test", "@lab.test"))


def main() -> None:
    lines = SOURCE.read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if qid(ln) in CASCADE)
    start = next(i for i, ln in enumerate(lines) if qid(ln) == BOUNCED)
    # everything from the cascade's first line to the bounced message's, but other
    # transports' deliveries (the lab's deliver, slow and nouser services)
    out = [ln for ln in lines[first:start]
           if qid(ln) in CASCADE or (qid(ln) is None and "postfix/" not in ln)]
    end = max(i for i, ln in enumerate(lines) if qid(ln) in (BOUNCED, DSN))
    accepted, later = [], []
    for ln in lines[start:end + 1]:
        q = qid(ln)
        if q == BOUNCED and "postfix/pipe" not in ln and "bounce[" not in ln \
                and "removed" not in ln:
            accepted.append(ln)
        elif q in (BOUNCED, DSN):
            later.append(ln)
        elif " maildrop[" in ln and " bob" in ln:
            accepted.append(ln)  # the maildroprc's logger line for the wrapped delivery
    pipe = next(ln for ln in later if "postfix/pipe" in ln)
    took = float(re.search(r"delays=[\d.]+/[\d.]+/[\d.]+/([\d.]+)", pipe).group(1))  # type: ignore[union-attr]
    moved = []
    for ln in later:
        ln = shift(ln, PRODUCTION_PIPE_S - took)
        ln = re.sub(r"delay=[\d.]+, delays=([\d.]+)/([\d.]+)/([\d.]+)/[\d.]+",
                    lambda m: f"delay={PRODUCTION_PIPE_S}, delays={m.group(1)}/"
                    f"{m.group(2)}/{m.group(3)}/{PRODUCTION_PIPE_S}", ln) \
            if "postfix/pipe" in ln else ln
        moved.append(ln)
    text = [production(ln) for ln in out + accepted + moved]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(text) + "\n")
    print(f"{OUT}: {len(text)} lines")


if __name__ == "__main__":
    main()
