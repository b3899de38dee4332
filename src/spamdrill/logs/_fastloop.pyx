# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The classic-syslog loop of ``reader.Feed.fast``, compiled: the same steps, the same
results, line for line, without the interpreter's dispatch per step.

Why Cython, with the system C compiler: it is on PyPI (pip reaches it as a build
requirement), it needs only gcc and the Python headers the machines here have, and a
``.pyx`` reads like the Python it mirrors, so the two stay alike; where a line's bytes are
read (the envelope, a scan line's fields) it is plain C over the string's own buffer, typed,
with no object per step. A Rust extension (PyO3) would need crates these machines cannot
fetch; mypyc compiled the readers to 1.2x, as it cannot remove the builtins' calls. A user's
``pip install`` builds it from the sdist where Cython and a compiler are at hand, and
installs without it where not. The extension is optional: without a compiler, or with
``SPAMDRILL_PURE=1``, ``reader.Feed.fast`` (the reference) runs instead.

What it saves, each step the Python one's twin:

- the envelope: ``str.split(None, 5)`` makes six strings per line where three are read
  (host, tag, text); here the fields are found by index, as ``split`` finds them (the same
  ``Py_UNICODE_ISSPACE``; for a line of one byte per character, most of them, through a
  table of those 256 characters' answers over the string's own bytes), and only those
  three are made;
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
  ``maildrop_reader``'s ``read``), with the same calls on the join, in the same order,
  without an interpreted frame per line; the scan lines' fields are found by index
  (``_spamdlines.pxi``: what ``spamd.py``'s expressions match, step for step, with their
  character classes; a test compares the two on edited lines), not by ``re``;
- a finished scan is filed here (``Joiner.end_scan``, ``_file``: by Message-ID, user and
  start) and counted (``Analysis._scan``'s test; a scan that may be trouble goes to
  ``Analysis._trouble``), and the spamd host's span moves on here (``SpamdHosts.saw``);
- Postfix's ``message-id=``, ``client=`` and ``removed`` lines are read here by twins of
  their steps, the queue file found as ``Joiner.message`` finds it (a new one by it); a
  delivery agent's line is read by index (``_postfixlines.pxi``, what ``_DELIVERY``
  matches) and handed to the join here (``Joiner.delivery``'s twin: the message's try,
  numbered, the agent's warnings, the queue of attempts waiting for their late window).

- qmgr's ``from=<...>, size=N, nrcpt=N`` is read by index (``_queued``, what ``_QUEUED``
  matches); a stamp of whole seconds whose minute the clock converted before is converted
  here (``_stamp``: ``ClassicParser.stamp`` and ``YearClock``'s common step); the lines
  kept as evidence are made without a call (``spamdrill_line``);
- the join's clock (``_jointick.pxi``): after a line the join took, the attempts whose late
  window passed are joined to their scans by Message-ID, and one delivered in time and
  scanned with no wrapper line is counted and let go, the windows trimmed, all here; an
  attempt in trouble goes to ``Joiner._context`` and ``Analysis._attempt`` in Python; one
  whose wrapper's line said all was well is counted here too (``_quiet``);
- the join's records (scans, attempts, messages, deliveries) are made as their classes
  make them, without running their ``__init__`` (``_records.pxi``); a scan line's kind is
  read from its characters in place, not from a new string;
- the join and its records are read and written at their slots' offsets, as the C
  structures they are (``_slots.pxi``, checked against the classes at import), not
  through ``getattr``'s generic path; the tuples made per line that hold only strings and
  numbers (a queue file's key, a spamd child's, a line kept as evidence) are left out of
  the cyclic collector: they cannot be part of a cycle;
- a block's text is split into lines by ``memchr`` (``split_lines``, ``str.split``'s
  result), not by a test of each character.

