"""
Signing and verifying webhook bodies.

INTERFACE STUB -- being implemented (see the helper brief).
"""

from __future__ import annotations

import enum

from ._secret import Secret


__all__ = ["Secret", "SignatureScheme"]


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
