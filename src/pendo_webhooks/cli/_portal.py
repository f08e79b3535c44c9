"""
``pendo-webhooks portal``: the webhooks settings page for a SQLite store, on this machine.

It serves :class:`~pendo_webhooks.portal.Portal` on a loopback address only, behind a
one-time login link printed on start (``pendo_webhooks.portal._login``), until SIGINT or
SIGTERM. For the host application's own admins, mount the portal in its web app instead.

Strictly private.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from .._clock import utcnow
from ..exceptions import ConfigurationError, ValidationError
from ._common import (
    EXIT_OK,
    PROG,
    Console,
    UsageError,
    add_command,
    add_destination_options,
    whole_number,
)
from ._db import add_db_option, database, destination_policy, open_store
from ._listen import _stop_on_signals
from ._worker import ALERT_SWEEP_SPAN, is_loopback


if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..dispatcher import Dispatcher, DrainSummary


__all__ = ["DEFAULT_PORT", "InFlight", "bind_address", "register"]

#: The port served when ``--port`` is not given.
DEFAULT_PORT = 8025
#: How long a stopping portal waits for the requests it is answering.
STOP_GRACE = 10.0
# The deadline of one attempt (the Test button, and --worker's deliveries).
_TIMEOUT = 15.0
# A connection that sends nothing for this long is dropped (browsers open spare ones).
_IDLE_CONNECTION = 30.0


def register(subparsers: Any) -> None:
    """
    Add the ``portal`` command.
    """
    parser = add_command(
        subparsers,
        "portal",
        help="serve the webhooks settings page for a SQLite store, on this machine only",
        description=(
            "Serve the webhooks settings page (pendo_webhooks.portal.Portal) for a SQLite "
            "store on a loopback address, for ad-hoc use: list, create, test, enable, "
            "disable, edit and delete webhooks, see their deliveries and redeliver them. "
            "On start it prints a login link that works once: the browser that opens it "
            "gets a session (12 hours while idle) and acts as the administrator "
            "'portal-cli' (the audit log's name for it). Runs until Ctrl-C or SIGTERM, then "
            "exits 0. Redeliveries and new events are sent by a worker: run "
            "'pendo-webhooks worker' beside it, or give --worker. The address guard is the "
            "one the store records (see --allow-private). To serve the page to the "
            "administrators of your own application, mount the Portal in it instead."
        ),
    )
    add_db_option(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the loopback address to serve on: 127.0.0.1 (the default), another "
        "127.x.y.z, ::1 or localhost (taken as 127.0.0.1); any other is refused",
    )
    parser.add_argument(
        "--port",
        type=whole_number(0, 65535),
        default=DEFAULT_PORT,
        help=f"the port to serve on, 0 for any free one (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="also deliver the store's outbox in the background (as 'pendo-webhooks "
        "worker' does), so that redeliveries and events are sent while the page is served",
    )
    add_destination_options(parser, stored=True)
    parser.set_defaults(handler=_run, reaches=True)


def bind_address(host: str) -> str:
    """
    The address ``--host`` stands for: a loopback address, never a name looked up.

    Raises:
        UsageError: If *host* is not ``localhost`` or a loopback address.

    >>> bind_address("localhost"), bind_address("127.0.0.2"), bind_address("::1")
    ('127.0.0.1', '127.0.0.2', '::1')
    >>> bind_address("0.0.0.0")
    Traceback (most recent call last):
      ...
    pendo_webhooks.cli._common.UsageError: --host 0.0.0.0 is not a loopback address: ...
    """
    if not is_loopback(host):
        msg = (
            f"--host {host} is not a loopback address: the portal lets whoever opens its "
            "login link manage the webhooks, so it serves this machine only (127.0.0.1, "
            "another 127.x.y.z, ::1 or localhost); to serve other people, mount "
            "pendo_webhooks.portal.Portal in your own web application"
        )
        raise UsageError(msg)
    if host.lower() == "localhost":
        return "127.0.0.1"  # as said: no resolver, whatever /etc/hosts holds
    return str(ipaddress.ip_address(host))


def _names(host: str) -> set[str]:
    """
    The names a browser may give the portal's address in its ``Host`` header.

    >>> sorted(_names("127.0.0.1")), sorted(_names("::1"))
    (['127.0.0.1', 'localhost'], ['[::1]', 'localhost'])
    """
    return {f"[{host}]" if ":" in host else host, "localhost"}


class InFlight:
    """
    Wrap a WSGI application, counting the requests it is answering, so a stopping server can
    let them finish.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._count = 0
        self._idle = threading.Condition()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._idle:
            self._count += 1
        try:
            result = self._app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return _Closing(result, self._done)

    def _done(self) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """
        Wait until no request is being answered (at most *timeout* seconds); whether none is.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class _Closing:
    """
    A response body whose ``close()`` (the server calls it when done) also calls *done*.
    """

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


def _printable(text: str, most: int = 200) -> str:
    """
    *text* as a log line may show it: no control characters (a terminal's escapes), short.

    >>> _printable("/a\x1b[2Jb"), len(_printable("/" * 500))
    ('/a?[2Jb', 200)
    """
    return "".join(c if c.isprintable() else "?" for c in text[:most])


class _Handler(WSGIRequestHandler):
    """
    One line per request, without the query string (the login link's token is there) or
    any header (cookies); nothing else is logged.
    """

    timeout = _IDLE_CONNECTION
    server: _Server

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:  # noqa: ARG002
        path = _printable(urlsplit(str(getattr(self, "path", "") or "")).path) or "-"
        method = _printable(str(getattr(self, "command", None) or "")) or "-"
        when = time.strftime("%H:%M:%S", time.gmtime())
        self.server.console.err(f"{when} {method} {path} {code}")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """
        Say nothing else: an error's message may quote the request line (and its token).
        """


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """
    One thread per connection; a stopping server does not wait for idle connections (the
    requests being answered are waited for by :class:`InFlight`).
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], console: Console) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.console = console
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """
        Bind, and name the server by its address: the base class looks its name up.
        """
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