Anything else, and any line of another shape, goes to the Python code that reads it; the
tests compare the documents and the join's state of both loops on every fixture, on the
benchmark's generated log and on generated hostile logs. Not here: the join's own objects
stay Python objects (made, kept in dictionaries and freed by the interpreter), which is
most of what a line costs now (benchmarks/README.md, ``logs_instructions.py``).
"""

from cpython.float cimport PyFloat_FromString as _float
from libc.string cimport memcmp
from cpython.unicode cimport (
    Py_UNICODE_ISALNUM,
    Py_UNICODE_ISSPACE,
    PyUnicode_1BYTE_KIND,
    PyUnicode_DATA,
    PyUnicode_KIND,
    PyUnicode_READ,
)

from spamdrill.logs.events import Line as _Line

cdef object _UNSEEN = object()

cdef extern from *:
    """
    /* events.Line(src, no, text), as tuple.__new__(Line, ...) makes it
       (tuple_subtype_new): the type's tp_alloc (which zero-fills and tracks it), then
       the items, without the temporary tuple and the method call. */
    static PyObject* spamdrill_line(PyObject* cls, Py_ssize_t src, Py_ssize_t no,
                                    PyObject* text) {
        PyTypeObject* t = (PyTypeObject*)cls;
        PyObject* a = PyLong_FromSsize_t(src);
        PyObject* b = a ? PyLong_FromSsize_t(no) : NULL;
        PyObject* o = b ? t->tp_alloc(t, 3) : NULL;
        if (o == NULL) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            return NULL;
        }
        Py_INCREF(text);
        PyTuple_SET_ITEM(o, 0, a);
        PyTuple_SET_ITEM(o, 1, b);
        PyTuple_SET_ITEM(o, 2, text);
        /* two numbers and a string (a Line has no __dict__) cannot make a cycle: not
           the collector's, so it neither counts towards a collection nor is unlinked
           from the collector's list when freed (the collector itself untracks only
           exact tuples, _PyTuple_MaybeUntrack, never a subtype's) */
        PyObject_GC_UnTrack(o);
        return o;
    }
    """
    object spamdrill_line(object cls, Py_ssize_t src, Py_ssize_t no, object text)

# the shape spamdrill_line fills: a tuple subtype of three
assert issubclass(_Line, tuple) and _Line._fields == ("src", "no", "text")


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(object o)
    str PyUnicode_Substring(str s, Py_ssize_t start, Py_ssize_t end)
    const Py_ssize_t PY_SSIZE_T_MAX


cdef inline tuple _atomic(tuple t):
    """``t``, a tuple of strings and numbers only, left out of the cyclic collector (as
    its first look at it would leave it, ``_PyTuple_MaybeUntrack``: such a tuple cannot be
    part of a cycle): one the loop makes per line (a queue file's key, a spamd child's)
    then neither brings the next collection nearer nor is unlinked from the collector's
    list when it goes."""
    PyObject_GC_UnTrack(t)
    return t


cdef inline object _line(Py_ssize_t src, Py_ssize_t no, str text):
    """``events.line``."""
    return spamdrill_line(_Line, src, no, text)

cdef unsigned char _SPACE[256]
for _c in range(256):
    _SPACE[_c] = chr(_c).isspace()  # Py_UNICODE_ISSPACE, as str.split and \\s read it
cdef unsigned char _ALNUM[256]
for _c in range(256):
    _ALNUM[_c] = chr(_c).isalnum()  # Py_UNICODE_ISALNUM, as str.isalnum reads it


cdef inline bint _space(unsigned int kind, const void* data, Py_ssize_t k):
    if kind == PyUnicode_1BYTE_KIND:
        return _SPACE[(<const unsigned char*>data)[k]]
    return Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k))


cdef inline str _sub(str s, Py_ssize_t a, Py_ssize_t b):
    """``s[a:b]``, by ``PyUnicode_Substring``: a slice of an ASCII string is copied as
    ASCII, where Cython's slicing scans each slice for its widest character first (2% of
    a line's instructions on an ASCII log)."""
    cdef Py_ssize_t n = len(s)
    if a < 0:
        a = a + n if a + n > 0 else 0
    if b < 0:
        b = b + n if b + n > 0 else 0
    elif b > n:
        b = n
    if b <= a:
        return u""
    return PyUnicode_Substring(s, a, b)


cdef inline str _tail(str s, Py_ssize_t a):
    """``s[a:]``."""
    return _sub(s, a, PY_SSIZE_T_MAX)


cdef double _TEN[16]
for _c in range(16):
    _TEN[_c] = 10.0 ** _c  # exact: every power of ten to 10**22 is a double


cdef object _float_at(str s, Py_ssize_t a, Py_ssize_t b):
    """``float(s[a:b])``. Digits, a point and digits (15 digits at most, one byte each)
    are read here: the digits as an integer below 2**53, divided by a power of ten, both
    exact, so the one rounding is the division's, as ``strtod``'s own fast path has it
    (the same double). Anything else (a sign, an exponent, more digits) by ``float``."""
    cdef const unsigned char* d
    cdef long long m = 0
    cdef Py_ssize_t k, point = -1, digits = 0
    if PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND and 0 <= a < b <= len(s):
        d = <const unsigned char*>PyUnicode_DATA(s)
        for k in range(a, b):
            if 48 <= d[k] <= 57:
                digits += 1
                if digits > 15:
                    break
                m = m * 10 + (d[k] - 48)
            elif d[k] == 46 and point < 0 and k > a and k + 1 < b:
                point = k
            else:
                digits = 99
                break
        if digits <= 15:
            return <double>m / _TEN[b - point - 1] if point >= 0 else <double>m
    return _float(_sub(s, a, b))


