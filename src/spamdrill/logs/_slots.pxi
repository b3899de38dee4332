# The join's objects as the C structures they are: ``Joiner`` and its records (``Scan``,
# ``Message``, ``Attempt``, ``Delivery``, ``WrapperEvent``) are classes of ``__slots__``
# only, so each instance is a PyObject header and one object pointer per slot, at an
# offset CPython fixed when it made the class (the slots' names in sorted order). Declared
# here as such, a typed variable's ``scan.user`` is read and written at its offset, where
# ``getattr`` took the generic path (the type's method cache, the member descriptor, its
# getter) for each of the dozens of reads and writes a line costs.
#
# The structures below are checked against the classes at import, slot by slot and size for
# size: if a class gains, loses or renames a slot, or takes a ``__dict__``, the import fails
# with ImportError and ``reader.compiled()`` answers None (the pure loop reads instead). A
# subclass keeps its base's slots where they are, but may redefine one (a property named
# ``dirty``): the loop reads a program's lines itself only when its join and the record
# classes its reader makes redefine none (``_layout_ok``, asked once per class), and any
# other join's lines go to its reader's Python steps. So a mismatch can cost speed, not
# a wrong read. Attributes declared nowhere here (the classes' methods and properties) are
# looked up as before. Included by _fastloop.pyx.

cdef extern from *:
    """
    #include <stddef.h>

    typedef struct { const char* name; Py_ssize_t offset; } spamdrill_slot;

    #define SPAMDRILL_ENTRY(T, f) {#f, offsetof(T, f)},

    /* each class's slots, in CPython's order (sorted by name) */
    #define SPAMDRILL_JOINER(X, T) X(T, by_mid) X(T, by_start) X(T, by_user) \
        X(T, children) X(T, dirty) X(T, evicted) X(T, fast_scan) X(T, fast_tick) \
        X(T, hosts) X(T, kept) X(T, maildrop) X(T, messages) X(T, next_trim) X(T, now) \
        X(T, on_scan) X(T, open_mids) X(T, pending) X(T, plain) X(T, ready) X(T, s) \
        X(T, scans_seen) X(T, spamc) X(T, spamd) X(T, timed_wrappers) X(T, warnings) \
        X(T, wrapper_order) X(T, wrappers)
    #define SPAMDRILL_SCAN(X, T) X(T, attempt) X(T, claimed) X(T, end) X(T, errors) \
        X(T, finished) X(T, host) X(T, last) X(T, lines) X(T, mid) X(T, pid) \
        X(T, seconds) X(T, size) X(T, spam) X(T, start) X(T, tests) X(T, time_limit) \
        X(T, user)
    #define SPAMDRILL_MESSAGE(X, T) X(T, attempts) X(T, client) X(T, key) X(T, last) \
        X(T, mid) X(T, removed) X(T, sender) X(T, size)
    #define SPAMDRILL_ATTEMPT(X, T) X(T, delivery) X(T, end) X(T, joined_by) \
        X(T, maildrop) X(T, message) X(T, number) X(T, plain) X(T, scans) X(T, spamc) \
        X(T, spamd) X(T, start) X(T, warnings) X(T, wrappers)
    #define SPAMDRILL_DELIVERY(X, T) X(T, agent) X(T, delay) X(T, delays) X(T, dsn) \
        X(T, key) X(T, line) X(T, orig_to) X(T, pid) X(T, relay) X(T, status) X(T, text) \
        X(T, to) X(T, ts)
    #define SPAMDRILL_WRAPPER(X, T) X(T, dsn) X(T, host) X(T, line) X(T, mda) \
        X(T, outcome) X(T, qid) X(T, rule) X(T, to) X(T, ts)

    #define SPAMDRILL_STRUCT(NAME, LIST) \
        typedef struct { PyObject_HEAD LIST(SPAMDRILL_FIELD, _) } NAME; \
        static spamdrill_slot NAME##_slots[] = { LIST(SPAMDRILL_ENTRY, NAME) {NULL, 0} };
    #define SPAMDRILL_FIELD(T, f) PyObject* f;

    SPAMDRILL_STRUCT(spamdrill_Joiner, SPAMDRILL_JOINER)
    SPAMDRILL_STRUCT(spamdrill_Scan, SPAMDRILL_SCAN)
    SPAMDRILL_STRUCT(spamdrill_Message, SPAMDRILL_MESSAGE)
    SPAMDRILL_STRUCT(spamdrill_Attempt, SPAMDRILL_ATTEMPT)
    SPAMDRILL_STRUCT(spamdrill_Delivery, SPAMDRILL_DELIVERY)
    SPAMDRILL_STRUCT(spamdrill_WrapperEvent, SPAMDRILL_WRAPPER)

    static const spamdrill_slot* spamdrill_layouts[] = {
        spamdrill_Joiner_slots, spamdrill_Scan_slots, spamdrill_Message_slots,
        spamdrill_Attempt_slots, spamdrill_Delivery_slots, spamdrill_WrapperEvent_slots};
    static const Py_ssize_t spamdrill_sizes[] = {
        sizeof(spamdrill_Joiner), sizeof(spamdrill_Scan), sizeof(spamdrill_Message),
        sizeof(spamdrill_Attempt), sizeof(spamdrill_Delivery),
        sizeof(spamdrill_WrapperEvent)};
    """
    ctypedef struct spamdrill_slot:
        const char* name
        Py_ssize_t offset
    const spamdrill_slot** spamdrill_layouts
    const Py_ssize_t* spamdrill_sizes

    ctypedef class spamdrill.logs.join.Joiner [object spamdrill_Joiner, check_size ignore]:
        cdef object by_mid, by_start, by_user, children, dirty, evicted, fast_scan
        cdef object fast_tick, hosts, kept, maildrop, messages, next_trim, now, on_scan
        cdef object open_mids, pending, plain, ready, s, scans_seen, spamc, spamd
        cdef object timed_wrappers, warnings, wrapper_order, wrappers

    ctypedef class spamdrill.logs.join.Scan [object spamdrill_Scan, check_size ignore]:
        cdef object attempt, claimed, end, errors, finished, host, last, lines, mid, pid
        cdef object seconds, size, spam, start, tests, time_limit, user

    ctypedef class spamdrill.logs.join.Message [object spamdrill_Message,
                                                check_size ignore]:
        cdef object attempts, client, key, last, mid, removed, sender, size

    ctypedef class spamdrill.logs.join.Attempt [object spamdrill_Attempt,
                                                check_size ignore]:
        cdef object delivery, end, joined_by, maildrop, message, number, plain, scans
        cdef object spamc, spamd, start, warnings, wrappers

    ctypedef class spamdrill.logs.events.Delivery [object spamdrill_Delivery,
                                                   check_size ignore]:
        cdef object agent, delay, delays, dsn, key, line, orig_to, pid, relay, status
        cdef object text, to, ts

    ctypedef class spamdrill.logs.events.WrapperEvent [object spamdrill_WrapperEvent,
                                                       check_size ignore]:
        cdef object dsn, host, line, mda, outcome, qid, rule, to, ts