@contextlib.contextmanager
def _serving(app: WSGIApplication, host: str, port: int, console: Console) -> Iterator[str]:
    """
    Serve *app* on *host* and *port* in a thread inside the block; yield its base URL.
    """
    try:
        server = _Server((host, port), console)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ValidationError("--port", f"cannot serve on {host} port {port} ({why})") from None
    server.set_app(app)
    thread = threading.Thread(target=server.serve_forever, name="pendo-webhooks-portal")
    thread.start()
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def _worker(dispatcher: Dispatcher, console: Console, *, run: bool) -> Iterator[None]:
    """
    With *run*, deliver the outbox in a background thread inside the block.
    """
    if not run:
        yield
        return
    stop = threading.Event()
    summaries: list[DrainSummary] = []

    def work() -> None:
        summaries.append(dispatcher.run_worker(stop, install_signal_handlers=False))

    thread = threading.Thread(target=work, name="pendo-webhooks-portal-worker")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    if not summaries:  # pragma: no cover - the worker thread died; its traceback went out
        return
    summary = summaries[0]
    console.err(
        f"worker stopped: delivered {summary.delivered}, retried {summary.retried}, "
        f"failed {summary.failed}, dead {summary.dead}, cancelled {summary.cancelled}; "
        f"{summary.pending} pending"
    )


def _run(args: argparse.Namespace, console: Console) -> int:
    host = bind_address(args.host)  # before the file is touched
    path = database(args)
    try:
        from ..portal import Portal  # noqa: PLC0415 - the optional extra
    except ImportError:
        msg = "the portal needs Jinja2: pip install 'pendo-webhooks[portal]'"
        raise ConfigurationError(msg) from None
    from ..alerts import Alerts  # noqa: PLC0415 - loaded when it runs
    from ..dispatcher import Dispatcher  # noqa: PLC0415
    from ..portal._login import OneTimeLogin, login_actor  # noqa: PLC0415
    from ..registry import WebhookRegistry  # noqa: PLC0415
    from ..transports import Urllib3Transport  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        storage = stack.enter_context(open_store(path, create=True))
        policy = destination_policy(args, storage)
        transport = stack.enter_context(Urllib3Transport(destinations=policy, deadline=_TIMEOUT))
        hooks: list[Any] = []
        if args.worker:  # alerts are the worker's: as `pendo-webhooks worker` sends them
            alerts = Alerts(storage)
            hooks.append(alerts)
            alerts.sweep(utcnow() - ALERT_SWEEP_SPAN)
        registry = WebhookRegistry(storage, destinations=policy, hooks=hooks)
        dispatcher = stack.enter_context(Dispatcher(registry, transport=transport))
        login = OneTimeLogin(Portal(dispatcher, actor=login_actor), hosts=_names(host))
        app = InFlight(login)
        # Handlers first: a SIGTERM right after the link is printed must stop us cleanly.
        stop = stack.enter_context(_stop_on_signals())
        # Leaving the block stops the worker, then the server, waits for the answers under
        # way, and closes the store.
        stack.callback(_let_finish, app, console)
        base = stack.enter_context(_serving(app, host, args.port, console))
        stack.enter_context(_worker(dispatcher, console, run=args.worker))
        worker = ", delivering its outbox" if args.worker else ""
        console.err(
            f"{PROG}: serving {path} at {base}/ (this machine only{worker}); "
            "open this link once to log in, Ctrl-C to stop:"
        )
        console.out(f"{base}{login.login_path}")
        while not stop.wait(1.0):
            pass
    console.err("portal stopped")
    return EXIT_OK


def _let_finish(app: InFlight, console: Console) -> None:
    if not app.wait_idle(STOP_GRACE):  # pragma: no cover - a request stuck for 10 s
        console.err(f"{PROG}: note: stopped with requests still being answered")