cdef object _int_at(str s, Py_ssize_t a, Py_ssize_t b):
    """``int(s[a:b])``: up to 18 digits of one byte each read here, anything else by
    ``int``."""
    cdef const unsigned char* d
    cdef long long m = 0
    cdef Py_ssize_t k
    if PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND and 0 <= a < b <= len(s) and b - a <= 18:
        d = <const unsigned char*>PyUnicode_DATA(s)
        for k in range(a, b):
            if not 48 <= d[k] <= 57:
                return int(_sub(s, a, b))
            m = m * 10 + (d[k] - 48)
        return m
    return int(_sub(s, a, b))


def number_at(str s not None, Py_ssize_t a, Py_ssize_t b, bint integer):
    """``int(s[a:b])`` or ``float(s[a:b])`` as the loop reads them (for the tests)."""
    return _int_at(s, a, b) if integer else _float_at(s, a, b)


cdef inline bint _starts(str s, str prefix, Py_ssize_t pos):
    """``s.startswith(prefix, pos)``: for two strings of one byte per character (most
    lines, every prefix here), their bytes compared in place, without the method's
    general steps; any other pair by the method."""
    cdef Py_ssize_t m = len(prefix)
    if pos >= 0 and PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND \
            and PyUnicode_KIND(prefix) == PyUnicode_1BYTE_KIND:
        return pos + m <= len(s) and memcmp(<const char*>PyUnicode_DATA(s) + pos,
                                            PyUnicode_DATA(prefix), m) == 0
    return s.startswith(prefix, pos)


cdef extern from *:
    """
    #include <string.h>

    /* text.split("\\n") for a string of one byte per character: each end found by memchr
       (a word at a time), where str.split tests each character in turn. */
    static PyObject* spamdrill_split_lines(PyObject* text) {
        const char* p = (const char*)PyUnicode_DATA(text);
        const char* end = p + PyUnicode_GET_LENGTH(text);
        int ascii = PyUnicode_IS_ASCII(text);
        PyObject* out = PyList_New(0);
        for (;;) {
            const char* q;
            Py_ssize_t n;
            PyObject* s;
            if (out == NULL)
                return NULL;
            q = (const char*)memchr(p, '\\n', (size_t)(end - p));
            n = (q ? q : end) - p;
            if (ascii) {
                s = PyUnicode_New(n, 127);
                if (s != NULL)
                    memcpy(PyUnicode_DATA(s), p, (size_t)n);
            } else {
                s = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, p, n);
            }
            if (s == NULL || PyList_Append(out, s) < 0) {
                Py_XDECREF(s);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(s);
            if (q == NULL)
                return out;
            p = q + 1;
        }
    }
    """
    list spamdrill_split_lines(str text)


def split_lines(str text not None):
    """``text.split("\\n")``, the same list: for a block of one byte per character (a log's
    usual block) each line's end is found by ``memchr``; any other block by the method."""
    if PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND:
        return spamdrill_split_lines(text)
    return text.split(u"\n")


include "_records.pxi"
include "_slots.pxi"
include "_spamdlines.pxi"
include "_postfixlines.pxi"
include "_jointick.pxi"


from spamdrill.logs.formats import MONTHS as _MONTHS
from spamdrill.logs.formats import ClassicParser as _ClassicParser
from spamdrill.logs.formats import YearClock as _YearClock

cdef object _TWINNED = (_ClassicParser.stamp, _YearClock.__call__, _YearClock._convert)


cdef inline bint _digit(Py_UCS4 c):
    return u"0" <= c <= u"9"


cdef object _stamp(object clock, dict cache, str stamp):
    """``ClassicParser.stamp``, with ``YearClock.__call__`` and ``_convert``'s step for a
    stamp of whole seconds whose minute was converted before; any other stamp by the
    clock itself."""
    ts = cache.get(stamp)
    last = clock.last
    if ts is not None:
        if last is None or ts < last - clock.tolerance or ts > last + clock.ahead:
            return clock(stamp)
        if ts > last:
            clock.last = ts
        return ts
    if len(stamp) != 15 or not (_digit(stamp[13]) and _digit(stamp[14])):
        return clock(stamp)
    seen = (<dict>clock._seen).get(_sub(stamp, 0, 13))
    if seen is None:
        return clock(stamp)
    month, last_month = (<tuple>seen)[0], clock.last_month
    if (<tuple>seen)[1] != clock.year + (1 if month < last_month and last_month == 12
                                         and month == 1 else 0):
        return clock(stamp)
    cdef int whole = (ord(stamp[13]) - 48) * 10 + ord(stamp[14]) - 48
    if whole > 59:
        return None
    ts = <double>(<tuple>seen)[2] + <double>whole + 0.0
    if last is not None and (ts < last - clock.tolerance or ts > last + clock.ahead):
        return None  # back in time, or most of a year ahead: its year cannot be right
    month = _MONTHS.get(_sub(stamp, 0, 3), 0)
    if last_month == 12 and month == 1:
        clock.year += 1
        cache.clear()
    clock.last_month = month
    if len(cache) > 4096:
        cache.clear()
    cache[stamp] = ts
    if last is None or ts > last:
        clock.last = ts
    return ts


