"""
Segment webhooks: the ``track`` message, the batch builder, and the webhook's Segment settings.

The delivery path through the Dispatcher is tested further down with the in-memory fakes;
tests/test_segment_net.py does it against a real receiver on loopback.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import random
import sqlite3
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendo_webhooks._version import __version__
from pendo_webhooks.channels import SegmentChannel, _segment
from pendo_webhooks.channels._segment import (
    BATCH_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    basic_auth,
    batch_body,
    batch_request,
    batch_size,
    batch_url,
    check_message_size,
    iso_millis,
    plan_batches,
    too_large_reason,
)
from pendo_webhooks.dispatcher import (
    Attempt,
    Delivery,
    DeliveryOutcome,
    DeliveryStatus,
    Dispatcher,
    DispatchResult,
    Outcome,
)
from pendo_webhooks.events import Event, EventCategory, new_unique_id, to_wire
from pendo_webhooks.exceptions import (
    ConfigurationError,
    ConflictError,
    PayloadError,
    PayloadTooLarge,
    TransportError,
    ValidationError,
)
from pendo_webhooks.formatters import (
    LIBRARY_NAME,
    MAX_MESSAGE_ID_LENGTH,
    Formatter,
    SegmentFormatter,
    URLFormatter,
)
from pendo_webhooks.registry import (
    SEGMENT_EU_ENDPOINT,
    Actor,
    Webhook,
    WebhookKind,
    WebhookRegistry,
)
from pendo_webhooks.retry import RetryPolicy, Verdict
from pendo_webhooks.signing import Secret
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.storage._schema import APPLICATION_ID, MIGRATIONS
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest, TransportResponse


SEGMENT_DATA = Path(__file__).parent / "data" / "segment"
#: The golden messages are written with this library version, so a release does not move them.
GOLDEN_VERSION = "1.0.0"
KEY_ORDER = ["type", "event", "userId", "properties", "context", "timestamp", "messageId"]
CONTEXT_ORDER = ["groupId", "userAgent", "library", "pendo"]
WRITE_KEY = "WK-s3cr3t-write-key-Zq9"
ADMIN = Actor("u-1", is_admin=True)
T0 = datetime(2026, 1, 1, 12, 30, 45, 123_456, tzinfo=timezone.utc)


def golden(category: EventCategory) -> bytes:
    """The golden Segment message of *category*'s sample event."""
    return (SEGMENT_DATA / f"{category.value}.json").read_bytes()


def segment_message(event: Event) -> bytes:
    """*event* as a Segment message, with the golden files' library version."""
    return SegmentFormatter(library_version=GOLDEN_VERSION).format(event)


def between(data: bytes, start: bytes, end: bytes) -> bytes:
    """The bytes of *data* after the first *start* and before the next *end*."""
    head = data.index(start) + len(start)
    return data[head : data.index(end, head)]


def padded_track(size: int) -> bytes:
    """A Segment message of exactly *size* bytes: a track event padded in eventProperties."""
    base = segment_message(sample_event("trackEventReceived", event_properties={"pad": ""}))
    message = segment_message(
        sample_event("trackEventReceived", event_properties={"pad": "x" * (size - len(base))})
    )
    assert len(message) == size
    return message


