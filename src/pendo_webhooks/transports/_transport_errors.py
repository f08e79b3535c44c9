"""
Turn what requests, urllib3 and the socket layer raise into a sanitized TransportError.

Strictly private. Their messages name the full URL, query string included, so
none of their text is passed on: each detail is built here from the exception
*types* and a few safe attributes (an errno, an OpenSSL reason, a certificate
verification message), plus ``host:port``.
"""

from __future__ import annotations

import errno
import http.client
import ssl
from collections.abc import Callable, Iterator

import requests
import urllib3.exceptions
import urllib3.util

from ..exceptions import TransportError


__all__ = ["describe_os_error", "host_port", "translate"]


def describe_os_error(exc: BaseException) -> str:
    """
    Describe a socket error by its kind, never by its text.

    >>> describe_os_error(ConnectionRefusedError(111, "Connection refused"))
    'connection refused'
    >>> describe_os_error(OSError(113, "No route to host"))
    'EHOSTUNREACH'
    """
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ConnectionAbortedError):
        return "connection aborted"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, f"errno {exc.errno}")
    return type(exc).__name__


def host_port(url: str) -> str:
    """
    Return ``host:port`` of a URL, the only part of it error details show.

    >>> host_port("https://hooks.example.com/in?token=secret")
    'hooks.example.com:443'
    """
    parsed = urllib3.util.parse_url(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.host}:{port}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    # requests wraps urllib3, which wraps the socket error, through args,
    # .reason, __cause__ and __context__: walk all of them, each once.
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__)
        queue.extend(x for x in (*linked, *current.args) if isinstance(x, BaseException))


def _is_cert_error(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLCertVerificationError)


def _is_tls_error(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLError | urllib3.exceptions.SSLError)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError | requests.Timeout)


def _is_remote_close(exc: BaseException) -> bool:
    return isinstance(exc, http.client.RemoteDisconnected)


def _is_socket_error(exc: BaseException) -> bool:
    # requests' own exceptions are OSErrors too, but never carry an errno.
    return isinstance(exc, OSError) and exc.errno is not None


def _is_broken_response(exc: BaseException) -> bool:
    return isinstance(exc, http.client.IncompleteRead | urllib3.exceptions.ProtocolError)


def _tls_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) and reason else type(exc).__name__


# The first rule (in order) that matches any exception in the chain decides.
_RULES: tuple[
    tuple[Callable[[BaseException], bool], str, Callable[[BaseException, str], str]], ...
] = (
    (
        _is_cert_error,
        "tls",
        lambda e, where: (
            f"certificate of {where} not accepted: "
            f"{getattr(e, 'verify_message', None) or 'verification failed'}"
        ),
    ),
    (_is_tls_error, "tls", lambda e, where: f"TLS with {where} failed: {_tls_reason(e)}"),
    (_is_timeout, "timeout", lambda _e, where: f"{where} stopped answering"),
    (
        _is_remote_close,
        "connect",
        lambda _e, where: f"{where} closed the connection without a response",
    ),
    (
        _is_socket_error,
        "connect",
        lambda e, where: f"connection to {where} failed: {describe_os_error(e)}",
    ),
    (_is_broken_response, "connect", lambda _e, where: f"the connection to {where} broke"),
)


def translate(exc: BaseException, url: str) -> TransportError:
    """
    Map an exception from requests, urllib3 or a socket to a sanitized TransportError.

    >>> import requests
    >>> err = requests.ConnectionError("... url: /in?token=secret (Caused by ...)")
    >>> translate(err, "https://hooks.example.com/in?token=secret")
    TransportError('connect', 'connection to hooks.example.com:443 failed')
    """
    where = host_port(url)
    causes = list(_causes(exc))
    for matches, kind, describe in _RULES:
        for cause in causes:
            if matches(cause):
                return TransportError(kind, describe(cause, where))
    if isinstance(exc, requests.ConnectionError):
        return TransportError("connect", f"connection to {where} failed")
    return TransportError("error", f"{type(exc).__name__} while sending to {where}")
