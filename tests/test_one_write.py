"""
The guarded connections write a request's head and its bytes body with one send.
"""

from __future__ import annotations

import http.client

import pytest

from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.testing import LocalReceiver
from pendo_webhooks.transports import OutgoingRequest, RequestsTransport, Urllib3Transport


LOCAL = DestinationPolicy.local_testing()


@pytest.mark.parametrize("transport_class", [Urllib3Transport, RequestsTransport])
def test_head_and_body_go_out_in_one_send(
    monkeypatch: pytest.MonkeyPatch, transport_class: type[Urllib3Transport]
) -> None:
    sent: list[bytes] = []
    original = http.client.HTTPConnection.send

    def spy(self: http.client.HTTPConnection, data: bytes) -> None:
        sent.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(http.client.HTTPConnection, "send", spy)
    body = b'{"event":"x"}' * 100
    with LocalReceiver() as receiver, transport_class(destinations=LOCAL) as transport:
        for _ in range(2):  # a new connection, then the kept-alive one
            response = transport.send(OutgoingRequest(url=receiver.url, body=body))
            assert response.status in (200, 401)
    assert len(sent) == 2
    for data in sent:
        assert data.startswith(b"POST ")
        assert data.endswith(b"\r\n\r\n" + body)
    assert len(receiver.requests) == 2
    assert all(r.body == body for r in receiver.requests)


def test_a_bodiless_request_sends_its_head_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bytes] = []
    original = http.client.HTTPConnection.send

    def spy(self: http.client.HTTPConnection, data: bytes) -> None:
        sent.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(http.client.HTTPConnection, "send", spy)
    with LocalReceiver() as receiver, Urllib3Transport(destinations=LOCAL) as transport:
        transport.send(OutgoingRequest(url=receiver.url, body=b"", method="POST"))
    assert len(sent) == 1
    assert sent[0].startswith(b"POST ")
    assert sent[0].endswith(b"\r\n\r\n")
