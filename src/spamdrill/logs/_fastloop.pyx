# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The classic-syslog loop of ``reader.Feed.fast``, compiled: the same steps, the same
results, line for line, without the interpreter's dispatch per step.

Why Cython, with the system C compiler: it is on PyPI (pip reaches it as a build
requirement), it needs only gcc and the Python headers the machines here have, and a
``.pyx`` reads like the Python it mirrors, so the two stay alike. A Rust extension (PyO3)
would need crates these machines cannot fetch; mypyc compiled the readers to 1.2x, as it
cannot remove the builtins' calls. The extension is optional: without a compiler, or with
``SPAMDRILL_PURE=1``, ``reader.Feed.fast`` (the reference) runs instead.

What it saves, each step the Python one's twin:

- the envelope: ``str.split(None, 5)`` makes six strings per line where three are read
  (host, tag, text); here the fields are found by index, as ``split`` finds them (the same
  ``Py_UNICODE_ISSPACE``), and only those three are made;
- a new syslog tag (a third of them here: one per pid) is learnt here (``Feed.learn``'s
  steps), not by a Python call;
- Postfix's and spamd's readers (``postfix.reader``, ``spamd.reader``) publish what their
  closure holds (``inline``); their first step (the queue id, the dispatch by the text's
  first words) is taken here and the line handed straight to the step that reads it.

Anything else, and any line of another shape, goes to the Python code that reads it.
"""

cdef object _UNSEEN = object()


cdef tuple _learn(object feed, dict tags, str tag):
    """``Feed.learn``: a new tag's (handler, pid, inline), or None (no ``: `` at its end)."""
    cdef Py_ssize_t n = len(tag), j
    cdef str prog, pid
    if n == 0 or tag[n - 1] != u":":
        return None
    if n >= 2 and tag[n - 2] == u"]":
        j = tag.find(u"[")
        if j < 0:
            prog, pid = tag, u""
        else:
            prog, pid = tag[:j], tag[j + 1:n - 2]
    else:
        prog, pid = tag[:n - 1], u""
    cdef dict handlers = feed.handlers
    handle = handlers.get(prog, _UNSEEN)
    if handle is _UNSEEN:
        handle = feed.sink.handler(prog)
        handlers[prog] = handle
    if len(tags) > 50_000:
        tags.clear()
    info = (handle, pid, getattr(handle, "inline", None))
    tags[tag] = info
    return info


cdef inline bint _qid(str line, Py_ssize_t start, Py_ssize_t end):
    """``len(qid) >= 5 and qid.isalnum()``, not ``NOQUEUE`` nor ``warning``."""
    cdef Py_ssize_t k
    if end - start < 5:
        return False
    for k in range(start, end):
        if not line[k].isalnum():
            return False
    if end - start == 7 and (line.startswith(u"NOQUEUE", start)
                             or line.startswith(u"warning", start)):
        return False
    return True


cdef _postfix(tuple spec, object handle, object ts, str host, str pid, str line,
              Py_ssize_t i, Py_ssize_t src, Py_ssize_t no):
    """``postfix.reader``'s ``read`` for a queue id's line; else the reader itself."""
    cdef Py_ssize_t j = line.find(u": ", i)
    if j < 0 or not _qid(line, i, j):
        handle(ts, host, pid, line[i:], src, no, line)
        return
    name, join, after, bodies, other = spec[1], spec[2], spec[3], spec[4], spec[5]
    body = line[j + 2:]
    step = (<dict>bodies).get(body[:4], other)
    took = step(join, name, (host, line[i:j]), ts, pid, body, src, no, line)
    if took is not False and (took is not True or ts > join.now or join.dirty):
        after(took, ts, src, no, line)


cdef _spamd(tuple spec, object ts, str host, str pid, str line, Py_ssize_t i,
            Py_ssize_t src, Py_ssize_t no):
    """``spamd.reader``'s ``read``."""
    join, after, steps = spec[1], spec[2], spec[3]
    msg = line[i:]
    if line.startswith(u"spamd: ", i):
        step = (<dict>steps).get(line[i + 7:i + 11], spec[4])
    elif line.startswith(u"prefork: ", i):
        step = spec[5]
    else:
        step = spec[6]
    took = step(join, ts, host, pid, msg, src, no, line)
    if took is not False and (took is not True or ts > join.now or join.dirty):
        after(took, ts, src, no, line)


def fast(object feed, list lines, object parser):
    """``Feed.fast(lines, parser)``: each line's envelope, to its program's handler."""
    cdef Py_ssize_t src = feed.inp.index
    cdef Py_ssize_t no = feed.no
    cdef dict tags = feed.tags
    stamp_of = parser.stamp
    cdef str prev = "\x00"
    cdef str line, tag
    cdef tuple info
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
                info = _learn(feed, tags, tag)
            if info is not None and ts is not None:
                entries += 1
                last = ts
                handle = info[0]
                if handle is not None:
                    spec = info[2]
                    if spec is None:
                        handle(ts, line[s3:e3], info[1], line[i:], src, no, line)
                    elif (<tuple>spec)[0] == "postfix":
                        _postfix(spec, handle, ts, line[s3:e3], info[1], line, i, src, no)
                    else:
                        _spamd(spec, ts, line[s3:e3], info[1], line, i, src, no)
                continue
        feed.no, feed.last, feed.entries = no - 1, last, entries
        feed.one(line)
        prev, last, entries = "\x00", feed.last, feed.entries
    feed.no, feed.last, feed.entries = no, last, entries
