"""
The audit log's values: :class:`AuditEntry`, :class:`AuditQuery`, and the redacted field diff.

Secrets, write keys, PII hash keys and extra header values are never written to the audit
log: a change to one shows as ``"<redacted>"`` on either side, so the log still
says *that* it changed. URL query strings are redacted too (they often carry
tokens).

Strictly private; import these names from :mod:`pendo_webhooks.registry`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Union
from urllib.parse import urlsplit, urlunsplit

import attrs

from ..exceptions import InvalidType, ValidationError
from ._webhook import FrozenMap, RetiredSecret, Webhook, _as_utc, _check_aware


__all__ = [
    "DEFAULT_AUDIT_LIMIT",
    "MAX_AUDIT_LIMIT",
    "REDACTED",
    "AuditEntry",
    "AuditQuery",
    "AuditValue",
    "created",
    "deleted",
    "diff",
    "dump_changes",
]

#: What the audit log shows instead of a secret, a write key or a header value.
REDACTED = "<redacted>"
#: How many entries :meth:`~pendo_webhooks.registry.WebhookRegistry.audit` returns by default.
DEFAULT_AUDIT_LIMIT = 100
#: The most entries one audit query may return.
MAX_AUDIT_LIMIT = 10_000

#: One side of a change: JSON-safe and immutable.
AuditValue = Union[str, int, bool, None, tuple[str, ...], Mapping[str, str]]  # noqa: UP007


def _freeze(value: Any) -> AuditValue:
    # JSON gives lists and dicts back; entries hold tuples and FrozenMaps either way.
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    if isinstance(value, Mapping):
        return FrozenMap({str(k): str(v) for k, v in value.items()})
    if value is None or isinstance(value, str | int | bool):
        return value
    msg = f"unsupported audit value of type {type(value).__name__}"
    raise ValidationError("changes", msg)


def _to_changes(
    value: Mapping[str, Sequence[Any]],
) -> Mapping[str, tuple[AuditValue, AuditValue]]:
    if not isinstance(value, Mapping):
        msg = f"must be a mapping of field names to (old, new) pairs, not {type(value).__name__}"
        raise InvalidType("changes", msg)
    changes: dict[str, tuple[AuditValue, AuditValue]] = {}
    for field, pair in value.items():
        if isinstance(pair, str) or len(pair) != 2:
            msg = f"{field!r} must map to an (old, new) pair"
            raise ValidationError("changes", msg)
        changes[str(field)] = (_freeze(pair[0]), _freeze(pair[1]))
    return FrozenMap(changes)


def _check_str(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        msg = f"must be text, not {type(value).__name__}"
        raise InvalidType(attribute.name, msg)


def _check_optional_str(_: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and not isinstance(value, str):
        msg = f"must be text or None, not {type(value).__name__}"
        raise InvalidType(attribute.name, msg)


@attrs.frozen(kw_only=True)
class AuditEntry:
    """
    One change an admin (or the system) made to one webhook.

    Attributes:
        id: ``"aud_"`` plus random URL-safe characters.
        at: When the change was made (aware UTC).
        actor_id: Who made it; ``"system"`` for automatic changes.
        action: ``"create"``, ``"update"``, ``"enable"``, ``"disable"``,
            ``"delete"`` or ``"rotate_secret"``.
        webhook_id: The webhook changed (it may since have been deleted).
        changes: Field name to ``(old, new)``, secrets and write keys shown as
            ``"<redacted>"``; ``old`` is ``None`` on create, ``new`` on delete.

    >>> from datetime import datetime, timezone
    >>> entry = AuditEntry(
    ...     id="aud_1", at=datetime(2026, 1, 1, tzinfo=timezone.utc), actor_id="u-1",
    ...     action="update", webhook_id="wh_1", changes={"name": ("Old", "New")},
    ... )
    >>> entry.changes["name"]
    ('Old', 'New')
    """

    id: str = attrs.field(validator=_check_str)
    at: datetime = attrs.field(converter=_as_utc, validator=_check_aware)
    actor_id: str = attrs.field(validator=_check_str)
    action: str = attrs.field(validator=_check_str)
    webhook_id: str = attrs.field(validator=_check_str)
    changes: Mapping[str, tuple[AuditValue, AuditValue]] = attrs.field(
        factory=FrozenMap, converter=_to_changes
    )


def _check_limit(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_AUDIT_LIMIT:
        msg = f"must be an integer from 1 to {MAX_AUDIT_LIMIT}"
        raise ValidationError("limit", msg)


def _as_optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _as_utc(value)


@attrs.frozen(kw_only=True)
class AuditQuery:
    """
    Which audit entries to read: every filter that is set must match.

    Entries come back newest first, at most :attr:`limit` of them.

    Attributes:
        webhook_id: Only entries about this webhook.
        actor_id: Only entries made by this actor (``"system"`` for automatic ones).
        action: Only entries of this action.
        since: Only entries at or after this time.
        until: Only entries strictly before this time.
        limit: At most this many entries (1 to 10,000; default 100).

    >>> AuditQuery(webhook_id="wh_1").limit
    100
    """

    webhook_id: str | None = attrs.field(default=None, validator=_check_optional_str)
    actor_id: str | None = attrs.field(default=None, validator=_check_optional_str)
    action: str | None = attrs.field(default=None, validator=_check_optional_str)
    since: datetime | None = attrs.field(
        default=None, converter=_as_optional_utc, validator=attrs.validators.optional(_check_aware)
    )
    until: datetime | None = attrs.field(
        default=None, converter=_as_optional_utc, validator=attrs.validators.optional(_check_aware)
    )
    limit: int = attrs.field(default=DEFAULT_AUDIT_LIMIT, validator=_check_limit)

    def matches(self, entry: AuditEntry) -> bool:
        """
        Whether *entry* passes every filter (ignoring :attr:`limit`).
        """
        return (
            (self.webhook_id is None or entry.webhook_id == self.webhook_id)
            and (self.actor_id is None or entry.actor_id == self.actor_id)
            and (self.action is None or entry.action == self.action)
            and (self.since is None or entry.at >= self.since)
            and (self.until is None or entry.at < self.until)
        )


def _redact_url(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
        query = REDACTED if parts.query else ""
        fragment = REDACTED if parts.fragment else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    except ValueError:
        return REDACTED


def _redact_secret(secret: object) -> str | None:
    return None if secret is None else REDACTED


def _expiries(retired: tuple[RetiredSecret, ...]) -> tuple[str, ...]:
    return tuple(r.expires_at.isoformat() for r in retired)


#: The audited fields and how each is shown. Everything else (version, updated_*) is in the entry.
_RENDER: Mapping[str, Callable[[Any], AuditValue]] = {
    "name": str,
    "kind": lambda kind: kind.value,
    "url": _redact_url,
    "segment_endpoint": _redact_url,
    "segment_gzip": bool,
    "write_key": _redact_secret,
    "secret": _redact_secret,
    "previous_secrets": _expiries,
    "categories": lambda categories: tuple(sorted(c.value for c in categories)),
    "enabled": bool,
    "signature_scheme": lambda scheme: scheme.value,
    "signature_header": str,
    "headers": lambda headers: FrozenMap(dict.fromkeys(headers, REDACTED)),
    "filters": lambda filters: tuple(str(f) for f in filters),
    "hash_key": _redact_secret,
    "disabled_reason": lambda reason: reason,
    "disabled_by": lambda actor: actor,
}


def _render(webhook: Webhook, field: str) -> AuditValue:
    return _RENDER[field](getattr(webhook, field))


def _values(webhook: Webhook) -> list[tuple[str, AuditValue]]:
    # The fields that hold something: None, () and {} would only be noise in the log.
    rendered = ((field, _render(webhook, field)) for field in _RENDER)
    return [
        (field, value)
        for field, value in rendered
        if value is not None and value != () and not (isinstance(value, Mapping) and not value)
    ]


def created(webhook: Webhook) -> dict[str, tuple[AuditValue, AuditValue]]:
    """
    The changes of a create: every audited field that has a value, from ``None`` to it (redacted).
    """
    return {field: (None, value) for field, value in _values(webhook)}


def deleted(webhook: Webhook) -> dict[str, tuple[AuditValue, AuditValue]]:
    """
    The changes of a delete: every audited field that had a value, from it (redacted) to ``None``.
    """
    return {field: (value, None) for field, value in _values(webhook)}


def diff(old: Webhook, new: Webhook) -> dict[str, tuple[AuditValue, AuditValue]]:
    """
    The fields that differ between *old* and *new*, each as a redacted ``(old, new)`` pair.

    Fields are compared on their real values, so a new secret shows up as
    ``("<redacted>", "<redacted>")`` although both sides look the same.
    """
    return {
        field: (_render(old, field), _render(new, field))
        for field in _RENDER
        if getattr(old, field) != getattr(new, field)
    }


def dump_changes(changes: Mapping[str, tuple[AuditValue, AuditValue]]) -> str:
    """
    Serialize *changes* to compact JSON; ``AuditEntry(changes=json.loads(text))`` reads it back.
    """
    return json.dumps(
        {field: [_thaw(old), _thaw(new)] for field, (old, new) in changes.items()},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )


def _thaw(value: AuditValue) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value
