# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The classic-syslog loop of ``reader.Feed.fast``, compiled: the same steps, the same
results, line for line, without the interpreter's dispatch per step.

Why Cython, with the system C compiler: it is on PyPI (pip reaches it as a build
requirement), it needs only gcc and the Python headers the machines here have, and a
``.pyx`` reads like the Python it mirrors, so the two stay alike. A Rust extension (PyO3)
would need crates these machines cannot fetch; mypyc compiled the readers to 1.2x, as it
cannot remove the builtins' calls. The extension is optional: without a compiler, or with
``SPAMDRILL_PURE=1``, ``reader.Feed.fast`` (the reference) runs instead.

What it saves: ``str.split(None, 5)`` makes six strings per line where three are read
(host, tag, text); here the fields are found by index, as ``split`` finds them (the same
``Py_UNICODE_ISSPACE``), and only those three are made. A line of any other shape is
handed back to the careful way (``Feed.one``), as the Python loop does.
"""


def fast(object feed, list lines, object parser):
    """``Feed.fast(lines, parser)``: each line's envelope, to its program's handler."""
    cdef Py_ssize_t src = feed.inp.index
    cdef Py_ssize_t no = feed.no
    cdef dict tags = feed.tags
    stamp_of = parser.stamp
    learn = feed.learn
    cdef str prev = "\x00"
    cdef str line, tag
    cdef Py_ssize_t n, i, k, s3 = 0, e3 = 0, s4 = 0, e4 = 0
    cdef bint ok
    ts = None
    last = feed.last
    entries = feed.entries
    for line in lines:
        no += 1
        n = len(line)
        ok = False
        if n > 16 and line[15] == u" ":
            # the fields of line.split(None, 5): 3 (host), 4 (tag) and what follows
            i = 0
            ok = True
            for k in range(5):
                while i < n and line[i].isspace():
                    i += 1
                if i >= n:
                    ok = False
                    break
                if k == 3:
                    s3 = i
                elif k == 4:
                    s4 = i
                while i < n and not line[i].isspace():
                    i += 1
                if k == 3:
                    e3 = i
                elif k == 4:
                    e4 = i
            if ok:
                while i < n and line[i].isspace():
                    i += 1
                ok = i < n
        if ok:
            if not line.startswith(prev):
                prev = line[:15]
                ts = stamp_of(prev)
            tag = line[s4:e4]
            info = tags.get(tag)
            if info is None:
                info = learn(tag)
            if info is not None and ts is not None:
                entries += 1
                last = ts
                handle = (<tuple>info)[0]
                if handle is not None:
                    handle(ts, line[s3:e3], (<tuple>info)[1], line[i:], src, no, line)
                continue
        feed.no, feed.last, feed.entries = no - 1, last, entries
        feed.one(line)
        prev, last, entries = "\x00", feed.last, feed.entries
    feed.no, feed.last, feed.entries = no, last, entries
