"""
PlainResponse reads a response head exactly as http.client (and urllib3 on top) would.
"""

from __future__ import annotations

import http.client
import io
from typing import Any

import pytest
import urllib3.connection
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks.transports import _plain_response
from pendo_webhooks.transports._plain_response import PlainFields, PlainResponse


class _FakeSocket:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, _mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def _read(cls: type[http.client.HTTPResponse], data: bytes, method: str) -> dict[str, Any]:
    response = cls(_FakeSocket(data), method=method)  # type: ignore[arg-type]
    try:
        response.begin()
    except (http.client.HTTPException, ValueError) as exc:
        return {"error": type(exc)}
    msg = response.msg
    if isinstance(msg, PlainFields):
        fields = msg.fields
    else:
        fields = urllib3.connection._normalize_header_values(msg)
    try:
        body: object = response.read()
    except http.client.IncompleteRead as exc:
        body = ("incomplete", exc.partial, exc.expected)
    return {
        "status": response.status,
        "reason": response.reason,
        "version": response.version,
        "fields": fields,
        "get": {name: msg.get(name) for name in ("content-length", "CONNECTION", "x")},
        "length": response.length,
        "chunked": response.chunked,
        "will_close": response.will_close,
        "body": body,
    }


HEADS = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: a\r\nx: b\r\nX:c\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX:   padded  \t\r\nY:\r\nZ: \t\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 2\nX: lf only\n\nok",
    b"HTTP/1.1 200 OK\r\nX: folded\r\n  on\r\n\tthree\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: caf\xe9\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX : spaced name\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nnot a field\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n: empty name\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nFrom nowhere\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\x0bb\x0cc\x1cd\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
    (
        b"HTTP/1.1 100 Continue\r\nX: skipped\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    ),
    b"HTTP/1.1 200 OK\r\nX: no end of head",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    b"HTTP/2 200 OK\r\n\r\n",
    b"garbage\r\n\r\n",
    b"",
    b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n",
    b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n",
]


@pytest.mark.parametrize("method", ["POST", "HEAD"])
@pytest.mark.parametrize("data", HEADS)
def test_a_head_reads_as_http_client_reads_it(data: bytes, method: str) -> None:
    assert _read(PlainResponse, data, method) == _read(http.client.HTTPResponse, data, method)


_LINE = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\r\n"),
    st.tuples(
        st.sampled_from([b"X", b"x", b"Content-Length", b"Connection", b"A-b", b">From", b"X "]),
        st.sampled_from([b":", b": ", b":\t", b" :"]),
        st.binary(max_size=12),
        st.sampled_from([b"\r\n", b"\n", b"\r", b""]),
    ).map(b"".join),
    st.sampled_from([b" folded\r\n", b"\tfolded\r\n", b"\r\n", b"Content-Length: 2\r\n"]),
)


@given(st.lists(_LINE, max_size=8), st.binary(max_size=4))
def test_any_head_reads_as_http_client_reads_it(lines: list[bytes], body: bytes) -> None:
    data = b"HTTP/1.1 200 OK\r\n" + b"".join(lines) + b"\r\n" + body
    assert _read(PlainResponse, data, "POST") == _read(http.client.HTTPResponse, data, "POST")


def test_plain_fields_skip_the_email_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_fp: object) -> None:
        raise AssertionError("the email parser ran")

    monkeypatch.setattr(http.client, "parse_headers", refuse)
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: y\r\n\r\n"

    response = PlainResponse(_FakeSocket(data), method="POST")  # type: ignore[arg-type]
    response.begin()
    assert isinstance(response.msg, PlainFields)
    assert response.msg.fields == [("Content-Length", "0"), ("X", "y")]


def test_begin_is_http_clients_own() -> None:
    """
    Canary: PlainResponse.begin runs http.client's code, which reads the head with parse_headers.
    """
    code = http.client.HTTPResponse.begin.__code__
    assert PlainResponse.begin.__code__ is code
    assert "parse_headers" in code.co_names
    assert PlainResponse.begin.__globals__["parse_headers"] is _plain_response.parse_headers
    assert callable(http.client._read_headers)
