"""
Webhook, audit-log and exclusion rows as the SQLite and PostgreSQL stores write and read them.

Both stores keep the same columns under the same names; they differ only in how a
few kinds of value are stored, and each says how in one :class:`RowFormat`
(``SQLITE_ROWS`` in ``_sqlite_webhooks``, ``POSTGRES_ROWS`` in ``_postgres_webhooks``),
which writes and reads the rows. Secrets, write keys and PII hash keys go through the store's
:class:`~pendo_webhooks.storage.SecretCodec` here and nowhere else, and a row that
does not make a valid record is a :class:`~pendo_webhooks.exceptions.StorageError`
that quotes no stored secret. Strictly private.

>>> from datetime import datetime
>>> from pendo_webhooks.storage import PlaintextCodec
>>> text = RowFormat(time=str, when=datetime.fromisoformat, flag=int, secret=str,
...                  secret_text=str, json=lambda value: value)
>>> decode_secret(PlaintextCodec(), "s3cret", text).reveal()
's3cret'
>>> loaded("ex_1", lambda: {}["kind"])
Traceback (most recent call last):
pendo_webhooks.exceptions.StorageError: stored row 'ex_1' is not valid: 'kind'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import attrs

from ..exceptions import StorageError, ValidationError
from ..model._audit import AuditEntry, dump_changes
from ..model._exclusions import Exclusion, ExclusionRule
from ..model._filters import FieldFilter
from ..model._webhook import RetiredSecret, Webhook
from ..signing._secret import Secret
from ._errors import stale_version, unknown_webhook
from ._protocol import SecretCodec


__all__ = [
    "HEALTH_COLUMNS",
    "HEALTH_TIMES",
    "RowFormat",
    "as_is",
    "check_version",
    "decode_secret",
    "encode_secret",
    "loaded",
]

_T = TypeVar("_T")

#: The columns of a ``webhook_health`` row besides its key and version, as
#: :class:`~pendo_webhooks.model._health.WebhookHealth` names them; the SQL stores share them.
HEALTH_COLUMNS = (
    "failing_since",
    "last_success_at",
    "last_failure_at",
    "failures",
    "streak",
    "outage_since",
    "next_probe_at",
    "probes",
    "probe_delivery",
    "probe_owner",
    "probe_until",
)
#: Which of :data:`HEALTH_COLUMNS` hold times (each store keeps times its own way).
HEALTH_TIMES = frozenset(
    {
        "failing_since",
        "last_success_at",
        "last_failure_at",
        "outage_since",
        "next_probe_at",
        "probe_until",
    }
)


class Row(Protocol):
    """
    A stored row read by column name (``sqlite3.Row``, a psycopg dict row). Strictly private.
    """

    def __getitem__(self, key: str, /) -> Any: ...


@attrs.frozen
class RowFormat:
    """
    How one SQL store keeps the values SQLite and PostgreSQL keep differently; its rows.

    The fields say how a kind of value is stored; the methods write and read the
    ``webhooks``, ``audit_log`` and ``exclusions`` rows with them. Strictly private.
    """

    #: An aware datetime as written (SQLite: fixed-width UTC ISO text).
    time: Callable[[datetime], Any]
    #: A stored time read back as an aware UTC datetime.
    when: Callable[[Any], datetime]
    #: A boolean as written (SQLite: 0 or 1).
    flag: Callable[[bool], Any]
    #: The codec's text as written (PostgreSQL: UTF-8 ``bytea``, any text survives).
    secret: Callable[[str], Any]
    #: A stored secret read back as the codec's text.
    secret_text: Callable[[Any], str]
    #: A JSON column's value as read (SQLite: text to parse; PostgreSQL: parsed already).
    json: Callable[[Any], Any]

    def webhook_params(self, webhook: Webhook, codec: SecretCodec) -> dict[str, Any]:
        """
        The ``webhooks`` row of *webhook*, by column name (not its categories: stored apart).
        """

        def secret(value: Secret | None) -> Any:
            return None if value is None else self.secret(encode_secret(codec, value))

        # ASCII JSON: a retired secret's escapes survive any client encoding.
        retired = [
            {
                "secret": encode_secret(codec, r.secret),
                "expires_at": r.expires_at.isoformat(timespec="microseconds"),
            }
            for r in webhook.previous_secrets
        ]
        return {
            "id": webhook.id,
            "version": webhook.version,
            "name": webhook.name,
            "kind": webhook.kind.value,
            "url": webhook.url,
            "segment_endpoint": webhook.segment_endpoint,
            "segment_gzip": self.flag(webhook.segment_gzip),
            "write_key": secret(webhook.write_key),
            "secret": secret(webhook.secret),
            "previous_secrets": json.dumps(retired, separators=(",", ":")),
            "enabled": self.flag(webhook.enabled),
            "signature_scheme": webhook.signature_scheme.value,
            "signature_header": webhook.signature_header,
            "headers": json.dumps(
                dict(webhook.headers), ensure_ascii=False, separators=(",", ":")
            ),
            "filters": json.dumps(
                [{"path": f.path, "action": f.action.value} for f in webhook.filters],
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            "hash_key": secret(webhook.hash_key),
            "created_at": self.time(webhook.created_at),
            "created_by": webhook.created_by,
            "updated_at": self.time(webhook.updated_at),
            "updated_by": webhook.updated_by,
            "disabled_reason": webhook.disabled_reason,
            "disabled_by": webhook.disabled_by,
        }

    def webhook(self, row: Row, codec: SecretCodec, categories: Iterable[str]) -> Webhook:
        """
        The :class:`Webhook` a ``webhooks`` row holds, subscribed to *categories*.

        Call it inside :func:`loaded`: a row that is not a valid webhook raises what
        :class:`Webhook` raises.
        """
        return Webhook(
            id=row["id"],
            version=row["version"],
            name=row["name"],
            kind=row["kind"],
            url=row["url"],
            segment_endpoint=row["segment_endpoint"],
            segment_gzip=bool(row["segment_gzip"]),
            write_key=decode_secret(codec, row["write_key"], self),
            secret=decode_secret(codec, row["secret"], self),
            previous_secrets=tuple(
                RetiredSecret(
                    secret=decode_secret(codec, r["secret"]) or "",
                    expires_at=datetime.fromisoformat(r["expires_at"]),
                )
                for r in self.json(row["previous_secrets"])
            ),
            categories=categories,
            enabled=bool(row["enabled"]),
            signature_scheme=row["signature_scheme"],
            signature_header=row["signature_header"],
            headers=self.json(row["headers"]),
            filters=tuple(FieldFilter(f["path"], f["action"]) for f in self.json(row["filters"])),
            hash_key=decode_secret(codec, row["hash_key"], self),
            created_at=self.when(row["created_at"]),
            created_by=row["created_by"],
            updated_at=self.when(row["updated_at"]),
            updated_by=row["updated_by"],
            disabled_reason=row["disabled_reason"],
            disabled_by=row["disabled_by"],
        )

    def audit_params(self, audit: AuditEntry) -> tuple[Any, ...]:
        """
        The ``audit_log`` row of *audit*: id, at, actor_id, action, webhook_id, changes.
        """
        return (
            audit.id,
            self.time(audit.at),
            audit.actor_id,
            audit.action,
            audit.webhook_id,
            dump_changes(audit.changes),
        )

    def audit(self, row: Row) -> AuditEntry:
        """
        The :class:`AuditEntry` an ``audit_log`` row holds; StorageError if it holds none.
        """

        def build() -> AuditEntry:
            return AuditEntry(
                id=row["id"],
                at=self.when(row["at"]),
                actor_id=row["actor_id"],
                action=row["action"],
                webhook_id=row["webhook_id"],
                changes=self.json(row["changes"]),
            )

        return loaded(row["id"], build)

    def exclusion_params(self, exclusion: Exclusion) -> dict[str, Any]:
        """
        The ``exclusions`` row of *exclusion*, by column name.
        """
        return {
            "id": exclusion.id,
            "kind": exclusion.rule.kind.value,
            "pattern": exclusion.rule.pattern,
            "created_at": self.time(exclusion.created_at),
            "created_by": exclusion.created_by,
        }

    def exclusion(self, row: Row) -> Exclusion:
        """
        The :class:`Exclusion` an ``exclusions`` row holds; StorageError if it holds none.
        """

        def build() -> Exclusion:
            return Exclusion(
                id=row["id"],
                rule=ExclusionRule(row["kind"], row["pattern"]),
                created_at=self.when(row["created_at"]),
                created_by=row["created_by"],
            )

        return loaded(row["id"], build)


def as_is(value: _T) -> _T:
    """
    *value* unchanged: a :class:`RowFormat` field for a value stored as it is.
    """
    return value


def loaded(row_id: str, build: Callable[[], _T]) -> _T:
    """
    What *build* makes of the row *row_id*; a row that makes no valid record is a StorageError.
    """
    try:
        return build()
    except StorageError:
        raise
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        msg = f"stored row {row_id!r} is not valid: {exc}"
        raise StorageError(msg) from exc


def encode_secret(codec: SecretCodec, secret: Secret) -> str:
    """
    *secret* as *codec* stores it; StorageError if the codec does not return text.
    """
    encoded = codec.encode(secret.reveal())
    if not isinstance(encoded, str):
        msg = f"secret_codec.encode() must return text, not {type(encoded).__name__}"
        raise StorageError(msg)
    return encoded


def decode_secret(codec: SecretCodec, stored: Any, rows: RowFormat | None = None) -> Secret | None:
    """
    The secret *stored* holds (``None`` for none), read as *rows* store it if it is a column's.

    Any failure, the codec's included, is a StorageError that quotes nothing stored.
    """
    if stored is None:
        return None
    try:
        text = stored if rows is None else rows.secret_text(stored)
        return Secret._stored(codec.decode(text))
    except Exception as exc:  # noqa: BLE001 - the codec is the host's code; any failure counts
        # Not chained: the codec's message might quote what it was given.
        msg = (
            f"a stored secret could not be decoded ({type(exc).__name__}); "
            "is secret_codec the codec it was stored with?"
        )
        raise StorageError(msg) from None


def check_version(webhook_id: str, expected_version: int, found: int | None) -> None:
    """
    Raise unless the webhook's stored version *found* (``None``: no such webhook) is *expected*.
    """
    if found is None:
        raise unknown_webhook(webhook_id)
    if found != expected_version:
        raise stale_version(webhook_id, expected_version, found)