cdef bint _inline_ok(tuple spec):
    """Whether the loop may read a reader's lines itself: its join a ``Joiner`` and the
    records it makes of the classes ``_slots.pxi`` declares, read at their slots' offsets
    (``_layout_ok``); any other join (a subclass that makes ``dirty`` a property, say)
    is read by its reader's own Python steps."""
    kind = spec[0]
    if not _layout_ok(type(spec[2] if kind == "postfix" else spec[1]), Joiner):
        return False
    if kind == "spamd":
        return _layout_ok(<type>(<tuple>spec[7])[1], Scan)
    if kind == "postfix":
        return _layout_ok(<type>(<tuple>spec[7])[0], Delivery) \
            and _layout_ok(<type>(<tuple>spec[7])[3], Attempt)
    if kind == "wrapper":
        return _layout_ok(<type>spec[3], WrapperEvent)
    return True


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
            prog, pid = _sub(tag, 0, j), _sub(tag, j + 1, n - 2)
    else:
        prog, pid = _sub(tag, 0, n - 1), u""
    cdef dict handlers = feed.handlers
    handle = handlers.get(prog, _UNSEEN)
    if handle is _UNSEEN:
        handle = feed.sink.handler(prog)
        handlers[prog] = handle
    # what the loop reads of this program's lines itself, asked once per program (as its
    # reader is found): none when its join or records would be misread (_inline_ok)
    cdef dict inlines = feed.inlines
    inline = inlines.get(prog, _UNSEEN)
    if inline is _UNSEEN:
        inline = getattr(handle, "inline", None)
        if inline is not None and not _inline_ok(<tuple>inline):
            inline = None  # the reader itself reads this program's lines
        inlines[prog] = inline
    if len(tags) > 50_000:
        tags.clear()
    info = (handle, pid, inline)
    tags[tag] = info
    return info


cdef inline bint _qid(str line, Py_ssize_t start, Py_ssize_t end):
    """``len(qid) >= 5 and qid.isalnum()``, not ``NOQUEUE`` nor ``warning``."""
    cdef Py_ssize_t k
    if end - start < 5:
        return False
    cdef unsigned int kind = PyUnicode_KIND(line)
    cdef const void* data = PyUnicode_DATA(line)
    for k in range(start, end):
        if kind == PyUnicode_1BYTE_KIND:
            if not _ALNUM[(<const unsigned char*>data)[k]]:
                return False
        elif not Py_UNICODE_ISALNUM(PyUnicode_READ(kind, data, k)):
            return False
    if end - start == 7 and (_starts(line, u"NOQUEUE", start)
                             or _starts(line, u"warning", start)):
        return False
    return True


cdef _postfix(tuple spec, object handle, object ts, str host, str pid, str line,
              Py_ssize_t i, Py_ssize_t src, Py_ssize_t no):
    """``postfix.reader``'s ``read`` for a queue id's line; else the reader itself."""
    cdef Joiner join
    cdef Py_ssize_t j = line.find(u": ", i)
    if j < 0:
        return  # no "QID: ": nothing the reader reads (smtpd's connect, disconnect)
    if not _qid(line, i, j):
        if j - i == 7 and _starts(line, u"warning", i):
            handle(ts, host, pid, _tail(line, i), src, no, line)
        return  # NOQUEUE, or not a queue id
    name, join, after, bodies, other = spec[1], spec[2], spec[3], spec[4], spec[5]
    step = (<dict>bodies).get(_sub(line, j + 2, j + 6), other)
    key = _atomic((host, _sub(line, i, j)))
    if step is spec[8]:
        took = _delivery_line(spec, join, name, key, ts, pid, line, j + 2, src, no)
    else:
        took = _message_line(spec, step, join, key, ts, line, j + 2)
    if took is None:
        took = step(join, name, key, ts, pid, _tail(line, j + 2), src, no, line)
    if took is not False and (took is not True or ts > join.now or join.dirty):
        _after(after, took, ts, src, no, line, join)


cdef object _JOIN_MESSAGE = _Joiner.message  # a join whose message is another: its own


cdef Message _own_message(Joiner join, tuple key, object ts):
    """A join's own ``message``: its record, unless of a class the loop would misread."""
    found = join.message(key, ts)
    if not _layout_ok(type(found), Message):
        raise TypeError(f"{type(found).__name__} redefines a slot of Message: the "
                        "compiled loop cannot read it (SPAMDRILL_PURE=1)")
    return found