def batch_items(body: bytes) -> list[bytes]:
    """The exact bytes of each item of a batch body's ``batch`` array, found by a JSON scanner."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    prefix = '{"batch":['
    assert text.startswith(prefix)
    pos = len(prefix)
    items: list[bytes] = []
    while text[pos] != "]":
        _, end = decoder.raw_decode(text, pos)
        items.append(text[pos:end].encode("utf-8"))
        pos = end + 1 if text[end] == "," else end
    return items


# ---------------------------------------------------------------------------------------
# The track message


class TestSegmentMessage:
    def test_anonymous_visitor_goes_as_anonymous_id(self) -> None:
        """
        A Pendo anonymous visitor (``_PENDO_T_...``) goes out as ``anonymousId``, never as
        ``userId`` (which would make a fake identified user downstream); the known answer
        differs from the identified one in that key only.
        """
        event = sample_event("guideDisplayed", visitor_id="_PENDO_T_8gJ2yVbXq3kW")
        message = segment_message(event)
        assert message == (SEGMENT_DATA / "guideDisplayed.anonymous.json").read_bytes()
        assert message.replace(
            b'"anonymousId":"_PENDO_T_8gJ2yVbXq3kW"', b'"userId":"Webhook Visitor"'
        ) == golden(EventCategory.GUIDE_DISPLAYED)
        assert "userId" not in json.loads(message)

    @pytest.mark.parametrize(
        "visitor", ["Webhook Visitor", "_PENDO_", "_pendo_t_abc", "x_PENDO_T_abc", "PENDO_T_a"]
    )
    def test_identified_visitors_keep_user_id(self, visitor: str) -> None:
        """
        Only the exact ``_PENDO_T_`` prefix marks an anonymous visitor; anything else is
        identified and keeps ``userId``.
        """
        message = json.loads(segment_message(sample_event("npsSubmitted", visitor_id=visitor)))
        assert message["userId"] == visitor
        assert "anonymousId" not in message

    @pytest.mark.parametrize("category", list(EventCategory), ids=str)
    def test_golden_message_for_every_event_type(self, category: EventCategory) -> None:
        """
        The sample event of each of the nine types formats to its golden message, byte for byte.
        """
        assert segment_message(sample_event(category)) == golden(category)

    @pytest.mark.parametrize("category", list(EventCategory), ids=str)
    def test_fields_follow_the_pendo_event(self, category: EventCategory) -> None:
        """
        event, userId, groupId, userAgent, pendo app/subscription and messageId come from the
        Pendo body; the timestamp is ISO-8601 UTC with milliseconds; keys in WIRE.md's order.
        """
        event = sample_event(category)
        pendo = json.loads(to_wire(event))
        message = json.loads(segment_message(event))
        assert list(message) == KEY_ORDER
        assert list(message["context"]) == CONTEXT_ORDER
        assert message["type"] == "track"
        assert message["event"] == pendo["event"] == category.value
        assert message["userId"] == pendo["visitorId"]
        assert message["properties"] == pendo["properties"]
        assert message["context"]["groupId"] == pendo["accountId"]
        assert message["context"]["userAgent"] == pendo["userAgent"]
        assert message["context"]["library"] == {"name": "pendo-webhooks", "version": "1.0.0"}
        assert message["context"]["pendo"] == {
            "app": pendo["app"],
            "subscription": pendo["subscription"],
        }
        assert message["timestamp"] == "2021-07-20T17:57:56.000Z"
        assert message["messageId"] == pendo["uniqueId"]

    @pytest.mark.parametrize("category", list(EventCategory), ids=str)
    def test_properties_are_pendos_bytes_unchanged(self, category: EventCategory) -> None:
        """
        The properties object is byte-identical to the one in Pendo's own body.
        """
        event = sample_event(category)
        pendo = between(to_wire(event), b'"properties":', b',"timestamp":')
        ours = between(segment_message(event), b'"properties":', b',"context":')
        assert ours == pendo

    def test_escapes_like_pendo_and_keeps_utf8(self) -> None:
        """
        <, >, &, U+2028 and U+2029 are escaped as in Pendo's bodies; other non-ASCII is UTF-8.
        """
        event = sample_event(
            "trackEventReceived",
            name="<b>Tom & Jerry</b>",
            event_properties={"note": "line\u2028para\u2029 café ✓"},
            visitor_id="visitor<1>",
        )
        message = segment_message(event)
        assert b'"event":"trackEventReceived"' in message
        assert b'"userId":"visitor\\u003c1\\u003e"' in message
        assert b'"name":"\\u003cb\\u003eTom \\u0026 Jerry\\u003c/b\\u003e"' in message
        assert '"note":"line\\u2028para\\u2029 café ✓"'.encode() in message
        assert not {b"<", b">", b"&"} & {bytes([b]) for b in message}
        assert json.loads(message)["properties"]["name"] == "<b>Tom & Jerry</b>"

    def test_default_library_is_this_package(self) -> None:
        """
        Unless told otherwise, context.library names pendo-webhooks and its version.
        """
        event = sample_event("accountCreated")
        message = SegmentFormatter().format(event)
        assert json.loads(message)["context"]["library"] == {
            "name": LIBRARY_NAME,
            "version": __version__,
        }
        assert message == golden(EventCategory.ACCOUNT_CREATED).replace(
            b'"version":"1.0.0"', f'"version":"{__version__}"'.encode()
        )

    def test_timestamp_keeps_milliseconds_and_uses_utc(self) -> None:
        """
        The timestamp is the event's time in UTC, formatted YYYY-MM-DDTHH:MM:SS.mmmZ.
        """
        cest = timezone(timedelta(hours=2))
        event = sample_event(
            "accountCreated", timestamp=datetime(2024, 2, 29, 1, 2, 3, tzinfo=cest)
        )
        assert json.loads(segment_message(event))["timestamp"] == "2024-02-28T23:02:03.000Z"

    def test_not_an_event_is_a_payload_error(self) -> None:
        """
        Formatting something that is not an event raises PayloadError, for both formatters.
        """
        for formatter in (SegmentFormatter(), URLFormatter()):
            with pytest.raises(PayloadError, match="not an event: dict"):
                formatter.format({"event": "guideDisplayed"})  # type: ignore[arg-type]

    def test_unserializable_value_is_a_payload_error(self) -> None:
        """
        A value JSON cannot hold (here a NaN smuggled past validation) raises PayloadError.
        """
        event = sample_event("trackEventReceived")
        object.__setattr__(event, "event_properties", {"x": float("nan")})
        with pytest.raises(PayloadError, match="trackEventReceived cannot be serialized"):
            SegmentFormatter().format(event)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("library_name", ""),
            ("library_name", "   "),
            ("library_version", "x" * 101),
            ("library_version", "\ud800"),
            ("library_name", 3),
        ],
    )
    def test_bad_library_fields_are_refused(self, field: str, value: object) -> None:
        """
        The library name and version must be 1 to 100 characters of valid text.
        """
        with pytest.raises(ValidationError) as info:
            SegmentFormatter(**{field: value})  # type: ignore[arg-type]
        assert info.value.field == field

    def test_url_formatter_is_to_wire(self) -> None:
        """
        URLFormatter stores Pendo's own bytes.
        """
        for category in EventCategory:
            event = sample_event(category)
            assert URLFormatter().format(event) == to_wire(event)

    def test_formatters_satisfy_the_protocol(self) -> None:
        """
        Both formatters are Formatters (mypy checks this assignment; here it just runs).
        """
        formatters: list[Formatter] = [URLFormatter(), SegmentFormatter()]
        event = sample_event("visitorCreated")
        assert [type(f.format(event)) for f in formatters] == [bytes, bytes]


class TestMessageLimit:
    def test_exactly_32768_bytes_is_accepted(self) -> None:
        """
        A message of exactly 32,768 bytes passes the size check.
        """
        check_message_size(padded_track(MAX_MESSAGE_BYTES))

    def test_32769_bytes_is_refused(self) -> None:
        """
        A message of 32,769 bytes is refused with PayloadTooLarge naming size and limit.
        """
        with pytest.raises(PayloadTooLarge) as info:
            check_message_size(padded_track(MAX_MESSAGE_BYTES + 1))
        assert (info.value.size, info.value.limit) == (32_769, 32_768)
        assert too_large_reason(info.value.size, info.value.limit) == (
            "payload too large: 32769 bytes > 32768"
        )

    def test_limit_is_configurable(self) -> None:
        """
        The same check serves other limits (the URL webhook body limit).
        """
        check_message_size(b"12345", limit=5)
        with pytest.raises(PayloadTooLarge):
            check_message_size(b"123456", limit=5)


# ---------------------------------------------------------------------------------------
# Batches


class TestIsoMillis:
    @pytest.mark.parametrize(
        ("moment", "text"),
        [
            (datetime(2021, 7, 20, 17, 57, 56, tzinfo=timezone.utc), "2021-07-20T17:57:56.000Z"),
            (T0, "2026-01-01T12:30:45.123Z"),
            (
                datetime(999, 1, 2, 3, 4, 5, 999_999, tzinfo=timezone.utc),
                "0999-01-02T03:04:05.999Z",
            ),
            (
                datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=timezone(timedelta(hours=-5))),
                "2026-01-01T05:00:00.001Z",
            ),
        ],
    )
    def test_format(self, moment: datetime, text: str) -> None:
        """
        Times are shown in UTC with exactly three fraction digits (truncated) and a Z.
        """
        assert iso_millis(moment) == text

    @pytest.mark.parametrize("moment", [datetime(2026, 1, 1), "2026-01-01", None])
    def test_naive_or_not_a_datetime_is_refused(self, moment: object) -> None:
        """
        Naive datetimes and non-datetimes raise ValidationError naming the timestamp.
        """
        with pytest.raises(ValidationError, match="timestamp: must be a timezone-aware"):
            iso_millis(moment)  # type: ignore[arg-type]


class TestBatchBody:
    def test_items_are_the_stored_bytes(self) -> None:
        """
        The body is valid JSON whose batch items are byte-identical to the stored messages.
        """
        messages = [golden(c) for c in EventCategory]
        body = batch_body(messages, iso_millis(T0))
        parsed = json.loads(body)
        assert list(parsed) == ["batch", "sentAt"]
        assert parsed["sentAt"] == "2026-01-01T12:30:45.123Z"
        assert parsed["batch"] == [json.loads(m) for m in messages]
        assert batch_items(body) == messages

    def test_empty_batch_is_valid_json(self) -> None:
        """
        No messages give an empty batch array (the dispatcher never sends one, but it is JSON).
        """
        assert json.loads(batch_body([], "2026-01-01T00:00:00.000Z")) == {
            "batch": [],
            "sentAt": "2026-01-01T00:00:00.000Z",
        }

    @given(st.lists(st.binary(max_size=50), max_size=20))
    def test_batch_size_predicts_the_body_length(self, messages: list[bytes]) -> None:
        """
        batch_size() is exactly the length of the body built from messages of those sizes.
        """
        body = batch_body(messages, "2026-01-01T00:00:00.000Z")
        assert batch_size([len(m) for m in messages]) == len(body)


class TestPlanBatches:
    def test_empty(self) -> None:
        """
        Nothing to send plans no batch.
        """
        assert plan_batches([]) == []

    def test_message_count_limit(self) -> None:
        """
        6,000 small messages are cut at 2,500 per batch.
        """
        assert plan_batches([100] * 6_000) == [2_500, 2_500, 1_000]

    def test_byte_limit(self) -> None:
        """
        6,000 messages of ~1 KB are cut so that every body stays within 475,000 bytes.
        """
        sizes = [1_000] * 6_000
        counts = plan_batches(sizes)
        assert sum(counts) == 6_000
        assert all(batch_size([1_000] * n) <= MAX_BATCH_BYTES for n in counts)
        assert counts[0] == (MAX_BATCH_BYTES - BATCH_OVERHEAD + 1) // 1_001

    def test_largest_messages_fit(self) -> None:
        """
        Messages at the 32 KB limit still go out, 14 to a batch.
        """
        assert plan_batches([MAX_MESSAGE_BYTES] * 30) == [14, 14, 2]

    def test_a_message_too_big_for_any_batch_is_refused(self) -> None:
        """
        A message that cannot fit in a batch alone raises PayloadTooLarge instead of being sent.
        """
        with pytest.raises(PayloadTooLarge) as info:
            plan_batches([10, 1_000], max_bytes=500)
        assert info.value.limit == 500

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"max_messages": 0}, "max_messages"), ({"max_bytes": 0}, "max_bytes")],
    )
    def test_bad_limits(self, kwargs: dict[str, int], field: str) -> None:
        """
        Limits below 1 raise ValidationError naming the limit.
        """
        with pytest.raises(ValidationError) as info:
            plan_batches([1], **kwargs)
        assert info.value.field == field

    def test_negative_size(self) -> None:
        """
        A negative size is a caller's bug, reported as a ValidationError.
        """
        with pytest.raises(ValidationError, match="sizes"):
            plan_batches([1, -1])

    @settings(max_examples=300)
    @given(
        sizes=st.lists(st.integers(0, 400), max_size=60),
        max_messages=st.integers(1, 10),
        extra=st.integers(400, 3_000),
    )
    def test_batches_respect_both_limits_and_are_full(
        self, sizes: list[int], max_messages: int, extra: int
    ) -> None:
        """
        Batches keep the order, cover every message once, respect both limits, and are greedy:
        each batch but the last would break a limit if it took the next message.
        """
        max_bytes = BATCH_OVERHEAD + extra
        counts = plan_batches(sizes, max_bytes=max_bytes, max_messages=max_messages)
        assert sum(counts) == len(sizes)
        assert all(c >= 1 for c in counts)
        start = 0
        for i, count in enumerate(counts):
            batch = sizes[start : start + count]
            assert count <= max_messages
            assert batch_size(batch) <= max_bytes
            if i < len(counts) - 1:
                grown = sizes[start : start + count + 1]
                assert count == max_messages or batch_size(grown) > max_bytes
            start += count


class TestRequest:
    def test_url_for_each_endpoint_shape(self) -> None:
        """
        /v1/batch is appended to the endpoint's path; a query string is kept, a fragment dropped.
        """
        assert batch_url("https://api.segment.io") == "https://api.segment.io/v1/batch"
        assert batch_url(SEGMENT_EU_ENDPOINT) == "https://events.eu1.segmentapis.com/v1/batch"
        assert batch_url("https://p.example/seg/") == "https://p.example/seg/v1/batch"
        assert (
            batch_url("https://p.example:8443/a?x=1#f") == "https://p.example:8443/a/v1/batch?x=1"
        )

    def test_basic_auth_is_the_write_key_and_an_empty_password(self) -> None:
        """
        The Authorization header is Basic base64("<writekey>:"), the key in UTF-8.
        """
        for key in (WRITE_KEY, "clé:with-colon"):
            header = basic_auth(Secret(key))
            scheme, token = header.split(" ")
            assert scheme == "Basic"
            assert base64.b64decode(token) == f"{key}:".encode()

    def test_request_headers_and_body(self) -> None:
        """
        The request POSTs the batch body as JSON with Basic auth and our User-Agent, after the
        webhook's own extra headers.
        """
        messages = [golden(EventCategory.GUIDE_DISPLAYED), golden(EventCategory.NPS_SUBMITTED)]
        request = batch_request(
            endpoint="https://api.segment.io",
            write_key=Secret(WRITE_KEY),
            messages=messages,
            now=T0,
            headers={"X-Team": "growth"},
        )
        assert request.method == "POST"
        assert request.url == "https://api.segment.io/v1/batch"
        assert request.body == batch_body(messages, "2026-01-01T12:30:45.123Z")
        assert dict(request.headers) == {
            "X-Team": "growth",
            "Content-Type": "application/json",
            "User-Agent": f"pendo-webhooks/{__version__}",
            "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
        }

    def test_gzip_on_request(self) -> None:
        """
        With gzip, the body is the gzip of the same batch, marked Content-Encoding: gzip, and
        compresses to the same bytes every time (so retries send identical bytes).
        """
        messages = [golden(c) for c in EventCategory]
        kwargs: dict[str, Any] = {
            "endpoint": "https://api.segment.io",
            "write_key": Secret(WRITE_KEY),
            "messages": messages,
            "now": T0,
        }
        plain = batch_request(**kwargs)
        zipped = batch_request(**kwargs, gzip_body=True)
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert "Content-Encoding" not in plain.headers
        assert gzip.decompress(zipped.body) == plain.body
        assert len(zipped.body) < len(plain.body)
        assert batch_request(**kwargs, gzip_body=True).body == zipped.body

    def test_write_key_never_shown(self) -> None:
        """
        Neither the request's repr nor str shows the write key or its base64 form.
        """
        request = batch_request(
            endpoint="https://api.segment.io?k=v",
            write_key=Secret(WRITE_KEY),
            messages=[b"{}"],
            now=T0,
        )
        token = basic_auth(Secret(WRITE_KEY)).split(" ")[1]
        for text in (repr(request), str(request)):
            assert WRITE_KEY not in text
            assert token not in text


def test_module_constants() -> None:
    """
    The limits are Segment's: 32 KB per message, 2,500 messages and 475,000 bytes per batch.
    """
    assert (MAX_MESSAGE_BYTES, MAX_BATCH_MESSAGES, MAX_BATCH_BYTES) == (32_768, 2_500, 475_000)
    assert len(batch_body([], "2026-01-01T00:00:00.000Z")) == BATCH_OVERHEAD
    assert set(_segment.__all__) <= set(dir(_segment))


# ---------------------------------------------------------------------------------------
# The webhook's Segment settings


def make_hook(**overrides: Any) -> Webhook:
    """A Segment webhook value with every required field."""
    values: dict[str, Any] = {
        "id": "wh_seg",
        "name": "Segment",
        "kind": "segment",
        "write_key": WRITE_KEY,
        "categories": {"npsSubmitted"},
        "created_at": T0,
        "created_by": "u-1",
        "updated_at": T0,
        "updated_by": "u-1",
        **overrides,
    }
    return Webhook(**values)


class TestGzipSetting:
    def test_off_by_default(self) -> None:
        """
        Segment webhooks send uncompressed unless told otherwise.
        """
        assert make_hook().segment_gzip is False

    def test_only_for_segment_webhooks(self) -> None:
        """
        A URL webhook cannot turn on segment_gzip.
        """
        with pytest.raises(ValidationError) as info:
            make_hook(kind="url", url="https://h.example/x", write_key=None, segment_gzip=True)
        assert info.value.field == "segment_gzip"

    def test_must_be_a_bool(self) -> None:
        """
        1 or "yes" are not booleans.
        """
        for value in (1, "yes", None):
            with pytest.raises(ValidationError, match="segment_gzip: must be True or False"):
                make_hook(segment_gzip=value)

    def test_create_update_and_audit(self, storage: Storage) -> None:
        """
        The registry creates and updates the setting, stores it, and audits the change.
        """
        registry = WebhookRegistry(storage)
        hook = registry.create(
            ADMIN,
            name="S",
            kind=WebhookKind.SEGMENT,
            write_key=WRITE_KEY,
            segment_gzip=True,
            categories=["npsSubmitted"],
        )
        assert storage.get_webhook(hook.id).segment_gzip is True
        off = registry.update(ADMIN, hook.id, segment_gzip=False)
        assert off.segment_gzip is False
        assert off.version == 2
        assert storage.get_webhook(hook.id) == off
        [entry, created] = registry.audit(ADMIN, webhook_id=hook.id)
        assert entry.changes == {"segment_gzip": (True, False)}
        assert created.changes["segment_gzip"] == (None, True)
        assert WRITE_KEY not in repr(entry) + repr(created)

    def test_an_old_database_is_migrated(self, tmp_path: Path) -> None:
        """
        A file written before the setting existed opens, and its webhooks read as uncompressed.
        """
        path = tmp_path / "old.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        for statement in MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO schema_migrations VALUES (1, 'webhooks and audit log', '2026-01-01')"
        )
        conn.execute(
            """
            INSERT INTO webhooks (id, version, name, kind, segment_endpoint, write_key,
                enabled, signature_scheme, signature_header, created_at, created_by,
                updated_at, updated_by)
            VALUES ('wh_old', 1, 'Old', 'segment', 'https://api.segment.io', 'wk', 0,
                'both', 'X-Pendo-Signature', '2026-01-01T00:00:00.000000+00:00', 'u-1',
                '2026-01-01T00:00:00.000000+00:00', 'u-1')
            """
        )
        conn.execute("INSERT INTO webhook_categories VALUES ('npsSubmitted', 'wh_old')")
        conn.close()
        with SQLiteStorage(path) as storage:
            hook = storage.get_webhook("wh_old")
        assert hook.segment_gzip is False
        assert hook.kind is WebhookKind.SEGMENT


# ---------------------------------------------------------------------------------------
# Delivery through the Dispatcher (in-memory fakes; real sockets in test_segment_net.py)

FAST = RetryPolicy(schedule=[5, 30], jitter=0)
ENDPOINT = "https://api.segment.io"


@attrs.define
class SegmentWorld:
    """
    A registry, a frozen clock, a recording transport and dispatchers over one store.
    """

    storage: Storage
    clock: FrozenClock
    registry: WebhookRegistry
    transport: RecordingTransport

    def hook(self, *, enabled: bool = True, **overrides: Any) -> Webhook:
        kwargs: dict[str, Any] = {
            "name": "Segment",
            "kind": "segment",
            "write_key": WRITE_KEY,
            "categories": list(EventCategory),
        }
        kwargs.update(overrides)
        created = self.registry.create(ADMIN, **kwargs)
        return self.registry.enable(ADMIN, created.id) if enabled else created

    def dispatcher(self, **overrides: Any) -> Dispatcher:
        kwargs: dict[str, Any] = {
            "transport": self.transport,
            "clock": self.clock,
            "sleep": self.clock.sleep,
            "rng": random.Random(7),
            "retry": FAST,
        }
        kwargs.update(overrides)
        return Dispatcher(self.registry, self.storage, **kwargs)


def make_world(storage: Storage) -> SegmentWorld:
    """A world over *storage* whose clock starts at T0 (whole milliseconds)."""
    clock = FrozenClock(T0.replace(microsecond=123_000))
    return SegmentWorld(
        storage=storage,
        clock=clock,
        registry=WebhookRegistry(storage, clock=clock),
        transport=RecordingTransport(),
    )


@pytest.fixture(name="world")
def _world(outbox: Storage) -> SegmentWorld:
    """A world on every backend with an outbox."""
    return make_world(outbox)


@pytest.fixture(name="mem")
def _mem() -> SegmentWorld:
    """A world on InMemoryStorage only."""
    return make_world(InMemoryStorage())


def fresh(category: EventCategory | str = "trackEventReceived", **overrides: Any) -> Event:
    """A sample event with a fresh uniqueId (unless one is given)."""
    overrides.setdefault("unique_id", new_unique_id())
    return sample_event(category, **overrides)


def message_of(event: Event) -> bytes:
    """*event* as the dispatcher stores it for a Segment webhook."""
    return SegmentFormatter().format(event)


def padded_event(size: int) -> Event:
    """A track event whose Segment message (default formatter) is exactly *size* bytes."""
    unique_id = new_unique_id()
    base = len(message_of(fresh(unique_id=unique_id, event_properties={"pad": ""})))
    event = fresh(unique_id=unique_id, event_properties={"pad": "x" * (size - base)})
    assert len(message_of(event)) == size
    return event


def sent_items(request: OutgoingRequest) -> list[bytes]:
    """The exact message bytes of a batch request (gunzipped if need be)."""
    body = request.body
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return batch_items(body)


def only(result: DispatchResult) -> DeliveryOutcome:
    """The single outcome of a result."""
    (outcome,) = result.outcomes
    return outcome


def auth_header(key: str = WRITE_KEY) -> str:
    """The Basic auth header for *key*, computed independently."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode("ascii")


