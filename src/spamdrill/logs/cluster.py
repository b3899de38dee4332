"""Several hosts' logs: each host joined apart, on as many cores as asked (thin I/O).

Queue ids are per host, and a host's deliveries join its own spamd's scans: the files of
different hosts are read by separate joins (``--jobs`` processes at once, each with its
own bounded windows) and their documents merged (``merge``). Which files belong
together comes from the host names their first lines carry: files that share a name
are one host's (a file naming ``mx1`` and ``spamd1``, and another naming ``spamd1``, are
one group), and ``--group FILE=HOST`` says it for a file. A file that names no host
(spamd's or maildrop's own file, stdin) joins the one group there is; beside several,
nobody can tell whose it is, so every file is joined as one, as a single host's, and a
note says so. Inputs of one group read exactly as they always did.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from spamdrill.errors import SpamdrillError
from spamdrill.logs import run
from spamdrill.logs.anonymize import anonymize
from spamdrill.logs.merge import merge
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
    """The document of every file: one join per host group, merged."""
    if len(paths) > 1:
        parts, why = groups(paths, filters, named or {})
    else:
        parts, why = [[0]], ""
    if why and note is not None:
        note(why)
    if len(parts) == 1:
        return run.analyze(paths, filters, options, anonymized=anonymized)
    tasks = [([paths[i] for i in part], filters, options) for part in parts]
    if jobs <= 1:
        results = [_one(*task) for task in tasks]
    else:
        # fork: the workers start at once, and stdin ('-') is theirs to read
        with ProcessPoolExecutor(min(jobs, len(tasks)),
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_one, *zip(*tasks, strict=True)))
    docs = []
    for result in results:
        if isinstance(result, SpamdrillError):
            raise result
        docs.append(result)
    doc = merge(docs, places=parts, fmt=filters.format)
    return anonymize(doc) if anonymized else doc


def _one(paths: list[str], filters: Filters, options: Options) -> dict[str, Any] | Any:
    """One host group's document (in a worker: its error comes back as a value, with its
    hint, rather than as an exception pickled without it)."""
    try:
        return run.analyze(paths, filters, options)
    except SpamdrillError as exc:
        return _Failed(exc.message, exc.hint)


class _Failed(SpamdrillError):
    def __reduce__(self) -> tuple[Any, ...]:
        return (_Failed, (self.message, self.hint))
