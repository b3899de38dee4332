# Postfix's delivery line read by index, the twin of postfix.py's _DELIVERY: each step what
# the expression's engine does on that shape (an optional group that starts but fails
# leaves a literal that cannot match either, so nothing backtracks), \w by
# Py_UNICODE_ISALNUM or "_", as ``re`` reads str patterns; then the delivery handed to the
# join as ``Joiner.delivery`` takes it. Included by _fastloop.pyx.

cdef inline Py_ssize_t _upto(str s, Py_ssize_t k, Py_ssize_t n, Py_UCS4 c):
    """The end of ``[^c]*`` from ``k``."""
    while k < n and s[k] != c:
        k += 1
    return k


cdef inline Py_ssize_t _num_then(str s, Py_ssize_t k, Py_ssize_t n, str then):
    """``_NUM`` at ``k`` and the literal ``then`` after it: the literal's end, or -1."""
    cdef Py_ssize_t e = _num(s, k, n)
    if e < 0 or not _starts(s, then, e):
        return -1
    return e + len(then)


cdef Py_ssize_t _options(str s, Py_ssize_t k, Py_ssize_t n, Py_ssize_t* at):
    """``(?:orig_to=<([^>]*)>, )?relay=([^,]*), (?:conn_use=\\d+, )?delay=`` at ``k``: at[2:6]
    the original recipient's (-1: none) and the relay's bounds; where the delay starts, or
    -1."""
    cdef Py_ssize_t e
    at[2] = at[3] = -1
    if _starts(s, u"orig_to=<", k):
        e = _upto(s, k + 9, n, u">")
        if not _starts(s, u">, ", e):
            return -1
        at[2], at[3] = k + 9, e
        k = e + 3
    if not _starts(s, u"relay=", k):
        return -1
    e = _upto(s, k + 6, n, u",")
    if not _starts(s, u", ", e):
        return -1
    at[4], at[5] = k + 6, e
    k = e + 2
    if _starts(s, u"conn_use=", k):
        e = _digits(s, k + 9, n)
        if e == k + 9 or not _starts(s, u", ", e):
            return -1
        k = e + 2
    if not _starts(s, u"delay=", k):
        return -1
    return k + 6


cdef Py_ssize_t _delays(str s, Py_ssize_t k, Py_ssize_t n, Py_ssize_t* at):
    """``(NUM), delays=(NUM)/(NUM)/(NUM)/(NUM), `` at ``k``: at[6:16]; the end, or -1."""
    cdef int g
    at[6] = k
    k = _num_then(s, k, n, u", delays=")
    if k < 0:
        return -1
    at[7] = k - 9
    for g in range(4):  # a/b/c/d
        at[8 + 2 * g] = k
        k = _num_then(s, k, n, u"/" if g < 3 else u", ")
        if k < 0:
            return -1
        at[9 + 2 * g] = k - (1 if g < 3 else 2)
    return k


cdef bint _delivery_at(str s, Py_ssize_t p, Py_ssize_t n, Py_ssize_t* at):
    """``_DELIVERY`` at ``p``: at[0:22], the bounds of its groups in order (to, orig_to
    (-1: none), relay, delay, a, b, c, d, dsn, status, text)."""
    cdef Py_ssize_t k, e, w
    if not _starts(s, u"to=<", p):
        return False
    e = _upto(s, p + 4, n, u">")
    if not _starts(s, u">, ", e):
        return False
    at[0], at[1] = p + 4, e
    k = _options(s, e + 3, n, at)
    if k < 0:
        return False
    k = _delays(s, k, n, at)
    if k < 0:
        return False
    if _starts(s, u"tls=", k):  # \S+ then ", ": the run's last character is the comma
        w = _nonspace(s, k + 4, n)
        if w - 1 <= k + 4 or s[w - 1] != u"," or w >= n or s[w] != u" ":
            return False
        k = w + 1
    if not _starts(s, u"dsn=", k):
        return False
    e = k + 4
    while e < n and (s[e] == u"." or s[e].isdecimal()):
        e += 1
    if e == k + 4 or not _starts(s, u", status=", e):
        return False
    at[16], at[17] = k + 4, e
    k = e + 9
    e = k
    while e < n and (s[e].isalnum() or s[e] == u"_"):
        e += 1
    if e == k or not _starts(s, u" (", e) or n - 1 < e + 2 or s[n - 1] != u")":
        return False
    at[18], at[19], at[20], at[21] = k, e, e + 2, n - 1
    return True


cdef object _delivery_line(tuple spec, Joiner join, str name, tuple key, object ts,
                           str pid, str line, Py_ssize_t p, Py_ssize_t src, Py_ssize_t no):
    """``postfix._delivery`` and ``Joiner.delivery``, their twins: True, or the Skip of a
    line cut short."""
    cdef Py_ssize_t at[22]
    cdef tuple kinds = spec[7]
    if not _delivery_at(line, p, len(line), at):
        return kinds[2]
    to = _sub(line, at[0], at[1])
    d = _float_at(line, at[14], at[15])
    ev = _new_delivery(kinds[0], (
        key, ts, name, pid, to, _sub(line, at[2], at[3]) if at[2] >= 0 else u"",
        _sub(line, at[4], at[5]), _float_at(line, at[6], at[7]),
        (_float_at(line, at[8], at[9]), _float_at(line, at[10], at[11]),
         _float_at(line, at[12], at[13]), d),
        _sub(line, at[16], at[17]), _sub(line, at[18], at[19]), _sub(line, at[20], at[21]),
        _line(src, no, line)))
    cdef Message msg = _message(join, key, ts)
    cdef list attempts = msg.attempts
    cdef Py_ssize_t number = 1
    cdef Attempt a
    for a in attempts:
        if (<Delivery?>a.delivery).to == to:
            number += 1
    cdef Attempt attempt = _new_attempt(kinds[3], msg, ev, ts - d, ts, number)
    warnings = join.warnings
    if warnings:
        attempt.warnings = warnings.pop((key[0], name, pid), ())
    attempts.append(attempt)
    if len(attempts) > 50:  # a message retried for days: keep the recent tries
        del attempts[:10]
    pending = join.pending
    if not pending:
        join.dirty = True
    pending.append(attempt)
    return True


def delivery_fields(str body):
    """What the reader above finds in a delivery line's text after ``QID: ``, as
    ``_DELIVERY``'s groups would give it, or None: for the tests."""
    cdef Py_ssize_t at[22]
    cdef int g
    if not _delivery_at(body, 0, len(body), at):
        return None
    return tuple([_sub(body, at[2 * g], at[2 * g + 1]) if at[2 * g] >= 0 else None
                  for g in range(11)])