class TestEndpointAsPasted:
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("https://api.segment.io/v1/batch", "https://api.segment.io"),
            ("https://api.segment.io/v1/batch/", "https://api.segment.io"),
            ("https://api.segment.io/v1", "https://api.segment.io"),
            ("https://api.segment.io/v1/", "https://api.segment.io"),
            ("https://api.segment.io/", "https://api.segment.io"),
            ("https://events.eu1.segmentapis.com//v1/batch", SEGMENT_EU_ENDPOINT),
            (
                "https://proxy.example.com/seg/v1/batch?team=a",
                "https://proxy.example.com/seg?team=a",
            ),
            ("https://proxy.example.com/seg/", "https://proxy.example.com/seg"),
            ("https://proxy.example.com/v1batch", "https://proxy.example.com/v1batch"),
        ],
    )
    def test_registration_stores_the_base_endpoint(
        self, mem: SegmentWorld, given: str, stored: str
    ) -> None:
        """
        The batch URL as users copy it (or /v1 alone, or trailing slashes) is stored as the
        base endpoint, at create and at update, and batches go to one /v1/batch.
        """
        created = mem.hook(segment_endpoint=given)
        assert created.segment_endpoint == stored
        other = mem.hook(segment_endpoint="https://api.segment.io")
        updated = mem.registry.update(ADMIN, other.id, segment_endpoint=given)
        assert updated.segment_endpoint == stored
        assert SegmentChannel().request(created, [], now=T0).url.count("/v1/batch") == 1

    @pytest.mark.parametrize(
        "endpoint", ["https://api.segment.io/v1/batch", "https://api.segment.io/v1/batch/"]
    )
    def test_an_endpoint_stored_before_posts_to_one_batch_path(self, endpoint: str) -> None:
        """
        A webhook stored with the full batch URL (before registration normalised it; the
        model takes it as it is) still posts to <base>/v1/batch, never /v1/batch/v1/batch.
        """
        hook = make_hook(segment_endpoint=endpoint)
        assert hook.segment_endpoint == endpoint
        request = SegmentChannel().request(hook, [], now=T0)
        assert request.url == "https://api.segment.io/v1/batch"


