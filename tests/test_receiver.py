"""LocalReceiver and signed_request: the receiver's toolkit in pendo_webhooks.testing."""

from __future__ import annotations

import base64
import gzip
import http.client
import logging
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from pendo_webhooks import Secret
from pendo_webhooks.events import EventCategory, to_wire
from pendo_webhooks.exceptions import ConfigurationError, InvalidEventPayload, ValidationError
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.signing import SignatureScheme
from pendo_webhooks.testing import (
    LocalReceiver,
    ReceivedRequest,
    Reply,
    SignedRequest,
    sample_event,
    signed_request,
)
from pendo_webhooks.testing._receiver import _Checker
from pendo_webhooks.transports import OutgoingRequest, RequestsTransport


SECRET = "s3cr3t-with-special-chars!&?<>"
T0 = datetime(2021, 7, 20, 17, 58, tzinfo=timezone.utc)
TS0 = int(T0.timestamp())


def _at(when: datetime):  # type: ignore[no-untyped-def]
    return lambda: when


def _post(
    receiver: LocalReceiver,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    path: str = "/hook",
    method: str = "POST",
) -> http.client.HTTPResponse:
    """
    Send one request on a fresh connection and return the (fully read) response.
    """
    parts = urllib.parse.urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as receiver:
        yield receiver


