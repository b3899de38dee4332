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
- Postfix's, spamd's and maildrop's readers (``postfix.reader``, ``spamd.reader``,
  ``maildrop.maildrop_reader``) publish what their closure holds (``inline``); their first
  step (the queue id, the dispatch by the text's first words) is taken here and the line
  handed straight to the step that reads it; a Postfix line without a queue id (smtpd's
  connect and disconnect) goes no further;
- a spamd scan's lines (``connection from``, ``processing``, the verdict, ``result:``),
  spamd's prefork lines and the maildroprc's lines are read here by twins of their Python
  steps (``spamd._connection`` ... ``spamd._prefork``, ``Joiner.spamd_line``,
  ``maildrop_reader``'s ``read``): the same expressions, the same calls on the join, in
  the same order, without an interpreted frame per line. Tried and dropped: twins of
  Postfix's message lines (``message-id=``, ``client=``, ``from=``, ``removed``), 0.4%
  fewer instructions, not worth a second copy.

Anything else, and any line of another shape, goes to the Python code that reads it; the
tests compare the documents of both loops on every fixture and on generated logs.
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
    if j < 0:
        return  # no "QID: ": nothing the reader reads (smtpd's connect, disconnect)
    if not _qid(line, i, j):
        if j - i == 7 and line.startswith(u"warning", i):
            handle(ts, host, pid, line[i:], src, no, line)
        return  # NOQUEUE, or not a queue id
    name, join, after, bodies, other = spec[1], spec[2], spec[3], spec[4], spec[5]
    body = line[j + 2:]
    step = (<dict>bodies).get(body[:4], other)
    took = step(join, name, (host, line[i:j]), ts, pid, body, src, no, line)
    if took is not False and (took is not True or ts > join.now or join.dirty):
        after(took, ts, src, no, line)


cdef _maildrop(tuple spec, object handle, object ts, str host, str pid, str line,
               Py_ssize_t i, Py_ssize_t src, Py_ssize_t no):
    """``maildrop.maildrop_reader``'s ``read``: a maildroprc's line kept unparsed, in time
    order (``TimeIndex.add``'s common case: not before the last); a logfile record's
    ``File:``/``!Err:`` by the reader itself."""
    if line.startswith(u"File: ", i) or line.startswith(u"!Err: ", i):
        handle(ts, host, pid, line[i:], src, no, line)
        return
    join, after, index = spec[1], spec[2], spec[3]
    item = (host, ts, line[i:], src, no, line)
    times = <list>index.ts
    if times and ts < times[len(times) - 1]:
        index.add(ts, item)
    else:
        times.append(ts)
        (<list>index.items).append(item)
    if ts > join.now or join.dirty:
        after(True, ts, src, no, line)


cdef object _NEVER = float("-inf")


cdef object _scan_line(object join, int opens, str host, str pid, object ts, object ln,
                       object Scan):
    """``Joiner.spamd_line``: ``opens`` 2 for a connection (a new scan), 1 for a message
    (a new scan if the child has none open), 0 for any other line of a scan."""
    spamd = join.spamd
    if ts > (<dict>spamd.last).get(host, _NEVER):
        spamd.saw(host, ts)
    child = (host, pid)
    children = join.children
    scan = children.get(child)
    if opens == 2 or (scan is None and opens == 1):
        if scan is not None:
            join._file(scan)
            del children[child]
        scan = Scan(host, pid, ts, [ln], ts)
        children[child] = scan
        return scan
    if scan is None:
        return None
    children.move_to_end(child)
    scan.lines.append(ln)
    scan.last = ts
    return scan


cdef object _scan_step(tuple fast, object join, object ts, str host, str pid, str line,
                       Py_ssize_t i, Py_ssize_t src, Py_ssize_t no, str key):
    """``spamd.py``'s steps of a scan (``_connection``, ``_processing``, ``_verdict_line``,
    ``_result``), their twins: True, False or a Skip, as they return."""
    Line, Scan, truncated = fast[0], fast[1], fast[6]
    cdef Py_ssize_t b = i + 7, at, end
    cdef str msg, extra, tests
    if key == u"conn":
        if not line.startswith(u"connection from ", b):
            return False
        _scan_line(join, 2, host, pid, ts, tuple.__new__(Line, (src, no, line)), Scan)
        return True
    if key == u"proc" or key == u"chec":
        if not (line.startswith(u"processing message ", b)
                or line.startswith(u"checking message ", b)):
            return False
        msg = line[i:]
        m = fast[2].match(msg, 7)
        if m is None:
            return truncated
        scan = _scan_line(join, 1, host, pid, ts, tuple.__new__(Line, (src, no, line)), Scan)
        if scan is not None:
            mid, user = m.group(1), m.group(2)
            scan.mid, scan.user = mid, user
            join.open_mids[mid] = scan
        return True
    if key == u"iden" or key == u"clea":
        if not (line.startswith(u"identified spam ", b)
                or line.startswith(u"clean message ", b)):
            return False
        msg = line[i:]
        m = fast[3].match(msg, 7)
        if m is None:
            return truncated
        scan = _scan_line(join, 0, host, pid, ts, tuple.__new__(Line, (src, no, line)), Scan)
        if scan is not None:
            spam, seconds, size = m.group(1) == u"identified spam", float(m.group(4)), \
                int(m.group(5))
            user = m.group(3)
            scan.seconds, scan.size, scan.spam, scan.end = seconds, size, spam, ts
            scan.user = scan.user or user
            scan.finished = True
        return True
    # "resu"
    if not line.startswith(u"result: ", b):
        return False
    msg = line[i:]
    m = fast[4].match(msg, 7)
    if m is None:
        return truncated
    flag, tests, extra = m.groups()
    x = fast[5].match(extra)
    at = extra.find(u",mid=")
    if x is None or at < 0:
        return truncated
    scan = _scan_line(join, 0, host, pid, ts, tuple.__new__(Line, (src, no, line)), Scan)
    if scan is None:
        return True
    end = extra.find(u",", at + 5)
    seconds, size, user = x.groups()
    scan.seconds, scan.size, scan.spam, scan.end = float(seconds), int(size), flag == u"Y", ts
    scan.user = scan.user or user
    scan.finished = True
    scan.mid = scan.mid or (extra[at + 5:end] if end > 0 else extra[at + 5:])
    if tests:
        found = tuple(tests.split(u","))
        scan.tests = found
        if u"TIME_LIMIT_EXCEEDED" in found:
            scan.time_limit = True
    else:
        scan.tests = ()
    join.end_scan(scan)
    return True


cdef object _prefork(tuple fast, object join, object ts, str host, str pid, str line,
                     Py_ssize_t i, Py_ssize_t src, Py_ssize_t no):
    """``spamd._prefork``: ``--max-children`` and child-state lines."""
    if line.find(u"max-children", i) >= 0:
        ln = tuple.__new__(fast[0], (src, no, line))
        join.spamd.max_children.add(ts, ln)
    elif line.startswith(u"child states: ", i + 9):
        ln = tuple.__new__(fast[0], (src, no, line))
        join.spamd.states.add(ts, (line[i + 23:].strip(), ln))
    else:
        return False
    _scan_line(join, 0, host, pid, ts, ln, fast[1])
    return True


cdef _spamd(tuple spec, object ts, str host, str pid, str line, Py_ssize_t i,
            Py_ssize_t src, Py_ssize_t no):
    """``spamd.reader``'s ``read``: a scan's lines and spamd's prefork lines here (their
    steps' twins), any other line by its step in ``spamd.py``."""
    join, after, steps, fast = spec[1], spec[2], spec[3], spec[7]
    cdef str key
    if line.startswith(u"spamd: ", i):
        key = line[i + 7:i + 11]
        if key in _SCAN_KEYS:
            took = _scan_step(fast, join, ts, host, pid, line, i, src, no, key)
        else:
            took = (<dict>steps).get(key, spec[4])(join, ts, host, pid, line[i:], src, no,
                                                    line)
    elif line.startswith(u"prefork: ", i):
        took = _prefork(fast, join, ts, host, pid, line, i, src, no)
    else:
        took = spec[6](join, ts, host, pid, line[i:], src, no, line)
    if took is not False and (took is not True or ts > join.now or join.dirty):
        after(took, ts, src, no, line)


cdef frozenset _SCAN_KEYS = frozenset([u"conn", u"proc", u"chec", u"iden", u"clea",
                                       u"resu"])


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
                    elif (<tuple>spec)[0] == "spamd":
                        _spamd(spec, ts, line[s3:e3], info[1], line, i, src, no)
                    else:
                        _maildrop(spec, handle, ts, line[s3:e3], info[1], line, i, src,
                                  no)
                continue
        feed.no, feed.last, feed.entries = no - 1, last, entries
        feed.one(line)
        prev, last, entries = "\x00", feed.last, feed.entries
    feed.no, feed.last, feed.entries = no, last, entries
