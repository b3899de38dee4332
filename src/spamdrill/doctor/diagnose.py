"""What went wrong and why, sans-IO: the logs' diagnosis (``spamdrill logs``' document)
joined to the budget's chain for the same mode on this configuration (``spamdrill
budget``'s document).

The logs say what happened (a delivery's fate, pipe(8)'s run time, the chain of modes,
outermost first); the budget says what this configuration does in each mode (the worst
case, the limit that fires first, the outcome). A log's cause is joined to the budget's
modes that can show as it (a spamd that logs nothing may be silent or have a full accept
queue: the log cannot tell them apart, the budget's numbers can), and the one whose
prediction matches what fired is taken. The prediction agrees when the limit the logs saw
fire is the one the budget says fires first; both numbers are kept either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spamdrill.vocab import MODE_INFO, Finding, Mode

# a log's cause -> the budget's modes that can show as it (empty: the budget has no model)
BUDGET_MODES: dict[str, tuple[str, ...]] = {
    "spamd-silent": ("spamd-accept-queue-full", "spamd-silent"),
    "spamd-accept-queue-full": ("spamd-accept-queue-full", "spamd-silent"),
    "spamd-refused": ("spamd-refused",),
    "spamd-rejected": ("spamd-rejected",),
    "spamd-slow-drip": ("spamd-slow-drip",),
    "spamd-overloaded": ("spamd-overloaded",),
    "spamd-slow-scan": ("spamd-overloaded",),
    "spamd-child-timeout": ("spamd-overloaded",),
    "db-unreachable": ("db-unreachable",),
    "db-locked": ("db-locked",),
    "dns-dead": ("dns-dead",),
    "dns-db-servfail": ("dns-db-servfail",),
    "net-slow": ("net-slow",),
}

# the outer modes of a log's chain: the limit that fired, as the budget names it
FIRED = {
    "postfix-time-limit": "Postfix time limit",
    "maildrop-timeout": "maildrop global timeout",
}
WRAPPER_MODES = ("wrapper-bounced-transient", "wrapper-lost")
PERMANENT = tuple(m.value for m in Mode if m.permanent)
FATE_ORDER = ("lost", "bounced", "deferred", "delivered unscanned", "delivered")


@dataclass
class Observed:
    """One chain of modes as the logs show it, over every delivery that had it."""

    chain: tuple[str, ...]
    relay: str = ""  # the transport (master.cf's service) that delivered
    deliveries: int = 0
    fates: dict[str, int] = field(default_factory=dict)
    pipe_s: float = 0.0  # the longest pipe(8) run time (delays=a/b/c/d's d)
    example: dict[str, Any] = field(default_factory=dict)  # the delivery that shows it

    @property
    def cause(self) -> str:
        return self.chain[-1]

    @property
    def fired(self) -> str | None:
        """The limit the logs saw fire first (the outermost timer in the chain)."""
        for m in self.chain:
            if m in FIRED:
                return FIRED[m]
        return None

    @property
    def worst_fate(self) -> str:
        return min(self.fates, key=lambda f: FATE_ORDER.index(f) if f in FATE_ORDER
                   else len(FATE_ORDER))


@dataclass
class Why:
    """A chain the logs show, joined to the budget's prediction for it."""

    observed: Observed
    mode: str | None  # the budget's mode (None: the budget has no model of this cause)
    prediction: dict[str, Any] | None  # the budget's row for ``mode``
    agree: bool | None  # None: nothing to compare (no model, or nothing fired)
    said: str  # one line: the limit that fired first, and both numbers
    limit_source: str  # file:line of the limit that fired first
    wrapper: str = ""  # what the wrapper did, from the logs and from its measured table


@dataclass
class Diagnosis:
    happened: dict[str, Any]  # totals, episodes, the worst deliveries
    whys: list[Why]
    wrapper_problems: list[str]
    risks: list[str]

    @property
    def problem(self) -> bool:
        return bool(self.whys or self.wrapper_problems or self.risks)


def observed(logs: dict[str, Any]) -> list[Observed]:
    """Each chain of modes per transport among the deliveries in trouble, worst first."""
    by_chain: dict[tuple[tuple[str, ...], str], Observed] = {}
    for d in logs.get("deliveries", []):
        chain = tuple(d.get("modes") or ())
        if not chain or all(m in PERMANENT for m in chain):
            continue  # none, or a permanent failure bounced saying why: as it should
        relay = str(d.get("relay") or "")
        o = by_chain.setdefault((chain, relay), Observed(chain, relay))
        o.deliveries += 1
        o.fates[d["fate"]] = o.fates.get(d["fate"], 0) + 1
        pipe = float((d.get("delays") or {}).get("transmission") or 0.0)
        if not o.example or pipe > o.pipe_s or _worse(d["fate"], o.example["fate"]):
            o.example = d
        o.pipe_s = max(o.pipe_s, pipe)
    return sorted(by_chain.values(), key=lambda o: (
        FATE_ORDER.index(o.worst_fate) if o.worst_fate in FATE_ORDER else 9,
        -o.deliveries))


def _worse(a: str, b: str) -> bool:
    order = {f: i for i, f in enumerate(FATE_ORDER)}
    return order.get(a, 9) < order.get(b, 9)


def limit_source(budget: dict[str, Any], fired: str) -> str:
    """The file:line (or default) of the limit the budget names as firing first."""
    for row in budget.get("limits", []):
        if fired and (row["layer"].startswith(fired.split(",")[0].strip())
                      or fired.startswith(row["layer"].split(" (")[0])):
            return str(row["source"])
    for row in budget.get("limits", []):
        if fired and fired.split(" ")[0] in row["layer"]:
            return str(row["source"])
    return "-"