class TestRecording:
    def test_records_method_path_headers_and_body(self, receiver: LocalReceiver) -> None:
        """
        A request is recorded with its method, full target, headers as sent and exact body.
        """
        response = _post(receiver, b"hello", {"X-Thing": "1"}, path="/in?token=abc")
        assert response.status == 200
        (request,) = receiver.requests
        assert request.method == "POST"
        assert request.path == "/in?token=abc"
        assert request.headers["X-Thing"] == "1"
        assert request.header("x-thing") == "1"
        assert request.header("missing") is None
        assert request.body == b"hello"
        assert request.status == 200
        assert request.verified is None

    def test_url_points_at_loopback_and_url_for_joins_paths(self, receiver: LocalReceiver) -> None:
        """
        url is the base on 127.0.0.1 with the picked port; url_for joins a path to it.
        """
        assert receiver.url.startswith("http://127.0.0.1:")
        assert receiver.url.endswith("/")
        assert receiver.url_for("/a/b?c=1") == receiver.url + "a/b?c=1"
        assert receiver.url_for("x") == receiver.url + "x"

    def test_repeated_headers_are_joined_under_the_first_spelling(
        self, receiver: LocalReceiver
    ) -> None:
        """
        A header sent twice (in any case) is one entry, its values joined with ', '.
        """
        parts = urllib.parse.urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        conn.putrequest("POST", "/")
        conn.putheader("X-Tag", "a")
        conn.putheader("x-tag", "b")
        conn.putheader("Content-Length", "0")
        conn.endheaders()
        conn.getresponse().read()
        conn.close()
        (request,) = receiver.requests
        assert request.headers["X-Tag"] == "a, b"
        assert "x-tag" not in request.headers

    def test_chunked_bodies_are_reassembled(self, receiver: LocalReceiver) -> None:
        """
        A body sent with chunked transfer coding is recorded whole.
        """
        parts = urllib.parse.urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        conn.request("POST", "/", body=iter([b"abc", b"defg"]), encode_chunked=True)
        assert conn.getresponse().status == 200
        conn.close()
        assert receiver.requests[0].body == b"abcdefg"

    def test_chunk_extensions_and_trailers_are_skipped(self, receiver: LocalReceiver) -> None:
        """
        Chunk extensions and trailer fields do not end up in the body.
        """
        parts = urllib.parse.urlsplit(receiver.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        assert receiver.requests[0].body == b"abc"

    def test_keep_alive_connections_carry_many_requests(self, receiver: LocalReceiver) -> None:
        """
        Several requests on one HTTP/1.1 connection are all recorded and answered.
        """
        parts = urllib.parse.urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        for i in range(3):
            conn.request("POST", f"/{i}", body=b"x")
            assert conn.getresponse().read() == b""
        conn.close()
        assert [r.path for r in receiver.requests] == ["/0", "/1", "/2"]

    def test_head_gets_headers_only(self) -> None:
        """
        A HEAD request is answered with the reply's headers and no body.
        """
        with LocalReceiver(default_status=Reply(status=200, body=b"payload")) as receiver:
            response = _post(receiver, b"", method="HEAD")
        assert response.status == 200
        assert response.getheader("Content-Length") == "7"
        assert receiver.requests[0].event is None

    def test_received_at_comes_from_the_clock(self) -> None:
        """
        received_at is what the injected clock says.
        """
        with LocalReceiver(clock=_at(T0)) as receiver:
            _post(receiver, b"")
        assert receiver.requests[0].received_at == T0

    def test_clear_forgets_requests_but_keeps_the_script(self) -> None:
        """
        clear() empties the record; scripted replies not yet used stay queued.
        """
        with LocalReceiver(statuses=[201, 202]) as receiver:
            _post(receiver, b"")
            receiver.clear()
            assert receiver.requests == []
            assert _post(receiver, b"").status == 202
            assert len(receiver.requests) == 1

    def test_repr_shows_url_and_count_only(self) -> None:
        """
        The repr names the URL and how many requests arrived, never a secret.
        """
        with LocalReceiver(secrets=[SECRET]) as receiver:
            _post(receiver, b"")
            text = repr(receiver)
        assert text == f"<LocalReceiver(url={receiver.url!r}, num_requests=1)>"
        assert "s3cr3t" not in text

    def test_received_request_repr_is_short(self) -> None:
        """
        A ReceivedRequest's repr shows the body's size and the event's type and id.
        """
        body, headers = signed_request(sample_event("npsSubmitted"), SECRET)
        with LocalReceiver(secrets=[SECRET]) as receiver:
            _post(receiver, body, headers)
        text = repr(receiver.requests[0])
        assert f"body=<{len(body)} bytes>" in text
        assert "event=<npsSubmitted 5801148fbe546938e04eb2d8aecb7e989ff6b12b>" in text
        assert "webhook-signature" not in text

    def test_json_decodes_the_body_or_names_the_field(self, receiver: LocalReceiver) -> None:
        """
        json() returns the decoded body; a body that is not JSON raises ValidationError('body').
        """
        _post(receiver, b'{"batch":[]}')
        _post(receiver, b"\xff")
        good, bad = receiver.requests
        assert good.json() == {"batch": []}
        with pytest.raises(ValidationError) as info:
            bad.json()
        assert info.value.field == "body"


class TestVerification:
    def test_a_correctly_signed_event_verifies_and_parses(self) -> None:
        """
        With the right secret both signatures verify and the body parses to the same event.
        """
        event = sample_event("guideDisplayed")
        body, headers = signed_request(event, SECRET, timestamp=TS0)
        with LocalReceiver(secrets=[SECRET], clock=_at(T0)) as receiver:
            _post(receiver, body, headers)
        (request,) = receiver.requests
        assert request.verified is True
        assert request.error is None
        assert request.event == event

    def test_a_wrong_secret_is_recorded_not_verified(self) -> None:
        """
        A signature made with another secret is answered 401 and recorded with
        verified=False and the reason, no secret.
        """
        body, headers = signed_request(sample_event("guideDisplayed"), "other", timestamp=TS0)
        with LocalReceiver(secrets=[SECRET], clock=_at(T0)) as receiver:
            response = _post(receiver, body, headers)
        assert response.status == 401
        (request,) = receiver.requests
        assert (request.verified, request.status) == (False, 401)
        assert request.error == "webhook-signature: no signature matches"
        assert request.event is not None  # the body itself is fine

    def test_any_secret_of_a_rotation_verifies(self) -> None:
        """
        A receiver holding the old and the new secret accepts either signature.
        """
        body, headers = signed_request(sample_event("pollSubmitted"), "old", timestamp=TS0)
        with LocalReceiver(secrets=["new", Secret("old")], clock=_at(T0)) as receiver:
            _post(receiver, body, headers)
        assert receiver.requests[0].verified is True

    def test_stale_timestamps_fail_against_the_injected_clock(self) -> None:
        """
        The replay window is judged by the receiver's clock: 301 s later is too old.
        """
        body, headers = signed_request(sample_event("npsDisplayed"), SECRET, timestamp=TS0)
        late = _at(T0 + timedelta(seconds=301))
        with LocalReceiver(secrets=[SECRET], clock=late) as receiver:
            _post(receiver, body, headers)
        assert receiver.requests[0].verified is False
        assert receiver.requests[0].error == "webhook-timestamp: too old"

    def test_pendo_scheme_and_a_custom_header(self) -> None:
        """
        scheme='pendo' checks only the hex header, under the configured name.
        """
        body, headers = signed_request(
            sample_event("trackEventReceived"),
            SECRET,
            scheme="pendo",
            signature_header="X-Signature",
        )
        assert set(headers) == {"Content-Type", "User-Agent", "X-Signature"}
        with LocalReceiver(
            secrets=SECRET, scheme=SignatureScheme.PENDO, signature_header="X-Signature"
        ) as receiver:
            _post(receiver, body, headers)
        assert receiver.requests[0].verified is True

    def test_unsigned_requests_fail_a_receiver_that_expects_signatures(self) -> None:
        """
        signed_request without secrets sends only webhook-id/-timestamp, which do not verify.
        """
        body, headers = signed_request(sample_event("accountCreated"))
        assert "webhook-signature" not in headers
        assert headers["webhook-id"] == sample_event("accountCreated").unique_id
        with LocalReceiver(secrets=[SECRET], scheme="standard") as receiver:
            _post(receiver, body, headers)
        assert receiver.requests[0].verified is False
        assert receiver.requests[0].error == "webhook-signature: missing"

    def test_unverified_requests_get_401_by_default_without_using_the_script(self) -> None:
        """
        A receiver with secrets answers 401 to unsigned and forged requests; the script waits
        for the good ones, and every request is recorded.
        """
        good = signed_request(sample_event("guideDisplayed"), SECRET)
        forged = signed_request(sample_event("guideDisplayed"), "wrong")
        unsigned = signed_request(sample_event("guideDisplayed"))
        with LocalReceiver(secrets=[SECRET], statuses=[503]) as receiver:
            assert _post(receiver, *forged).status == 401
            assert _post(receiver, *unsigned).status == 401
            assert _post(receiver, b"{}").status == 401
            assert _post(receiver, *good).status == 503
            assert _post(receiver, *good).status == 200
        assert [(r.verified, r.status) for r in receiver.requests] == [
            (False, 401),
            (False, 401),
            (False, 401),
            (True, 503),
            (True, 200),
        ]

    def test_accept_unverified_answers_them_from_the_script(self) -> None:
        """
        accept_unverified=True keeps the old accept-everything behaviour: a forged request
        takes the next scripted answer, and is still recorded as not verified.
        """
        forged = signed_request(sample_event("npsSubmitted"), "wrong")
        with LocalReceiver(secrets=[SECRET], statuses=[202], accept_unverified=True) as receiver:
            assert _post(receiver, *forged).status == 202
            assert _post(receiver, *forged).status == 200
        assert [(r.verified, r.status) for r in receiver.requests] == [(False, 202), (False, 200)]
        assert receiver.requests[0].error == "webhook-signature: no signature matches"

    def test_a_receiver_without_secrets_checks_nothing_and_accepts(self) -> None:
        """
        With no secrets and no write key there is nothing to verify against: every request
        is answered from the script, with verified=None.
        """
        with LocalReceiver() as receiver:
            assert _post(receiver, *signed_request(sample_event("npsSubmitted"))).status == 200
        assert receiver.requests[0].verified is None

    def test_accept_unverified_and_invalid_status_contradict(self) -> None:
        """
        accept_unverified=True with an invalid_status, or a non-bool flag, is a config error.
        """
        with pytest.raises(ConfigurationError, match="accept_unverified"):
            LocalReceiver(secrets=[SECRET], accept_unverified=True, invalid_status=403)
        with pytest.raises(ConfigurationError, match="accept_unverified"):
            LocalReceiver(secrets=[SECRET], accept_unverified="yes")  # type: ignore[arg-type]

    def test_invalid_status_rejects_without_using_the_script(self) -> None:
        """
        With invalid_status, a bad signature gets that answer and the script waits its turn.
        """
        good = signed_request(sample_event("guideDisplayed"), SECRET)
        bad = signed_request(sample_event("guideDisplayed"), "wrong")
        with LocalReceiver(secrets=[SECRET], statuses=[503], invalid_status=403) as receiver:
            assert _post(receiver, *bad).status == 403
            assert _post(receiver, *good).status == 503
            assert _post(receiver, *good).status == 200
        assert [r.status for r in receiver.requests] == [403, 503, 200]

    def test_segment_write_key_is_checked_as_basic_auth(self) -> None:
        """
        A Segment receiver accepts Basic auth with the write key and an empty password only.
        """
        good = "Basic " + base64.b64encode(b"wk_123:").decode()
        bad = "Basic " + base64.b64encode(b"wk_999:").decode()
        batch = b'{"batch":[{"type":"track"}],"sentAt":"2021-07-20T17:58:00.000Z"}'
        with LocalReceiver(write_key=Secret("wk_123")) as receiver:
            assert _post(receiver, batch, {"Authorization": good}).status == 200
            assert _post(receiver, batch, {"Authorization": bad}).status == 401
            assert _post(receiver, batch).status == 401
        ok, wrong, missing = receiver.requests
        assert (ok.verified, ok.error, ok.event) == (True, None, None)
        assert ok.json()["batch"] == [{"type": "track"}]
        assert wrong.verified is False
        assert missing.error == "Authorization: missing or not this write key"
        assert "wk_" not in (wrong.error or "")

    def test_gzip_bodies_are_recorded_decompressed(self) -> None:
        """
        Content-Encoding: gzip is undone before checking and recording (Segment's option).
        """
        batch = b'{"batch":[],"sentAt":"2021-07-20T17:58:00.000Z"}'
        auth = "Basic " + base64.b64encode(b"wk:").decode()
        with LocalReceiver(write_key="wk") as receiver:
            _post(
                receiver,
                gzip.compress(batch),
                {"Content-Encoding": "gzip", "Authorization": auth},
            )
        assert receiver.requests[0].body == batch
        assert receiver.requests[0].verified is True

    @settings(max_examples=50, deadline=None)
    @given(
        secret=st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("whsec_")),
        category=st.sampled_from(list(EventCategory)),
        same=st.booleans(),
    )
    def test_verified_exactly_when_the_secret_matches(
        self, secret: str, category: EventCategory, same: bool
    ) -> None:
        """
        For any secret text, a receiver's check passes exactly when it holds the signing secret.
        """
        try:
            Secret(secret)
        except ValidationError:
            return  # lone surrogates are no secret at all
        body, headers = signed_request(sample_event(category), secret, timestamp=TS0)
        held = secret if same else secret + "x"
        checker = _Checker(
            secrets=(Secret(held),),
            scheme=SignatureScheme.BOTH,
            signature_header="X-Pendo-Signature",
            tolerance=300,
            clock=_at(T0),
            authorization=None,
        )
        verified, problems = checker.check(body, headers)
        assert verified is same
        assert bool(problems) is not same


