"""A large run document made from a real small one, for the report's tests and benchmark.

``scale_up`` keeps a recorded scenario's shape and multiplies its messages: message ``k``
copies message ``k mod L`` of the original (its kind, case, outcome, reason, flags), is
released at ``k / n`` of a stream stretched ``stretch`` times as long as the original, and
takes the original's time with a deterministic jitter of up to +-10 %. Fault windows
stretch with the stream; each check names its offenders among the new ids. The result
is a valid version-2 document (it decodes with ``spamdrill.runmodel``).
"""

from __future__ import annotations

import copy
import random
from typing import Any


def scale_up(doc: dict[str, Any], scenario: str, n: int, stretch: float = 10.0,
             seed: int = 14) -> dict[str, Any]:
    src = next(s for s in doc["scenarios"] if s["name"] == scenario)
    ms = sorted(src["messages"], key=lambda m: m["start_ns"])
    t0 = min([m["start_ns"] for m in ms] + [f["start_ns"] for f in src["faults"]])
    span = max((m["end_ns"] or m["start_ns"]) for m in ms) - t0
    length = int(span * stretch)
    rng = random.Random(seed)
    out = []
    for k in range(n):
        m = dict(ms[k % len(ms)])
        took = None if m["end_ns"] is None else (m["end_ns"] - m["start_ns"])
        m["id"] = f"{m['kind'].split(':')[0]}-{k:06d}"
        m["start_ns"] = t0 + length * k // n
        m["end_ns"] = None if took is None else \
            m["start_ns"] + int(took * (0.9 + 0.2 * rng.random()))
        out.append(m)
    sc = copy.deepcopy(src)
    sc["name"] = f"{scenario}-x{n}"
    sc["messages"] = out
    for f in sc["faults"]:
        f["start_ns"] = t0 + int((f["start_ns"] - t0) * stretch)
        if f["end_ns"] is not None:
            f["end_ns"] = t0 + int((f["end_ns"] - t0) * stretch)
    by_outcome: dict[str, list[str]] = {}
    for m in out:
        by_outcome.setdefault(m["outcome"], []).append(m["id"])
    old = {m["id"]: m["outcome"] for m in ms}
    for c in sc["checks"]:
        outcomes = {old.get(i) for i in c["offenders"]}
        c["offenders"] = [i for o in outcomes if o for i in by_outcome.get(o, [])][:50]
    big = {k: v for k, v in doc.items() if k != "scenarios"}
    big["scenarios"] = [sc]
    return big
