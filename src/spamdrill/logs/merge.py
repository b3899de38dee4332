"""Per-host documents into one view of a cluster, sans-IO.

Queue ids are per host, and each host's spamd scans its own mail: a site's hosts are
joined apart (one reader per host, ``--jobs`` of them at once, or one ``spamdrill logs``
per host) and their documents combined here. The merge is what one run over every
host's files gives (``cluster.analyze`` does exactly this: documents folded in one at a
time, in order, by ``Merger``), so merging is the only definition of the cluster's view:

- counts, fates, modes, hours and buckets add up; the lists of deliveries interleave by
  time (each document's own order kept), then ``limit`` of them, as one join keeps them;
- episodes of different hosts that overlap or lie within ``episode_gap_s`` of each other
  become one episode of the cluster (its counts summed, its suspects each host's, ranked
  together: ``running_at_first_failure_s`` is at its own host's first failure);
- inputs are numbered on: the second document's first input follows the first's last
  (``places`` says otherwise: ``--jobs`` keeps the command line's order), and every
  evidence line and example points at its input's new number.

Two figures are not exact sums of what the documents hold: a stage-delay bucket that
several hosts fill has its means weighted by each host's deliveries (to the millisecond;
the scan mean too, whose count of scans the document does not carry), and
``episodes_total`` counts one episode less per pair it joined among the listed ones.

A document that is not one of these (not JSON, another kind, another version, read with
other settings) is refused with one line, never merged into a "nothing found".
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from spamdrill.errors import SpamdrillError
from spamdrill.logs.summary import LISTS, SCHEMA, mode_rows, silence
from spamdrill.vocab import Fate, Mode

TOP = 5  # suspects named per episode (summary.Options.top)
EXAMPLES = 20  # skipped lines shown


def check(doc: Any, name: str) -> dict[str, Any]:
    """``doc`` if it is a logs document this version can merge; else one line saying what
    it is instead."""
    hint = "give documents written by spamdrill logs --json"
    if not isinstance(doc, dict):
        raise SpamdrillError(f"{name} is not a spamdrill logs document (a JSON "
                             f"{type(doc).__name__})", hint)
    schema = doc.get("schema")
    if schema is None:
        what = ("a spamdrill run document" if "version" in doc and "run" in doc
                else "not a spamdrill logs document (no schema)")
        raise SpamdrillError(f"{name} is {what}", hint)
    if not isinstance(schema, str) or not schema.startswith("spamdrill.logs/"):
        raise SpamdrillError(f"{name} is a {str(schema)[:60]!r} document, not a logs "
                             "document", hint)
    if schema != SCHEMA:
        raise SpamdrillError(f"{name} is {schema[:60]!r}; this spamdrill merges {SCHEMA}",
                             "read the logs again with this version")
    try:
        merge([doc])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise SpamdrillError(f"{name}: a damaged {SCHEMA} document ({type(exc).__name__}: "
                             f"{str(exc)[:80]})", hint) from None
    return doc


def _instant(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


Place = list[int] | dict[int, int]  # a document's input number -> the merged one


class Merger:
    """Documents folded in one at a time: memory holds the merge so far (bounded by
    ``limit``), not every document. ``merge`` is this fold, so a merge of many documents
    and one of them in the same order give the same document."""

    def __init__(self, fmt: str | None = None) -> None:
        self.fmt = fmt
        self.doc: dict[str, Any] | None = None
        self.first = ""
        self.next = 0  # the next input's number, when a document's places are not given

    def add(self, doc: dict[str, Any], place: Place | None = None, name: str = "") -> None:
        if place is None:
            place = list(range(self.next, self.next + len(doc["inputs"])))
        self.next = max([self.next - 1, *(place.values() if isinstance(place, dict)
                                          else place)]) + 1
        if self.doc is None:
            self.first = name or "the first document"
            self.doc = _merged([doc], [place])
            return
        mine = self.doc
        if doc["settings"] != mine["settings"]:
            diff = sorted(k for k in mine["settings"]
                          if doc["settings"].get(k) != mine["settings"][k])
            raise SpamdrillError(f"{name} was read with other settings than {self.first} "
                                 f"({', '.join(diff)})", "read them with the same options")
        if doc["anonymized"] != mine["anonymized"]:
            raise SpamdrillError(f"{name} and {self.first}: one is anonymized, the other not",
                                 "merge them as read, then --anonymize the merge")
        same = {i["input"]: i["input"] for i in mine["inputs"]}
        self.doc = _merged([mine, doc], [same, place])

    def result(self) -> dict[str, Any]:
        if self.doc is None:
            raise ValueError("no document to merge")
        self.doc["empty"] = silence(self.doc, self.fmt)
        return self.doc


def merge(docs: list[dict[str, Any]], places: list[list[int]] | None = None,
          fmt: str | None = None, names: list[str] | None = None) -> dict[str, Any]:
    """One document from several, folded in order (``places[k][i]``: the merged number of
    document k's input i; ``names``: the documents' names, for errors)."""
    merger = Merger(fmt)
    for k, doc in enumerate(docs):
        merger.add(doc, places[k] if places is not None else None,
                   names[k] if names is not None else f"document {k + 1}")
    return merger.result()


def _merged(docs: list[dict[str, Any]], places: list[Place]) -> dict[str, Any]:
    """One or two documents as one (the checks are ``Merger.add``'s)."""
    settings, anonymized = docs[0]["settings"], docs[0]["anonymized"]
    limit = settings["limit"]
    out: dict[str, Any] = {"schema": SCHEMA, "settings": settings,
                           "inputs": _inputs(docs, places)}
    out["totals"] = _totals(d["totals"] for d in docs)
    modes, causes = Counter[str](), Counter[str]()
    for doc in docs:
        for row in doc["modes"]:
            Mode(row["mode"])  # a mode this version knows (ValueError: another version)
            modes[row["mode"]] += row["deliveries"]
            causes[row["mode"]] += row["root_cause"]
    out["modes"] = mode_rows(modes, causes)
    out["per_hour"] = _hours(d["per_hour"] for d in docs)
    episodes, joined = _episodes(docs, settings["episode_gap_s"])
    out["episodes"] = episodes[-limit:]
    out["episodes_total"] = sum(d["episodes_total"] for d in docs) - joined
    for name in LISTS:
        out[name] = list(_by_time(
            [[_moved(r, place) for r in d[name]] for d, place in zip(docs, places,
                                                                     strict=True)],
            "time", limit))
        out[f"{name}_total"] = sum(d[f"{name}_total"] for d in docs)
    out["still_queued"] = list(_by_time([d["still_queued"] for d in docs], "last", limit))
    examples = [{**e, "input": place[e["input"]]}
                for d, place in zip(docs, places, strict=True)
                for e in d["skipped"]["examples"]]
    examples.sort(key=lambda e: (e["input"], e["line"]))
    out["skipped"] = {"total": sum(d["skipped"]["total"] for d in docs),
                      "examples": examples[:EXAMPLES]}
    out["plot"] = {"stage_delays": _stages(d["plot"]["stage_delays"] for d in docs),
                   "outcomes_per_hour": _hours(d["per_hour"] for d in docs)}
    out["anonymized"] = anonymized
    out["empty"] = None  # Merger.result says
    return out


def _inputs(docs: list[dict[str, Any]], places: list[Place]) -> list[dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for doc, place in zip(docs, places, strict=True):
        for inp in doc["inputs"]:
            at = place[inp["input"]]
            if at in found:
                raise ValueError(f"two inputs numbered {at}")
            found[at] = {**inp, "input": at}
    return [found[at] for at in sorted(found)]


def _moved(record: dict[str, Any], place: Place) -> dict[str, Any]:
    """A delivery's record with its evidence pointing at the merged inputs."""
    return {**record, "evidence": [{**e, "input": place[e["input"]]}
                                   for e in record["evidence"]]}


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _totals(all_totals: Iterable[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"deliveries": 0, "fates": {}, "scanned": {}, "slow": 0,
                           "scans": 0, "slow_scans": 0, "unexplained": 0,
                           "messages_closed_early": 0}
    for t in all_totals:
        for k in ("deliveries", "slow", "scans", "slow_scans", "unexplained",
                  "messages_closed_early"):
            out[k] += t[k]
        _add(out["fates"], t["fates"])
        _add(out["scanned"], t["scanned"])
    return out


def _hours(lists: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    hours: dict[float, tuple[str, Counter[str], dict[str, int]]] = {}
    for points in lists:
        for p in points:
            at = _instant(p["hour"])
            if at not in hours:
                hours[at] = (p["hour"], Counter(), {})
            _, counts, modes = hours[at]
            for f in Fate:
                counts[f.value] += p.get(f.value, 0)
            counts["slow"] += p["slow"]
            _add(modes, p["modes"])
    out = []
    for at in sorted(hours):
        hour, c, modes = hours[at]
        out.append({"hour": hour, **{f.value: c[f.value] for f in Fate if c[f.value]},
                    "slow": c["slow"], "modes": modes})
    return out


STAGES = ("before_queue_manager", "in_queue_manager", "connection", "transmission")


def _stages(lists: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    points: dict[float, list[dict[str, Any]]] = {}
    for series in lists:
        for p in series:
            points.setdefault(_instant(p["t"]), []).append(p)
    out = []
    for at in sorted(points):
        same = points[at]
        if len(same) == 1:
            out.append(same[0])
            continue
        n = sum(p["deliveries"] for p in same)
        point: dict[str, Any] = {"t": same[0]["t"], "deliveries": n}
        for stage in STAGES:
            point[stage] = {
                "mean": round(sum(p[stage]["mean"] * p["deliveries"] for p in same) / n, 3),
                "max": max(p[stage]["max"] for p in same)}
        scans = [p for p in same if p["scan"] is not None]
        weight = sum(p["deliveries"] for p in scans)
        point["scan"] = {
            "mean": round(sum(p["scan"]["mean"] * p["deliveries"] for p in scans) / weight,
                          3),
            "max": max(p["scan"]["max"] for p in scans)} if scans and weight else None
        out.append(point)
    return out


def _by_time(lists: list[list[dict[str, Any]]], key: str,
             limit: int) -> Iterator[dict[str, Any]]:
    """Records of several documents interleaved by their time, each document's own order
    kept (a log may step back: its order is the join's), the first ``limit``."""
    merged = heapq.merge(*([(_instant(r[key]), k, r) for r in rs]
                           for k, rs in enumerate(lists)),
                         key=lambda item: (item[0], item[1]))
    for n, (_, _, record) in enumerate(merged):
        if n >= limit:
            return
        yield record


def _episodes(docs: list[dict[str, Any]], gap: float) -> tuple[list[dict[str, Any]], int]:
    """Episodes of every host, those within ``gap`` of each other joined; and how many
    joins that took."""
    eps = sorted(((_instant(e["start"]), k, e) for k, d in enumerate(docs)
                  for e in d["episodes"]), key=lambda item: (item[0], item[1]))
    out: list[dict[str, Any]] = []
    end = float("-inf")
    joined = 0
    for start, _, ep in eps:
        if out and start - end <= gap:
            out[-1] = _join(out[-1], ep)
            joined += 1
        else:
            out.append(ep)
        end = _instant(out[-1]["end"])
    return out, joined


def _join(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    def first(key: str) -> str:
        found: str = min(a[key], b[key], key=_instant)
        return found

    fates, modes = dict(a["fates"]), Counter(a["modes"])
    _add(fates, b["fates"])
    modes.update(b["modes"])
    suspects = sorted([*a["started_by"], *b["started_by"]],
                      key=lambda s: (-s["running_at_first_failure_s"], -s["scan_s"],
                                     _instant(s["scan_started"])))
    return {"start": first("start"), "end": max(a["end"], b["end"], key=_instant),
            "first_failure": first("first_failure"),
            "deliveries": a["deliveries"] + b["deliveries"],
            "slow_scans": a["slow_scans"] + b["slow_scans"], "fates": fates,
            "modes": dict(modes.most_common()),
            "queue_ids": [*a["queue_ids"], *b["queue_ids"]][:10],
            "started_by": suspects[:TOP]}