class TestParsing:
    def test_a_json_body_that_is_no_event_is_an_error(self, receiver: LocalReceiver) -> None:
        """
        A JSON body without Pendo's fields records the parser's reasons under 'body:'.
        """
        _post(receiver, b'{"event":"npsSubmitted"}')
        (request,) = receiver.requests
        assert request.event is None
        assert request.error is not None
        assert request.error.startswith("body: properties: required; app: required")

    def test_an_unknown_event_type_is_an_error(self, receiver: LocalReceiver) -> None:
        """
        An unknown 'event' name is reported, not raised.
        """
        _post(receiver, b'{"event":"pageViewed"}')
        assert receiver.requests[0].error == "body: unknown event type: 'pageViewed'"

    def test_signature_and_body_problems_are_both_reported(self) -> None:
        """
        A request that fails both checks lists both reasons, signature first.
        """
        with LocalReceiver(secrets=[SECRET], scheme="pendo") as receiver:
            _post(receiver, b"not json")
        error = receiver.requests[0].error or ""
        assert error.startswith("X-Pendo-Signature: missing; body: $: invalid JSON")

    def test_requests_without_a_body_are_not_parsed(self, receiver: LocalReceiver) -> None:
        """
        A GET or an empty POST has no event and no error.
        """
        _post(receiver, b"", method="GET")
        _post(receiver, b"")
        assert [(r.method, r.event, r.error) for r in receiver.requests] == [
            ("GET", None, None),
            ("POST", None, None),
        ]

    def test_every_sample_event_round_trips(self, receiver: LocalReceiver) -> None:
        """
        Each of the nine sample events arrives parsed back to an equal event.
        """
        for category in EventCategory:
            _post(receiver, to_wire(sample_event(category)))
        assert [r.event for r in receiver.requests] == [sample_event(c) for c in EventCategory]