cdef Message _message(Joiner join, tuple key, object ts):
    """``Joiner.message``: a queue file seen before, now its latest line, or a new one."""
    cdef Message msg
    messages = join.messages
    # an OrderedDict is a dict: read through the dict's own lookup, not a method call
    msg = (<dict>messages).get(key)
    if msg is None:
        if type(join).message is not _JOIN_MESSAGE:
            return _own_message(join, key, ts)
        msg = _new_message(key, ts)
        messages[key] = msg
        (<set>join.hosts).add(key[0])
        if len(messages) > join.s.max_open:
            messages.popitem(last=False)
            join.evicted += 1
        return msg
    messages.move_to_end(key)
    msg.last = ts
    return msg


cdef object _message_line(tuple spec, object step, Joiner join, tuple key, object ts,
                          str line, Py_ssize_t p):
    """Twins of ``postfix._message_id``, ``_client`` and ``_removed`` on the lines they
    read: True; None for any other line (their step reads it)."""
    cdef tuple steps = spec[6]
    if step is steps[0]:
        if not _starts(line, u"message-id=", p):
            return None
        _message(join, key, ts).mid = _tail(line, p + 11).strip()
    elif step is steps[1]:
        if not _starts(line, u"client=", p):
            return None
        _message(join, key, ts).client = _tail(line, p + 7).split(u",", 1)[0]
    elif step is steps[2]:
        if len(line) - p != 7 or not _starts(line, u"removed", p):
            return None
        msg = join.messages.pop(key, None)
        if msg is not None:
            msg.removed = ts
    elif step is steps[3]:
        return _queued(join, key, ts, line, p)
    else:
        return None
    return True


cdef object _queued(Joiner join, tuple key, object ts, str line, Py_ssize_t p):
    """``postfix._from`` on what ``_QUEUED`` matches (``from=<S>, size=N, nrcpt=N``, each
    number ``\\d``, the size at most 15 of them): True; None for any other line."""
    cdef Py_ssize_t n = len(line), e, k, d
    if not _starts(line, u"from=<", p):
        return None
    e = _upto(line, p + 6, n, u">")
    if not _starts(line, u">, size=", e):
        return None
    k = e + 8
    d = k
    while d < n and line[d].isdecimal():
        d += 1
    if d == k or d - k > 15 or not _starts(line, u", nrcpt=", d) \
            or d + 8 >= n or not line[d + 8].isdecimal():
        return None
    cdef Message msg = _message(join, key, ts)
    msg.sender, msg.size = _sub(line, p + 6, e), _int_at(line, k, d)
    return True


cdef _maildrop(tuple spec, object handle, object ts, str host, str pid, str line,
               Py_ssize_t i, Py_ssize_t src, Py_ssize_t no):
    """``maildrop.maildrop_reader``'s ``read``: a maildroprc's line kept unparsed, in time
    order (``TimeIndex.add``'s common case: not before the last); a logfile record's
    ``File:``/``!Err:`` by the reader itself."""
    if _starts(line, u"File: ", i) or _starts(line, u"!Err: ", i):
        handle(ts, host, pid, _tail(line, i), src, no, line)
        return
    cdef Joiner join = spec[1]
    after, index = spec[2], spec[3]
    _time_add(index, ts, _atomic((host, ts, _tail(line, i), src, no, line)))
    if ts > join.now or join.dirty:
        _after(after, True, ts, src, no, line, join)


cdef object _JOIN_WRAPPER = _Joiner.wrapper  # a join whose wrapper is another: its own


cdef _wrapper(tuple spec, object handle, object ts, str host, str pid, str line,
              Py_ssize_t i, Py_ssize_t src, Py_ssize_t no):
    """``maildrop.wrapper_reader``'s ``read`` of a spamdrill-deliver line: what
    ``_DELIVER`` matches (``QID: to=<T> from=<F> mda M outcome=O dsn=D rule=R``), read
    by index, and ``Joiner.wrapper``; any other line by the reader itself."""
    cdef Py_ssize_t n = len(line), q = _nonspace(line, i, n), t, f, m, o, d, r
    # the expression's \S+ can give back only the run's last character: its colon
    if q - i < 2 or line[q - 1] != u":" or not _starts(line, u" to=<", q):
        handle(ts, host, pid, _tail(line, i), src, no, line)
        return
    t = line.find(u">", q + 5)
    f = line.find(u">", t + 8) if t >= 0 and _starts(line, u" from=<", t + 1) else -1
    m = _nonspace(line, f + 6, n) if f >= 0 and _starts(line, u" mda ", f + 1) else -1
    o = _nonspace(line, m + 9, n) \
        if m > f + 6 and _starts(line, u" outcome=", m) else -1
    d = _nonspace(line, o + 5, n) if o > m + 9 and _starts(line, u" dsn=", o) else -1
    r = _nonspace(line, d + 6, n) if d > o + 5 and _starts(line, u" rule=", d) else -1
    if r <= d + 6:
        handle(ts, host, pid, _tail(line, i), src, no, line)
        return
    cdef Joiner join = spec[1]
    qid = _sub(line, i, q - 1)
    ev = _new_wrapper(spec[3], (host, ts, _line(src, no, line), qid, _sub(line, q + 5, t),
                                _sub(line, f + 6, m), _sub(line, m + 9, o),
                                _sub(line, o + 5, d), _sub(line, d + 6, r)))
    if type(join).wrapper is _JOIN_WRAPPER:
        _index_add(join.wrappers, qid, ev)
        join.wrapper_order.append((ts, qid))
    else:
        join.wrapper(ev)
    if ts > join.now or join.dirty:
        _after(spec[2], True, ts, src, no, line, join)


