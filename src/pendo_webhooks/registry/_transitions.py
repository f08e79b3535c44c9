"""
How a webhook changes: the pure steps behind the registry's ``update`` and ``rotate_secret``.

Each function takes the current :class:`Webhook` and returns the next value
(or raises ``ValidationError``); the registry adds the version, the audit entry
and the storage write around it.

Strictly private; the public names are re-exported from :mod:`pendo_webhooks.registry`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import attrs

from ..exceptions import ValidationError
from ..model._webhook import (
    MAX_RETIRED_SECRETS,
    SEGMENT_US_ENDPOINT,
    RetiredSecret,
    Webhook,
    WebhookKind,
)
from ..signing._secret import Secret


__all__ = [
    "DEFAULT_ROTATION_GRACE",
    "UNSET",
    "Keep",
    "check_grace",
    "rotated",
    "updated",
]

#: How long a rotated-out secret keeps signing, unless ``rotate_secret`` is told otherwise.
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
_MAX_ROTATION_GRACE = timedelta(days=30)


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: The default of ``WebhookRegistry.update``'s fields: "leave this field as it is".
UNSET: Final = _Unset.UNSET
#: The type of :data:`UNSET`, for signatures.
Keep = Literal[_Unset.UNSET]


def updated(current: Webhook, changes: Mapping[str, Any], kind: WebhookKind | Keep) -> Webhook:
    """
    Return *current* with *changes* (field name to new value) applied and checked.

    A new secret replaces the old one at once, retired ones included; a Segment
    webhook's ``segment_endpoint=None`` means Segment's US endpoint.

    Raises:
        ValidationError: For a different *kind*, or any bad field value.
    """
    if kind is not UNSET and kind is not current.kind:
        msg = "cannot be changed; create a new webhook and delete this one"
        raise ValidationError("kind", msg)
    fields = dict(changes)
    if current.kind is WebhookKind.SEGMENT and fields.get("segment_endpoint", UNSET) is None:
        fields["segment_endpoint"] = SEGMENT_US_ENDPOINT
    if "secret" in fields and fields["secret"] != current.secret:
        fields["previous_secrets"] = ()
    return attrs.evolve(current, **fields)


def check_grace(grace: object) -> timedelta:
    """
    Return *grace* if it is a timedelta from 0 to 30 days; raise ``ValidationError("grace", ...)``.
    """
    if not isinstance(grace, timedelta) or not timedelta(0) <= grace <= _MAX_ROTATION_GRACE:
        msg = "must be a timedelta from 0 to 30 days"
        raise ValidationError("grace", msg)
    return grace


def rotated(current: Webhook, secret: Secret, *, now: datetime, grace: timedelta) -> Webhook:
    """
    Return *current* signing with *secret*, the old secret kept until ``now + grace``.

    Retired secrets are kept newest first, at most three; expired ones, and one
    equal to *secret*, are dropped. A zero *grace* keeps no old secret.

    Raises:
        ValidationError: For a Segment webhook, or a *secret* equal to the current one.
    """
    if current.kind is WebhookKind.SEGMENT:
        msg = "Segment webhooks have no secret to rotate; update their write_key"
        raise ValidationError("secret", msg)
    if secret == current.secret:
        msg = "must differ from the current secret"
        raise ValidationError("new_secret", msg)
    retired = [r for r in current.previous_secrets if r.is_valid_at(now) and r.secret != secret]
    if current.secret is not None and grace > timedelta(0):
        retired.insert(0, RetiredSecret(secret=current.secret, expires_at=now + grace))
    return attrs.evolve(
        current, secret=secret, previous_secrets=tuple(retired[:MAX_RETIRED_SECRETS])
    )
