"""
Verifying signed webhooks on the receiving side, and the header names both sides share.

Strictly private; import from :mod:`pendo_webhooks.signing`.

Everything about the request (body, headers) that does not verify raises
:class:`~pendo_webhooks.exceptions.SignatureError` and nothing else, whatever
its type or content. Messages name the header and the reason, never a secret,
an expected signature or the received values.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from .._clock import Clock, utcnow
from ..exceptions import ConfigurationError, SignatureError, ValidationError
from ._secret import Secret


class HeaderItems(Protocol):
    """
    **Protocol**: Request headers as the verify functions read them: anything with ``items()``.

    A ``dict``, Flask/Werkzeug's ``request.headers``, Starlette's and Django's
    ``request.headers`` all fit; names match case-insensitively.

    >>> from pendo_webhooks.signing import HeaderItems
    >>> headers: HeaderItems = {"X-Pendo-Signature": "0" * 64}
    >>> sorted(headers.items())
    [('X-Pendo-Signature', '0000000000000000000000000000000000000000000000000000000000000000')]
    """

    def items(self) -> Iterable[tuple[str, str]]:
        """The ``(name, value)`` pairs, each name as many times as it was sent."""


#: The default name of the Pendo signature header (Pendo does not publish one).
DEFAULT_SIGNATURE_HEADER = "X-Pendo-Signature"
#: Seconds a Standard Webhooks timestamp may be off the receiver's clock, either way.
DEFAULT_TOLERANCE = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_STANDARD_HEADERS = frozenset({ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER})

# RFC 9110 §5.6.2 token characters.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_HEADER_NAME = 128
# Header names the library or HTTP itself sets; a signature header must not replace them.
_RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "cookie",
        "host",
        "proxy-authorization",
        "transfer-encoding",
        "user-agent",
    }
)

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
# "v1," + 44 base64 characters: 43 carrying 32 bytes, then one "=".
_V1_ENTRY_LENGTH = 47
# The 43rd base64 character carries the last 4 bits and 2 spare bits that must be
# zero; these are the characters whose spare bits are zero, so only the canonical
# spelling of the 32 bytes passes.
_CANONICAL_LAST = frozenset("AEIMQUYcgkosw048")
# Longer is not a timestamp (and int() refuses over 4300 digits with ValueError).
_MAX_TIMESTAMP_DIGITS = 15


def validate_header_name(name: str, field: str) -> str:
    """
    Check that *name* can carry a signature and return it unchanged.

    It must be an HTTP token (RFC 9110) of at most 128 characters, and must not
    be a ``webhook-*`` header or one that HTTP or the library sets
    (``Content-Type``, ``Authorization``, ``Host``, ``User-Agent``, ...), in any case.

    Args:
        name: The header name.
        field: The field name to report in the error.

    Raises:
        ValidationError: If *name* is not allowed; ``.field`` is *field*.

    >>> validate_header_name("X-Hub-Signature-256", "signature_header")
    'X-Hub-Signature-256'
    >>> validate_header_name("Webhook-Signature", "signature_header")
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.ValidationError: signature_header: is reserved ...
    """
    if not isinstance(name, str):
        msg = f"must be text, not {type(name).__name__}"
        raise ValidationError(field, msg)
    if len(name) > _MAX_HEADER_NAME or not _TOKEN.fullmatch(name):
        msg = (
            f"must be an HTTP header name of 1 to {_MAX_HEADER_NAME} letters, digits "
            "and !#$%&'*+-.^_`|~"
        )
        raise ValidationError(field, msg)
    lowered = name.lower()
    if lowered.startswith("webhook-") or lowered in _RESERVED_HEADERS:
        msg = "is reserved for the Standard Webhooks or HTTP headers"
        raise ValidationError(field, msg)
    return name


def verify_pendo(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    header: str = DEFAULT_SIGNATURE_HEADER,
) -> None:
    """
    Check Pendo's hex HMAC-SHA256 header against *body*.

    The header must be exactly 64 lowercase hex digits and match one of
    *secrets* (pass the old and the new secret during a rotation). This scheme
    has no timestamp: a captured request can be replayed; prefer
    :func:`verify_standard` where the sender offers it.

    Args:
        body: The raw request body (``str`` is UTF-8 encoded).
        headers: The request headers; names match case-insensitively, and a
            name given twice in different cases is refused.
        secrets: One secret or several; any one may match.
        header: The signature header's name.

    Raises:
        SignatureError: If the header is missing, malformed or matches no secret,
            or *body*/*headers* are not bytes/text and a mapping of text.
        ConfigurationError: If *secrets* is empty or not secrets.
        ValidationError: If a secret's text or *header* is invalid.

    >>> import hmac
    >>> body = b'{"event":"guideDisplayed"}'
    >>> headers = {"x-pendo-signature": hmac.new(b"s3cr3t", body, "sha256").hexdigest()}
    >>> verify_pendo(body, headers, ["new-s3cr3t", "s3cr3t"])
    >>> verify_pendo(body, {}, "s3cr3t")
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.SignatureError: X-Pendo-Signature: missing
    """
    keys = [s.pendo_key for s in _to_secrets(secrets)]
    name = validate_header_name(header, "header")
    lowered = name.lower()
    payload = _to_bytes(body)
    value = _find(headers, frozenset({lowered})).get(lowered)
    if value is None:
        raise SignatureError(f"{name}: missing")
    if not _HEX_DIGEST.fullmatch(value):
        raise SignatureError(f"{name}: not 64 lowercase hex digits")
    given = bytes.fromhex(value)
    for key in keys:
        if hmac.compare_digest(hmac.new(key, payload, "sha256").digest(), given):
            return
    raise SignatureError(f"{name}: no signature matches")


def verify_standard(
    body: bytes | str,
    headers: HeaderItems,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = utcnow,
) -> None:
    """
    Check the Standard Webhooks headers against *body*, with a replay window.

    * ``webhook-id`` must be non-empty (any text; only senders must avoid ``.``).
    * ``webhook-timestamp`` must be ASCII digits within *tolerance* seconds of
      *clock*, in the past or the future.
    * ``webhook-signature`` is space-separated entries; ``v1,`` entries whose
      base64 strictly decodes to 32 bytes are compared in constant time with
      the HMAC of ``"<id>.<timestamp>." + body`` under each secret (``whsec_``
      secrets use their decoded bytes). One match passes; other entries,
      malformed or of another version, are skipped.

    Args:
        body: The raw request body (``str`` is UTF-8 encoded).
        headers: The request headers; names match case-insensitively, and a
            name given twice in different cases is refused.
        secrets: One secret or several; any one may match.
        tolerance: Seconds, > 0; there is no way to turn the check off.
        clock: Returns the current aware UTC time.

    Raises:
        SignatureError: If a header is missing, malformed, stale or matches no
            secret, or *body*/*headers* are not bytes/text and a mapping of text.
        ConfigurationError: If *secrets* is empty or not secrets, *tolerance* is
            not a positive ``int``, or *clock* returns a naive datetime.
        ValidationError: If a secret's text is invalid.

    >>> from datetime import datetime, timezone
    >>> headers = {
    ...     "Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ...     "Webhook-Timestamp": "1614265330",
    ...     "Webhook-Signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ... }
    >>> secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    >>> at = lambda ts: lambda: datetime.fromtimestamp(ts, timezone.utc)
    >>> verify_standard(b'{"test": 2432232314}', headers, secret, clock=at(1614265330))
    >>> verify_standard(b'{"test": 2432232314}', headers, secret, clock=at(1614265631))
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.SignatureError: webhook-timestamp: too old
    """
    keys = [s.standard_key for s in _to_secrets(secrets)]
    if not isinstance(tolerance, int) or isinstance(tolerance, bool) or tolerance <= 0:
        msg = "tolerance: must be a positive number of seconds (the check cannot be turned off)"
        raise ConfigurationError(msg)
    payload = _to_bytes(body)
    found = _find(headers, _STANDARD_HEADERS)
    msg_id = found.get(ID_HEADER)
    ts_text = found.get(TIMESTAMP_HEADER)
    signature = found.get(SIGNATURE_HEADER)
    if not msg_id:
        raise SignatureError(f"{ID_HEADER}: missing")
    if ts_text is None:
        raise SignatureError(f"{TIMESTAMP_HEADER}: missing")
    if signature is None:
        raise SignatureError(f"{SIGNATURE_HEADER}: missing")
    _check_timestamp(ts_text, tolerance, clock)
    candidates = _v1_signatures(signature)
    if not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER}: no well-formed v1 signature")
    try:
        prefix = f"{msg_id}.{ts_text}.".encode()
    except UnicodeEncodeError:
        raise SignatureError(f"{ID_HEADER}: not valid Unicode text") from None
    for key in keys:
        # hmac.new + update: faster than hmac.digest (OpenSSL 3 looks the hash up per
        # one-shot call), and the body is not copied to prepend the prefix.
        mac = hmac.new(key, prefix, "sha256")
        mac.update(payload)
        expected = mac.digest()
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return
    raise SignatureError(f"{SIGNATURE_HEADER}: no signature matches")


def _check_timestamp(ts_text: str, tolerance: int, clock: Clock) -> None:
    if not (0 < len(ts_text) <= _MAX_TIMESTAMP_DIGITS and ts_text.isascii() and ts_text.isdigit()):
        raise SignatureError(f"{TIMESTAMP_HEADER}: not an integer number of seconds")
    now = clock()
    if now.tzinfo is None:
        msg = "clock: must return an aware datetime"
        raise ConfigurationError(msg)
    age = now.timestamp() - int(ts_text)
    if age > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER}: too old")
    if age < -tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER}: too new")


def _to_secrets(secrets: Secret | str | Sequence[Secret | str]) -> tuple[Secret, ...]:
    if isinstance(secrets, Secret):
        return (secrets,)
    if isinstance(secrets, str):
        return (Secret(secrets),)
    if not isinstance(secrets, Sequence) or not secrets:
        msg = "secrets: must be a secret or a non-empty sequence of secrets"
        raise ConfigurationError(msg)
    out = []
    for item in secrets:
        if isinstance(item, Secret):
            out.append(item)
        elif isinstance(item, str):
            out.append(Secret(item))
        else:
            msg = f"secrets: every item must be a Secret or str, not {type(item).__name__}"
            raise ConfigurationError(msg)
    return tuple(out)


def _to_bytes(body: object) -> bytes | bytearray:
    if isinstance(body, (bytes, bytearray)):
        return body
    if isinstance(body, str):
        try:
            return body.encode()
        except UnicodeEncodeError:
            raise SignatureError("body: not valid Unicode text") from None
    raise SignatureError(f"body: must be bytes or str, not {type(body).__name__}")


def _find(headers: object, names: frozenset[str]) -> dict[str, str]:
    """
    Return the values of *names* (lowercase) found in *headers*, in one pass.
    """
    items = getattr(headers, "items", None)
    if not callable(items):
        raise SignatureError("headers: must be a mapping of names to values")
    found: dict[str, str] = {}
    try:
        for key, value in items():
            if isinstance(key, str) and (lowered := key.lower()) in names:
                _add_header(found, lowered, value)
    except SignatureError:
        raise
    except (TypeError, ValueError) as exc:  # items() did not yield (name, value) pairs
        raise SignatureError("headers: must be a mapping of names to values") from exc
    return found


def _add_header(found: dict[str, str], lowered: str, value: object) -> None:
    if lowered in found:
        raise SignatureError(f"{lowered}: given more than once")
    if not isinstance(value, str):
        raise SignatureError(f"{lowered}: must be text")
    found[lowered] = value


def _v1_signatures(header: str) -> list[bytes]:
    """
    Return the 32-byte values of the well-formed ``v1,`` entries of *header*.
    """
    out = []
    for entry in header.split(" "):
        if (
            len(entry) != _V1_ENTRY_LENGTH
            or not entry.startswith("v1,")
            or entry[-2] not in _CANONICAL_LAST
        ):
            continue
        try:
            raw = base64.b64decode(entry[3:], validate=True)
        except ValueError:  # binascii.Error, or non-ASCII text
            continue
        if len(raw) == 32:
            out.append(raw)
    return out