class TestScript:
    def test_statuses_are_answered_in_order_then_the_default(self) -> None:
        """
        statuses=[503, 503, 200] then default_status for the rest.
        """
        with LocalReceiver(statuses=[503, 503, 200], default_status=204) as receiver:
            got = [_post(receiver, b"").status for _ in range(5)]
        assert got == [503, 503, 200, 204, 204]

    def test_replies_carry_headers_and_a_body(self) -> None:
        """
        A scripted Reply sends its headers (Retry-After) and body.
        """
        reply = Reply(status=429, headers={"Retry-After": "7"}, body=b"slow down")
        with LocalReceiver(statuses=[reply]) as receiver:
            parts = urllib.parse.urlsplit(receiver.url)
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
            conn.request("POST", "/", body=b"{}")
            response = conn.getresponse()
            assert response.status == 429
            assert response.getheader("Retry-After") == "7"
            assert response.getheader("Content-Type") == "application/octet-stream"
            assert response.read() == b"slow down"
            conn.close()

    def test_a_reply_keeps_its_own_content_type(self) -> None:
        """
        A reply that names its Content-Type is not given the default one.
        """
        reply = Reply(headers={"Content-Type": "application/json"}, body=b"{}")
        with LocalReceiver(default_status=reply) as receiver:
            response = _post(receiver, b"")
        assert response.getheader("Content-Type") == "application/json"

    def test_queue_appends_to_the_script(self, receiver: LocalReceiver) -> None:
        """
        queue() adds answers after those already scripted.
        """
        receiver.queue(500, Reply(status=410))
        assert [_post(receiver, b"").status for _ in range(3)] == [500, 410, 200]

    def test_concurrent_requests_each_take_one_scripted_answer(self) -> None:
        """
        From 8 threads, 200 requests are all recorded and the 50 scripted 503s go out once each.
        """
        with LocalReceiver(statuses=[503] * 50) as receiver:
            statuses: list[int] = []
            lock = threading.Lock()

            def send() -> None:
                for _ in range(25):
                    status = _post(receiver, b"x").status
                    with lock:
                        statuses.append(status)

            threads = [threading.Thread(target=send) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert receiver.wait_for(200, timeout=10)
        assert sorted(statuses) == [200] * 150 + [503] * 50
        assert sorted(r.status for r in receiver.requests) == sorted(statuses)

    def test_wait_for_wakes_when_enough_requests_arrive(self, receiver: LocalReceiver) -> None:
        """
        wait_for blocks on a condition until the count is reached, and says False on timeout.
        """
        assert receiver.wait_for(0, timeout=0)
        assert not receiver.wait_for(1, timeout=0.01)
        sender = threading.Thread(target=lambda: [_post(receiver, b"") for _ in range(2)])
        sender.start()
        assert receiver.wait_for(2, timeout=10)
        sender.join()

    def test_on_request_sees_each_request_before_the_answer(self) -> None:
        """
        The callback runs with the recorded request before the sender gets its response.
        """
        seen: list[ReceivedRequest] = []
        with LocalReceiver(on_request=seen.append, statuses=[202]) as receiver:
            _post(receiver, b"1")
            assert [r.body for r in seen] == [b"1"]
            assert seen[0].status == 202

    def test_a_failing_callback_is_logged_and_the_answer_still_goes_out(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        An exception in on_request is logged; the sender still gets the scripted status.
        """

        def boom(_request: ReceivedRequest) -> None:
            raise RuntimeError("printer on fire")

        with caplog.at_level(logging.ERROR, logger="pendo_webhooks.testing"):
            with LocalReceiver(on_request=boom, statuses=[201]) as receiver:
                assert _post(receiver, b"").status == 201
        assert "on_request callback failed" in caplog.text


class TestLimits:
    def test_an_oversize_body_is_answered_413_and_recorded(self) -> None:
        """
        A body over max_body_bytes is not read: 413, Connection: close, and an error record.
        """
        with LocalReceiver(max_body_bytes=10) as receiver:
            response = _post(receiver, b"x" * 11)
            assert response.status == 413
            assert response.getheader("Connection") == "close"
            assert _post(receiver, b"x" * 10).status == 200
        big, ok = receiver.requests
        assert (big.body, big.error, big.status) == (b"", "body: over 10 bytes", 413)
        assert ok.body == b"x" * 10

    def test_an_oversize_chunked_body_is_refused(self) -> None:
        """
        The cap holds for chunked bodies too.
        """
        with LocalReceiver(max_body_bytes=5) as receiver:
            parts = urllib.parse.urlsplit(receiver.url)
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
            conn.request("POST", "/", body=iter([b"abc", b"def"]), encode_chunked=True)
            assert conn.getresponse().status == 413
            conn.close()

    def test_a_gzip_bomb_stops_at_the_cap(self) -> None:
        """
        A small gzip body that inflates past the cap is refused with 413.
        """
        bomb = gzip.compress(b"\0" * 1_000_000)
        with LocalReceiver(max_body_bytes=100_000) as receiver:
            response = _post(receiver, bomb, {"Content-Encoding": "gzip"})
        assert response.status == 413
        assert receiver.requests[0].error == "body: over 100000 bytes"

    @pytest.mark.parametrize(
        "body",
        [b"not gzip", gzip.compress(b"{}")[:-12]],
        ids=["not-gzip", "truncated"],
    )
    def test_broken_gzip_is_an_error(self, body: bytes) -> None:
        """
        A body that claims gzip but is not (or is cut short) is answered 400 with the reason.
        """
        with LocalReceiver() as receiver:
            response = _post(receiver, body, {"Content-Encoding": "gzip"})
        assert response.status == 400
        assert receiver.requests[0].error == "body: unreadable (error)"

    @pytest.mark.parametrize(
        "framing",
        [
            b"zz\r\n",  # not hex
            b"-5\r\n",  # a sign
            b"0x10\r\n",  # a prefix int() would take
            b" 5\r\n",  # leading space
            b"\r\n",  # no size at all
            b"1" * 17 + b"\r\n",  # more hex digits than any real size
            b"x" * 2000,  # a line with no end in sight
            b"5\r\nabcdeXY\r\n0\r\n\r\n",  # chunk data longer than its size
        ],
        ids=["not-hex", "negative", "0x", "space", "empty", "huge", "endless", "overlong-data"],
    )
    def test_bad_chunked_framing_is_answered_400_at_once(self, framing: bytes) -> None:
        """
        Garbled chunked framing gets 400 at once, on a raw socket that sends nothing more
        (the socket timeout is only a safety net), and is recorded with the reason.
        """
        with LocalReceiver(secrets=[SECRET]) as receiver:
            parts = urllib.parse.urlsplit(receiver.url)
            with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
                sock.sendall(
                    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + framing
                )
                answer = sock.recv(1024)
            assert answer.startswith(b"HTTP/1.1 400 ")
            assert b"\r\nConnection: close\r\n" in answer
            assert receiver.wait_for(1)
        (request,) = receiver.requests
        assert request.error is not None
        assert request.error.startswith("body: malformed framing (")
        assert (request.body, request.status, request.verified) == (b"", 400, None)

    def test_good_chunked_framing_still_reads(self) -> None:
        """
        Sizes in either case, chunk extensions and trailers are valid chunked coding.
        """
        with LocalReceiver() as receiver:
            parts = urllib.parse.urlsplit(receiver.url)
            with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
                sock.sendall(
                    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"3;name=value\r\nabc\r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
                )
                assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
        assert receiver.requests[0].body == b"abc0123456789"

    @pytest.mark.parametrize("length", [b"-5", b"five", b"+5", b"\xd9\xa5"])
    def test_a_bad_content_length_is_answered_400(self, length: bytes) -> None:
        """
        A negative or non-numeric Content-Length is malformed framing: 400, not a crash.
        """
        with LocalReceiver() as receiver:
            parts = urllib.parse.urlsplit(receiver.url)
            with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
                sock.sendall(
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
                )
                assert sock.recv(1024).startswith(b"HTTP/1.1 400 ")
            assert receiver.wait_for(1)
        assert receiver.requests[0].error == "body: malformed framing (bad Content-Length)"


class TestLifecycle:
    def test_close_ends_idle_keep_alive_connections(self) -> None:
        """
        close() does not wait for an idle keep-alive connection: its thread ends, the port closes.
        """
        receiver = LocalReceiver()
        parts = urllib.parse.urlsplit(receiver.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        conn.request("POST", "/", body=b"")
        conn.getresponse().read()  # the connection stays open, its thread waiting
        receiver.close()
        receiver.close()  # idempotent
        assert not any(t.name.startswith("pendo-webhooks-receiver") for t in threading.enumerate())
        with pytest.raises(OSError):
            socket.create_connection((parts.hostname, parts.port), timeout=1).close()
        conn.close()

    def test_a_fixed_port_that_is_taken_is_a_configuration_error(
        self, receiver: LocalReceiver
    ) -> None:
        """
        Asking for a port already in use raises ConfigurationError naming host and port.
        """
        port = urllib.parse.urlsplit(receiver.url).port or 0
        with pytest.raises(ConfigurationError, match=r"^host, port: cannot listen"):
            LocalReceiver(port=port)

    def test_ipv6_loopback(self) -> None:
        """
        host='::1' listens on IPv6 loopback and brackets the host in the URL.
        """
        if not socket.has_ipv6:  # pragma: no cover - depends on the machine
            pytest.skip("no IPv6")
        try:
            receiver = LocalReceiver(host="::1")
        except ConfigurationError:  # pragma: no cover - IPv6 disabled in the kernel
            pytest.skip("no IPv6 loopback")
        with receiver:
            assert receiver.url.startswith("http://[::1]:")
            with RequestsTransport(destinations=DestinationPolicy.local_testing()) as transport:
                response = transport.send(OutgoingRequest(url=receiver.url, body=b"{}"))
        assert response.status == 200

    def test_requests_transport_reaches_it_with_the_local_testing_policy(self) -> None:
        """
        The library's own transport, allowed loopback, delivers a signed body that verifies.
        """
        event = sample_event("npsSubmitted")
        body, headers = signed_request(event, SECRET)
        with (
            LocalReceiver(secrets=[SECRET], statuses=[503]) as receiver,
            RequestsTransport(destinations=DestinationPolicy.local_testing()) as transport,
        ):
            request = OutgoingRequest(url=receiver.url_for("/pendo"), body=body, headers=headers)
            assert transport.send(request).status == 503
            assert transport.send(request).status == 200
        assert [(r.verified, r.event) for r in receiver.requests] == [(True, event)] * 2


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"secrets": ["s"], "write_key": "wk"}, "write_key: a receiver checks"),
            ({"write_key": ""}, "write_key: must be non-empty text"),
            ({"tolerance": 0}, "tolerance: must be a positive"),
            ({"tolerance": True}, "tolerance: must be a positive"),
            ({"clock": "now"}, "clock: must be callable"),
            ({"on_request": 5}, "on_request: must be callable"),
            ({"max_body_bytes": -1}, "max_body_bytes: must be at least 0"),
            ({"max_body_bytes": 1.5}, "max_body_bytes: must be an integer"),
            ({"port": 70000}, "port: must be an integer"),
            ({"port": True}, "port: must be an integer"),
            ({"host": ""}, "host: must be an address"),
            ({"secrets": 5}, "secrets: must be a secret"),
            ({"secrets": [b"bytes"]}, "secrets: every item must be a Secret or str"),
        ],
    )
    def test_unusable_arguments_raise_configuration_error(
        self, kwargs: dict[str, object], message: str
    ) -> None:
        """
        Each unusable argument raises ConfigurationError whose message starts with its name.
        """
        with pytest.raises(ConfigurationError) as info:
            LocalReceiver(**kwargs)  # type: ignore[arg-type]
        assert str(info.value).startswith(message)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"statuses": [99]}, "statuses"),
            ({"default_status": 600}, "default_status"),
            ({"invalid_status": True}, "invalid_status"),
            ({"scheme": "hmac"}, "scheme"),
            ({"signature_header": "Content-Type"}, "signature_header"),
            ({"secrets": [""]}, "secret"),
        ],
    )
    def test_bad_values_raise_validation_error_naming_the_field(
        self, kwargs: dict[str, object], field: str
    ) -> None:
        """
        A bad status, scheme, header name or secret text raises ValidationError with its field.
        """
        with pytest.raises(ValidationError) as info:
            LocalReceiver(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"status": 199}, "status"),
            ({"headers": {"Content-Length": "5"}}, "headers"),
            ({"headers": {"Bad Name": "x"}}, "headers"),
            ({"headers": {"X-A": "1\r\nX-B: 2"}}, "headers"),
            ({"headers": [("X-A", "1")]}, "headers"),
            ({"body": "text"}, "body"),
        ],
    )
    def test_reply_validates_its_fields(self, kwargs: dict[str, object], field: str) -> None:
        """
        Reply refuses a status out of range, framing or malformed headers, and a str body.
        """
        with pytest.raises(ValidationError) as info:
            Reply(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


class TestSignedRequest:
    def test_headers_are_what_the_sender_sends(self) -> None:
        """
        Content-Type, User-Agent, Pendo hex and the Standard Webhooks trio, with WIRE.md's values.
        """
        body, headers = signed_request(
            sample_event("guideDisplayed"), SECRET, timestamp=1626803880
        )
        assert len(body) == 917
        assert headers["Content-Type"] == "application/json"
        assert headers["User-Agent"].startswith("pendo-webhooks/")
        assert headers["X-Pendo-Signature"] == (
            "fec6901b52720e8fa4977fc73b4c3b331dd5921572c913c1bd41fa9614acb282"
        )
        assert headers["webhook-timestamp"] == "1626803880"
        assert headers["webhook-signature"] == "v1,EdToaLZ0I/yXF1GDZK0yTA3ERU+fz1i2HhtT98bmBwQ="

    def test_the_reference_standardwebhooks_library_verifies_it(self) -> None:
        """
        The standardwebhooks package accepts what signed_request produces (plain and whsec_).
        """
        for secret, key in [
            (SECRET, SECRET.encode()),
            ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ]:
            body, headers = signed_request(sample_event("visitorCreated"), secret)
            payload = standardwebhooks.Webhook(key).verify(body, headers)
            assert payload["event"] == "visitorCreated"

    def test_exact_body_bytes_are_signed_as_given(self) -> None:
        """
        Given bytes, they are sent unchanged and webhook-id is read from their uniqueId.
        """
        body = to_wire(sample_event("pollDisplayed", unique_id="abc123"))
        signed = signed_request(body, SECRET, scheme="standard", clock=_at(T0))
        assert isinstance(signed, SignedRequest)
        assert signed.body == body
        assert signed.headers["webhook-id"] == "abc123"
        assert signed.headers["webhook-timestamp"] == str(TS0)

    def test_msg_id_signs_anything(self) -> None:
        """
        With msg_id, any bytes can be signed (a newer event type), and an event's id is replaced.
        """
        newer = b'{"event":"accountMerged"}'
        signed = signed_request(newer, SECRET, msg_id="msg_1", timestamp=TS0)
        assert signed.headers["webhook-id"] == "msg_1"
        with LocalReceiver(secrets=[SECRET], clock=_at(T0)) as receiver:
            _post(receiver, *signed)
        assert receiver.requests[0].verified is True
        assert receiver.requests[0].error == "body: unknown event type: 'accountMerged'"
        event = sample_event("npsDisplayed")
        assert signed_request(event, msg_id="other").headers["webhook-id"] == "other"

    def test_bytes_that_are_no_event_are_refused(self) -> None:
        """
        Bytes without a Pendo event have no uniqueId to sign with: InvalidEventPayload.
        """
        with pytest.raises(InvalidEventPayload):
            signed_request(b"{}", SECRET)
