"""The doctor's document on one screen, worst first (rich), and as one offline page
(the Jinja2 templates with their CSP). Every string from outside (log lines, file
texts, diffs) goes through ``term.safe`` for the terminal and autoescape for HTML."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from spamdrill.render import page, term


def happened(doc: dict[str, Any]) -> list[str]:
    h = doc["happened"]
    fates = ", ".join(f"{n} {f}" for f, n in sorted(h["fates"].items(),
                                                    key=lambda kv: -kv[1]) if n)
    out = [f"{h['deliveries']} deliveries: {fates or 'none'}; "
           f"{h['deliveries_in_trouble']} in trouble"]
    if h["wrapper_bounced"]:
        out.append(f"{h['wrapper_bounced']} bounced by the wrapper where Postfix would "
                   "have retried")
    for x in h["worst"][:3]:
        out.append(f"{x['fate']}: {x['queue_id']} to {x['to']} after {x['pipe_s']} s: "
                   f"{x['text']}")
    for e in h["episodes"][:2]:
        origin = e["started_by"][0] if e["started_by"] else None
        line = (f"episode {e['start']} .. {e['end']}: {e['deliveries']} deliveries "
                f"({', '.join(f'{n} {f}' for f, n in e['fates'].items())})")
        if origin:
            line += (f"; started by {origin['message_id']} (queue id {origin['queue_id']},"
                     f" scan {origin['scan_s']} s, {origin['followed']} failed after it)")
        out.append(line)
    return out


def why_head(w: dict[str, Any]) -> str:
    fates = ", ".join(f"{n} {f}" for f, n in w["fates"].items())
    return f"{' -> '.join(w['chain'])} ({fates})"


def after_line(c: dict[str, Any]) -> str:
    parts = []
    for a in c["after"]:
        if "wrapper" in a:
            parts.append(f"the wrapper measured ({a['rows']} ways maildrop ends): "
                         f"{a['losing_rows']} lose mail or bounce a temporary failure")
            continue
        worst = "unbounded" if a["worst_s"] is None else f"{a['worst_s']:g} s"
        margin = f", {a['margin_s']:g} s below maildrop's timeout" \
            if a["margin_s"] is not None else ""
        parts.append(f"{a['mode']}: {worst}, {a['fires_first']} fires first -> "
                     f"{a['outcome']}{margin}")
    return "after it: " + ("; ".join(parts) if parts else
                           "the budget's numbers do not move (the change above needs it)")


def terminal(out: Console, doc: dict[str, Any], full: bool = False) -> None:
    s = term.safe
    colour = "red" if doc["finding"] in ("bounces", "loses mail", "duplicates mail") \
        else "yellow" if doc["finding"] != "within" else "green"
    out.print(f"[bold {colour}]{s(doc['finding'])}[/] (logs: {s(', '.join(doc['logs']))};"
              f" configs under {s(doc['root'])})", highlight=False)
    out.print("[bold]What happened[/bold]")
    for line in happened(doc):
        out.print(f"  {s(line)}", highlight=False)
    out.print("[bold]Why[/bold]")
    whys = doc["why"] if full else doc["why"][:6]
    for w in whys:
        mark = {True: "[green]agrees[/]", False: "[red]disagrees[/]",
                None: "[dim]no model[/]"}[w["agree"]]
        out.print(f"  {s(why_head(w))} {mark}", highlight=False)
        out.print(f"    {s(w['said'])}", highlight=False)
        out.print(f"    limit: {s(w['limit_source'])}", highlight=False)
        if w["wrapper"]:
            out.print(f"    {s(w['wrapper'])}", highlight=False)
    if len(doc["why"]) > len(whys):
        out.print(f"  ... {len(doc['why']) - len(whys)} more chains (--json)")
    _wrapper_and_risks(out, doc, full)
    _changes(out, doc)
    out.print("[bold]How sure[/bold]")
    out.print(f"  {s(doc['sure']['said'])}", highlight=False)
    if doc.get("verify"):
        _verified(out, doc["verify"])


MARK_STYLE = {"verified": "green", "not verified": "red", "not drillable": "yellow"}


def _verified(out: Console, v: dict[str, Any]) -> None:
    """--verify: each change's mark, then before and after side by side (the compare
    view, rebuilt from the document)."""
    s = term.safe
    runs = v["runs"]
    if runs["before"]:
        out.print(f"  drilled: before {s(runs['before'])}, after {s(runs['after'])} "
                  f"(in {s(runs['results_dir'])}; spamdrill compare shows them again), "
                  f"{v['wall_s']:g} s", highlight=False)
    for p in v["plans"]:
        if p["scenario"] is None:
            out.print(f"  [yellow]not drillable[/] {s(p['mode'])}: {s(p['why'])}",
                      highlight=False)
    for m in v["marks"]:
        style = MARK_STYLE.get(m["mark"], "red")
        out.print(f"  [{style}]{s(m['mark'])}[/]: {s(m['path'])}: {s(m['said'])}",
                  highlight=False)
    for r in v["regressions"]:
        out.print(f"  [red]worse after:[/] {s(r)}", highlight=False)
    for e in v["errors"]:
        out.print(f"  [red]drill failed:[/] {s(e)}", highlight=False)
    if v.get("origin"):
        o = v["origin"]
        out.print(f"  origin message {s(o['message_id'] or o['file'])} ({o['size']} B) "
                  "sent first through each lab's Postfix"
                  + (" (the message that started an episode in the logs)"
                     if o["started_an_episode"] else ""), highlight=False)
    if v.get("compare"):
        from spamdrill.render import compare

        compare.print_compare(out, diff_of(v["compare"]))


def diff_of(d: dict[str, Any]) -> Any:
    """``compare.RunDiff`` again from its public form (the document keeps that)."""
    from spamdrill.render import compare

    return compare.RunDiff(d["a"], d["b"], [
        compare.ScenarioDiff(x["name"], x["in_a"], x["in_b"], [
            compare.Change(c["what"], c["a"], c["b"], c["direction"])
            for c in x["changes"]]) for x in d["scenarios"]])


def verified_html(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """The page's --verify section: marks, and the compare view's rows per drill."""
    if not v:
        return None
    from spamdrill.render.page import change

    rows = []
    for x in (v.get("compare") or {}).get("scenarios", []):
        rows.append({"name": x["name"], "rows": [
            [c["what"], c["a"], c["b"], change(c["direction"], c["direction"] or "changed")
             if c["direction"] != "same" else ""]
            for c in x["changes"]
            if c["direction"] != "same" or not c["what"].startswith("finding of case")]})
    return {"runs": v["runs"], "marks": v["marks"], "regressions": v["regressions"],
            "errors": v["errors"], "origin": v.get("origin"),
            "not_drillable": [p for p in v["plans"] if p["scenario"] is None],
            "scenarios": rows, "wall_s": v["wall_s"]}


def _wrapper_and_risks(out: Console, doc: dict[str, Any], full: bool) -> None:
    s = term.safe
    problems = doc["wrapper"]["problems"]
    if problems:
        out.print(f"  wrapper, measured ({s(doc['wrapper']['how'])}):", highlight=False)
        for p in problems[: None if full else 3]:
            out.print(f"    {s(p)}", highlight=False)
        if len(problems) > 3 and not full:
            out.print(f"    ... {len(problems) - 3} more ways it loses mail")
    for r in doc["risks"]:
        out.print(f"  [red]risk:[/] {s(r)}", highlight=False)


def _changes(out: Console, doc: dict[str, Any]) -> None:
    s = term.safe
    out.print("[bold]What to change[/bold] (never applied by spamdrill; review, then "
              "apply with patch -p1 -d /)")
    for c in doc["changes"]:
        out.print(f"  # {s(c['why'])}", highlight=False)
        for line in c["diff"].splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") \
                else ""
            out.print(f"  [{style}]{s(line)}[/]" if style else f"  {s(line)}",
                      highlight=False)
        out.print(f"  # {s(after_line(c))}", highlight=False)
        if c.get("verified"):
            m = c["verified"]
            out.print(f"  # [{MARK_STYLE.get(m['mark'], 'red')}]{s(m['mark'])}[/] in a "
                      "lab (How sure, below)", highlight=False)
    if not doc["changes"]:
        out.print("  nothing")


def html(doc: dict[str, Any]) -> str:
    return page.render(
        "doctor.html", "spamdrill doctor", {}, finding=page.badge(doc["finding"]),
        summary=f"configs under {doc['root']}; logs: {', '.join(doc['logs'])}",
        happened=happened(doc),
        why=[{"head": why_head(w), "said": w["said"], "source": w["limit_source"],
              "wrapper": w["wrapper"]} for w in doc["why"]],
        wrapper=doc["wrapper"]["problems"], risks=doc["risks"],
        changes=[{"path": c["path"], "why": c["why"], "diff": c["diff"],
                  "after": after_line(c) + (f"; drilled: {c['verified']['mark']}"
                                            if c.get("verified") else "")}
                 for c in doc["changes"]],
        sure=doc["sure"]["said"], verify=verified_html(doc.get("verify")))
