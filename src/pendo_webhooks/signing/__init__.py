"""
Signing webhook bodies, and verifying them on the receiving side.

The headers and what they cover are described in
[Security notes](../security.md#signatures).

Two schemes, chosen per webhook with :class:`SignatureScheme`:

* **Pendo**: ``X-Pendo-Signature: <lowercase hex HMAC-SHA256(secret, body)>``,
  the header name configurable. One digest, from the current secret only.
* **Standard Webhooks** (standardwebhooks.com): ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256(secret,
  "<id>.<timestamp>." + body)>``, one space-separated ``v1,`` entry per secret
  during a rotation, current first. A ``whsec_<base64>`` secret signs with its
  decoded bytes.

A sender builds a :class:`Signer` once per webhook with :func:`signer_for` and
calls ``sign`` on every attempt, with the event's ``uniqueId`` and the attempt
time. A receiver calls :func:`verify_event`, which verifies and then parses the
body into its typed event, or :func:`verify` (or :func:`verify_standard` /
:func:`verify_pendo`), which only verify; every one of them raises
:class:`~pendo_webhooks.exceptions.SignatureError` for any body and headers that
do not verify.

>>> signer = signer_for(SignatureScheme.BOTH, [Secret("s3cr3t-with-special-chars!&?<>")])
>>> sorted(signer.sign(b"{}", msg_id="msg_1", timestamp=1626803880))
['X-Pendo-Signature', 'webhook-id', 'webhook-signature', 'webhook-timestamp']
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, overload

import attrs

from .._clock import Clock, utcnow
from ..exceptions import ConfigurationError, UnexpectedEventType, ValidationError
from ._secret import Secret
from ._verify import (
    DEFAULT_SIGNATURE_HEADER,
    DEFAULT_TOLERANCE,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    HeaderItems,
    validate_header_name,
    verify_pendo,
    verify_standard,
)


if TYPE_CHECKING:
    from ..events import Event

__all__ = [
    "DEFAULT_SIGNATURE_HEADER",
    "DEFAULT_TOLERANCE",
    "CombinedSigner",
    "HeaderItems",
    "PendoSigner",
    "Secret",
    "SignatureScheme",
    "Signer",
    "StandardSigner",
    "UnsignedSigner",
    "generate_secret",
    "signer_for",
    "validate_header_name",
    "verify",
    "verify_event",
    "verify_pendo",
    "verify_standard",
]

# Visible ASCII without "." (the spec forbids "." in ids; no space or control
# character can reach a header value).
_MSG_ID = re.compile(r"[!-\-/-~]+")


class SignatureScheme(str, enum.Enum):
    """
    Which signature headers a URL webhook carries.

    >>> SignatureScheme("both") is SignatureScheme.BOTH
    True
    """

    #: Pendo's hex HMAC-SHA256 header and the Standard Webhooks headers (the default).
    BOTH = "both"
    #: Only Pendo's hex HMAC-SHA256 header.
    PENDO = "pendo"
    #: Only the Standard Webhooks headers.
    STANDARD = "standard"

    def __str__(self) -> str:
        return self.value


class Signer(Protocol):
    """
    **Protocol**: Returns the headers that authenticate one attempt to send *body*.

    The dispatcher calls it on every attempt, with the event's ``uniqueId`` as
    *msg_id* and the attempt time (epoch seconds) as *timestamp*, so each retry
    is signed afresh.

    >>> signer: Signer = PendoSigner(Secret("s3cr3t"))
    >>> signer.sign(b"{}", msg_id="msg_1", timestamp=0)
    {'X-Pendo-Signature': '608b0c406f3dda19702d71a048483b8c331283106d80a208e3cf43dbde505286'}
    """

    def sign(self, body: bytes, *, msg_id: str, timestamp: int) -> dict[str, str]: ...


def _mac(key: bytes) -> hmac.HMAC:
    # An HMAC primed with the key; each signature starts from a cheap .copy().
    return hmac.new(key, digestmod=hashlib.sha256)


def _check_body(body: bytes) -> None:
    if not isinstance(body, (bytes, bytearray)):
        msg = f"must be bytes, not {type(body).__name__}"
        raise ValidationError("body", msg)


def _check_attempt(msg_id: str, timestamp: int) -> None:
    if not isinstance(msg_id, str) or not _MSG_ID.fullmatch(msg_id):
        msg = "must be non-empty visible ASCII without '.'"
        raise ValidationError("msg_id", msg)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        msg = "must be a non-negative integer (epoch seconds)"
        raise ValidationError("timestamp", msg)


def _to_secret_tuple(secrets: Sequence[Secret]) -> tuple[Secret, ...]:
    if isinstance(secrets, (str, Secret)) or not isinstance(secrets, Sequence):
        msg = "secrets: must be a sequence of Secret objects, current first"
        raise ConfigurationError(msg)
    for secret in secrets:
        if not isinstance(secret, Secret):
            msg = f"secrets: every item must be a Secret, not {type(secret).__name__}"
            raise ConfigurationError(msg)
    return tuple(secrets)


@attrs.frozen(repr=False)
class PendoSigner:
    """
    Signs with Pendo's scheme: lowercase hex HMAC-SHA256 of the body in one header.

    Only one secret signs, because the header carries one digest: during a
    rotation, receivers of this scheme must accept both the old and the new
    secret themselves (:func:`verify_pendo` takes several).

    Args:
        secret: The HMAC key is its UTF-8 text (:attr:`Secret.pendo_key`).
        header: The header name; see :func:`validate_header_name`.

    Raises:
        ConfigurationError: If *secret* is not a :class:`Secret`.
        ValidationError: If *header* is not allowed.

    >>> signer = PendoSigner(Secret("s3cr3t-with-special-chars!&?<>"))
    >>> signer
    <PendoSigner(header='X-Pendo-Signature')>
    >>> signer.sign(b'{"event":"guideDisplayed"}', msg_id="msg_1", timestamp=0)
    {'X-Pendo-Signature': 'd3f117888bbbf15ca4abe18f9ebf8ffa9efa232bec23d3b53842522f190b0f13'}
    """

    secret: Secret
    header: str = attrs.field(default=DEFAULT_SIGNATURE_HEADER, kw_only=True)
    _base: hmac.HMAC = attrs.field(init=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.secret, Secret):
            msg = f"secret: must be a Secret, not {type(self.secret).__name__}"
            raise ConfigurationError(msg)
        validate_header_name(self.header, "header")
        object.__setattr__(self, "_base", _mac(self.secret.pendo_key))

    def sign(self, body: bytes, *, msg_id: str, timestamp: int) -> dict[str, str]:
        """
        Return ``{header: hex digest}``; *msg_id* and *timestamp* are not signed.

        Raises:
            ValidationError: If *body* is not bytes.
        """
        del msg_id, timestamp  # this scheme signs the body only
        _check_body(body)
        mac = self._base.copy()
        mac.update(body)
        return {self.header: mac.hexdigest()}

    def __repr__(self) -> str:
        return f"<PendoSigner(header={self.header!r})>"

    def __reduce__(self) -> tuple[object, ...]:
        return (_pendo_signer, (self.secret, self.header))


def _pendo_signer(secret: Secret, header: str) -> PendoSigner:
    return PendoSigner(secret, header=header)


@attrs.frozen(repr=False)
class StandardSigner:
    """
    Signs with Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

    ``webhook-signature`` holds one ``v1,<base64>`` entry per secret, in the
    given order, separated by spaces, so receivers holding any one of them
    verify during a rotation.

    Args:
        secrets: One or more secrets, current first. A ``whsec_`` secret signs
            with its decoded bytes (:attr:`Secret.standard_key`).

    Raises:
        ConfigurationError: If *secrets* is empty or holds anything but :class:`Secret`.

    >>> signer = StandardSigner([Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")])
    >>> signer
    <StandardSigner(num_secrets=1)>
    >>> signer.sign(b'{"test": 2432232314}', msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
    ...             timestamp=1614265330)["webhook-signature"]
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
    """

    secrets: tuple[Secret, ...] = attrs.field(converter=_to_secret_tuple)
    _bases: tuple[hmac.HMAC, ...] = attrs.field(init=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if not self.secrets:
            msg = "secrets: at least one secret is required (use UnsignedSigner for none)"
            raise ConfigurationError(msg)
        object.__setattr__(self, "_bases", tuple(_mac(s.standard_key) for s in self.secrets))

    def sign(self, body: bytes, *, msg_id: str, timestamp: int) -> dict[str, str]:
        """
        Return the three Standard Webhooks headers for this attempt.

        Raises:
            ValidationError: If *msg_id* is empty, contains ``.`` or anything but
                visible ASCII; if *timestamp* is not a non-negative ``int``; or if
                *body* is not bytes.
        """
        _check_body(body)
        _check_attempt(msg_id, timestamp)
        ts = str(timestamp)
        prefix = f"{msg_id}.{ts}.".encode("ascii")
        entries = []
        for base in self._bases:
            mac = base.copy()
            mac.update(prefix)
            mac.update(body)
            entries.append("v1," + base64.b64encode(mac.digest()).decode("ascii"))
        return {ID_HEADER: msg_id, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: " ".join(entries)}

    def __repr__(self) -> str:
        return f"<StandardSigner(num_secrets={len(self.secrets)})>"

    def __reduce__(self) -> tuple[object, ...]:
        return (StandardSigner, (self.secrets,))


@attrs.frozen(repr=False)
class UnsignedSigner:
    """
    Sends ``webhook-id`` and ``webhook-timestamp`` without a signature: a webhook with no secret.

    >>> UnsignedSigner().sign(b"{}", msg_id="msg_1", timestamp=1614265330)
    {'webhook-id': 'msg_1', 'webhook-timestamp': '1614265330'}

    Raises:
        ValidationError: From ``sign``, as :meth:`StandardSigner.sign`.
    """

    def sign(self, body: bytes, *, msg_id: str, timestamp: int) -> dict[str, str]:
        """
        Return the id and timestamp headers for this attempt.
        """
        _check_body(body)
        _check_attempt(msg_id, timestamp)
        return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp)}

    def __repr__(self) -> str:
        return "<UnsignedSigner()>"


def _to_signer_tuple(signers: Sequence[Signer]) -> tuple[Signer, ...]:
    return tuple(signers)


@attrs.frozen(repr=False)
class CombinedSigner:
    """
    Merges the headers of several signers, in order (a later one wins a name clash).

    >>> secret = Secret("s3cr3t")
    >>> signer = CombinedSigner([StandardSigner([secret]), PendoSigner(secret)])
    >>> signer
    <CombinedSigner([<StandardSigner(num_secrets=1)>, <PendoSigner(header='X-Pendo-Signature')>])>
    >>> len(signer.sign(b"{}", msg_id="msg_1", timestamp=0))
    4

    Raises:
        ConfigurationError: If *signers* is empty.
    """

    signers: tuple[Signer, ...] = attrs.field(converter=_to_signer_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.signers:
            msg = "signers: at least one signer is required"
            raise ConfigurationError(msg)

    def sign(self, body: bytes, *, msg_id: str, timestamp: int) -> dict[str, str]:
        """
        Return every signer's headers in one dict.
        """
        headers: dict[str, str] = {}
        for signer in self.signers:
            headers.update(signer.sign(body, msg_id=msg_id, timestamp=timestamp))
        return headers

    def __repr__(self) -> str:
        return f"<CombinedSigner({list(self.signers)!r})>"


def _to_scheme(scheme: SignatureScheme | str) -> SignatureScheme:
    try:
        return SignatureScheme(scheme)
    except ValueError:
        msg = "must be one of: " + ", ".join(s.value for s in SignatureScheme)
        raise ValidationError("scheme", msg) from None


def signer_for(
    scheme: SignatureScheme | str,
    secrets: Sequence[Secret],
    *,
    header: str = DEFAULT_SIGNATURE_HEADER,
) -> Signer:
    """
    Build the signer for one webhook, once; call its ``sign`` on every attempt.

    Args:
        scheme: Which headers to send (a :class:`SignatureScheme` or its value).
        secrets: The webhook's valid secrets, current first. Pendo's header is
            signed with the first only; ``webhook-signature`` with all of them.
            With none, no signature header is sent, only ``webhook-id`` and
            ``webhook-timestamp``, whatever the scheme.
        header: The Pendo signature header name.

    Raises:
        ConfigurationError: If *secrets* is not a sequence of :class:`Secret`.
        ValidationError: If *scheme* or *header* is not allowed.

    >>> signer_for("pendo", [Secret("s3cr3t")], header="X-Signature")
    <PendoSigner(header='X-Signature')>
    >>> signer_for(SignatureScheme.BOTH, [])
    <UnsignedSigner()>
    """
    scheme = _to_scheme(scheme)
    validate_header_name(header, "header")
    secrets = _to_secret_tuple(secrets)
    if not secrets:
        return UnsignedSigner()
    if scheme is SignatureScheme.PENDO:
        return PendoSigner(secrets[0], header=header)
    standard = StandardSigner(secrets)
    if scheme is SignatureScheme.STANDARD:
        return standard
    return CombinedSigner([standard, PendoSigner(secrets[0], header=header)])


def generate_secret() -> Secret:
    """
    Make a fresh secret: ``whsec_`` and 32 random bytes in base64 (:meth:`Secret.generate`).

    >>> generate_secret().standard_key.__len__()
    32
    """
    return Secret.generate()


def verify(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    scheme: SignatureScheme | str = SignatureScheme.BOTH,
    header: str = DEFAULT_SIGNATURE_HEADER,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = utcnow,
) -> None:
    """
    Check a received webhook against the *scheme* it must carry.

    ``BOTH`` (the default, matching the sender's default) requires both a
    valid Standard Webhooks signature, with its replay window, and a valid
    Pendo header. A receiver that accepts either should pass the scheme it
    wants explicitly: the Pendo scheme alone has no replay protection.

    Args:
        body: The raw request body, before any JSON parsing (``str`` is UTF-8 encoded).
        headers: The request headers; names match case-insensitively.
        secrets: One secret or several (during a rotation); any one may match.
        scheme: Which scheme must verify.
        header: The Pendo signature header name.
        tolerance: For Standard Webhooks, seconds a timestamp may be off now, either way.
        clock: Returns the current aware UTC time.

    Raises:
        SignatureError: For anything about *body* and *headers* that does not verify.
        ConfigurationError: If *secrets*, *tolerance* or *clock* is unusable.
        ValidationError: If a secret's text, *scheme* or *header* is invalid.

    >>> from datetime import datetime, timezone
    >>> secret = Secret("s3cr3t-with-special-chars!&?<>")
    >>> headers = signer_for("both", [secret]).sign(b"{}", msg_id="m1", timestamp=1626803880)
    >>> now = lambda: datetime.fromtimestamp(1626803881, timezone.utc)
    >>> verify(b"{}", headers, secret, clock=now)
    >>> verify(b"{ }", headers, secret, clock=now)
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.SignatureError: webhook-signature: no signature matches
    """
    scheme = _to_scheme(scheme)
    if scheme is not SignatureScheme.PENDO:
        verify_standard(body, headers, secrets, tolerance=tolerance, clock=clock)
    if scheme is not SignatureScheme.STANDARD:
        verify_pendo(body, headers, secrets, header=header)


EventT = TypeVar("EventT", bound="Event")
EventT2 = TypeVar("EventT2", bound="Event")
EventT3 = TypeVar("EventT3", bound="Event")


@overload
def verify_event(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: None = None,
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...
@overload
def verify_event(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: type[EventT],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> EventT: ...
@overload
def verify_event(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: tuple[type[EventT], type[EventT2]],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> EventT | EventT2: ...
@overload
def verify_event(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: tuple[type[EventT], type[EventT2], type[EventT3]],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> EventT | EventT2 | EventT3: ...
@overload
def verify_event(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: tuple[type[Event], ...],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...


def verify_event(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: object = None,
    scheme: SignatureScheme | str = SignatureScheme.BOTH,
    header: str = DEFAULT_SIGNATURE_HEADER,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = utcnow,
) -> Event:
    """
    Verify a received webhook, then parse its body: the one call a receiver needs.

    The signature is checked first, exactly as :func:`verify` checks it (the same
    *scheme*, *header*, *tolerance* and *clock*, the replay window included), and
    an unverified body is never parsed. Then
    :func:`~pendo_webhooks.events.parse_event` reads the body into its event class.

    With *expect* (one event class, or a tuple of them), the result is typed as that
    class (or the union of those classes), and a body of any other event type is
    refused with :class:`~pendo_webhooks.exceptions.UnexpectedEventType`, which names
    both event types.

    Args:
        body: The raw request body, before any JSON parsing (``str`` is UTF-8 encoded).
        headers: The request headers; names match case-insensitively.
        secrets: One secret or several (during a rotation); any one may match.
        expect: The event class (or classes) this receiver handles; ``None`` takes any.
        scheme: Which scheme must verify (see :func:`verify`).
        header: The Pendo signature header name.
        tolerance: For Standard Webhooks, seconds a timestamp may be off now, either way.
        clock: Returns the current aware UTC time.

    Returns:
        The parsed event: an instance of *expect* when given.

    Raises:
        SignatureError: For anything about *body* and *headers* that does not verify
            (checked before anything else about the body).
        UnknownEventType: If the verified body names an event type that does not exist
            (a newer sender: acknowledge it with ``2xx``).
        UnexpectedEventType: If *expect* is given and the body is of another event type
            (also an :class:`~pendo_webhooks.exceptions.InvalidEventPayload`).
        InvalidEventPayload: If the verified body is not a valid event.
        ConfigurationError: If *expect* is not an event class or a tuple of them, or
            *secrets*, *tolerance* or *clock* is unusable.
        ValidationError: If a secret's text, *scheme* or *header* is invalid.

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.events import NpsSubmitted, PollSubmitted
    >>> from pendo_webhooks.testing import sample_event, signed_request
    >>> event = sample_event("npsSubmitted")
    >>> body, headers = signed_request(event, "s3cr3t", timestamp=1626803880)
    >>> now = lambda: datetime.fromtimestamp(1626803881, timezone.utc)
    >>> verify_event(body, headers, "s3cr3t", expect=NpsSubmitted, clock=now).nps.rating
    9
    >>> try:
    ...     verify_event(body, headers, "s3cr3t", expect=PollSubmitted, clock=now)
    ... except UnexpectedEventType as exc:
    ...     print(exc)
    event: expected 'pollSubmitted', got 'npsSubmitted'
    >>> verify_event(body, headers, "not the secret", clock=now)
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.SignatureError: webhook-signature: no signature matches
    """
    from ..events._wire import parse_event  # noqa: PLC0415 - the event models load on first use

    expected = _expected_classes(expect)
    verify(body, headers, secrets, scheme=scheme, header=header, tolerance=tolerance, clock=clock)
    event = parse_event(body)
    if expected and not isinstance(event, expected):
        names = " or ".join(cls.category.value for cls in expected)
        raise UnexpectedEventType(names, event.category.value)
    return event


def _expected_classes(expect: object) -> tuple[type[Event], ...]:
    from ..events._models import EVENT_TYPES  # noqa: PLC0415

    if expect is None:
        return ()
    classes = expect if isinstance(expect, tuple) else (expect,)
    if not classes or any(cls not in EVENT_TYPES for cls in classes):
        msg = f"expect: must be an event class or a tuple of them, not {expect!r}"
        raise ConfigurationError(msg)
    return classes