class TestSegmentDispatch:
    def test_dispatch_sends_one_batch_of_the_stored_message(self, world: SegmentWorld) -> None:
        """
        dispatch() stores the track message and sends it at once as a batch of one to
        <endpoint>/v1/batch, with Basic auth, our User-Agent, and sentAt = attempt time.
        """
        hook = world.hook(segment_endpoint=SEGMENT_EU_ENDPOINT)
        sent = fresh("npsSubmitted")
        with world.dispatcher() as dispatcher:
            outcome = only(dispatcher.dispatch(sent))
        assert outcome.outcome is Outcome.DELIVERED
        assert (outcome.attempt, outcome.status_code) == (1, 200)
        (request,) = world.transport.requests
        assert request.url == "https://events.eu1.segmentapis.com/v1/batch"
        assert request.headers["Authorization"] == auth_header()
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"] == f"pendo-webhooks/{__version__}"
        assert "Content-Encoding" not in request.headers
        assert not any(h.lower().startswith("webhook-") for h in request.headers)
        stored = world.storage.get_delivery(str(outcome.delivery_id))
        assert stored.body == message_of(sent)
        assert stored.status is DeliveryStatus.DELIVERED
        assert sent_items(request) == [stored.body]
        assert json.loads(request.body)["sentAt"] == "2026-01-01T12:30:45.123Z"
        (attempt,) = world.storage.list_attempts(stored.id)
        assert (attempt.number, attempt.status_code) == (1, 200)
        assert attempt.verdict is Verdict.DELIVERED
        assert stored.webhook_id == hook.id

    def test_enqueue_many_then_drain_sends_one_batch(self, world: SegmentWorld) -> None:
        """
        enqueue_many() stores every event in one go; drain() sends them together, each
        message byte-identical to what was stored, one attempt row per delivery.
        """
        hook = world.hook()
        events = [fresh(c) for c in EventCategory] * 3
        events = [attrs.evolve(e, unique_id=new_unique_id()) for e in events]
        with world.dispatcher() as dispatcher:
            results = dispatcher.enqueue_many(events)
            assert [only(r).outcome for r in results] == [Outcome.PENDING] * 27
            assert world.transport.requests == []
            summary = dispatcher.drain(timeout=60)
        assert (summary.delivered, summary.pending) == (27, 0)
        (request,) = world.transport.requests
        # Order within a batch is not guaranteed (nor needed: every message has its time).
        assert sorted(sent_items(request)) == sorted(message_of(e) for e in events)
        for result in results:
            delivery_id = str(only(result).delivery_id)
            assert world.storage.get_delivery(delivery_id).status is DeliveryStatus.DELIVERED
            assert len(world.storage.list_attempts(delivery_id)) == 1
        assert hook.id in {d.webhook_id for d in world.storage.list_deliveries()}

    def test_503_then_200_resends_the_same_messages(self, world: SegmentWorld) -> None:
        """
        A 503 retries the whole batch later with the same messageIds and bytes; the 200 that
        follows delivers all of them; every delivery has two attempt rows.
        """
        world.hook()
        world.transport.add(503)
        events = [fresh() for _ in range(5)]
        with world.dispatcher() as dispatcher:
            dispatcher.enqueue_many(events)
            first = dispatcher.run_due()
            assert {o.outcome for o in first} == {Outcome.RETRY}
            assert {o.next_attempt_at for o in first} == {world.clock() + timedelta(seconds=5)}
            assert dispatcher.run_due() == []  # nothing due yet
            summary = dispatcher.drain(timeout=60)
        assert summary.delivered == 5
        one, two = world.transport.requests
        assert sorted(sent_items(one)) == sorted(message_of(e) for e in events)
        assert sorted(sent_items(two)) == sorted(sent_items(one))
        ids = [sorted(json.loads(m)["messageId"] for m in sent_items(r)) for r in (one, two)]
        assert ids[0] == ids[1] == sorted(e.unique_id for e in events)
        assert json.loads(one.body)["sentAt"] != json.loads(two.body)["sentAt"]
        for outcome in first:
            attempts = world.storage.list_attempts(str(outcome.delivery_id))
            assert [(a.number, a.status_code) for a in attempts] == [(1, 503), (2, 200)]

    @pytest.mark.parametrize("status", [400, 401, 404, 413, 301])
    def test_400_and_other_final_statuses_are_not_retried(
        self, mem: SegmentWorld, status: int
    ) -> None:
        """
        A 400 (and any 4xx but 429, and 3xx) fails every message of the batch for good.
        """
        mem.hook()
        mem.transport.add(status)
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue_many([fresh() for _ in range(3)])
            summary = dispatcher.drain(timeout=600)
        assert (summary.failed, summary.pending) == (3, 0)
        assert len(mem.transport.requests) == 1

    def test_retry_after_and_transport_errors_are_retried(self, mem: SegmentWorld) -> None:
        """
        429 with Retry-After waits at least that long; a timeout is retried too.
        """
        mem.hook()
        mem.transport.add(
            TransportResponse(status=429, headers={"Retry-After": "20"}),
            TransportError("timeout", "no answer"),
        )
        with mem.dispatcher() as dispatcher:
            (outcome,) = dispatcher.dispatch(fresh())
            assert outcome.outcome is Outcome.RETRY
            assert outcome.next_attempt_at == mem.clock() + timedelta(seconds=20)
            mem.clock.advance(20)
            (second,) = dispatcher.run_due()
            assert (second.outcome, second.error_kind) == (Outcome.RETRY, "timeout")
            assert dispatcher.drain(timeout=600).delivered == 1
        assert len(mem.transport.requests) == 3

    def test_retries_run_out(self, mem: SegmentWorld) -> None:
        """
        A batch that keeps failing goes dead after the policy's attempts, like a URL webhook.
        """
        mem.hook()
        mem.transport.add(500, 500, 500)
        with mem.dispatcher(retry=attrs.evolve(FAST, max_retries=2)) as dispatcher:
            dispatcher.enqueue_many([fresh(), fresh()])
            summary = dispatcher.drain(timeout=600)
        assert (summary.dead, summary.pending) == (2, 0)
        assert len(mem.transport.requests) == 3

    def test_gzip_on_request(self, world: SegmentWorld) -> None:
        """
        A webhook with segment_gzip sends the batch gzip-compressed, marked as such.
        """
        world.hook(segment_gzip=True)
        sent = fresh()
        with world.dispatcher() as dispatcher:
            assert only(dispatcher.dispatch(sent)).outcome is Outcome.DELIVERED
        (request,) = world.transport.requests
        assert request.headers["Content-Encoding"] == "gzip"
        assert sent_items(request) == [message_of(sent)]

    def test_write_key_is_read_at_send_time(self, world: SegmentWorld) -> None:
        """
        A write key changed after enqueue is the one used: it is never stored with deliveries.
        """
        hook = world.hook()
        with world.dispatcher() as dispatcher:
            dispatcher.enqueue(fresh())
            world.registry.update(ADMIN, hook.id, write_key="NEW-KEY")
            dispatcher.drain(timeout=60)
        (request,) = world.transport.requests
        assert request.headers["Authorization"] == auth_header("NEW-KEY")

    def test_disabled_webhook_gets_nothing(self, world: SegmentWorld) -> None:
        """
        A Segment webhook disabled between enqueue and send gets no request.
        """
        hook = world.hook()
        with world.dispatcher() as dispatcher:
            result = dispatcher.enqueue(fresh())
            world.registry.disable(ADMIN, hook.id)
            dispatcher.drain(timeout=60)
        assert world.transport.requests == []
        delivery = world.storage.get_delivery(str(only(result).delivery_id))
        assert delivery.status is DeliveryStatus.CANCELLED

    def test_unsubscribed_companions_are_cancelled(self, mem: SegmentWorld) -> None:
        """
        Deliveries of a category the webhook dropped meanwhile are cancelled; the rest go out.
        """
        hook = mem.hook()
        keep, drop = fresh("trackEventReceived"), fresh("visitorCreated")
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue(keep)  # due first, so it leads the batch and takes drop along
            mem.clock.advance(1)
            dispatcher.enqueue(drop)
            mem.registry.update(ADMIN, hook.id, categories=["trackEventReceived"])
            outcomes = dispatcher.run_due(limit=1)
        assert [o.outcome for o in outcomes] == [Outcome.CANCELLED, Outcome.DELIVERED]
        assert outcomes[0].reason == "webhook no longer subscribed to visitorCreated"
        (request,) = mem.transport.requests
        assert sent_items(request) == [message_of(keep)]

    def test_dispatch_takes_due_deliveries_along(self, mem: SegmentWorld) -> None:
        """
        An immediate attempt carries the webhook's other due deliveries in the same batch.
        """
        mem.hook()
        waiting = fresh()
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue(waiting)
            new = fresh()
            assert only(dispatcher.dispatch(new)).outcome is Outcome.DELIVERED
            assert dispatcher.run_due() == []
        (request,) = mem.transport.requests
        assert sorted(sent_items(request)) == sorted([message_of(waiting), message_of(new)])

    def test_segment_and_url_webhooks_together(self, mem: SegmentWorld) -> None:
        """
        One event goes to a URL webhook (Pendo's bytes) and a Segment webhook (a batch).
        """
        seg = mem.hook()
        url = mem.hook(kind="url", url="https://hooks.example.com/in", write_key=None, name="URL")
        sent = fresh()
        with mem.dispatcher() as dispatcher:
            result = dispatcher.dispatch(sent)
        assert result.for_webhook(seg.id).outcome is Outcome.DELIVERED
        assert result.for_webhook(url.id).outcome is Outcome.DELIVERED
        bodies = sorted(r.body for r in mem.transport.requests)
        assert to_wire(sent) in bodies
        assert any(b.startswith(b'{"batch":[') for b in bodies)

    def test_concurrent_runners_send_each_message_once(self, world: SegmentWorld) -> None:
        """
        drain(concurrency=4) over several Segment webhooks sends every message exactly once.
        """
        hooks = [world.hook(name=f"S{i}", write_key=f"wk{i}") for i in range(3)]
        events = [fresh() for _ in range(30)]
        with world.dispatcher() as dispatcher:
            dispatcher.enqueue_many(events)
            summary = dispatcher.drain(timeout=60, concurrency=4)
        assert summary.delivered == 90
        keys = {r.headers["Authorization"] for r in world.transport.requests}
        assert keys == {auth_header(f"wk{i}") for i in range(3)}
        sent = [m for r in world.transport.requests for m in sent_items(r)]
        assert sorted(sent) == sorted([message_of(e) for e in events] * len(hooks))


