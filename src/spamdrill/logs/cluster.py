"""Several hosts' logs: each host joined apart, on as many cores as asked (thin I/O).

Queue ids are per host, and a host's deliveries join its own spamd's scans: the files of
different hosts are read by separate joins (``--jobs`` processes at once, each with its
own bounded windows) and their documents merged (``merge``). Which files belong
together comes from the host names their first lines carry: files that share a name
are one host's (a file naming ``mx1`` and ``spamd1``, and another naming ``spamd1``, are
one group), and ``--group FILE=HOST`` says it for a file. A file that names no host
(spamd's or maildrop's own file, stdin) joins the one group there is; beside several,
nobody can tell whose it is, so every file is joined as one, as a single host's, and a
note says so. The first lines may not name every host a file holds: each join reports
the hosts it met, and groups that met one in common are read again as one. Inputs of one
group read exactly as they always did.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from spamdrill.errors import SpamdrillError
from spamdrill.logs import run
from spamdrill.logs.anonymize import anonymize
from spamdrill.logs.merge import Merger
from spamdrill.logs.reader import Filters, hosts_named
from spamdrill.logs.summary import Options


def named_groups(pairs: tuple[str, ...], paths: list[str]) -> dict[str, str]:
    """``--group FILE=HOST``, each FILE one of the files read."""
    named: dict[str, str] = {}
    for pair in pairs:
        path, eq, host = pair.rpartition("=")
        if not eq or not path or not host.strip():
            raise SpamdrillError(f"--group {pair!r} is not FILE=HOST",
                                 "e.g. --group /var/log/spamd.log=mx1")
        if path not in paths:
            raise SpamdrillError(f"--group names {path!r}, which is not among the files")
        named[path] = host.strip()
    return named


def groups(paths: list[str], filters: Filters,
           named: dict[str, str]) -> tuple[list[list[int]], str]:
    """The files' indexes per host group, in the order of each group's first file; and a
    note when files of several hosts had to be joined as one."""
    hosts = [frozenset({named[p]}) if p in named else hosts_named(p, filters)
             for p in paths]
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, names in enumerate(hosts):
        for name in sorted(names):
            if name in owner:
                parent[find(i)] = find(owner[name])
            else:
                owner[name] = i
    found: dict[int, list[int]] = {}
    for i, names in enumerate(hosts):
        if names:
            found.setdefault(find(i), []).append(i)
    everything = [list(range(len(paths)))]
    if len(found) <= 1:
        return everything, ""
    hostless = [paths[i] for i, names in enumerate(hosts) if not names]
    if hostless:
        return everything, (f"{hostless[0]} names no host: the files of {len(found)} "
                            "hosts are joined as one (say whose it is: --group "
                            f"{hostless[0]}=HOST)")
    return sorted(found.values(), key=min), ""


def analyze(paths: list[str], filters: Filters, options: Options, anonymized: bool = False,
            jobs: int = 1, named: dict[str, str] | None = None,
            note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The document of every file: one join per host group, merged. Groups whose joins
    met the same host after all (a name past a file's first lines) are joined as one and
    read again: no host's lines are joined apart."""
    if len(paths) > 1:
        parts, why = groups(paths, filters, named or {})
    else:
        parts, why = [[0]], ""
    if why and note is not None:
        note(why)
    while len(parts) > 1:
        merger = Merger(filters.format)
        seen = _each([[paths[i] for i in part] for part in parts], filters, options, jobs,
                     partial(_add, merger, parts))
        joined = _rejoin(parts, seen)
        if joined is None:
            doc = merger.result()
            return anonymize(doc) if anonymized else doc
        parts, host = joined
        if note is not None:
            note(f"{host} is in the lines of two groups of files: joined as one")
    return run.analyze(paths, filters, options, anonymized=anonymized)


Take = Callable[[int, dict[str, Any]], None]


def _add(merger: Merger, parts: list[list[int]], k: int, doc: dict[str, Any]) -> None:
    merger.add(doc, parts[k])


