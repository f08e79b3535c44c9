"""
What the commands on a SQLite store share: ``--db``/``--actor`` options, opening the file,
and showing webhooks and tables.

About ``--actor``: every change goes through :class:`~pendo_webhooks.registry.WebhookRegistry`
with its default policy (admins only), and is audited under the actor's id. On the shell,
whoever can write the database file owns it, so the actor is an administrator unless
``--no-admin`` is given (which shows what a non-admin would be refused: exit code 4).

Strictly private.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import StorageError, ValidationError
from ._common import add_destination_options, destination_policy, iso, safe_url


if TYPE_CHECKING:
    from ..registry import Actor, Webhook, WebhookRegistry
    from ..storage import SQLiteStorage


__all__ = [
    "actor",
    "db_options",
    "open_registry",
    "open_store",
    "table",
    "webhook_dict",
]


def db_options(*, actor_required: bool) -> argparse.ArgumentParser:
    """
    A parent parser with ``--db``, ``--actor``, ``--admin``, the address guard and ``--json``.
    """
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("store")
    group.add_argument(
        "--db", required=True, metavar="FILE", help="the pendo-webhooks SQLite database"
    )
    group.add_argument(
        "--actor",
        required=actor_required,
        default="cli",
        metavar="ID",
        help="who is acting, recorded in the audit log"
        + ("" if actor_required else " (default: cli)"),
    )
    group.add_argument(
        "--admin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="act as an administrator (default: yes, as whoever can write FILE owns it; "
        "--no-admin is refused by the default admins-only policy: exit code 4)",
    )
    add_destination_options(parent)
    parent.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parent


def actor(args: argparse.Namespace) -> Actor:
    """
    The :class:`~pendo_webhooks.registry.Actor` that ``--actor`` and ``--admin`` describe.
    """
    from ..registry import Actor  # noqa: PLC0415 - loaded when a command runs

    return Actor(args.actor, is_admin=args.admin)


def open_store(path: str, *, create: bool = False) -> SQLiteStorage:
    """
    Open the SQLite store at *path*; only *create* makes a new file.

    Raises:
        ValidationError: Naming ``--db``, if the file is missing (and not *create*), is
            not a pendo-webhooks database, or cannot be opened.
    """
    from ..storage import SQLiteStorage  # noqa: PLC0415

    file = Path(path)
    if not create and not file.exists():
        msg = f"{path}: no such file (`pendo-webhooks webhooks create` makes one)"
        raise ValidationError("--db", msg)
    if file.is_dir():
        raise ValidationError("--db", f"{path} is a directory")
    try:
        return SQLiteStorage(file)
    except StorageError as exc:
        raise ValidationError("--db", str(exc)) from None


@contextlib.contextmanager
def open_registry(args: argparse.Namespace, *, create: bool = False) -> Iterator[WebhookRegistry]:
    """
    Open ``--db`` and yield a registry on it, guarded as ``--allow-private/-http`` say.
    """
    from ..registry import WebhookRegistry  # noqa: PLC0415

    with open_store(args.db, create=create) as storage:
        yield WebhookRegistry(storage, destinations=destination_policy(args))


def webhook_dict(webhook: Webhook) -> dict[str, Any]:
    """
    What ``--json`` shows of a webhook: everything but its secrets, write key and header
    values, and with the destination's query string hidden.
    """
    return {
        "id": webhook.id,
        "name": webhook.name,
        "kind": webhook.kind.value,
        "enabled": webhook.enabled,
        "destination": safe_url(webhook.destination),
        "categories": sorted(c.value for c in webhook.categories),
        "signature_scheme": webhook.signature_scheme.value,
        "signature_header": webhook.signature_header,
        "has_secret": webhook.secret is not None,
        "retired_secrets": len(webhook.previous_secrets),
        "headers": sorted(webhook.headers),
        "segment_gzip": webhook.segment_gzip,
        "version": webhook.version,
        "created_at": iso(webhook.created_at),
        "created_by": webhook.created_by,
        "updated_at": iso(webhook.updated_at),
        "updated_by": webhook.updated_by,
        "disabled_reason": webhook.disabled_reason,
        "disabled_by": webhook.disabled_by,
    }


def table(headings: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """
    Lay out *rows* in columns under *headings*, two spaces apart.

    >>> print("\\n".join(table(["ID", "NAME"], [["wh_1", "NPS"], ["wh_22", "Guides"]])))
    ID     NAME
    wh_1   NPS
    wh_22  Guides
    """
    cells = [[str(h) for h in headings]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headings))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
