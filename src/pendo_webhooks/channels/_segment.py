"""
Segment batches: from stored ``track`` messages to ``POST <endpoint>/v1/batch`` requests.

Everything here is pure: no clock, no network, no storage. The dispatcher claims a Segment
webhook's due deliveries, asks :func:`plan_batches` how to cut them into batches within
Segment's limits, and sends each :func:`batch_request`; the stored message bytes are
concatenated into the body, never parsed or re-serialized.

Strictly private; the public constants are re-exported from :mod:`pendo_webhooks.formatters`.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from ..exceptions import PayloadTooLarge, ValidationError
from ..model._webhook import segment_base_endpoint
from ..signing._secret import Secret
from ..transports import DEFAULT_USER_AGENT, OutgoingRequest


__all__ = [
    "BATCH_OVERHEAD",
    "BATCH_PATH",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_ID_LENGTH",
    "basic_auth",
    "batch_body",
    "batch_request",
    "batch_size",
    "batch_url",
    "check_message_size",
    "iso_millis",
    "message_id_reason",
    "plan_batches",
    "too_large_reason",
]

#: The largest serialized ``track`` message Segment accepts, in bytes (32 KB).
MAX_MESSAGE_BYTES = 32_768
#: The largest batch body sent, in bytes: Segment takes 500 KB; its own clients stop at this.
MAX_BATCH_BYTES = 475_000
#: The most messages in one batch (Segment's limit).
MAX_BATCH_MESSAGES = 2_500
#: The longest ``messageId`` Segment takes: its documented limit is "fewer than 100 characters".
MAX_MESSAGE_ID_LENGTH = 99
#: Where batches go, relative to the webhook's Segment endpoint.
BATCH_PATH = "/v1/batch"

_HEAD = b'{"batch":['
_SENT_AT = b'],"sentAt":"'
_TAIL = b'"}'
# "YYYY-MM-DDTHH:MM:SS.mmmZ": years 1..9999 always print four digits here.
_ISO_MILLIS_LENGTH = 24
#: Bytes a batch body adds around its messages (not counting the commas between them).
BATCH_OVERHEAD = len(_HEAD) + len(_SENT_AT) + _ISO_MILLIS_LENGTH + len(_TAIL)


def iso_millis(moment: datetime) -> str:
    """
    Format an aware *moment* as ISO-8601 UTC with milliseconds: ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Sub-millisecond digits are truncated, never rounded (the time never moves forward).

    Raises:
        ValidationError: If *moment* is not an aware datetime.

    >>> from datetime import datetime, timezone
    >>> iso_millis(datetime(2021, 7, 20, 17, 57, 56, 999_999, tzinfo=timezone.utc))
    '2021-07-20T17:57:56.999Z'
    """
    t = moment
    # Every event's timestamp is a UTC datetime already: one identity check, no conversion.
    if type(t) is not datetime or t.tzinfo is not timezone.utc:
        if not isinstance(t, datetime) or t.utcoffset() is None:
            msg = "must be a timezone-aware datetime"
            raise ValidationError("timestamp", msg)
        t = t.astimezone(timezone.utc)
    # Written out: strftime("%Y") does not pad years before 1000 on every platform. (The %
    # operator: half the time of an f-string with seven format specs, on the hot path.)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.microsecond // 1000,
    )


def too_large_reason(size: int, limit: int) -> str:
    """
    The reason recorded for a message that is never sent because of its size.

    >>> too_large_reason(32_769, MAX_MESSAGE_BYTES)
    'payload too large: 32769 bytes > 32768'
    """
    return f"payload too large: {size} bytes > {limit}"


_MESSAGE_ID_KEY = b'"messageId":"'
# The key and its JSON string (escapes included), from where the key begins.
_MESSAGE_ID = re.compile(rb'"messageId":"((?:[^"\\]|\\.)*)"')


def message_id_reason(message: bytes) -> str | None:
    """
    Why *message* must not go to Segment because of its ``messageId``, or ``None``.

    Segment takes a ``messageId`` of fewer than 100 characters; Pendo's ``uniqueId`` (which
    it is) may have 100. Such a message is refused, with this reason, before it is stored
    or sent, never sent to be dropped. The formatter writes ``messageId`` last, so it is
    found from the end, without parsing the message.

    >>> message_id_reason(b'{"type":"track","messageId":"' + b"a" * 99 + b'"}') is None
    True
    >>> message_id_reason(b'{"type":"track","messageId":"' + b"a" * 100 + b'"}')
    'messageId too long: 100 characters; Segment takes fewer than 100'
    """
    start = message.rfind(_MESSAGE_ID_KEY)
    if start < 0:
        return None
    # The common case, without a regex: the closing quote within 99 bytes, no escapes.
    first = start + len(_MESSAGE_ID_KEY)
    end = message.find(b'"', first, first + MAX_MESSAGE_ID_LENGTH + 1)
    if end >= 0 and message.find(b"\\", first, end) < 0:
        return None
    found = _MESSAGE_ID.match(message, start)
    if found is None:
        return None
    raw = found.group(1)
    length = len(raw)
    if length > MAX_MESSAGE_ID_LENGTH and (b"\\" in raw or not raw.isascii()):
        # Escapes or multi-byte characters: count the characters the JSON string holds.
        with contextlib.suppress(ValueError):  # not valid JSON: judged on its byte length
            length = len(json.loads(b'"' + raw + b'"'))
    if length <= MAX_MESSAGE_ID_LENGTH:
        return None
    return (
        f"messageId too long: {length} characters; "
        f"Segment takes fewer than {MAX_MESSAGE_ID_LENGTH + 1}"
    )


def check_message_size(message: bytes, limit: int = MAX_MESSAGE_BYTES) -> None:
    """
    Refuse *message* if it is longer than *limit* bytes.

    Raises:
        PayloadTooLarge: With the message's size and the limit.

    >>> check_message_size(b"x" * MAX_MESSAGE_BYTES)
    >>> try:
    ...     check_message_size(b"x" * (MAX_MESSAGE_BYTES + 1))
    ... except PayloadTooLarge as exc:
    ...     print(exc.size, exc.limit)
    32769 32768
    """
    if len(message) > limit:
        raise PayloadTooLarge(len(message), limit)


def batch_size(sizes: Sequence[int]) -> int:
    """
    The length of the body :func:`batch_body` builds from messages of these *sizes*.

    >>> batch_size([2, 2]) == len(batch_body([b"{}", b"{}"], "2026-01-01T00:00:00.000Z"))
    True
    """
    return BATCH_OVERHEAD + sum(sizes) + max(len(sizes) - 1, 0)


def plan_batches(
    sizes: Iterable[int],
    *,
    max_bytes: int = MAX_BATCH_BYTES,
    max_messages: int = MAX_BATCH_MESSAGES,
) -> list[int]:
    """
    Cut messages of *sizes* (in order) into consecutive batches; return each batch's length.

    Batches are filled greedily, in order: each holds at most *max_messages* messages and
    its body (:func:`batch_size`) is at most *max_bytes*. A message too large to fit even
    alone would break the limit; it is the caller's to refuse it first (see
    :func:`check_message_size`), so this raises instead of sending it.

    Raises:
        PayloadTooLarge: If one message cannot fit in a batch on its own.
        ValidationError: If a limit is below 1 or a size is negative.

    >>> plan_batches([10] * 5, max_messages=2)
    [2, 2, 1]
    >>> plan_batches([100, 100, 100], max_bytes=BATCH_OVERHEAD + 201)
    [2, 1]
    """
    if max_messages < 1:
        raise ValidationError("max_messages", "must be at least 1")
    if max_bytes < 1:
        raise ValidationError("max_bytes", "must be at least 1")
    counts: list[int] = []
    count = 0
    used = BATCH_OVERHEAD
    for size in sizes:
        if size < 0:
            raise ValidationError("sizes", "must not be negative")
        if BATCH_OVERHEAD + size > max_bytes:
            raise PayloadTooLarge(BATCH_OVERHEAD + size, max_bytes)
        added = size + (1 if count else 0)
        if count == max_messages or used + added > max_bytes:
            counts.append(count)
            count, used, added = 0, BATCH_OVERHEAD, size
        count += 1
        used += added
    if count:
        counts.append(count)
    return counts


def batch_body(messages: Sequence[bytes], sent_at: str) -> bytes:
    """
    Build ``{"batch":[...],"sentAt":"..."}`` by joining the stored *messages* byte for byte.

    Each message is a complete JSON object as :class:`~pendo_webhooks.formatters.SegmentFormatter`
    wrote it; nothing is parsed or re-serialized, so what was stored is what is sent.

    >>> batch_body([b'{"a":1}', b'{"b":2}'], "2026-01-01T00:00:00.000Z")
    b'{"batch":[{"a":1},{"b":2}],"sentAt":"2026-01-01T00:00:00.000Z"}'
    """
    return b"".join((_HEAD, b",".join(messages), _SENT_AT, sent_at.encode("ascii"), _TAIL))


def batch_url(endpoint: str) -> str:
    """
    The batch URL of a Segment *endpoint*: its base path with ``/v1/batch`` appended.

    An endpoint stored as the batch URL itself (or ending in ``/v1``, before the registry
    stored only bases) still gets one ``/v1/batch``, never two.

    >>> batch_url("https://events.eu1.segmentapis.com/")
    'https://events.eu1.segmentapis.com/v1/batch'
    >>> batch_url("https://proxy.example.com/segment?team=growth")
    'https://proxy.example.com/segment/v1/batch?team=growth'
    >>> batch_url("https://api.segment.io/v1/batch/")
    'https://api.segment.io/v1/batch'
    """
    parts = urlsplit(segment_base_endpoint(endpoint))
    path = parts.path + BATCH_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def basic_auth(write_key: Secret) -> str:
    """
    The ``Authorization`` value for *write_key*: HTTP Basic, the key as user, no password.

    >>> basic_auth(Secret("wk"))
    'Basic d2s6'
    """
    token = base64.b64encode(write_key.reveal().encode("utf-8") + b":").decode("ascii")
    return f"Basic {token}"


def batch_request(
    *,
    endpoint: str,
    write_key: Secret,
    messages: Sequence[bytes],
    now: datetime,
    gzip_body: bool = False,
    headers: Mapping[str, str] | None = None,
) -> OutgoingRequest:
    """
    Build the request that sends *messages* as one batch at *now*.

    Args:
        endpoint: The webhook's Segment endpoint (``https://api.segment.io`` and so on).
        write_key: The Segment source's write key, read from the registry at send time.
        messages: The stored ``track`` messages, in order; :func:`plan_batches` keeps
            them within Segment's limits.
        now: The attempt time; it becomes ``sentAt``.
        gzip_body: Send the body gzip-compressed, with ``Content-Encoding: gzip``.
        headers: The webhook's extra static headers, sent first (their names cannot
            collide with the ones set here).

    >>> from datetime import datetime, timezone
    >>> request = batch_request(
    ...     endpoint="https://api.segment.io", write_key=Secret("wk"), messages=[b"{}"],
    ...     now=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ... )
    >>> request.url, request.body
    ('https://api.segment.io/v1/batch', b'{"batch":[{}],"sentAt":"2026-01-01T00:00:00.000Z"}')
    >>> request.headers["Authorization"]
    'Basic d2s6'
    """
    body = batch_body(messages, iso_millis(now))
    wire_headers = dict(headers or {})
    wire_headers["Content-Type"] = "application/json"
    wire_headers["User-Agent"] = DEFAULT_USER_AGENT
    wire_headers["Authorization"] = basic_auth(write_key)
    if gzip_body:
        # mtime=0: the same batch compresses to the same bytes on every attempt.
        body = gzip.compress(body, compresslevel=6, mtime=0)
        wire_headers["Content-Encoding"] = "gzip"
    return OutgoingRequest(url=batch_url(endpoint), body=body, headers=wire_headers)