cdef object _NEVER = float("-inf")


cdef inline void _index_add(dict index, str name, object item):
    """``join._index``: ``item`` added to the list ``index`` holds for ``name``."""
    found = index.get(name)
    if found is None:
        index[name] = [item]
    else:
        (<list>found).append(item)


cdef inline void _time_add(object tindex, object ts, object item):
    """``TimeIndex.add``'s common case (not before the last); a step back by the method."""
    times = <list>tindex.ts
    if times and ts < times[len(times) - 1]:
        tindex.add(ts, item)
    else:
        times.append(ts)
        (<list>tindex.items).append(item)


cdef void _file(Joiner join, Scan scan):
    """``Joiner._file``: a scan kept for joining, by Message-ID, user and start; counted
    (``Analysis._scan``: its cheap test here, a scan that may be trouble by the call)."""
    cdef str mid = scan.mid, user = scan.user
    cdef dict open_mids = join.open_mids
    if mid and open_mids.get(mid) is scan:
        del open_mids[mid]
    if not (mid or scan.errors or scan.finished or user):
        return
    join.scans_seen += 1
    if mid and mid != u"(unknown)":
        _index_add(join.by_mid, mid, scan)
    if user:
        _index_add(join.by_user, user.lower(), scan)
    join.kept.append(scan)
    _time_add(join.by_start, scan.start, scan)
    on = join.on_scan
    if on is None:
        return
    fast = join.fast_scan
    if fast is None or (<tuple>fast)[0] is not on:
        on(scan)
        return
    count = (<tuple>fast)[1]
    count.scans += 1
    end = scan.end
    if scan.time_limit or scan.errors or \
            (end if end is not None else scan.last) - scan.start >= (<tuple>fast)[2]:
        (<tuple>fast)[3](scan)


cdef void _end_scan(Joiner join, Scan scan):
    """``Joiner.end_scan``."""
    del join.children[(scan.host, scan.pid)]
    _file(join, scan)


cdef void _saw(object spamd, str host, object ts, object gap):
    """``SpamdHosts.saw`` (for a line later than the host's last): its span and gaps."""
    cdef dict lasts = spamd.last
    last = lasts.get(host)
    if last is None:
        spamd.saw(host, ts)
    elif ts > last:
        if ts - last > gap:
            _time_add((<dict>spamd.gaps)[host], last, ts)
        lasts[host] = ts


cdef Scan _scan_line(Joiner join, int opens, str host, str pid, object ts, object ln,
                     object scan_class):
    """``Joiner.spamd_line``: ``opens`` 2 for a connection (a new scan), 1 for a message
    (a new scan if the child has none open), 0 for any other line of a scan."""
    spamd = join.spamd
    if ts > (<dict>spamd.last).get(host, _NEVER):
        _saw(spamd, host, ts, join.s.gap)
    child = _atomic((host, pid))
    children = join.children
    cdef Scan scan = (<dict>children).get(child)  # an OrderedDict: the dict's own lookup
    if opens == 2 or (scan is None and opens == 1):
        if scan is not None:
            _file(join, scan)
            del children[child]
        scan = _new_scan(scan_class, host, pid, ts, [ln])
        children[child] = scan
        return scan
    if scan is None:
        return None
    children.move_to_end(child)
    scan.lines.append(ln)
    scan.last = ts
    return scan


cdef enum:
    _CONN = 1  # the four characters after "spamd: " that begin a scan's line
    _PROC
    _VERDICT
    _RESULT


