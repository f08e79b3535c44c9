"""
Building a URL webhook's request: its headers, signed afresh for each attempt.

* :func:`url_request` computes the headers of one attempt (fresh signature and
  timestamp; nothing of it is ever stored);
* :class:`SignerCache` keeps the signers, so an attempt does not rebuild its HMACs.

Strictly private; :class:`~pendo_webhooks.channels.URLChannel` uses it.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import datetime

from ..model._delivery import slot_setters
from ..model._webhook import Webhook
from ..signing import Signer, signer_for
from ..transports import DEFAULT_USER_AGENT, OutgoingRequest


__all__ = ["SignerCache", "trusted_request", "url_request"]

# The slots' setters, in field order (what the generated __init__ does, without the checks).
_REQUEST_SLOTS = tuple(setter for _, setter in slot_setters(OutgoingRequest))
_new = object.__new__


def trusted_request(url: str, body: bytes, headers: Mapping[str, str]) -> OutgoingRequest:
    """
    A POST :class:`OutgoingRequest` from values the library built and checked already.

    For the channels' hot path only: *url* a webhook's checked destination, *body* bytes,
    *headers* names and values the webhook's own checks (extra headers) or the library
    (content type, user agent, signatures) made. The public constructor checks every
    header again, a few microseconds a request; the headers are frozen the same way.

    >>> args = ("https://h.example/in", b"{}", {"Content-Type": "application/json"})
    >>> trusted_request(*args) == OutgoingRequest(url=args[0], body=args[1], headers=args[2])
    True
    """
    request = _new(OutgoingRequest)
    url_set, body_set, headers_set, method_set = _REQUEST_SLOTS
    url_set(request, url)
    body_set(request, body)
    headers_set(request, types.MappingProxyType(dict(headers)))
    method_set(request, "POST")
    return request


class SignerCache:
    """
    Signers by (scheme, secrets, header), so each attempt does not rebuild its HMACs.

    Thread-safe (a race builds a signer twice); forgets everything past *size* entries.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._signers: dict[tuple[object, ...], Signer] = {}

    def signer(self, webhook: Webhook, now: datetime) -> Signer:
        """
        Return the signer for *webhook* at *now* (the secrets valid then).
        """
        key = (webhook.signature_scheme, webhook.signature_header, webhook.signing_secrets(now))
        found = self._signers.get(key)
        if found is None:
            if len(self._signers) >= self._size:
                self._signers.clear()
            found = self._signers[key] = signer_for(key[0], key[2], header=key[1])
        return found


def url_request(
    webhook: Webhook,
    body: bytes,
    *,
    event_id: str,
    now: datetime,
    signers: SignerCache | None = None,
) -> OutgoingRequest:
    """
    Build one attempt's request to a URL webhook: its headers, signed afresh at *now*.

    Headers: ``Content-Type``, ``User-Agent``, the webhook's extra headers, then the
    signature headers of its scheme, signed with every secret valid at *now*.
    """
    signer = (signers or SignerCache()).signer(webhook, now)
    headers = {"Content-Type": "application/json", "User-Agent": DEFAULT_USER_AGENT}
    headers.update(webhook.headers)
    headers.update(signer.sign(body, msg_id=event_id, timestamp=int(now.timestamp())))
    return trusted_request(webhook.destination, body, headers)