def join(o: Observed, budget: dict[str, Any], service: str | None = None) -> Why:
    """The budget's row for the chain's cause, the one matching what fired if several can
    show as it; agreement and both numbers. A delivery by another transport than the
    maildrop ``service`` the budget models is not joined."""
    if service is not None and o.relay and o.relay != service:
        return Why(o, None, None, None, f"delivered by transport {o.relay}, not by the "
                   f"maildrop service ({service}) the budget models", "-")
    rows = {r["mode"]: r for r in budget.get("modes", []) if r.get("outcome") != "n/a"}
    names = [m for m in BUDGET_MODES.get(o.cause, ()) if m in rows]
    if not names and o.fired:  # a timer fired and the cause is unmodelled: what reaches it
        names = [m for m, r in rows.items() if o.fired in r["fires_first"]]
    if not names:
        return Why(o, None, None, None, f"the budget has no model of {o.cause} "
                   f"({_means(o.cause)})", "-")
    fired = o.fired

    def score(m: str) -> tuple[int, float]:
        r = rows[m]
        hits = fired is not None and fired in r["fires_first"]
        worst = r["worst_s"] if r["worst_s"] is not None else 1e9
        return (0 if hits else 1, abs(worst - o.pipe_s))

    mode = min(names, key=score)
    r = rows[mode]
    worst = "unbounded" if r["worst_s"] is None else f"{_s(r['worst_s'])} s"
    if fired is None:
        agree = not any(f in r["fires_first"] for f in FIRED.values())
        seen = "no timer fired in the logs"
    else:
        agree = fired in r["fires_first"]
        seen = f"the logs show {fired} fired"
    said = (f"predicted: {r['fires_first']} fires first at {worst} ({r['why']}); "
            f"{seen}, pipe(8) ran {_s(o.pipe_s)} s: {'agrees' if agree else 'disagrees'}")
    source = limit_source(budget, r["fires_first"])
    spamc = _spamc_limits(budget)
    if spamc and spamc.endswith(source):
        source = spamc  # the limit that fired is spamc's own
    elif spamc:
        source = f"{source}; {spamc}"
    why = Why(o, mode, r, agree, said, source)
    why.wrapper = _wrapper_said(o, r, budget)
    return why


def _spamc_limits(budget: dict[str, Any]) -> str:
    """spamc's -t and connect limits with where they are set: the numbers every spamd
    mode's worst case is made of."""
    rows = {r["layer"]: r for r in budget.get("limits", [])}
    t = rows.get("spamc -t (per read)")
    n = rows.get("spamc connect (per address and try)")
    if t is None or n is None:
        return ""
    said = f"spamc -t {_s(t['seconds'] or 0)} s, connect {_s(n['seconds'] or 0)} s"
    where = dict.fromkeys([str(t["source"]), str(n["source"])])
    return f"{said}: {', '.join(where)}"


def _wrapper_said(o: Observed, r: dict[str, Any], budget: dict[str, Any]) -> str:
    """What the wrapper did in the logs beside what its measured table says it does."""
    if not any(m in WRAPPER_MODES for m in o.chain) and r["outcome"] not in ("lost",):
        return ""
    text = str(o.example.get("text") or "")
    logged = f"the logs: {o.worst_fate} ({text[:90].strip()})"
    w = budget.get("wrapper") or {}
    measured = f"measured here ({w.get('how', 'not measured')}): {r['outcome']}"
    same = "agree" if r["outcome"] == o.worst_fate else "differ (the host's shell or " \
        "wrapper is not the one measured here); both cross the budget" \
        if r["outcome"] in ("bounced", "lost") else "differ"
    return f"wrapper: {logged}; {measured}: {same}"


def _means(mode: str) -> str:
    try:
        return MODE_INFO[Mode(mode)].means
    except ValueError:
        return mode


def _s(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def diagnose(logs: dict[str, Any], budget: dict[str, Any],
             service: str | None = None) -> Diagnosis:
    """Both documents in, one diagnosis out: what happened, and each chain's why."""
    t = logs.get("totals", {})
    happened = {
        "deliveries": t.get("deliveries", 0), "fates": t.get("fates", {}),
        "unexplained": t.get("unexplained", 0),
        "episodes": logs.get("episodes", [])[:5], "episodes_total":
            logs.get("episodes_total", 0),
        "still_queued": len(logs.get("still_queued", [])),
        "wrapper_bounced": logs.get("wrapper_bounced_total", 0),
    }
    whys = [join(o, budget, service) for o in observed(logs)]
    w = budget.get("wrapper") or {}
    problems = []
    rows = sorted(w.get("rows", []), key=lambda r: r.get("mda_status") != 75)
    for row in rows:  # maildrop's timeout (75) first: the field report's case
        if row["fate"] in ("lost", "duplicated") or (
                row.get("mda_status") == 75 and row["fate"] == "bounced"):
            problems.append(f"maildrop {row['mda']} -> wrapper {row['wrapper']} -> "
                            f"Postfix {row['postfix']}: {row['fate'].upper()}")
    return Diagnosis(happened, whys, problems, list(budget.get("risks", [])))


def finding(d: Diagnosis) -> Finding:
    """The worst thing the logs show (the measured wrapper's loss counts)."""
    fates = {f for f, n in d.happened["fates"].items() if n}
    found = [Finding.BOUNCES if "bounced" in fates else Finding.WITHIN]
    if d.wrapper_problems:
        found.append(Finding.LOSES_MAIL)
    if "deferred" in fates:
        found.append(Finding.DEFERS)
    if "delivered unscanned" in fates:
        found.append(Finding.DELIVERS_UNSCANNED)
    return Finding.worst(found)