def _each(tasks: list[list[str]], filters: Filters, options: Options, jobs: int,
          take: Take) -> list[set[str]]:
    """Each group read, ``jobs`` at once, its document handed to ``take`` in the groups'
    order as soon as those before it are (so a merge holds one document and those that
    came early, not all); the host names each join met."""
    if jobs <= 1:
        seen = []
        for k, task in enumerate(tasks):
            doc, hosts = _ok(_one(task, filters, options))
            take(k, doc)
            seen.append(hosts)
        return seen
    return _in_processes(tasks, filters, options, jobs, take)


Result = tuple[dict[str, Any], set[str]] | SpamdrillError


def _ok(result: Result) -> tuple[dict[str, Any], set[str]]:
    if isinstance(result, SpamdrillError):
        raise result
    return result


def _in_processes(tasks: list[list[str]], filters: Filters, options: Options, jobs: int,
                  take: Take) -> list[set[str]]:
    """A process per group, at most ``jobs`` at once, each forked from this thread (a
    pool's helper threads fork too, and a child forked while one of them held a lock
    waited for it for ever), its result sent back through a pipe of its own and kept as
    sent (a pickle: a tenth of the document's objects) until its turn. Leaving (an error,
    Ctrl-C, SIGTERM) ends the workers still running rather than awaiting them."""
    ctx = multiprocessing.get_context("fork")  # stdin ('-') is the workers' to read
    seen: list[set[str]] = []
    early: dict[int, bytes | SpamdrillError] = {}
    waiting = list(enumerate(tasks))
    running: dict[Connection, tuple[int, Any]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                k, task = waiting.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(send, task, filters, options))
                proc.start()
                send.close()
                running[recv] = (k, proc)
            for ready in wait(list(running)):
                conn = cast(Connection, ready)
                k, proc = running.pop(conn)
                try:
                    early[k] = conn.recv_bytes()
                except EOFError:
                    proc.join()
                    early[k] = SpamdrillError(
                        f"the reader of {', '.join(tasks[k])} ended without a result "
                        f"(exit status {proc.exitcode})", "try again with --jobs 1")
                conn.close()
                proc.join()
            while len(seen) in early:
                got = early.pop(len(seen))
                doc, hosts = _ok(got if isinstance(got, SpamdrillError)
                                 else cast(Result, pickle.loads(got)))
                take(len(seen), doc)
                seen.append(hosts)
    finally:
        for conn, (_, proc) in running.items():
            proc.terminate()
            proc.join()
            conn.close()
    return seen


def _worker(send: Connection, paths: list[str], filters: Filters,
            options: Options) -> None:
    """A worker: one group read, its result sent; Ctrl-C is the parent's to handle, and
    the parent's SIGTERM ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    send.send(_one(paths, filters, options))
    send.close()


def _rejoin(parts: list[list[int]],
            seen: list[set[str]]) -> tuple[list[list[int]], str] | None:
    """The groups again, those whose joins met a host in common as one (and that host);
    None when no two did. Files without host names (spamd's own) meet none."""
    owner: dict[str, int] = {}
    into = list(range(len(parts)))
    shared = ""
    for k, hosts in enumerate(seen):
        for host in sorted(hosts - {""}):
            if host not in owner:
                owner[host] = k
            elif into[owner[host]] != into[k]:
                old, new = into[k], into[owner[host]]
                into = [new if g == old else g for g in into]
                shared = shared or host
    if not shared:
        return None
    merged: dict[int, list[int]] = {}
    for k, part in enumerate(parts):
        merged.setdefault(into[k], []).extend(part)
    return sorted((sorted(p) for p in merged.values()), key=min), shared


def _one(paths: list[str], filters: Filters,
         options: Options) -> tuple[dict[str, Any], set[str]] | SpamdrillError:
    """One host group's document and the hosts it met (in a worker: its error comes back
    as a value, with its hint, rather than as an exception pickled without it)."""
    seen: set[str] = set()
    try:
        return run.analyze(paths, filters, options, seen=seen), seen
    except SpamdrillError as exc:
        return _Failed(exc.message, exc.hint)


class _Failed(SpamdrillError):
    def __reduce__(self) -> tuple[Any, ...]:
        return (_Failed, (self.message, self.hint))