class TestSharedBatches:
    """
    Concurrent dispatch() calls to one Segment webhook share requests (group commit).
    """

    @staticmethod
    def run_gated(
        world: SegmentWorld,
        dispatcher: Dispatcher,
        events: list[Event],
        *,
        before_release: Any = None,
    ) -> list[DeliveryOutcome]:
        """
        Dispatch *events* from one thread each: the first call's request stays in flight
        until every other caller has stored its delivery and is waiting to share a batch.
        """
        in_flight, release = threading.Event(), threading.Event()
        first = threading.Lock()

        def on_send(_: OutgoingRequest) -> None:
            if first.acquire(blocking=False):
                in_flight.set()
                assert release.wait(timeout=120)

        world.transport._on_send = on_send
        results: dict[int, DeliveryOutcome] = {}

        def call(n: int) -> None:
            results[n] = only(dispatcher.dispatch(events[n]))

        leader = threading.Thread(target=call, args=(0,))
        leader.start()
        assert in_flight.wait(timeout=120)
        followers = [threading.Thread(target=call, args=(n,)) for n in range(1, len(events))]
        for thread in followers:
            thread.start()
        shared = dispatcher._enqueuer._shared
        with shared._cond:
            assert shared._cond.wait_for(
                lambda: sum(map(len, shared._waiting.values())) == len(events) - 1,
                timeout=120,
            )
        if before_release is not None:
            before_release()
        release.set()
        for thread in [leader, *followers]:
            thread.join(timeout=120)
        return [results[n] for n in range(len(events))]

    def test_n_concurrent_calls_make_two_requests(self, world: SegmentWorld) -> None:
        """
        40 callers of dispatch(), one event each: the first is sent at once; the 39 that
        arrive while it is in flight go together in the next request, each caller gets
        its own delivered outcome, and every message is sent exactly once.
        """
        world.hook()
        events = [fresh() for _ in range(40)]
        with world.dispatcher(dispatch_threads=2) as dispatcher:
            outcomes = self.run_gated(world, dispatcher, events)
        assert [o.outcome for o in outcomes] == [Outcome.DELIVERED] * 40
        first, second = world.transport.requests
        assert len(sent_items(first)) == 1
        assert len(sent_items(second)) == 39
        sent = [json.loads(m)["messageId"] for r in (first, second) for m in sent_items(r)]
        assert sorted(sent) == sorted(e.unique_id for e in events)
        for outcome in outcomes:
            stored = world.storage.get_delivery(str(outcome.delivery_id))
            assert (stored.status, stored.attempts) == (DeliveryStatus.DELIVERED, 1)

    def test_a_batch_that_waited_half_a_lease_is_handed_back(self, mem: SegmentWorld) -> None:
        """
        Callers that waited past half their lease (the request before theirs was very
        slow) are not sent late: handed back pending, due at once, and a worker sends them.
        """
        mem.hook()
        events = [fresh() for _ in range(3)]
        with mem.dispatcher() as dispatcher:
            outcomes = self.run_gated(
                mem, dispatcher, events, before_release=lambda: mem.clock.advance(seconds=31)
            )
            assert [o.outcome for o in outcomes] == [
                Outcome.DELIVERED,
                Outcome.PENDING,
                Outcome.PENDING,
            ]
            assert outcomes[1].reason == (
                "handed back: half its lease went waiting for a shared batch"
            )
            assert len(mem.transport.requests) == 1
            assert dispatcher.drain(timeout=60).delivered == 2
        assert len(mem.transport.requests) == 2

    def test_url_webhooks_still_send_one_request_per_call(self, mem: SegmentWorld) -> None:
        """
        URL webhooks' dispatch() is unchanged: one request per event, sent in the call.
        """
        mem.hook(kind="url", url="https://hooks.example.com/in", write_key=None)
        events = [fresh() for _ in range(5)]
        with mem.dispatcher() as dispatcher:
            for event in events:
                assert only(dispatcher.dispatch(event)).outcome is Outcome.DELIVERED
        assert len(mem.transport.requests) == 5


