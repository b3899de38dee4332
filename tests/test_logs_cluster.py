"""Several hosts: each host's files joined apart (``logs/cluster.py``), per-host documents
merged (``logs/merge.py``). One run over every host's files, ``--jobs N`` of them at once,
and ``--merge`` of one document per host must say the same; a host and its copy must
count twice; a document that is not one to merge is one line and exit 2."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hostile import LINES, field_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spamdrill.errors import SpamdrillError
from spamdrill.logs import cluster, run
from spamdrill.logs.diagnose import Thresholds
from spamdrill.logs.formats import zone
from spamdrill.logs.join import Settings
from spamdrill.logs.merge import check, merge
from spamdrill.logs.reader import Filters
from spamdrill.logs.summary import LISTS, Options

DATA = Path(__file__).parent / "data" / "logs"
UTC = zone("UTC")
FILTERS = Filters(year=2026, tz=UTC)
# the fixtures' settings (test_logs.py): spamc -t 3, phases seconds apart
OPTIONS = Options(Thresholds(slow=5, slow_scan=4), Settings(late_window=60, horizon=600),
                  episode_gap=4, bucket=60, tz=UTC)
CLI_OPTIONS = ["--year", "2026", "--tz", "UTC", "--slow", "5", "--slow-scan", "4",
               "--late-window", "60", "--episode-gap", "4", "--bucket", "60"]
_STAMP = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d)", re.M)


def _as_host(text: str, n: int, shift: float = 0.0) -> str:
    """Another host's log: the fixture's hosts renamed (mx1 -> mxN, spamd1 -> spamdN),
    classic stamps moved by ``shift`` seconds."""
    text = text.replace(" mx1 ", f" mx{n} ").replace(" spamd1 ", f" spamd{n} ")
    if not shift:
        return text

    def moved(m: re.Match[str]) -> str:
        at = datetime.strptime(f"2026 {m[1]}", "%Y %b %d %H:%M:%S")
        return (at + timedelta(seconds=shift)).strftime("%b %d %H:%M:%S")

    return _STAMP.sub(moved, text)


def _cluster(tmp: Path) -> dict[str, list[Path]]:
    """Three hosts: mx1 (the fixture, rotated in two), mx2 (its copy 7 s later: the
    episodes overlap mx1's), mx3 (the RFC 5424 fixture)."""
    text = (DATA / "mail.log").read_text()
    lines = text.splitlines(keepends=True)
    hosts: dict[str, list[Path]] = {}
    for n, body in ((1, text), (2, _as_host(text, 2, 7.0))):
        half = len(lines) // 2
        older, newer = tmp / f"mx{n}.log.1", tmp / f"mx{n}.log"
        body_lines = body.splitlines(keepends=True)
        older.write_text("".join(body_lines[:half]))
        newer.write_text("".join(body_lines[half:]))
        hosts[f"mx{n}"] = [older, newer]
    third = tmp / "mx3.log.gz"
    third.write_bytes(gzip.compress(_as_host((DATA / "mail.rfc5424.log").read_text(),
                                             3).encode()))
    hosts["mx3"] = [third]
    return hosts


def _per_host(hosts: dict[str, list[Path]]) -> list[dict[str, Any]]:
    """One document per host, as ``spamdrill logs --json`` writes it and --merge reads it."""
    return [check(json.loads(json.dumps(run.analyze([str(p) for p in paths], FILTERS,
                                                    OPTIONS))), name)
            for name, paths in hosts.items()]


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1)


@pytest.mark.unit
def test_a_merge_of_per_host_documents_is_the_run_over_all_files(tmp_path: Path) -> None:
    hosts = _cluster(tmp_path)
    whole = cluster.analyze([str(p) for paths in hosts.values() for p in paths], FILTERS,
                            OPTIONS)
    per = _per_host(hosts)
    assert _text(merge(per)) == _text(whole)
    # and it is the cluster's view: every host's deliveries, overlapping episodes as one
    assert whole["totals"]["deliveries"] == sum(d["totals"]["deliveries"] for d in per)
    assert {r["host"] for r in whole["deliveries"]} >= {"mx1", "mx2", "mx3"}
    assert whole["episodes_total"] < sum(d["episodes_total"] for d in per)
    assert [i["path"] for i in whole["inputs"]] == [str(p) for ps in hosts.values()
                                                    for p in ps]


