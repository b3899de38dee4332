# The join's records (``Scan``, ``Attempt``, ``Message``, ``Delivery``, ``WrapperEvent``:
# slotted dataclasses) made as their ``__init__`` makes them, without running it: an
# interpreted frame that sets every slot (9 to 17 of them) cost more than all the rest of
# making the record. A record here is a copy of a prototype the class itself made (so every
# default is the one the class gives), with the fields the call would pass put in their
# slots. Only for a class of plain slots (no ``__dict__``, no ``__post_init__``, no default
# made anew for each instance that the maker does not set); any other class is called.
# Included by _fastloop.pyx.

cdef extern from *:
    """
    #include "structmember.h"

    /* The offset of a writable object slot (a member descriptor of __slots__), or -1. */
    static Py_ssize_t spamdrill_offset(PyObject* descr) {
        PyMemberDef* m;
        if (Py_TYPE(descr) != &PyMemberDescr_Type)
            return -1;
        m = ((PyMemberDescrObject*)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY))
            return -1;
        return m->offset;
    }

    /* A new instance of proto's type holding proto's slots: the type's tp_alloc (which
       zero-fills and tracks it), then each object slot of its members, a new reference. */
    static PyObject* spamdrill_clone(PyObject* proto) {
        PyTypeObject* t = Py_TYPE(proto);
        PyObject* o = t->tp_alloc(t, 0);
        PyMemberDef* m;
        PyObject* v;
        if (o == NULL)
            return NULL;
        for (m = t->tp_members; m != NULL && m->name != NULL; m++) {
            if (m->type != T_OBJECT_EX)
                continue;
            v = *(PyObject**)((char*)proto + m->offset);
            Py_XINCREF(v);
            *(PyObject**)((char*)o + m->offset) = v;
        }
        return o;
    }

    /* A slot's new value (the old one let go). */
    static void spamdrill_put(PyObject* o, Py_ssize_t offset, PyObject* v) {
        PyObject** at = (PyObject**)((char*)o + offset);
        PyObject* old = *at;
        Py_INCREF(v);
        *at = v;
        Py_XDECREF(old);
    }
    """
    Py_ssize_t spamdrill_offset(object descr)
    object spamdrill_clone(object proto)
    void spamdrill_put(object o, Py_ssize_t offset, object v)


from dataclasses import fields as _fields_of

from spamdrill.logs.events import Delivery as _Delivery
from spamdrill.logs.events import WrapperEvent as _WrapperEvent
from spamdrill.logs.join import Attempt as _Attempt
from spamdrill.logs.join import Message as _Message
from spamdrill.logs.join import Scan as _Scan


cdef object _maker(object cls, tuple args):
    """(a prototype, the offsets of the first ``len(args)`` fields) for a class this file
    may make, else None: plain slots, and every other field's default one object that all
    instances share (a default made anew each time, a list, must be among ``args``)."""
    names = [f.name for f in _fields_of(cls)]
    if cls.__bases__ != (object,) or cls.__dictoffset__ or cls.__weakrefoffset__ \
            or hasattr(cls, "__post_init__") or "__slots__" not in cls.__dict__ \
            or sorted(cls.__slots__) != sorted(names):
        return None
    offsets = tuple([spamdrill_offset(cls.__dict__[name]) for name in names])
    if -1 in offsets:
        return None
    proto, other = cls(*args), cls(*args)
    for name in names[len(args):]:
        if getattr(proto, name) is not getattr(other, name):
            return None
    return proto, offsets[:len(args)]


cdef object _SCAN_MAKER = _maker(_Scan, (u"", u"", 0.0, [], 0.0))
cdef object _ATTEMPT_MAKER = _maker(_Attempt, (None, None, 0.0, 0.0, 1))
cdef object _MESSAGE_MAKER = _maker(_Message, ((u"", u""), 0.0, u"", u"", None, None, []))
cdef object _DELIVERY_MAKER = _maker(_Delivery, (None,) * 13)
cdef object _WRAPPER_MAKER = _maker(_WrapperEvent, (None,) * 9)


cdef inline object _make(object maker, tuple args):
    """A record of the maker's class with ``args`` as its first fields."""
    cdef tuple offsets = (<tuple>maker)[1]
    cdef Py_ssize_t k
    o = spamdrill_clone((<tuple>maker)[0])
    for k in range(len(args)):
        spamdrill_put(o, <Py_ssize_t>offsets[k], args[k])
    return o


cdef object _new_scan(object Scan, str host, str pid, object ts, list lines):
    """``Scan(host, pid, ts, lines, ts)``."""
    if Scan is _Scan and _SCAN_MAKER is not None:
        return _make(_SCAN_MAKER, (host, pid, ts, lines, ts))
    return Scan(host, pid, ts, lines, ts)


cdef object _new_attempt(object Attempt, object msg, object ev, object start, object end,
                         object number):
    """``Attempt(msg, ev, start, end, number)``."""
    if Attempt is _Attempt and _ATTEMPT_MAKER is not None:
        return _make(_ATTEMPT_MAKER, (msg, ev, start, end, number))
    return Attempt(msg, ev, start, end, number)


cdef object _new_delivery(object Delivery, tuple args):
    """``Delivery(*args)``, all thirteen fields."""
    if Delivery is _Delivery and _DELIVERY_MAKER is not None and len(args) == 13:
        return _make(_DELIVERY_MAKER, args)
    return Delivery(*args)


cdef object _new_wrapper(object WrapperEvent, tuple args):
    """``WrapperEvent(*args)``, all nine fields."""
    if WrapperEvent is _WrapperEvent and _WRAPPER_MAKER is not None and len(args) == 9:
        return _make(_WRAPPER_MAKER, args)
    return WrapperEvent(*args)


cdef object _new_message(tuple key, object ts):
    """``join.Message(key, ts)``."""
    if _MESSAGE_MAKER is not None:
        return _make(_MESSAGE_MAKER, (key, ts, u"", u"", None, None, []))
    return _Message(key, ts)


def record_makers():
    """Each record class, and whether the loop makes it without its ``__init__`` (for the
    tests: a change to a class that turns this off is seen, not only slower)."""
    return {_Scan: _SCAN_MAKER is not None, _Attempt: _ATTEMPT_MAKER is not None,
            _Message: _MESSAGE_MAKER is not None, _Delivery: _DELIVERY_MAKER is not None,
            _WrapperEvent: _WRAPPER_MAKER is not None}


def make_record(object cls, tuple args):
    """A record of ``cls`` with ``args`` as its first fields, as the loop makes it (for
    the tests)."""
    maker = {_Scan: _SCAN_MAKER, _Attempt: _ATTEMPT_MAKER, _Message: _MESSAGE_MAKER,
             _Delivery: _DELIVERY_MAKER, _WrapperEvent: _WRAPPER_MAKER}[cls]
    if len(args) != len((<tuple>maker)[1]):
        raise ValueError("the maker's fields, all of them")
    return _make(maker, args)
