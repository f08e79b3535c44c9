"""
CSRF tokens for the portal's forms: an HMAC of the actor's id and the issue time.

Strictly private.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import attrs

from .._clock import Clock
from ..exceptions import ConfigurationError


__all__ = ["MIN_KEY_BYTES", "TOKEN_LIFETIME", "CsrfTokens", "check_key"]

#: A shared key must be at least this long (256 bits).
MIN_KEY_BYTES = 32
#: How long a form's token stays valid: a working day, so a form left open is still sent.
TOKEN_LIFETIME = timedelta(hours=12)
# A token issued this far in the future (another process's clock) is still taken.
_SKEW = timedelta(minutes=5)
_MAX_TOKEN_LENGTH = 100


def check_key(key: object) -> bytes:
    """
    Return *key* if it is bytes of at least :data:`MIN_KEY_BYTES`.

    Raises:
        ConfigurationError: Otherwise (the message never shows the key).
    """
    if not isinstance(key, bytes):
        msg = f"csrf_key: must be bytes, not {type(key).__name__}"
        raise ConfigurationError(msg)
    if len(key) < MIN_KEY_BYTES:
        msg = f"csrf_key: must be at least {MIN_KEY_BYTES} bytes (random), not {len(key)}"
        raise ConfigurationError(msg)
    return key


@attrs.frozen
class CsrfTokens:
    """
    Issue and check tokens bound to one actor and the time they were issued. Strictly private.

    A token is ``"<unix seconds>.<hex HMAC-SHA256(key, actor id NUL seconds)>"``: any
    process holding the key checks it, and it expires after *lifetime*.
    """

    key: bytes = attrs.field(repr=False)
    clock: Clock = attrs.field(repr=False)
    lifetime: timedelta = TOKEN_LIFETIME

    def _mac(self, actor_id: str, issued: int) -> str:
        # Actor ids hold no control characters, so NUL separates unambiguously.
        message = f"{actor_id}\0{issued}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def issue(self, actor_id: str) -> str:
        """
        Return a fresh token for *actor_id*.
        """
        issued = int(self.clock().timestamp())
        return f"{issued}.{self._mac(actor_id, issued)}"

    def is_valid(self, actor_id: str, token: str | None) -> bool:
        """
        Whether *token* was issued by this key to *actor_id* and has not expired.
        """
        if token is None or len(token) > _MAX_TOKEN_LENGTH:
            return False
        issued_text, _, mac = token.partition(".")
        if not issued_text.isascii() or not issued_text.isdigit():
            return False
        issued = int(issued_text)
        age = self.clock().timestamp() - issued
        if age > self.lifetime.total_seconds() or age < -_SKEW.total_seconds():
            return False
        # Compare bytes: compare_digest refuses non-ASCII text.
        return hmac.compare_digest(self._mac(actor_id, issued).encode(), mac.encode())