@pytest.mark.unit
@pytest.mark.parametrize("filters", [
    {"since": datetime(2026, 11, 29, 16, 10, 30).replace(tzinfo=UTC).timestamp()},
    {"until": datetime(2026, 11, 29, 16, 11).replace(tzinfo=UTC).timestamp()},
    {"hosts": frozenset({"mx1", "spamd1", "mx2"})},  # spamd2 left out: mx2 unscanned
], ids=["since", "until", "hosts"])
def test_filters_apply_to_every_host(tmp_path: Path, filters: dict[str, Any]) -> None:
    hosts = _cluster(tmp_path)
    chosen = Filters(year=2026, tz=UTC, **filters)
    whole = cluster.analyze([str(p) for ps in hosts.values() for p in ps], chosen, OPTIONS)
    per = [json.loads(json.dumps(run.analyze([str(p) for p in ps], chosen, OPTIONS)))
           for ps in hosts.values()]
    assert _text(merge(per, fmt=None)) == _text(whole)
    assert whole["totals"]["deliveries"] < _per_host(hosts)[0]["totals"]["deliveries"] * 3


@pytest.mark.unit
def test_files_in_any_order_keep_their_numbers(tmp_path: Path) -> None:
    """Files of hosts interleaved on the command line: each input keeps its place, and
    every evidence line points at its own file."""
    hosts = _cluster(tmp_path)
    order = [hosts["mx2"][0], hosts["mx1"][0], hosts["mx3"][0], hosts["mx2"][1],
             hosts["mx1"][1]]
    doc = cluster.analyze([str(p) for p in order], FILTERS, OPTIONS)
    assert [i["path"] for i in doc["inputs"]] == [str(p) for p in order]
    texts = {str(p): p.read_text() if p.suffix != ".gz" else gzip.decompress(
        p.read_bytes()).decode() for p in order}
    for rec in doc["deliveries"]:
        for ev in rec["evidence"]:
            path = doc["inputs"][ev["input"]]["path"]
            assert texts[path].splitlines()[ev["line"] - 1].startswith(ev["text"][:300])


@pytest.mark.unit
def test_a_host_and_its_copy_count_twice(tmp_path: Path) -> None:
    """The merge against what it must be, not against itself: a host beside its own copy
    (renamed, same times) doubles every count, lists every delivery twice, and makes each
    episode one of twice the deliveries."""
    one, two = tmp_path / "mx1.log", tmp_path / "mx2.log"
    one.write_text((DATA / "mail.log").read_text())
    two.write_text(_as_host(one.read_text(), 2))
    single = run.analyze([str(one)], FILTERS, OPTIONS)
    both = cluster.analyze([str(one), str(two)], FILTERS, OPTIONS)
    t1, t2 = single["totals"], both["totals"]
    for key in ("deliveries", "slow", "scans", "slow_scans", "unexplained"):
        assert t2[key] == 2 * t1[key], key
    assert t2["fates"] == {k: 2 * v for k, v in t1["fates"].items()}
    for name in LISTS:
        assert both[f"{name}_total"] == 2 * single[f"{name}_total"]
        # each host's records in its own order, the copy's as the original's (its host's
        # names and its input aside), interleaved by time
        assert [r for r in both[name] if r["host"] == "mx1"] == single[name]
        copy = [json.loads(json.dumps({**r, "evidence": [{**e, "input": 0} for e in
                                                          r["evidence"]]})
                           .replace("mx2", "mx1").replace("spamd2", "spamd1"))
                for r in both[name] if r["host"] == "mx2"]
        assert copy == single[name]
        times = [r["time"] for r in both[name]]
        assert times == sorted(times)
    assert len(both["episodes"]) == len(single["episodes"])
    assert both["episodes_total"] == single["episodes_total"]
    for e1, e2 in zip(single["episodes"], both["episodes"], strict=True):
        assert (e2["start"], e2["end"]) == (e1["start"], e1["end"])
        assert e2["deliveries"] == 2 * e1["deliveries"]
    for p1, p2 in zip(single["per_hour"], both["per_hour"], strict=True):
        assert p2["slow"] == 2 * p1["slow"]
        assert p2["modes"] == {k: 2 * v for k, v in p1["modes"].items()}
    for s1, s2 in zip(single["plot"]["stage_delays"], both["plot"]["stage_delays"],
                      strict=True):
        assert s2["deliveries"] == 2 * s1["deliveries"]
        assert s2["transmission"] == s1["transmission"] and s2["scan"] == s1["scan"]
    assert [m["deliveries"] for m in both["modes"]] == [2 * m["deliveries"]
                                                        for m in single["modes"]]


@pytest.mark.unit
def test_jobs_give_the_document_of_one_job(tmp_path: Path) -> None:
    paths = [str(p) for ps in _cluster(tmp_path).values() for p in ps]
    one = cluster.analyze(paths, FILTERS, OPTIONS, jobs=1)
    assert _text(cluster.analyze(paths, FILTERS, OPTIONS, jobs=3)) == _text(one)
    assert _text(cluster.analyze(paths, FILTERS, OPTIONS, jobs=2)) == _text(one)


