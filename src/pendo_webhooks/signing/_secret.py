"""
The :class:`Secret` type: a webhook secret that never shows its value.

Strictly private; import :class:`Secret` from :mod:`pendo_webhooks.signing` or the package.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as _secrets
from typing import Any

from ..exceptions import InvalidType, ValidationError


#: The prefix the Standard Webhooks spec gives base64-encoded secrets.
WHSEC_PREFIX = "whsec_"
#: A secret (or write key) is at most this many characters.
MAX_SECRET_LENGTH = 1024

_REDACTED = "Secret('<redacted>')"


class Secret:
    """
    A signing secret: any text that is not blank, special characters allowed, at most
    :data:`MAX_SECRET_LENGTH` (1,024) characters.

    Spaces inside the text, and around it, are part of the secret; text that is only
    whitespace is refused (it is almost always a paste gone wrong).

    Its ``repr`` and ``str`` never show the value; call :meth:`reveal` where the
    text itself is needed (storing it, showing it once to an admin).

    Keys derived from it:

    * :attr:`pendo_key`: the UTF-8 bytes of the text (the Pendo hex scheme).
    * :attr:`standard_key`: for a ``whsec_<base64>`` secret the decoded bytes, as
      the Standard Webhooks spec says; otherwise the UTF-8 bytes of the text.

    >>> s = Secret("s3cr3t-with-special-chars!&?<>")
    >>> s
    Secret('<redacted>')
    >>> f"{s}"
    "Secret('<redacted>')"
    >>> s.reveal()
    's3cr3t-with-special-chars!&?<>'
    >>> Secret.generate().reveal().startswith("whsec_")
    True

    Raises:
        ValidationError: If the text is empty, only whitespace, longer than
            1,024 characters, contains a lone surrogate, or starts with ``whsec_``
            but is not valid base64 after it. The message never shows the text.
        InvalidType: If the value is not a ``str``.

    >>> Secret("   ")
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: secret: must not be only whitespace
    """

    __slots__ = ("_pendo_key", "_standard_key", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            msg = f"must be text, not {type(value).__name__}"
            raise InvalidType("secret", msg)
        if len(value) > MAX_SECRET_LENGTH:
            msg = f"must be at most {MAX_SECRET_LENGTH} characters, not {len(value)}"
            raise ValidationError("secret", msg)
        if value.isspace():
            msg = "must not be only whitespace"
            raise ValidationError("secret", msg)
        self._set(value)

    @classmethod
    def _stored(cls, value: str) -> Secret:
        """
        Rebuild a secret read back from a store, under the rules it was stored with.

        Secrets stored before the whitespace and length rules existed still load and
        sign (only new input is held to them): refusing a row would make every read of
        the webhooks fail.

        >>> Secret._stored(" ").reveal()
        ' '
        """
        secret = cls.__new__(cls)
        secret._set(value)
        return secret

    def _set(self, value: str) -> None:
        if not value:
            msg = "must not be empty"
            raise ValidationError("secret", msg)
        try:
            pendo_key = value.encode("utf-8")
        except UnicodeEncodeError:
            msg = "must be valid Unicode text"
            raise ValidationError("secret", msg) from None
        standard_key = pendo_key
        if value.startswith(WHSEC_PREFIX):
            try:
                # Unpadded base64 is common in the wild (the reference library accepts it).
                encoded = value[len(WHSEC_PREFIX) :]
                encoded += "=" * (-len(encoded) % 4)
                standard_key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                msg = "a secret starting with 'whsec_' must be base64 after the prefix"
                raise ValidationError("secret", msg) from None
            if not standard_key:
                msg = "must not be empty after the 'whsec_' prefix"
                raise ValidationError("secret", msg)
        self._value = value
        self._pendo_key = pendo_key
        self._standard_key = standard_key

    @classmethod
    def generate(cls, nbytes: int = 32) -> Secret:
        """
        Make a fresh random secret, ``whsec_`` plus *nbytes* random bytes in base64.
        """
        if nbytes < 24 or nbytes > 64:
            msg = "must be between 24 and 64"
            raise ValidationError("nbytes", msg)
        raw = _secrets.token_bytes(nbytes)
        return cls(WHSEC_PREFIX + base64.b64encode(raw).decode("ascii"))

    def reveal(self) -> str:
        """
        Return the secret's text.
        """
        return self._value

    @property
    def pendo_key(self) -> bytes:
        """
        The HMAC key for the Pendo hex scheme: the text's UTF-8 bytes.
        """
        return self._pendo_key

    @property
    def standard_key(self) -> bytes:
        """
        The HMAC key for Standard Webhooks: decoded ``whsec_`` bytes, else the UTF-8 text.
        """
        return self._standard_key

    def __repr__(self) -> str:
        return _REDACTED

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._pendo_key, other._pendo_key)

    def __hash__(self) -> int:
        return hash((Secret, self._pendo_key))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))