cdef int _scan_key(str line, Py_ssize_t k):
    """Which of a scan's lines ``line[k:k + 4]`` begins (``conn``; ``proc``, ``chec``;
    ``iden``, ``clea``; ``resu``), read in place: 0 for none."""
    if len(line) < k + 4:
        return 0
    cdef unsigned int kind = PyUnicode_KIND(line)
    cdef const void* data = PyUnicode_DATA(line)
    cdef Py_UCS4 a = PyUnicode_READ(kind, data, k), b = PyUnicode_READ(kind, data, k + 1)
    cdef Py_UCS4 c = PyUnicode_READ(kind, data, k + 2), d = PyUnicode_READ(kind, data, k + 3)
    if a == u"c":
        if b == u"o" and c == u"n" and d == u"n":
            return _CONN
        if b == u"h" and c == u"e" and d == u"c":
            return _PROC
        if b == u"l" and c == u"e" and d == u"a":
            return _VERDICT
    elif a == u"p":
        if b == u"r" and c == u"o" and d == u"c":
            return _PROC
    elif a == u"i":
        if b == u"d" and c == u"e" and d == u"n":
            return _VERDICT
    elif a == u"r":
        if b == u"e" and c == u"s" and d == u"u":
            return _RESULT
    return 0


cdef object _scan_step(tuple fast, Joiner join, object ts, str host, str pid, str line,
                       Py_ssize_t i, Py_ssize_t src, Py_ssize_t no, int key):
    """``spamd.py``'s steps of a scan (``_connection``, ``_processing``, ``_verdict_line``,
    ``_result``), their twins: True, False or a Skip, as they return."""
    scan_class, truncated = fast[1], fast[6]
    cdef Scan scan
    cdef Py_ssize_t b = i + 7
    cdef str tests
    cdef bint ok, spam
    if key == _CONN:
        if not _starts(line, u"connection from ", b):
            return False
        _scan_line(join, 2, host, pid, ts, _line(src, no, line), scan_class)
        return True
    cdef Py_ssize_t n = len(line)
    cdef Py_ssize_t at[11]
    if key == _PROC:
        if _starts(line, u"processing message ", b):
            ok = _processing_at(line, b + 19, n, at)
        elif _starts(line, u"checking message ", b):
            ok = _processing_at(line, b + 17, n, at)
        else:
            return False
        if not ok:
            return truncated
        scan = _scan_line(join, 1, host, pid, ts, _line(src, no, line), scan_class)
        if scan is not None:
            mid, user = _sub(line, at[0], at[1]), _sub(line, at[2], at[3])
            scan.mid, scan.user = mid, user
            join.open_mids[mid] = scan
        return True
    if key == _VERDICT:
        if _starts(line, u"identified spam ", b):
            spam = True
            ok = _verdict_at(line, b + 16, n, at)
        elif _starts(line, u"clean message ", b):
            spam = False
            ok = _verdict_at(line, b + 14, n, at)
        else:
            return False
        if not ok:
            return truncated
        scan = _scan_line(join, 0, host, pid, ts, _line(src, no, line), scan_class)
        if scan is not None:
            seconds, size = _float_at(line, at[2], at[3]), _int_at(line, at[4], at[5])
            user = _sub(line, at[0], at[1])
            scan.seconds, scan.size, scan.spam, scan.end = seconds, size, spam, ts
            scan.user = scan.user or user
            scan.finished = True
        return True
    # _RESULT
    if not _starts(line, u"result: ", b):
        return False
    if not _result_at(line, b + 8, n, at):
        return truncated
    scan = _scan_line(join, 0, host, pid, ts, _line(src, no, line), scan_class)
    if scan is None:
        return True
    scan.seconds, scan.size = _float_at(line, at[3], at[4]), _int_at(line, at[5], at[6])
    scan.spam, scan.end = line[at[0]] == u"Y", ts
    scan.user = scan.user or _sub(line, at[7], at[8])
    scan.finished = True
    scan.mid = scan.mid or _sub(line, at[9], at[10])
    tests = _sub(line, at[1], at[2])
    if tests:
        found = tuple(tests.split(u","))
        scan.tests = found
        if u"TIME_LIMIT_EXCEEDED" in found:
            scan.time_limit = True
    else:
        scan.tests = ()
    _end_scan(join, scan)
    return True


cdef object _prefork(tuple fast, Joiner join, object ts, str host, str pid, str line,
                     Py_ssize_t i, Py_ssize_t src, Py_ssize_t no):
    """``spamd._prefork``: ``--max-children`` and child-state lines."""
    if line.find(u"max-children", i) >= 0:
        ln = _line(src, no, line)
        _time_add(join.spamd.max_children, ts, ln)
    elif _starts(line, u"child states: ", i + 9):
        ln = _line(src, no, line)
        _time_add(join.spamd.states, ts, (_tail(line, i + 23).strip(), ln))
    else:
        return False
    _scan_line(join, 0, host, pid, ts, ln, fast[1])
    return True