@pytest.mark.unit
def test_one_host_reads_as_before(tmp_path: Path) -> None:
    """Files of one host (and files naming none: spamd's and maildrop's own) are one join,
    the document byte for byte what it always was."""
    raw = [str(DATA / "raw" / n) for n in ("postfix.log", "spamd.log", "maildrop.log")]
    assert cluster.groups(raw, FILTERS, {}) == ([[0, 1, 2]], "")
    assert _text(cluster.analyze(raw, FILTERS, OPTIONS, jobs=2)) == _text(
        run.analyze(raw, FILTERS, OPTIONS))


@pytest.mark.unit
def test_a_file_of_no_host_beside_several_joins_them_all_and_says_so(
        tmp_path: Path) -> None:
    hosts = _cluster(tmp_path)
    paths = [str(hosts["mx1"][1]), str(hosts["mx2"][1]), str(DATA / "raw" / "spamd.log")]
    notes: list[str] = []
    doc = cluster.analyze(paths, FILTERS, OPTIONS, jobs=2, note=notes.append)
    assert _text(doc) == _text(run.analyze(paths, FILTERS, OPTIONS))
    assert len(notes) == 1 and "spamd.log names no host" in notes[0]
    assert f"--group {paths[2]}=HOST" in notes[0]
    # said whose it is, it joins that host
    named = cluster.named_groups((f"{paths[2]}=mx2",), paths)
    assert cluster.groups(paths, FILTERS, named) == ([[0], [1, 2]], "")


@pytest.mark.unit
def test_a_host_past_the_first_lines_still_joins_its_files(tmp_path: Path) -> None:
    """mx1's file names spamd1 only past its first lines, and spamd1's own file is apart:
    grouped by their first lines they would be two joins; the joins met spamd1 both, so
    they are read again as one, and the note says why."""
    lines = (DATA / "mail.log").read_text().splitlines(keepends=True)
    spamd = [ln for ln in lines if " spamd1 " in ln]
    tail = spamd[-10:]
    postfix, spamd_own = tmp_path / "mx1.log", tmp_path / "spamd1.log"
    postfix.write_text("".join(ln for ln in lines if " spamd1 " not in ln or ln in tail))
    spamd_own.write_text("".join(ln for ln in spamd if ln not in tail))
    paths = [str(postfix), str(spamd_own)]
    assert cluster.groups(paths, FILTERS, {}) == ([[0], [1]], "")  # by the first lines
    notes: list[str] = []
    doc = cluster.analyze(paths, FILTERS, OPTIONS, jobs=2, note=notes.append)
    assert _text(doc) == _text(run.analyze(paths, FILTERS, OPTIONS))
    assert notes == ["spamd1 is in the lines of two groups of files: joined as one"]


@pytest.mark.unit
def test_group_names_only_files_read() -> None:
    with pytest.raises(SpamdrillError, match="not among the files"):
        cluster.named_groups(("other.log=mx1",), ["mail.log"])
    with pytest.raises(SpamdrillError, match="not FILE=HOST"):
        cluster.named_groups(("mail.log",), ["mail.log"])


# -- generated hosts ----------------------------------------------------------------------

_FIXTURE_LINES = (DATA / "mail.log").read_text().splitlines()[::5]


@st.composite
def _host_log(draw: st.DrawFn, n: int) -> bytes:
    """One host's lines: every line kind with hostile fields, fixture lines, shuffled,
    some cut short after their envelope or with a bad byte, CRLF or LF, maybe gzipped."""
    fields = {name: draw(field_text) for name in ("qid", "host", "ip", "mid", "sender",
                                                  "user", "to", "orig", "text")}
    fields["qid"] = draw(st.sampled_from(["0A1B2C3D4E", "ab", fields["qid"]]))
    lines = [ln.format(**fields) for ln in LINES]
    lines += draw(st.lists(st.sampled_from(_FIXTURE_LINES), max_size=30))
    lines = [_as_host(ln, n) for ln in draw(st.permutations(lines))]
    out = []
    for line in lines:
        how = draw(st.integers(0, 7))
        if how == 1:  # cut short, past its envelope
            body = line.find(": ", 16) + 2
            line = line[:draw(st.integers(body, len(line)))]
        data = line.encode("utf-8", "surrogatepass")
        if how == 2:
            data += draw(st.sampled_from([b"\xff", b"\xc3", b"\x00"]))
        out.append(data)
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = end.join(out) + end
    return gzip.compress(data) if draw(st.booleans()) else data


@st.composite
def _hosts(draw: st.DrawFn) -> list[bytes]:
    count = draw(st.integers(2, 3))
    return [draw(_host_log(n)) for n in range(1, count + 1)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs=_hosts(), jobs=st.sampled_from([1, 2]))
