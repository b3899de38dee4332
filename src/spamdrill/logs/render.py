"""The terminal summary of a ``spamdrill logs`` document (rich), read only from the
document, so what the terminal shows is what ``--json`` holds. Every value from the
document is log text (an address, a Message-ID, a line) and goes through ``term.safe``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from spamdrill.render.term import safe as s_

FATE_COLOURS = {"bounced": "red", "deferred": "yellow", "delivered unscanned": "magenta"}


def _hhmmss(iso: str | None) -> str:
    return s_(iso[11:19]) if iso else "-"


def _qid_of(doc: dict[str, Any]) -> Callable[[dict[str, Any]], str]:
    """How a delivery is named: its queue id, with its host when the document holds several
    hosts' deliveries (a merge: queue ids are per host)."""
    hosts = {r["host"] for name in ("deliveries", "wrapper_bounced", "unscanned",
                                    "scanned_late", "unexplained") for r in doc[name]}
    if len(hosts) > 1:
        return lambda r: f"{s_(r['host'])}:{s_(r['queue_id'])}"
    return lambda r: s_(r["queue_id"])


def inputs(out: Console, doc: dict[str, Any]) -> None:
    table = Table(title="inputs")
    for col in ("#", "file", "format", "lines", "read", "skipped", "from", "to"):
        table.add_column(col)
    for i in doc["inputs"]:
        skipped = ", ".join(f"{s_(n)} {s_(why)}" for why, n in i["skipped"].items()) or "-"
        table.add_row(s_(i["input"]), s_(i["path"]), s_(i["format"]), s_(i["lines"]),
                      s_(i["entries"]), skipped, s_(i["first"] or "-"),
                      s_(i["last"] or "-"))
    out.print(table)
    skipped = doc["skipped"]
    if skipped["total"]:
        first = skipped["examples"][0] if skipped["examples"] else None
        where = (f" (first: input {s_(first['input'])} line {s_(first['line'])}, "
                 f"{s_(first['reason'])})") if first else ""
        out.print(f"[yellow]note:[/yellow] {s_(skipped['total'])} line(s) could not be read and "
                  f"were skipped{where}; see \"skipped\" in --json")


def totals(out: Console, doc: dict[str, Any]) -> None:
    t = doc["totals"]
    fates = ", ".join(f"{s_(n)} {s_(f)}" for f, n in sorted(t["fates"].items())) or "none"
    scanned = ", ".join(f"{s_(n)} {s_(s)}" for s, n in sorted(t["scanned"].items())) or "-"
    out.print(f"[bold]{s_(t['deliveries'])} delivery attempts[/bold]: {fates}; "
              f"{s_(t['slow'])} slow (>= {doc['settings']['slow_s']:g} s). Filter: "
              f"{scanned}. spamd scans: {s_(t['scans'])} ({s_(t['slow_scans'])} slow or "
              "failed).")


def empty(out: Console, doc: dict[str, Any]) -> bool:
    """The warning of a document with nothing to judge (``summary.silence``)."""
    said = doc.get("empty")
    if not said:
        return False
    out.print(f"[bold yellow]warning:[/bold yellow] nothing to diagnose ({said['cause']}): "
              f"{s_(said['why'])}. This is not a log without trouble.")
    return True


def modes(out: Console, doc: dict[str, Any]) -> None:
    if not doc["modes"]:
        if not doc.get("empty"):
            out.print("no failure mode found")
        return
    table = Table(title="failure modes (a delivery counts under each mode of its chain)")
    for col in ("mode", "layer", "deliveries", "root cause of", "means", "fix"):
        table.add_column(col)
    for m in doc["modes"]:
        table.add_row(s_(m["mode"]), s_(m["layer"]), s_(m["deliveries"]),
                      s_(m["root_cause"]), s_(m["means"]), s_(m.get("fix", "")))
    out.print(table)


def per_hour(out: Console, doc: dict[str, Any]) -> None:
    rows = doc["per_hour"]
    if len(rows) < 2:
        return
    table = Table(title="per hour")
    for col in ("hour", "delivered", "unscanned", "deferred", "bounced", "slow", "modes"):
        table.add_column(col)
    for r in rows:
        top = ", ".join(f"{s_(m)} {s_(n)}" for m, n in sorted(r["modes"].items(),
                                                              key=lambda kv: -kv[1])[:3])
        table.add_row(s_(r["hour"]), s_(r.get("delivered", 0)),
                      s_(r.get("delivered unscanned", 0)), s_(r.get("deferred", 0)),
                      s_(r.get("bounced", 0)), s_(r["slow"]), top)
    out.print(table)