cdef _spamd(tuple spec, object ts, str host, str pid, str line, Py_ssize_t i,
            Py_ssize_t src, Py_ssize_t no):
    """``spamd.reader``'s ``read``: a scan's lines and spamd's prefork lines here (their
    steps' twins), any other line by its step in ``spamd.py``."""
    cdef Joiner join = spec[1]
    after, steps, fast = spec[2], spec[3], spec[7]
    cdef int key
    if _starts(line, u"spamd: ", i):
        key = _scan_key(line, i + 7)
        if key:
            took = _scan_step(fast, join, ts, host, pid, line, i, src, no, key)
        else:
            step = (<dict>steps).get(_sub(line, i + 7, i + 11), spec[4])
            took = step(join, ts, host, pid, _tail(line, i), src, no, line)
    elif _starts(line, u"prefork: ", i):
        took = _prefork(fast, join, ts, host, pid, line, i, src, no)
    else:
        took = spec[6](join, ts, host, pid, _tail(line, i), src, no, line)
    if took is not False and (took is not True or ts > join.now or join.dirty):
        _after(after, took, ts, src, no, line, join)


cdef inline bint _region_is(str line, Py_ssize_t s, Py_ssize_t e, str other):
    """``line[s:e] == other``, without making ``line[s:e]``."""
    return e - s == len(other) and _starts(line, other, s)


cdef bint _fields(str line, Py_ssize_t n, Py_ssize_t* f):
    """The fields of ``line.split(None, 5)``: f[0:4] the bounds of the 4th and 5th (host,
    tag), f[4] where the 6th starts; False unless there are six. A line of one byte per
    character (most are) is read through a table of its spaces."""
    cdef unsigned int kind = PyUnicode_KIND(line)
    cdef const void* data = PyUnicode_DATA(line)
    cdef Py_ssize_t i = 0, k
    for k in range(5):
        while i < n and _space(kind, data, i):
            i += 1
        if i >= n:
            return False
        if k >= 3:
            f[2 * k - 6] = i
        while i < n and not _space(kind, data, i):
            i += 1
        if k >= 3:
            f[2 * k - 5] = i
    while i < n and _space(kind, data, i):
        i += 1
    f[4] = i
    return i < n


def fast(object feed, list lines, object parser):
    """``Feed.fast(lines, parser)``: each line's envelope, to its program's handler."""
    cdef Py_ssize_t src = feed.inp.index
    cdef Py_ssize_t no = feed.no
    cdef dict tags = feed.tags
    stamp_of = parser.stamp
    clock = parser.clock
    cdef dict cache = clock._cache
    cdef bint twin = (type(parser).stamp, type(clock).__call__,
                      type(clock)._convert) == _TWINNED and parser.cache is cache
    cdef str prev = "\x00"
    # the last line's host and tag, and what the tag read: a line's host and tag are most
    # often the line before's, taken again without a new string (or its hash)
    cdef str line, tag, host, last_host = "", last_tag = ""
    cdef tuple info, last_info = None
    cdef Py_ssize_t n, i, s3 = 0, e3 = 0, s4 = 0, e4 = 0
    cdef Py_ssize_t f[5]
    cdef bint ok
    ts = None
    last = feed.last
    entries = feed.entries
    for line in lines:
        no += 1
        n = len(line)
        ok = False
        if n > 16 and line[15] == u" ":
            ok = _fields(line, n, f)
            s3, e3, s4, e4, i = f[0], f[1], f[2], f[3], f[4]
        if ok:
            if not _starts(line, prev, 0):
                prev = _sub(line, 0, 15)
                ts = _stamp(clock, cache, prev) if twin else stamp_of(prev)
            if last_info is not None and _region_is(line, s4, e4, last_tag):
                info = last_info
            else:
                tag = _sub(line, s4, e4)
                info = tags.get(tag)
                if info is None:
                    info = _learn(feed, tags, tag)
                last_tag, last_info = tag, info
            if info is not None and ts is not None:
                entries += 1
                last = ts
                handle = info[0]
                if handle is not None:
                    if _region_is(line, s3, e3, last_host):
                        host = last_host
                    else:
                        host = last_host = _sub(line, s3, e3)
                    spec = info[2]
                    if spec is None:
                        handle(ts, host, info[1], _tail(line, i), src, no, line)
                    elif (<tuple>spec)[0] == "postfix":
                        _postfix(spec, handle, ts, host, info[1], line, i, src, no)
                    elif (<tuple>spec)[0] == "spamd":
                        _spamd(spec, ts, host, info[1], line, i, src, no)
                    elif (<tuple>spec)[0] == "wrapper":
                        _wrapper(spec, handle, ts, host, info[1], line, i, src, no)
                    else:
                        _maildrop(spec, handle, ts, host, info[1], line, i, src, no)
                continue
        feed.no, feed.last, feed.entries = no - 1, last, entries
        feed.one(line)
        prev, last, entries = "\x00", feed.last, feed.entries
    feed.no, feed.last, feed.entries = no, last, entries
