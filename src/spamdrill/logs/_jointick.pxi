# The join's clock after a line the join took (``Analysis._tick``, ``Joiner.advance``), the
# twin of those methods for the common case: an attempt whose late window has passed is
# associated (``Joiner._associate``: its scans by Message-ID, its wrappers by queue id), an
# attempt delivered in time and scanned (``diagnose.plain``) is counted
# (``Counts.plain``, ``Counts._bucket``) and let go (``Attempt.release``) here, in the
# order the Python loop takes them; any other attempt goes to ``Joiner._context`` and
# ``Analysis._attempt``, the windows to ``Joiner._trim``, episodes to
# ``Episodes.advance``, as in Python. Included by _fastloop.pyx.
#
# ``Analysis`` publishes what this needs in ``Joiner.fast_tick``: (its ``_after``, itself,
# its ``Counts``, the ``plain`` test it gave the join, the thresholds' ``slow`` and
# ``filtered``, the bucket's seconds, its ``Episodes``, ``spamdhosts.NO_CONTEXT``, and the
# ``scanned`` words for a filtered and an unfiltered delivery, ``Counter``, the thresholds'
# ``size_limit`` and the ``scanned`` word for a message too large to scan).


cdef inline bint _in_time(Scan scan, double end):
    """``diagnose.in_time``."""
    if not scan.finished:
        return False
    if scan.start > end:
        return False
    e = scan.end
    return e is not None and e <= end + 1.0


cdef bint _plain(Attempt attempt, object slow, object filtered):
    """``diagnose.plain``."""
    cdef Delivery d = <Delivery?>attempt.delivery
    cdef Scan scan
    if d.status != u"sent" or (<tuple>d.delays)[3] >= slow:
        return False
    if d.agent not in filtered:
        return True
    cdef double end = attempt.end
    for scan in attempt.scans:
        if _in_time(scan, end):
            return True
    return False


cdef object _upper(Attempt attempt, double late, double skew):
    """``Joiner._upper``."""
    cdef Attempt later
    cdef Delivery d
    upper = attempt.end + late
    cdef list attempts = (<Message?>attempt.message).attempts
    if len(attempts) > 1:
        to = (<Delivery?>attempt.delivery).to
        number = attempt.number
        for later in attempts:
            d = <Delivery?>later.delivery
            if d.to == to and later.number > number:
                return min(upper, later.start - skew)
    return upper


cdef list _by_mid(Joiner join, Attempt attempt, object a, object b):
    """``Joiner._scans_by_mid``."""
    cdef Scan s, running
    cdef list found = []
    mid = (<Message?>attempt.message).mid
    if not mid:
        return found
    scans = (<dict>join.by_mid).get(mid)
    if scans is not None:
        for s in <list>scans:
            if not s.claimed and a <= s.start <= b:
                found.append(s)
    running = (<dict>join.open_mids).get(mid)
    if running is not None and a <= running.start <= b:
        found.append(running)
    return found


cdef object _associate(tuple ft, Joiner join, Attempt attempt, double skew, double late):
    """``Joiner._associate``: the attempt, its ``plain`` set when it is plain."""
    cdef Scan scan
    a = attempt.start - skew
    b = _upper(attempt, late, skew)
    cdef list scans = _by_mid(join, attempt, a, b)
    attempt.scans = scans
    if scans:
        attempt.joined_by = u"message-id"
        for scan in scans:
            scan.claimed = True
            scan.attempt = attempt
    wrappers = join.wrappers
    if wrappers:
        found = (<dict>wrappers).get((<Message?>attempt.message).key[1])
        if found:
            to = (<Delivery?>attempt.delivery).to
            attempt.wrappers = [w for w in found if w.to == to]
    test = join.plain
    if test is not None:
        if (_plain(attempt, ft[4], ft[5]) if test is ft[3] else test(attempt)):
            attempt.plain = True
            return attempt
    join._context(attempt, a, b)
    return attempt