class TestEnqueueMany:
    def test_a_non_event_stores_nothing(self, world: SegmentWorld) -> None:
        """
        One bad item makes the whole call fail before anything is stored.
        """
        world.hook()
        with world.dispatcher() as dispatcher, pytest.raises(ValidationError, match="event"):
            dispatcher.enqueue_many([fresh(), "not an event"])  # type: ignore[list-item]
        assert world.storage.list_deliveries() == []

    def test_duplicates_and_unsubscribed_events(
        self, world: SegmentWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        The same event twice is stored once (the second is skipped as a duplicate); an event
        nobody subscribes to has no outcome; webhooks are looked up once per category.
        """
        hook = world.hook(categories=["trackEventReceived"])
        twice = fresh()
        lookups: list[object] = []
        real = WebhookRegistry.subscribed

        def counting(self: WebhookRegistry, category: EventCategory | str) -> list[Webhook]:
            lookups.append(category)
            return real(self, category)

        monkeypatch.setattr(WebhookRegistry, "subscribed", counting)
        with world.dispatcher() as dispatcher:
            first, second, other = dispatcher.enqueue_many([twice, twice, fresh("npsSubmitted")])
        assert only(first).outcome is Outcome.PENDING
        assert only(second).outcome is Outcome.SKIPPED
        assert "duplicate" in str(only(second).reason)
        assert other.outcomes == ()
        assert len(lookups) == 2
        assert [d.webhook_id for d in world.storage.list_deliveries()] == [hook.id]

    def test_empty(self, mem: SegmentWorld) -> None:
        """
        Nothing to enqueue is no work at all.
        """
        with mem.dispatcher() as dispatcher:
            assert dispatcher.enqueue_many([]) == []


class TestDispatchMany:
    def test_stores_then_sends_segment_in_batches_and_url_one_by_one(
        self, world: SegmentWorld
    ) -> None:
        """
        dispatch_many() stores every event, then sends the Segment webhook's messages as one
        batch and each URL webhook delivery on its own; every result says delivered.
        """
        seg = world.hook()
        url = world.hook(kind="url", url="https://hooks.example.com/in", write_key=None)
        events = [fresh() for _ in range(5)]
        with world.dispatcher() as dispatcher:
            results = dispatcher.dispatch_many(events)
        assert all(r.all_delivered for r in results)
        assert [r.for_webhook(seg.id).outcome for r in results] == [Outcome.DELIVERED] * 5
        batches = [r for r in world.transport.requests if r.url.endswith("/v1/batch")]
        singles = [r for r in world.transport.requests if r.url == url.url]
        assert len(batches) == 1
        assert sorted(sent_items(batches[0])) == sorted(message_of(e) for e in events)
        assert sorted(r.body for r in singles) == sorted(to_wire(e) for e in events)

    def test_oversize_and_duplicates_are_reported(self, mem: SegmentWorld) -> None:
        """
        In dispatch_many(), an oversize message is failed unsent and a repeated event skipped.
        """
        mem.hook()
        twice = fresh()
        with mem.dispatcher() as dispatcher:
            results = dispatcher.dispatch_many([twice, padded_event(40_000), twice])
        assert [only(r).outcome for r in results] == [
            Outcome.DELIVERED,
            Outcome.FAILED,
            Outcome.SKIPPED,
        ]
        (request,) = mem.transport.requests
        assert sent_items(request) == [message_of(twice)]

    def test_url_deliveries_whose_lease_ran_short_are_handed_back(self, mem: SegmentWorld) -> None:
        """
        URL deliveries not started while their claim was fresh are released (pending, due
        now) instead of being sent late; run_due sends them afterwards.
        """
        mem.hook(kind="url", url="https://hooks.example.com/in", write_key=None)
        clock = mem.clock
        mem.transport = RecordingTransport(on_send=lambda _r: clock.advance(40))
        with mem.dispatcher(dispatch_threads=1) as dispatcher:
            results = dispatcher.dispatch_many([fresh(), fresh(), fresh()])
            outcomes = [only(r).outcome for r in results]
            assert outcomes.count(Outcome.DELIVERED) == 1
            assert outcomes.count(Outcome.PENDING) == 2
            assert len(mem.transport.requests) == 1
            assert dispatcher.drain(timeout=600).delivered == 2

    def test_a_bug_in_the_batch_leaves_everything_pending(
        self, mem: SegmentWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        An unexpected error while sending a batch leaves all its deliveries pending (they
        come back when their lease lapses) and is reported per event.
        """
        mem.hook()

        def broken(*_args: object, **_kwargs: object) -> list[bool]:
            raise RuntimeError("bug")

        monkeypatch.setattr(mem.storage, "record_outcomes", broken)
        with mem.dispatcher() as dispatcher:
            results = dispatcher.dispatch_many([fresh(), fresh()])
        assert [only(r).outcome for r in results] == [Outcome.PENDING, Outcome.PENDING]
        assert {d.status for d in mem.storage.list_deliveries()} == {DeliveryStatus.PENDING}


class TestSegmentLimits:
    def test_exactly_32768_is_sent_and_32769_is_failed_unsent(self, world: SegmentWorld) -> None:
        """
        At enqueue, a 32,768-byte message is accepted and sent; a 32,769-byte one gets a failed
        delivery with the reason, zero requests, and the result says so.
        """
        world.hook()
        with world.dispatcher() as dispatcher:
            big = only(dispatcher.dispatch(padded_event(MAX_MESSAGE_BYTES + 1)))
            assert world.transport.requests == []
            ok = only(dispatcher.dispatch(padded_event(MAX_MESSAGE_BYTES)))
        assert big.outcome is Outcome.FAILED
        assert big.reason == "payload too large: 32769 bytes > 32768"
        failed = world.storage.get_delivery(str(big.delivery_id))
        assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 0)
        assert failed.last_error == big.reason
        assert world.storage.list_attempts(failed.id) == []
        assert ok.outcome is Outcome.DELIVERED
        (request,) = world.transport.requests
        assert [len(m) for m in sent_items(request)] == [MAX_MESSAGE_BYTES]

    def test_oversize_is_reported_by_enqueue_too(self, mem: SegmentWorld) -> None:
        """
        enqueue_many() reports the oversize message as failed, and the others as pending.
        """
        mem.hook()
        with mem.dispatcher() as dispatcher:
            results = dispatcher.enqueue_many([padded_event(40_000), fresh()])
            assert [only(r).outcome for r in results] == [Outcome.FAILED, Outcome.PENDING]
            assert dispatcher.drain(timeout=60).delivered == 1
        assert len(mem.transport.requests) == 1

    def test_url_body_limit(self, mem: SegmentWorld) -> None:
        """
        URL webhook bodies over max_body_bytes (256 KB by default) are failed, never sent.
        """
        hook = mem.hook(kind="url", url="https://hooks.example.com/in", write_key=None)
        event = fresh("guideDisplayed")
        size = len(to_wire(event))
        with mem.dispatcher(max_body_bytes=size - 1) as small:
            outcome = only(small.dispatch(event))
        assert (outcome.outcome, outcome.reason) == (
            Outcome.FAILED,
            f"payload too large: {size} bytes > {size - 1}",
        )
        assert mem.transport.requests == []
        with mem.dispatcher() as default:
            assert default.max_body_bytes == 262_144
            assert only(default.dispatch(fresh("guideDisplayed"))).outcome is Outcome.DELIVERED
        [decision] = default.explain(padded_event(300_000))
        assert (decision.webhook_id, decision.will_send) == (hook.id, False)

    @pytest.mark.parametrize("value", [0, -1, 1.5, True, "1"])
    def test_bad_max_body_bytes(self, mem: SegmentWorld, value: object) -> None:
        """
        max_body_bytes must be a positive integer.
        """
        with pytest.raises(ConfigurationError, match="max_body_bytes"):
            mem.dispatcher(max_body_bytes=value)

    def test_a_stored_oversize_message_is_never_sent(self, mem: SegmentWorld) -> None:
        """
        A message over the limit that got into the store anyway is failed at send time,
        without a request; the others of its batch still go out.
        """
        hook = mem.hook()
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue(fresh())
            t = mem.clock()
            rogue = Delivery(
                id="dlv_rogue",
                webhook_id=hook.id,
                event_id="rogue",
                category="trackEventReceived",
                body=b"{" + b" " * MAX_MESSAGE_BYTES + b"}",
                next_attempt_at=t,
                created_at=t,
                updated_at=t,
            )
            assert mem.storage.enqueue_deliveries([rogue]) == [None]
            outcomes = dispatcher.run_due()
        by_id = {o.delivery_id: o for o in outcomes}
        assert by_id["dlv_rogue"].outcome is Outcome.FAILED
        assert by_id["dlv_rogue"].reason == "payload too large: 32770 bytes > 32768"
        (request,) = mem.transport.requests
        assert len(sent_items(request)) == 1

    def test_a_message_id_of_100_characters_is_failed_unsent(self, world: SegmentWorld) -> None:
        """
        Segment takes a messageId of fewer than 100 characters; Pendo's uniqueId may have
        100. At enqueue such a Segment delivery is stored failed with the reason (zero
        requests, the result says so), never sent to be dropped; 99 goes out, and a URL
        webhook of the same event is not affected.
        """
        seg = world.hook()
        world.hook(kind="url", url="https://hooks.example.com/in", write_key=None)
        with world.dispatcher() as dispatcher:
            long = dispatcher.dispatch(fresh(unique_id="L" * 100))
            segment, url = sorted(long.outcomes, key=lambda o: o.webhook_id != seg.id)
            assert [r.url for r in world.transport.requests] == ["https://hooks.example.com/in"]
            ok = dispatcher.dispatch(fresh(unique_id="k" * 99))
        assert (segment.outcome, segment.reason) == (
            Outcome.FAILED,
            "messageId too long: 100 characters; Segment takes fewer than 100",
        )
        assert url.outcome is Outcome.DELIVERED
        failed = world.storage.get_delivery(str(segment.delivery_id))
        assert (failed.status, failed.attempts, failed.last_error) == (
            DeliveryStatus.FAILED,
            0,
            segment.reason,
        )
        assert [o.outcome for o in ok.outcomes] == [Outcome.DELIVERED, Outcome.DELIVERED]
        (batch,) = [r for r in world.transport.requests if r.url.endswith("/v1/batch")]
        assert [json.loads(m)["messageId"] for m in sent_items(batch)] == ["k" * 99]

    def test_a_stored_long_message_id_is_never_sent(self, mem: SegmentWorld) -> None:
        """
        A message with a 100-character messageId stored before the check (an older version)
        is failed at send time, with the reason and without a request; its batch goes on.
        """
        hook = mem.hook()
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue(fresh())
            t = mem.clock()
            rogue = Delivery(
                id="dlv_rogue",
                webhook_id=hook.id,
                event_id="m" * 100,
                category="trackEventReceived",
                body=message_of(fresh(unique_id="m" * 100)),
                next_attempt_at=t,
                created_at=t,
                updated_at=t,
            )
            assert mem.storage.enqueue_deliveries([rogue]) == [None]
            outcomes = dispatcher.run_due()
        by_id = {o.delivery_id: o for o in outcomes}
        assert by_id["dlv_rogue"].outcome is Outcome.FAILED
        assert by_id["dlv_rogue"].reason == (
            "messageId too long: 100 characters; Segment takes fewer than 100"
        )
        (request,) = mem.transport.requests
        assert len(sent_items(request)) == 1

    def test_message_id_length_counts_characters(self) -> None:
        """
        The length is the JSON string's, in characters: escapes and multi-byte characters
        (a custom formatter's) count once; a message without a messageId is not judged.
        """
        reason = SegmentChannel().refuse
        assert MAX_MESSAGE_ID_LENGTH == 99
        assert reason(b'{"messageId":"' + "é".encode() * 99 + b'"}') is None
        assert reason(b'{"messageId":"' + b"\\u00e9" * 99 + b'"}') is None
        assert reason(b'{"messageId":"' + b"\\u00e9" * 100 + b'"}') is not None
        assert reason(b'{"messageId":"' + b"\\q" * 50 + b'"}') is not None
        assert reason(b'{"messageId":"a\\"b"}') is None
        assert reason(b'{"messageId":7}') is None
        assert reason(b'{"messageId":"' + b"a" * 120) is None  # not a JSON string: not judged
        assert reason(b"{}") is None

    def test_batches_within_limits_through_the_dispatcher(self, mem: SegmentWorld) -> None:
        """
        3,000 messages of ~1 KB leave in several batches, each within both limits, every
        message exactly once.
        """
        mem.hook()
        events = [fresh(event_properties={"pad": "y" * 400}) for _ in range(3_000)]
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue_many(events)
            summary = dispatcher.drain(timeout=60)
        assert summary.delivered == 3_000
        requests = mem.transport.requests
        assert len(requests) > 3
        assert all(len(r.body) <= MAX_BATCH_BYTES for r in requests)
        assert all(len(sent_items(r)) <= MAX_BATCH_MESSAGES for r in requests)
        ids = [json.loads(m)["messageId"] for r in requests for m in sent_items(r)]
        assert sorted(ids) == sorted(e.unique_id for e in events)