@pytest.mark.unit
def test_generated_hosts_merge_as_they_read(tmp_path_factory: pytest.TempPathFactory,
                                            logs: list[bytes], jobs: int) -> None:
    tmp = tmp_path_factory.mktemp("hosts")
    hosts: dict[str, list[Path]] = {}
    for n, data in enumerate(logs, 1):
        path = tmp / f"mx{n}.log"
        path.write_bytes(data)
        hosts[f"mx{n}"] = [path]
    paths = [str(p) for ps in hosts.values() for p in ps]
    whole = cluster.analyze(paths, FILTERS, OPTIONS, jobs=jobs)
    assert _text(merge(_per_host(hosts))) == _text(whole)


# -- what --merge refuses -----------------------------------------------------------------

def _doc() -> dict[str, Any]:
    return json.loads(json.dumps(run.analyze([str(DATA / "mail.log")], FILTERS, OPTIONS)))


@pytest.mark.unit
@pytest.mark.parametrize("make,message", [
    (lambda d: [], "is not a spamdrill logs document (a JSON list)"),
    (lambda d: {"version": 2, "run": "r1", "cases": []}, "is a spamdrill run document"),
    (lambda d: {"schema": "spamdrill.doctor/1"}, "'spamdrill.doctor/1' document, not a logs"),
    (lambda d: {**d, "schema": "spamdrill.logs/2"}, "this spamdrill merges spamdrill.logs/1"),
    (lambda d: {k: v for k, v in d.items() if k != "totals"}, "a damaged spamdrill.logs/1"),
    (lambda d: {**d, "modes": [{**d["modes"][0], "mode": "made-up"}]}, "a damaged"),
    (lambda d: {**d, "per_hour": [{"hour": "yesterday"}]}, "a damaged"),
    (lambda d: {"plain": "object"}, "no schema"),
])
def test_what_is_not_a_logs_document_is_named(make: Any, message: str) -> None:
    with pytest.raises(SpamdrillError, match=re.escape(message)):
        check(make(_doc()), "x.json")


@pytest.mark.unit
def test_documents_read_differently_do_not_merge() -> None:
    doc = _doc()
    other = {**doc, "settings": {**doc["settings"], "slow_s": 60.0}}
    with pytest.raises(SpamdrillError, match=r"other settings than a.json \(slow_s\)"):
        merge([doc, other], names=["a.json", "b.json"])
    with pytest.raises(SpamdrillError, match="one is anonymized"):
        merge([doc, {**doc, "anonymized": True}], names=["a.json", "b.json"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spamdrill", "logs", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.lab  # the command line, in subprocesses
def test_merge_on_the_command_line(tmp_path: Path) -> None:
    """Per-host documents written by `spamdrill logs --json` and merged give what one run
    over every file gives, byte for byte; with --jobs too."""
    hosts = _cluster(tmp_path)
    docs = []
    for name, paths in hosts.items():
        out = tmp_path / f"{name}.json"
        assert _cli(*CLI_OPTIONS, "--json", str(out), *map(str, paths)).returncode == 0
        docs.append(str(out))
    merged = _cli("--merge", "--json", "-", *docs)
    assert merged.returncode == 0, merged.stderr
    every = [str(p) for ps in hosts.values() for p in ps]
    whole = _cli(*CLI_OPTIONS, "--jobs", "2", "--json", "-", *every)
    assert whole.returncode == 0, whole.stderr
    assert merged.stdout == whole.stdout
    shown = _cli("--merge", *docs)  # the terminal's view of a merge
    assert shown.returncode == 0 and "mx3:" in shown.stdout  # queue ids with their host


@pytest.mark.lab  # the command line, in subprocesses
@pytest.mark.parametrize("content,args,message", [
    ("hello", [], "is not JSON"),
    ('{"schema": "spamdrill.logs/9"}', [], "this spamdrill merges spamdrill.logs/1"),
    ('{"version": 2, "run": "x"}', [], "is a spamdrill run document"),
    ("", [], "is not JSON"),
    (None, ["--since", "2026-11-29"], "--since ('2026-11-29') applies when reading logs"),
    (None, ["--jobs", "2"], "--jobs (2) applies when reading logs"),
])
def test_bad_merge_input_is_one_line_and_exit_2(tmp_path: Path, content: str | None,
                                                args: list[str], message: str) -> None:
    bad = tmp_path / "bad.json"
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_doc()))
    bad.write_text(content if content is not None else json.dumps(_doc()))
    done = _cli("--merge", *args, str(good), str(bad))
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "nothing to diagnose" not in done.stderr + done.stdout


@pytest.mark.lab  # the command line, in subprocesses
def test_a_merge_of_empty_documents_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    out = tmp_path / "empty.json"
    assert _cli("--json", str(out), str(empty)).returncode == 4
    done = _cli("--merge", str(out), str(out))
    assert done.returncode == 4 and "nothing to diagnose (empty input)" in done.stderr
