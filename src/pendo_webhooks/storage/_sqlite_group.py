"""
Group commit: calls made at once from many threads share one transaction. Strictly private.

:class:`SQLiteStorage` commits every ``enqueue_deliveries`` call at ``synchronous`` (an
fsync at ``FULL``), and each call may return only once its rows are committed. When
host threads enqueue at the same time, one commit can cover all of them: the first
caller leads, and whoever arrives while it writes waits; when it is done, the next in
line leads a group of everyone who waited, in one transaction, and tells each of them
its own result once that transaction committed. A call still returns only after its
own rows are durable, and each call's rows are stored all or none.

If a group's transaction fails (a delivery id already taken, a full disk), nothing of
it was kept, and every member runs its call again on its own, exactly as it would have
without the group, so each gets its own result or error. A caller alone (one thread, or
no overlap) runs its call directly, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar


__all__ = ["Coalescer"]

_I = TypeVar("_I")
_O = TypeVar("_O")

_WAIT, _DONE, _ALONE, _LEAD = range(4)


class _Waiter(Generic[_I, _O]):
    __slots__ = ("item", "ready", "result", "state")

    def __init__(self, item: _I) -> None:
        self.item = item
        self.ready: threading.Event | None = None  # a follower's, made only when it waits
        self.state = _WAIT
        self.result: _O | None = None


class Coalescer(Generic[_I, _O]):
    """
    Run calls that overlap as one group (group commit); a call alone runs alone.

    *alone* runs one call in its own transaction; *group* runs several in one, returning
    their results in order, or raises (then each runs alone). Thread-safe.

    >>> groups = []
    >>> def group(items):
    ...     groups.append(items)
    ...     return [i * 2 for i in items]
    >>> twice = Coalescer(group, alone=lambda i: i * 2)
    >>> twice(21), groups  # nobody else was waiting: run alone
    (42, [])
    """

    __slots__ = ("_alone", "_group", "_leading", "_lock", "_queue")

    def __init__(
        self, group: Callable[[list[_I]], Sequence[_O]], *, alone: Callable[[_I], _O]
    ) -> None:
        self._group = group
        self._alone = alone
        self._lock = threading.Lock()
        self._queue: list[_Waiter[_I, _O]] = []
        self._leading = False

    def __repr__(self) -> str:
        return f"<Coalescer({len(self._queue)} waiting)>"

    def __call__(self, item: _I) -> _O:
        me: _Waiter[_I, _O] | None
        with self._lock:
            if not self._leading:
                # Nobody writes: lead, alone (the usual case, and the only one in one thread).
                self._leading = True
                me = None
            else:
                me = _Waiter(item)
                ready = me.ready = threading.Event()
                self._queue.append(me)
        if me is None:
            try:
                return self._alone(item)
            finally:
                with self._lock:
                    self._hand_off()
        try:
            ready.wait()
        except BaseException:  # pragma: no cover - a signal in the waiting main thread
            self._abandon(me)
            raise
        if me.state == _DONE:
            return me.result  # type: ignore[return-value]
        if me.state == _ALONE:
            return self._alone(item)
        return self._lead(me)

    def _lead(self, me: _Waiter[_I, _O]) -> _O:
        with self._lock:
            group, self._queue = self._queue, []
        try:
            if len(group) == 1:
                return self._alone(me.item)
            try:
                results = self._group([w.item for w in group])
            except Exception:  # noqa: BLE001 - each member runs alone and gets its own error
                self._tell(group, me, None)
                return self._alone(me.item)
            self._tell(group, me, results)
            return results[group.index(me)]
        finally:
            self._tell(group, me, None)  # a BaseException: nobody may wait forever
            with self._lock:
                self._hand_off()

    @staticmethod
    def _tell(
        group: list[_Waiter[_I, _O]], me: _Waiter[_I, _O], results: Sequence[_O] | None
    ) -> None:
        # Wake every other member not yet woken: with its result, or to run alone.
        for number, waiter in enumerate(group):
            ready = waiter.ready
            if waiter is me or ready is None or ready.is_set():
                continue
            if results is None:
                waiter.state = _ALONE
            else:
                waiter.result, waiter.state = results[number], _DONE
            ready.set()

    def _hand_off(self) -> None:
        # With the lock held: the first in line leads the next group, or nobody leads.
        if self._queue:
            first = self._queue[0]
            first.state = _LEAD
            if first.ready is not None:  # pragma: no branch - every follower has one
                first.ready.set()
        else:
            self._leading = False

    def _abandon(self, me: _Waiter[_I, _O]) -> None:  # pragma: no cover - see __call__
        with self._lock:
            if me in self._queue:
                self._queue.remove(me)
                if me.state == _LEAD:
                    self._hand_off()
