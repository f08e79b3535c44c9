"""
The default :class:`~pendo_webhooks.storage.SecretCodec`: store secrets as given. Strictly private.
"""

from __future__ import annotations


__all__ = ["PlaintextCodec"]


class PlaintextCodec:
    """
    Stores secrets and write keys as they are (no encryption at rest); the default codec.

    >>> PlaintextCodec().decode(PlaintextCodec().encode("s3cret"))
    's3cret'
    """

    def encode(self, plaintext: str) -> str:
        """
        Return *plaintext* unchanged.
        """
        return plaintext

    def decode(self, stored: str) -> str:
        """
        Return *stored* unchanged.
        """
        return stored

    def __repr__(self) -> str:
        return "PlaintextCodec()"
