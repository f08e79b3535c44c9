"""
Per-attempt deadlines: a watchdog thread shuts an attempt's socket down when its time is up.

Strictly private; used by :mod:`pendo_webhooks.transports._guarded_http` and
:mod:`pendo_webhooks.transports`.

Socket timeouts bound the gap *between* bytes, not the whole exchange: a receiver
that trickles one header line every second keeps a ``timeout=(5, 5)`` request alive
for as long as it likes. So every attempt gets a
:class:`WatchedSend` with an absolute deadline, registered with its transport's
:class:`Watchdog`. When the deadline passes the watchdog marks the attempt
*expired* and shuts down the socket the attempt is using, which wakes any blocked
``recv``. ``http.client`` reads that EOF as the end of the headers and may even
report a status, so the sender must treat an expired attempt as a timeout
whatever it parsed; :attr:`WatchedSend.expired` is the flag it checks.

One watchdog thread serves every attempt of a transport, so a send costs a lock
and a dict insert instead of a thread, and the thread wakes about once per
deadline period rather than once per request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Generic, TypeVar


__all__ = ["Watchdog", "WatchedSend"]

_C = TypeVar("_C")


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the TLS
    # object under a thread that may be inside SSL_read at this very moment.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class WatchedSend(Generic[_C]):
    """
    One send: its deadline, the socket it is using, and whether time ran out.

    Strictly private. Shared between the sending thread and the watchdog thread;
    every change of the watched socket happens under the attempt's lock, so the
    watchdog never shuts down a socket that has gone back to the pool for another
    attempt.

    Attributes:
        config: Whatever the connection layer needs for this attempt (the
            transport's guard settings).
        deadline: The :func:`time.monotonic` instant the attempt must end by.
        expired: Set, once and for good, when the watchdog fired.
    """

    __slots__ = ("_done", "_lock", "_owned", "_sock", "config", "deadline", "expired")

    def __init__(self, config: _C, deadline: float) -> None:
        self.config = config
        self.deadline = deadline
        self.expired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._owned = False
        self._done = False

    def remaining(self) -> float:
        """
        Return the seconds left before the deadline (negative once it has passed).
        """
        return self.deadline - time.monotonic()

    def watch(self, sock: socket.socket, *, owned: bool = False) -> None:
        """
        Make *sock* the socket the watchdog shuts down if the deadline passes.

        Args:
            sock: The socket now carrying this attempt.
            owned: The attempt owns *sock* (a ``dup()`` made for watching) and
                closes it once it stops watching it.
        """
        with self._lock:
            old, old_owned = self._sock, self._owned
            self._sock, self._owned = sock, owned
            expired = self.expired
            if expired:
                _shutdown(sock)
        if old_owned and old is not None and old is not sock:
            old.close()

    def release(self) -> None:
        """
        Stop watching the current socket: its connection went back to the pool.
        """
        with self._lock:
            old, owned = self._sock, self._owned
            self._sock, self._owned = None, False
        if owned and old is not None:
            old.close()

    def expire(self) -> None:
        """
        Mark the attempt as timed out and shut its socket down (the watchdog's job).
        """
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                _shutdown(self._sock)

    def finish(self) -> None:
        """
        End the attempt: later :meth:`expire` calls do nothing.
        """
        with self._lock:
            self._done = True
        self.release()


class Watchdog(Generic[_C]):
    """
    Expire attempts whose deadline has passed; one daemon thread per transport.

    Strictly private. Every attempt gets the same *budget*, and its deadline is
    taken under the lock, so insertion order is deadline order and the oldest
    pending attempt is always the next to expire.

    Args:
        budget: Seconds each attempt may take, from :meth:`begin` to :meth:`end`.
        name: The thread's name, for debuggers and ``threading.enumerate()``.
    """

    def __init__(self, budget: float, *, name: str = "pendo-webhooks-watchdog") -> None:
        self._budget = budget
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        # A dict as an ordered set: O(1) removal of finished attempts.
        self._pending: dict[WatchedSend[_C], None] = {}
        # When the thread next looks at the queue; None while it waits for work.
        self._wake_at: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """
        True once :meth:`close` was called.
        """
        return self._closed

    def begin(self, config: _C) -> WatchedSend[_C] | None:
        """
        Start an attempt whose deadline is *budget* seconds from now.

        Returns:
            The attempt, or None if the watchdog is closed.
        """
        with self._cond:
            if self._closed:
                return None
            attempt = WatchedSend(config, time.monotonic() + self._budget)
            self._pending[attempt] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._wake_at is None:
                self._cond.notify()
        return attempt

    def end(self, attempt: WatchedSend[_C]) -> None:
        """
        Finish *attempt*: it can no longer expire, and stops watching its socket.
        """
        with self._cond:
            self._pending.pop(attempt, None)
            if self._closed and not self._pending:
                self._cond.notify()
        attempt.finish()

    def close(self) -> None:
        """
        Accept no new attempts; the thread exits once the pending ones are done.
        """
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                first = next(iter(self._pending), None)
                if first is None:
                    if self._closed:
                        self._thread = None
                        return
                    self._wake_at = None
                    self._cond.wait()
                    continue
                delay = first.deadline - time.monotonic()
                if delay > 0:
                    self._wake_at = first.deadline
                    self._cond.wait(delay)
                    continue
                del self._pending[first]
                first.expire()