cdef inline void _bump(object counter, object key):
    """``counter[key] += 1`` on a ``Counter``, by the dict's own lookup and store: a
    Counter defines ``__delitem__``, which sends every store through a Python-level slot
    (as much as the rest of counting a delivery)."""
    cdef dict d = <dict>counter
    n = d.get(key)
    d[key] = 1 if n is None else n + 1


cdef void _count_plain(tuple ft, Attempt attempt, object scanned):
    """``Counts.plain`` and ``Counts._bucket``."""
    cdef Scan scan
    count = ft[2]
    count.attempts += 1
    _bump(count.fates, u"delivered")
    _bump(count.scanned, scanned)
    end = attempt.end
    key = int(end // 3600)
    cdef dict hours = count.hours
    hour = hours.get(key)
    if hour is None:
        hour = hours[key] = ft[10]()
    _bump(hour, u"delivered")
    key = int(end // ft[6])
    cdef dict buckets = count.buckets
    cdef list bl = buckets.get(key)
    if bl is None:
        bl = buckets[key] = [0.0] * 12
    cdef tuple delays = (<Delivery?>attempt.delivery).delays
    cdef double a = delays[0], q = delays[1], c = delays[2], d = delays[3]
    cdef double b5 = bl[5], b6 = bl[6], b7 = bl[7], b8 = bl[8], duration
    bl[0] = <double>bl[0] + 1
    bl[1] = <double>bl[1] + a
    bl[2] = <double>bl[2] + q
    bl[3] = <double>bl[3] + c
    bl[4] = <double>bl[4] + d
    bl[5] = a if a > b5 else b5  # max(b5, a): the first unless the second is greater
    bl[6] = q if q > b6 else b6
    bl[7] = c if c > b7 else b7
    bl[8] = d if d > b8 else b8
    for scan in attempt.scans:
        e = scan.end
        duration = (e if e is not None else scan.last) - scan.start
        bl[9] = <double>bl[9] + duration
        bl[10] = duration if duration > <double>bl[10] else <double>bl[10]
        bl[11] = <double>bl[11] + 1


from spamdrill.logs.diagnose import _outer_modes


cdef object _quiet(tuple ft, Attempt attempt):
    """``diagnose.quiet`` for an attempt ``plain`` took: its ``scanned`` when its wrapper
    lines said all was well and its text names no mode (``_scanned``'s answer for a plain
    attempt: not filtered, too large to scan, or scanned in time); None: diagnose it."""
    cdef Delivery d = <Delivery?>attempt.delivery
    cdef WrapperEvent w
    cdef Scan scan
    if d.dsn == u"5.1.1" or _outer_modes(d.text):
        return None
    cdef str mda
    for w in attempt.wrappers:
        mda = w.mda
        if mda.startswith(u"status=") and mda != u"status=0" and w.outcome != u"defer":
            return None
    if d.agent not in ft[5]:
        return ft[11]
    size = (<Message?>attempt.message).size
    if size is not None and size >= ft[12]:
        return ft[13]
    cdef double end = attempt.end
    for scan in attempt.scans:
        if _in_time(scan, end):
            return ft[9]
    return None


cdef void _release(tuple ft, Attempt attempt):
    """``Attempt.release``."""
    cdef Message msg
    attempt.scans = attempt.warnings = attempt.wrappers = attempt.maildrop = \
        attempt.spamc = ()
    attempt.spamd = ft[8]
    msg = <Message?>attempt.message
    if msg.removed is not None:
        attempts = <list>msg.attempts
        if attempt in attempts:
            attempts.remove(attempt)


from bisect import bisect_left as _bisect
from spamdrill.logs.join import Joiner as _Joiner

cdef object _PY_TRIM = _Joiner._trim  # a join whose _trim is another runs its own


cdef inline Py_ssize_t _bisect_left(list a, object x, Py_ssize_t lo):
    return _bisect(a, x, lo)


cdef void _drop_before(object tindex, object ts):
    """``TimeIndex.drop_before``."""
    cdef list times = tindex.ts
    cdef Py_ssize_t lo = _bisect_left(times, ts, <Py_ssize_t>tindex.lo)
    if lo > 4096 and lo * 2 > len(times):
        del times[:lo]
        del (<list>tindex.items)[:lo]
        lo = 0
    tindex.lo = lo


cdef void _forget(Joiner join, Scan scan):
    """``Joiner._forget``."""
    cdef dict index
    cdef list scans
    for index, name in ((join.by_mid, scan.mid), (join.by_user, scan.user.lower())):
        scans = index.get(name)
        if scans is not None:
            if scan in scans:
                scans.remove(scan)
            if not scans:
                del index[name]


cdef void _trim(Joiner join):
    """``Joiner._trim``."""
    cdef Scan scan
    now = join.now
    settings = join.s
    oldest = now - settings.horizon
    kept = join.kept
    max_scans = settings.max_scans
    while kept and ((<Scan?>kept[0]).start < oldest or len(kept) > max_scans):
        _forget(join, kept.popleft())
    idle = now - settings.idle
    messages = join.messages
    while messages:  # least recently seen first
        key = next(iter(messages))
        if (<Message?>messages[key]).last >= idle:
            break
        del messages[key]
        join.evicted += 1
    stale = now - settings.late_window
    children = join.children
    while children:  # children quiet that long ended (killed, or a PING): file them
        child = next(iter(children))
        scan = children[child]
        if max(scan.last, scan.start) >= stale:
            break
        del children[child]
        _file(join, scan)
    _drop_before(join.by_start, oldest)
    _drop_before(join.maildrop, oldest)
    _drop_before(join.spamc, oldest)
    _drop_before(join.timed_wrappers, oldest)
    spamd = join.spamd
    for gaps in (<dict>spamd.gaps).values():
        _drop_before(gaps, oldest)
    _drop_before(spamd.max_children, oldest)
    _drop_before(spamd.states, oldest)
    order = join.wrapper_order
    if order:
        wrappers = join.wrappers
        while order and (<tuple>order[0])[0] < oldest:
            (<dict>wrappers).pop((<tuple>order.popleft())[1], None)


cdef void _tick(tuple ft, Joiner join, object ts):
    """``Analysis._tick``."""
    cdef Attempt attempt
    if ts > join.now:
        join.now = ts
    join.dirty = False
    now = join.now
    pending = join.pending
    settings = join.s
    cdef double late = settings.late_window, skew = settings.skew
    cdef list ready = join.ready
    while pending and (<Attempt?>pending[0]).end + late < now:
        ready.append(_associate(ft, join, pending.popleft(), skew, late))
    if now >= join.next_trim:
        if type(join)._trim is _PY_TRIM:
            _trim(join)
        else:
            join._trim()
        join.next_trim = now + 10.0
    if ready:
        analysis = ft[1]
        for attempt in ready:
            if attempt.plain:
                if not attempt.wrappers:
                    scanned = ft[9] if (<Delivery?>attempt.delivery).agent in ft[5] \
                        else ft[11]
                else:
                    scanned = _quiet(ft, attempt)
                if scanned is not None:
                    _count_plain(ft, attempt, scanned)
                    _release(ft, attempt)
                    continue
            analysis._attempt(attempt)
        ready.clear()
    episodes = ft[7]
    heap = episodes.heap
    if heap and (<tuple>(<list>heap)[0])[0] + episodes.delay < join.now:
        episodes.advance(join.now)


cdef inline void _after(object after, object took, object ts, Py_ssize_t src,
                        Py_ssize_t no, str line, Joiner join):
    """A reader's ``after(took, ...)``: the clock moved here when ``after`` is the
    analysis's and the join took the line."""
    ft = join.fast_tick
    if took is True and ft is not None and (<tuple>ft)[0] is after:
        _tick(<tuple>ft, join, ts)
    else:
        after(took, ts, src, no, line)