class TestSegmentEdges:
    def test_rest_is_released_when_the_lease_runs_short(self, mem: SegmentWorld) -> None:
        """
        If sending takes half the lease, the batches not yet sent are handed back (pending,
        due at once) instead of risking a send after the lease lapses.
        """
        mem.hook()
        clock = mem.clock
        mem.transport = RecordingTransport(on_send=lambda _r: clock.advance(40))
        events = [fresh(event_properties={"pad": "z" * 20_000}) for _ in range(30)]
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue_many(events)
            outcomes = dispatcher.run_due(limit=1)
            assert len(mem.transport.requests) == 1
            counts = Counter(o.outcome for o in outcomes)
            assert counts[Outcome.DELIVERED] == len(sent_items(mem.transport.requests[0]))
            assert counts[Outcome.PENDING] == 30 - counts[Outcome.DELIVERED]
            summary = dispatcher.drain(timeout=3_600)
        assert summary.delivered == 30 - counts[Outcome.DELIVERED]
        assert summary.pending == 0

    def test_410_disables_the_webhook_and_cancels_the_rest(self, mem: SegmentWorld) -> None:
        """
        A 410 fails its batch, disables the webhook (audited as the system), and the
        messages of later batches are cancelled, never sent.
        """
        hook = mem.hook()
        mem.transport.add(410)
        events = [fresh(event_properties={"pad": "z" * 20_000}) for _ in range(30)]
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue_many(events)
            outcomes = dispatcher.run_due(limit=1)
        assert len(mem.transport.requests) == 1
        counts = Counter(o.outcome for o in outcomes)
        assert counts[Outcome.FAILED] == len(sent_items(mem.transport.requests[0]))
        assert counts[Outcome.CANCELLED] == 30 - counts[Outcome.FAILED]
        assert mem.registry.get(ADMIN, hook.id).disabled_by == "system"

    def test_lost_lease_is_reported(self, mem: SegmentWorld) -> None:
        """
        If the store refuses an outcome (the lease was lost), what the store holds is reported.
        """
        hook = mem.hook()
        storage = mem.storage

        def cancel_meanwhile(_request: OutgoingRequest) -> None:
            storage.cancel_deliveries(hook.id, reason="gone meanwhile", now=mem.clock())

        mem.transport = RecordingTransport(on_send=cancel_meanwhile)
        with mem.dispatcher() as dispatcher:
            outcome = only(dispatcher.dispatch(fresh()))
        assert (outcome.outcome, outcome.reason) == (Outcome.CANCELLED, "gone meanwhile")

    def test_an_unexpected_error_leaves_the_batch_pending(
        self, mem: SegmentWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A bug while recording is caught: the delivery stays pending and leased (it comes back
        when the lease lapses), and the loop goes on.
        """
        mem.hook()

        def broken(*_args: object, **_kwargs: object) -> list[bool]:
            raise RuntimeError("bug")

        monkeypatch.setattr(mem.storage, "record_outcomes", broken)
        with mem.dispatcher() as dispatcher:
            outcome = only(dispatcher.dispatch(fresh()))
        assert outcome.outcome is Outcome.PENDING
        assert "RuntimeError" in str(outcome.reason)

    def test_a_failing_claim_is_caught(
        self, mem: SegmentWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A store failing while a batch is gathered does not escape: the delivery stays pending.
        """
        mem.hook()
        real = mem.storage.claim_due

        def claim(**kwargs: Any) -> list[Delivery]:
            if kwargs.get("webhook_id") is not None:
                raise RuntimeError("store down")
            return real(**kwargs)

        monkeypatch.setattr(mem.storage, "claim_due", claim)
        with mem.dispatcher() as dispatcher:
            dispatcher.enqueue(fresh())
            (outcome,) = dispatcher.run_due()
        assert outcome.outcome is Outcome.PENDING
        assert mem.transport.requests == []

    def test_a_deleted_webhook_cancels(self, mem: SegmentWorld) -> None:
        """
        A claimed delivery whose Segment webhook is gone is cancelled without a request.
        """
        hook = mem.hook()
        with mem.dispatcher() as dispatcher:
            result = dispatcher.enqueue(fresh())
            mem.registry.delete(ADMIN, hook.id)
            dispatcher.drain(timeout=60)
        assert mem.transport.requests == []
        delivery = mem.storage.get_delivery(str(only(result).delivery_id))
        assert delivery.status is DeliveryStatus.CANCELLED


class TestSegmentTestButton:
    @pytest.mark.parametrize("gzip_on", [False, True])
    def test_sends_one_sample_track_in_a_batch_of_one(
        self, world: SegmentWorld, gzip_on: bool
    ) -> None:
        """
        The Test button works on a disabled Segment webhook: one request, a batch holding one
        sample track message of the webhook's first category, with the write key; nothing
        is stored.
        """
        hook = world.hook(enabled=False, categories=["npsSubmitted"], segment_gzip=gzip_on)
        with world.dispatcher() as dispatcher:
            result = dispatcher.send_test(ADMIN, hook.id)
        assert result.accepted
        assert (result.status, result.error) == (200, None)
        (request,) = world.transport.requests
        assert request.url == "https://api.segment.io/v1/batch"
        assert request.headers["Authorization"] == auth_header()
        assert result.request_body == request.body
        (item,) = sent_items(request)
        message = json.loads(item)
        assert (message["type"], message["event"]) == ("track", "npsSubmitted")
        assert message["messageId"] == result.event_id
        assert world.storage.list_deliveries() == []

    def test_reports_a_refusal(self, mem: SegmentWorld) -> None:
        """
        A 401 (a wrong write key) is reported, not raised, and the key is not in the error.
        """
        hook = mem.hook()
        mem.transport.add(TransportResponse(status=401, body=b'{"error":"bad key"}'))
        with mem.dispatcher() as dispatcher:
            result = dispatcher.send_test(ADMIN, hook.id, "visitorCreated")
        assert not result.accepted
        assert (result.status, result.error) == (401, "HTTP 401")
        assert result.response_excerpt == '{"error":"bad key"}'
        assert WRITE_KEY not in repr(result)


class ToyCodec:
    """A reversible 'encryption' (base64 of the reversed text): plaintext never hits the disk."""

    def encode(self, plaintext: str) -> str:
        return base64.b64encode(plaintext[::-1].encode()).decode()

    def decode(self, stored: str) -> str:
        return base64.b64decode(stored).decode()[::-1]


def dump(path: Path) -> bytes:
    """Every row of every table of the SQLite file, as bytes (text and blobs)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        parts = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - our own names
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
        return b"\n".join(parts)
    finally:
        conn.close()


class TestWriteKeyNeverLeaks:
    def test_not_in_any_stored_row(self, tmp_path: Path) -> None:
        """
        After deliveries, retries and a failure, the write key (and its Basic token) is in no
        row of any table but its webhook's write_key column; with a codec, nowhere at all.
        """
        token = auth_header().split(" ")[1].encode()
        for codec in (None, ToyCodec()):
            path = tmp_path / f"{codec is None}.sqlite3"
            with SQLiteStorage(path, secret_codec=codec) as storage:
                world = make_world(storage)
                hook = world.hook()
                world.transport.add(503, TransportResponse(status=400, body=WRITE_KEY.encode()))
                with world.dispatcher() as dispatcher:
                    dispatcher.dispatch(fresh())
                    dispatcher.enqueue_many([fresh(), padded_event(40_000)])
                    dispatcher.drain(timeout=600)
                assert storage.list_deliveries(), "something was stored"
            data = dump(path)
            assert token not in data
            if codec is None:
                assert data.count(WRITE_KEY.encode()) == 1
                conn = sqlite3.connect(path)
                (stored,) = conn.execute("SELECT write_key FROM webhooks").fetchone()
                conn.close()
                assert stored == WRITE_KEY
                assert b"<redacted>" in data  # the 400's echo of the key, scrubbed
                assert hook.id in data.decode("utf-8", "replace")
            else:
                assert WRITE_KEY.encode() not in data

    def test_not_in_logs_reprs_or_errors(
        self, mem: SegmentWorld, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        Debug logs, reprs of everything a Segment delivery produces, and the texts of errors
        about a write key never show the key (nor its Basic token).
        """
        hook = mem.hook()
        mem.transport.add(TransportError("connect", "refused"), 503, TransportResponse(status=400))
        with caplog.at_level(logging.DEBUG), mem.dispatcher() as dispatcher:
            result = dispatcher.dispatch(fresh())
            summary = dispatcher.drain(timeout=600)
            texts = [repr(result), repr(summary), repr(dispatcher), repr(hook)]
            for delivery in mem.storage.list_deliveries():
                texts += [repr(delivery), str(delivery.last_error)]
                for attempt in mem.storage.list_attempts(delivery.id):
                    texts += [repr(attempt), str(attempt.detail), attempt.reason]
            texts += [repr(r) for r in mem.transport.requests]
            texts += [repr(mem.registry.get(ADMIN, hook.id))]
            for bad in (f"whsec_{WRITE_KEY}!", f"{WRITE_KEY}\ud800"):
                with pytest.raises(ValidationError) as info:
                    mem.registry.update(ADMIN, hook.id, write_key=bad)
                texts += [str(info.value), repr(info.value)]
        assert summary.failed == 1
        assert "segment batch to webhook" in caplog.text
        token = auth_header().split(" ")[1]
        for text in [caplog.text, *texts]:
            assert WRITE_KEY not in text
            assert token not in text


# ---------------------------------------------------------------------------------------
# Bulk storage writes (every backend): the same results as one at a time


def stored_delivery(webhook_id: str, t: datetime, **overrides: Any) -> Delivery:
    """A pending delivery value for *webhook_id* with a fresh id and event."""
    values: dict[str, Any] = {
        "id": f"dlv_{new_unique_id()[:12]}",
        "webhook_id": webhook_id,
        "event_id": new_unique_id(),
        "category": "trackEventReceived",
        "body": b"{}",
        "next_attempt_at": t,
        "created_at": t,
        "updated_at": t,
        **overrides,
    }
    return Delivery(**values)


class TestBulkWrites:
    def test_enqueue_many_rows_skips_like_one_at_a_time(self, world: SegmentWorld) -> None:
        """
        A multi-row enqueue stores new rows, skips an event already stored and a second copy
        within the call (duplicate), and a disabled or deleted webhook's rows.
        """
        on = world.hook(name="on")
        off = world.hook(name="off", enabled=False)
        t = world.clock()
        first = stored_delivery(on.id, t)
        assert world.storage.enqueue_deliveries([first]) == [None]
        again = stored_delivery(on.id, t, event_id=first.event_id)
        fresh_one = stored_delivery(on.id, t)
        copy = stored_delivery(on.id, t, event_id=fresh_one.event_id)
        assert world.storage.enqueue_deliveries([again, fresh_one, copy]) == [
            "duplicate",
            None,
            "duplicate",
        ]
        mixed = [stored_delivery(on.id, t), stored_delivery(off.id, t)]
        mixed.append(stored_delivery("wh_gone", t))
        assert world.storage.enqueue_deliveries(mixed) == [None, "disabled", "deleted"]
        ids = {d.id for d in world.storage.list_deliveries(limit=100)}
        assert ids == {first.id, fresh_one.id, mixed[0].id}

    def test_a_taken_id_is_a_conflict_and_stores_nothing(self, world: SegmentWorld) -> None:
        """
        A multi-row enqueue with a delivery id already taken raises ConflictError, all or nothing.
        """
        hook = world.hook()
        t = world.clock()
        taken = stored_delivery(hook.id, t)
        world.storage.enqueue_deliveries([taken])
        batch = [stored_delivery(hook.id, t), stored_delivery(hook.id, t, id=taken.id)]
        with pytest.raises(ConflictError):
            world.storage.enqueue_deliveries(batch)
        assert [d.id for d in world.storage.list_deliveries()] == [taken.id]

    def test_record_outcomes_is_fenced_per_delivery(self, world: SegmentWorld) -> None:
        """
        Outcomes of several deliveries are written in one call; one whose lease was lost is
        not written (and gets no attempt row), the others are.
        """
        hook = world.hook()
        t = world.clock()
        world.storage.enqueue_deliveries([stored_delivery(hook.id, t) for _ in range(3)])
        until = t + timedelta(seconds=60)
        mine = world.storage.claim_due(owner="me", now=t, lease_until=until, limit=3)
        lost = mine[1]
        world.storage.release_claims([lost.id], owner="me", now=t)
        rows = []
        for delivery in mine:
            attempt = Attempt(
                delivery_id=delivery.id,
                number=1,
                started_at=t,
                duration=0.01,
                status_code=200,
                verdict=Verdict.DELIVERED,
                reason="HTTP 200",
            )
            done = attrs.evolve(
                delivery,
                status=DeliveryStatus.DELIVERED,
                attempts=1,
                finished_at=t,
                lease_owner=None,
                lease_until=None,
            )
            rows.append((done, attempt))
        assert world.storage.record_outcomes(rows, owner="me", now=t) == [True, False, True]
        assert world.storage.record_outcomes([], owner="me", now=t) == []
        statuses = [world.storage.get_delivery(d.id).status for d in mine]
        assert statuses == [
            DeliveryStatus.DELIVERED,
            DeliveryStatus.PENDING,
            DeliveryStatus.DELIVERED,
        ]
        assert [len(world.storage.list_attempts(d.id)) for d in mine] == [1, 0, 1]
