# spamd's scan lines read by index, twins of spamd.py's expressions (_PROCESSING,
# _VERDICT, _RESULT, _EXTRA): each step below is what the expression's engine does on
# that shape (every repeat there ends where the next literal cannot start, so it never
# backtracks), with the same classes: \S and \s by Py_UNICODE_ISSPACE, \d by
# Py_UNICODE_ISDECIMAL, as ``re`` reads str patterns. Included by _fastloop.pyx.

cdef inline Py_ssize_t _nonspace(str s, Py_ssize_t k, Py_ssize_t n):
    """The end of ``\\S*`` from ``k``."""
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef const void* data = PyUnicode_DATA(s)
    while k < n and not _space(kind, data, k):
        k += 1
    return k


cdef inline Py_ssize_t _digits(str s, Py_ssize_t k, Py_ssize_t n):
    """The end of ``\\d*`` from ``k`` (of one byte per character, only 0-9 are decimal)."""
    cdef const unsigned char* data
    if PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND:
        data = <const unsigned char*>PyUnicode_DATA(s)
        while k < n and 48 <= data[k] <= 57:
            k += 1
        return k
    while k < n and s[k].isdecimal():
        k += 1
    return k


cdef inline Py_ssize_t _num(str s, Py_ssize_t k, Py_ssize_t n):
    """``_NUM`` (``\\d{1,15}(?:\\.\\d{1,15})?``) at ``k``: its end, or -1. A fraction it
    cannot take is left for the literal after it to fail on, as the engine does."""
    cdef Py_ssize_t e = _digits(s, k, n), f
    if e == k or e - k > 15:
        return -1
    if e < n and s[e] == u".":
        f = _digits(s, e + 1, n)
        if f > e + 1 and f - e - 1 <= 15:
            return f
    return e


cdef bint _processing_at(str s, Py_ssize_t p, Py_ssize_t n, Py_ssize_t* at):
    """``_PROCESSING`` after its first two words (at ``p``): at[0:4] the Message-ID's
    and the user's bounds."""
    cdef Py_ssize_t e = _nonspace(s, p, n), t, k, d
    if e == p:
        return False
    t = e
    if _starts(s, u" aka ", e):
        t = _nonspace(s, e + 5, n)
        if t == e + 5:
            return False
    if not _starts(s, u" for ", t):
        return False
    t += 5
    k = s.rfind(u":", t)  # the lazy user ends at the one colon the rest can follow
    if k < 0:
        return False
    d = _digits(s, k + 1, n)
    if d == k + 1 or d != n:
        return False
    at[0], at[1], at[2], at[3] = p, e, t, k
    return True


cdef inline Py_ssize_t _score(str s, Py_ssize_t k, Py_ssize_t n):
    """The end of ``[-\\d.]*`` from ``k``."""
    while k < n and (s[k] == u"-" or s[k] == u"." or s[k].isdecimal()):
        k += 1
    return k


cdef bint _verdict_at(str s, Py_ssize_t p, Py_ssize_t n, Py_ssize_t* at):
    """``_VERDICT`` after its first two words (at ``p``): at[0:6] the user's, the seconds'
    and the size's bounds."""
    cdef Py_ssize_t q, r, t, k, d, e, g, h
    if p >= n or s[p] != u"(":
        return False
    q = _score(s, p + 1, n)
    if q == p + 1 or q >= n or s[q] != u"/":
        return False
    r = _score(s, q + 1, n)
    if r == q + 1 or not _starts(s, u") for ", r):
        return False
    t = r + 6
    k = s.rfind(u":", t)
    if k < 0:
        return False
    d = _digits(s, k + 1, n)
    if d == k + 1 or not _starts(s, u" in ", d):
        return False
    e = _num(s, d + 4, n)
    if e < 0 or not _starts(s, u" seconds, ", e):
        return False
    g = e + 10
    h = _digits(s, g, n)
    if h == g or h - g > 15 or h + 7 != n or not _starts(s, u" bytes.", h):
        return False
    at[0], at[1], at[2], at[3], at[4], at[5] = t, k, d + 4, e, g, h
    return True


cdef bint _result_at(str s, Py_ssize_t p, Py_ssize_t n, Py_ssize_t* at):
    """``_RESULT`` then ``_EXTRA`` and ``,mid=`` in its extra field, after ``result: `` (at
    ``p``): at[0:11] the flag, the tests', the seconds', the size's, the user's and the
    Message-ID's bounds (its end -1: the extra field's end)."""
    cdef Py_ssize_t q, d, t, te, xs, xe, e, g, h, u, ue, m
    if p >= n or (s[p] != u"Y" and s[p] != u"."):
        return False
    q = p + 1
    while q < n and s[q] == u" ":
        q += 1
    if q == p + 1:
        return False
    if q < n and s[q] == u"-":
        q += 1
    d = _digits(s, q, n)
    if d == q or not _starts(s, u" - ", d):
        return False
    t = d + 3
    te = _nonspace(s, t, n)
    if te >= n or s[te] != u" ":
        return False
    xs = te + 1
    xe = _nonspace(s, xs, n)
    if not s.startswith(u"scantime=", xs, xe):
        return False
    e = _num(s, xs + 9, xe)
    if e < 0 or not s.startswith(u",size=", e, xe):
        return False
    g = e + 6
    h = _digits(s, g, xe)
    if h == g or h - g > 15 or not s.startswith(u",user=", h, xe):
        return False
    u = ue = h + 6
    while ue < xe and s[ue] != u",":
        ue += 1
    m = s.find(u",mid=", xs, xe)
    if ue >= xe or m < 0:
        return False
    at[0], at[1], at[2], at[3], at[4], at[5], at[6] = p, t, te, xs + 9, e, g, h
    at[7], at[8], at[9] = u, ue, m + 5
    at[10] = s.find(u",", m + 5, xe)
    if at[10] < 0:
        at[10] = xe
    return True


def scan_fields(str kind, str msg):
    """What the readers above find in spamd's text ``msg`` (``spamd: ...``), as the
    expressions' groups would give it, or None where they would not match: for the tests,
    which compare it with ``spamd.py``'s expressions."""
    cdef Py_ssize_t n = len(msg)
    cdef Py_ssize_t at[11]
    if kind == u"processing":
        p = 7 + (19 if _starts(msg, u"processing message ", 7) else 17)
        if not _processing_at(msg, p, n, at):
            return None
        return _sub(msg, at[0], at[1]), _sub(msg, at[2], at[3])
    if kind == u"verdict":
        p = 7 + (16 if _starts(msg, u"identified spam ", 7) else 14)
        if not _verdict_at(msg, p, n, at):
            return None
        return _sub(msg, at[0], at[1]), _sub(msg, at[2], at[3]), _sub(msg, at[4], at[5])
    if not _result_at(msg, 15, n, at):
        return None
    return (msg[at[0]], _sub(msg, at[1], at[2]), _sub(msg, at[3], at[4]),
            _sub(msg, at[5], at[6]), _sub(msg, at[7], at[8]), _sub(msg, at[9], at[10]))