cdef void _check_layouts() except *:
    """Each structure above against its class: the same slots at the same offsets, the
    same size, and nothing more (no ``__dict__``, no other base)."""
    cdef const spamdrill_slot* slot
    cdef int k
    for k, cls in enumerate((Joiner, Scan, Message, Attempt, Delivery, WrapperEvent)):
        ours = {}
        slot = spamdrill_layouts[k]
        while slot.name != NULL:
            ours[slot.name.decode()] = slot.offset
            slot += 1
        theirs = {name: spamdrill_offset(cls.__dict__.get(name)) for name in cls.__slots__}
        if ours != theirs or cls.__basicsize__ != spamdrill_sizes[k] \
                or cls.__bases__ != (object,) or cls.__dictoffset__ \
                or cls.__weakrefoffset__:
            raise ImportError(f"the compiled loop's {cls.__name__} is not the class's "
                              "layout: rebuild it (the pure loop reads meanwhile)")


_check_layouts()


cdef dict _LAYOUT_OK = {}


cdef bint _layout_ok(type cls, type base):
    """Whether ``cls``'s instances may be read at ``base``'s slots' offsets: ``cls`` is
    ``base``, or a subclass of it in which no class before ``base`` defines one of its
    slots' names (a property or another descriptor would be bypassed). Asked once per
    class."""
    ok = _LAYOUT_OK.get(cls)
    if ok is None:
        ok = _LAYOUT_OK[cls] = _redefines_none(cls, base)
    return ok


def _redefines_none(type cls, type base):
    """``_layout_ok``'s answer, found (apart: a generator's closure would be made on
    every call of the function that holds it)."""
    mro = cls.__mro__
    return base in mro and not any(name in vars(c) for c in mro[:mro.index(base)]
                                   for name in base.__slots__)
