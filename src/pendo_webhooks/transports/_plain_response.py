"""
An :class:`http.client.HTTPResponse` that reads plain header fields without the email package.

Strictly private; used by :class:`pendo_webhooks.transports.Urllib3Transport`.

``http.client`` parses every response head with :mod:`email`'s feed parser (about
16 µs for a typical head here, over a quarter of a send). Almost every receiver answers with
plain fields: ``Name: value`` lines of printable ASCII, no folding. For those,
:class:`PlainResponse` splits the lines itself and gives exactly what the email
parser would (name as sent, value with leading blanks stripped and the line
ending removed); a head with anything else in it (a folded or non-ASCII value,
a line that is not a field) goes to ``http.client``'s own parser, unchanged.

Everything else is ``http.client``'s: :meth:`PlainResponse.begin` *is*
:meth:`http.client.HTTPResponse.begin`, the same code object, run with
:func:`parse_headers` in place of ``http.client.parse_headers``, so status line,
``100 Continue``, framing and keep-alive rules, and the limits on line length and
header count, stay those of the running Python.
"""

from __future__ import annotations

import http.client
import re
import types
from typing import Any


__all__ = ["PlainFields", "PlainResponse", "parse_headers"]

# A field the email parser reads as name, ":", value, with nothing it would treat
# specially: the name is its header-name characters, the value printable ASCII or tab.
_PLAIN_FIELD = re.compile(rb"([!-9;-~]+):[ \t]*([\t -~]*)\r?\n")


class PlainFields:
    """
    The fields of a plain response head, in order; what ``begin()`` asks of a message.
    """

    __slots__ = ("_first", "fields")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        first: dict[str, str] = {}
        for name, value in fields:
            first.setdefault(name.lower(), value)
        self._first = first

    def get(self, name: str, default: Any = None) -> Any:
        """
        Return the first value of field *name* (any case), as :meth:`email.message.Message.get`.
        """
        return self._first.get(name.lower(), default)


def parse_headers(fp: Any) -> PlainFields | http.client.HTTPMessage:
    """
    Read a response head off *fp*: plain fields split here, anything else by ``http.client``.
    """
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    fields: list[tuple[str, str]] = []
    # The last line is the blank line that ends the head (or b"" at EOF).
    for line in lines[:-1]:
        match = _PLAIN_FIELD.fullmatch(line)
        if match is None:
            return http.client.parse_headers(_Replay(lines))
        fields.append((match[1].decode("ascii"), match[2].decode("ascii")))
    return PlainFields(fields)


class _Replay:
    """
    Hand lines already read to ``http.client.parse_headers`` again.
    """

    def __init__(self, lines: list[bytes]) -> None:
        self._lines = iter(lines)

    def readline(self, _limit: int = -1) -> bytes:
        return next(self._lines, b"")


class PlainResponse(http.client.HTTPResponse):
    """
    ``http.client``'s response whose head is read by :func:`parse_headers`. Strictly private.
    """


# http.client's own begin(), run with our parse_headers: nothing else differs.
PlainResponse.begin = types.FunctionType(  # type: ignore[method-assign]
    http.client.HTTPResponse.begin.__code__,
    {**vars(http.client), "parse_headers": parse_headers},
    "begin",
)
