"""Owned C handles: freed exactly once, when their owner closes them and no
other live object still needs them.

A Handle wraps one C pointer and its free function. Its first user is the
object that created it; every object that needs it to stay valid (a context
needs its model, a pruned model the result that owns it, a model view with a
KV plan the weights it shares) calls acquire() and later release(). The C
free runs when the count reaches 0, so close() frees at once unless another
live object still depends on the pointer — then it runs when that one closes
(or is garbage-collected). Nothing is ever freed twice or used after its
free: a released handle raises on use.
"""
import threading

from . import _lib

_lock = threading.Lock()


class Handle:
    __slots__ = ("ptr", "what", "_free", "_users", "_deps")

    def __init__(self, ptr, free, what, deps=()):
        """Takes ownership of ptr (a non-NULL C pointer); deps: handles that must
        outlive it (acquired here, released after ptr is freed)."""
        self.ptr = ptr
        self.what = what
        self._free = free
        self._users = 1
        self._deps = []
        try:
            for d in deps:
                self._deps.append(d.acquire())
        except BaseException:
            self.release()
            raise

    def get(self):
        if self.ptr is None:
            raise _lib.closed(self.what)
        return self.ptr

    def acquire(self):
        with _lock:
            if self._users <= 0:
                raise _lib.closed(self.what)
            self._users += 1
        return self

    def release(self):
        with _lock:
            if self._users <= 0:
                return
            self._users -= 1
            if self._users:
                return
            ptr, self.ptr = self.ptr, None
        self._free(ptr)
        deps, self._deps = self._deps, []
        for d in deps:
            d.release()

    @property
    def alive(self):
        return self.ptr is not None


class Owner:
    """Base of the package's objects that own C handles: close() (idempotent),
    context manager, release on garbage collection."""

    _handles = ()  # attribute names of the Handle fields, released by close()

    def close(self):
        """Releases this object's C handles now (idempotent). The C objects are
        freed unless another live object (a model view, a pruned model) still
        needs them; using this object afterwards raises headroom.InvalidArgument."""
        for name in self._handles:
            h = self.__dict__.get(name)
            if h is not None:
                self.__dict__[name] = None
                h.release()

    _what = "object"  # named in the error of a use after close()

    def _ptr(self, name=None):
        """The C pointer of a handle field (default: the first); raises
        headroom.InvalidArgument ("the ... is closed") after close()."""
        h = self.__dict__.get(name or self._handles[0])
        if h is None:
            raise _lib.closed(self._what)
        return h.get()

    @property
    def closed(self):
        return all(self.__dict__.get(n) is None for n in self._handles[:1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: modules may be gone
            pass