def episodes(out: Console, doc: dict[str, Any], top: int = 10) -> None:
    eps = sorted(doc["episodes"], key=lambda e: -(e["deliveries"] + e["slow_scans"]))[:top]
    if not eps:
        return
    table = Table(title=f"episodes of filter trouble ({doc['episodes_total']}), and the "
                        "scans running when each began")
    for col in ("from", "to", "deliveries", "modes", "started by (ranked)"):
        table.add_column(col)
    for e in sorted(eps, key=lambda e: e["start"]):
        suspects = "\n".join(
            f"{i}. {s_(s['queue_id'] or '?')} {s_(s['message_id'] or '(no Message-ID)')} "
            f"{s_(s['size'] or '?')} B "
            f"{s_(s['sender'] or '?')} -> {s_(s['recipient'] or s['spamd_user'] or '?')}; "
            f"child {s_(s['spamd_child'])}, scan {s['scan_s']:g} s"
            f"{' (time limit)' if s['time_limit'] else ''}, running "
            f"{s['running_at_first_failure_s']:g} s at the first failure; "
            f"{s_(s['followed'])} deliveries followed"
            for i, s in enumerate(e["started_by"][:3], 1)) or "-"
        table.add_row(s_(e["start"]), _hhmmss(e["end"]), s_(e["deliveries"]),
                      ", ".join(s_(m) for m in list(e["modes"])[:4]), suspects)
    out.print(table)


def deliveries(out: Console, doc: dict[str, Any], top: int = 25) -> None:
    rows = doc["deliveries"][:top]
    if not rows:
        return
    table = Table(title=f"deliveries in trouble ({doc['deliveries_total']}; the first "
                        f"{len(rows)})")
    qid = _qid_of(doc)
    for col in ("time", "queue id", "to", "fate", "filter", "s", "modes", "why"):
        table.add_column(col)
    for r in rows:
        colour = FATE_COLOURS.get(r["fate"], "green")
        table.add_row(_hhmmss(r["time"]), qid(r), s_(r["to"]),
                      f"[{colour}]{s_(r['fate'])}[/{colour}]", s_(r["scanned"]),
                      f"{r['delays']['transmission']:g}",
                      "\n".join(s_(m) for m in r["modes"]) or "?",
                      s_(r["notes"][0] if r["notes"] else r["text"][:80]))
    out.print(table)
    if rows:
        r = rows[0]
        out.print("next, for " + qid(r) + ": "
                  + "; ".join(f"`{s_(c)}`" for c in r.get("next", [])), highlight=False)


def evidence(out: Console, doc: dict[str, Any]) -> None:
    """``--evidence``: the lines behind each diagnosis, under its delivery (every delivery
    in trouble the document keeps: ``--limit``)."""
    qid = _qid_of(doc)
    for r in doc["deliveries"]:
        out.print(f"[bold]{qid(r)}[/bold] {s_(r['fate'])}: "
                  f"{s_(', '.join(r['modes']) or 'unexplained')}", highlight=False)
        for note in r["notes"]:
            out.print(f"  {s_(note)}", highlight=False)
        for f in r.get("fixes", []):
            out.print(f"  fix ({s_(f['mode'])}): {s_(f['fix'])}", highlight=False)
        if r.get("next"):
            out.print("  next: " + "; ".join(s_(c) for c in r["next"]), highlight=False)
        for ev in r.get("evidence", []):
            out.print(f"    [dim]{s_(ev['input'])}:{s_(ev['line'])}[/dim] {s_(ev['text'])}",
                      highlight=False)


def lists(out: Console, doc: dict[str, Any]) -> None:
    bounced, qid = doc["wrapper_bounced"], _qid_of(doc)
    if bounced:
        out.print(f"[red]{s_(doc['wrapper_bounced_total'])} bounced by a wrapper that "
                  "Postfix would have retried:[/red] " + ", ".join(
                      f"{qid(r)} ({s_(r['to'])})" for r in bounced[:10]))
    for name, label in (("unscanned", "delivered unscanned"),
                        ("scanned_late", "scanned after delivery (spamc had given up)")):
        if doc[f"{name}_total"]:
            out.print(f"{s_(doc[f'{name}_total'])} {label}: " + ", ".join(
                qid(r) for r in doc[name][:10]))
    for r in doc["unexplained"][:5]:
        out.print(f"[yellow]unexplained:[/yellow] {qid(r)} {s_(r['to'])} "
                  f"{s_(r['fate'])} ({s_(r['text'][:80])})")
        for ev in r.get("evidence", [])[:6]:
            out.print(f"    [dim]{s_(ev['input'])}:{s_(ev['line'])}[/dim] {s_(ev['text'])}")


def render(out: Console, doc: dict[str, Any], show_evidence: bool = False) -> None:
    inputs(out, doc)
    empty(out, doc)
    totals(out, doc)
    modes(out, doc)
    per_hour(out, doc)
    episodes(out, doc)
    deliveries(out, doc)
    lists(out, doc)
    if show_evidence:
        evidence(out, doc)
