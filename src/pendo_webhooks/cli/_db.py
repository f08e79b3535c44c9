"""
What the commands on a SQLite store share: ``--db``/``--actor`` options, opening the file,
the address guard's policy recorded in it, and showing webhooks and tables.

``--db`` and ``--actor`` fall back on the ``PENDO_WEBHOOKS_DB`` and
``PENDO_WEBHOOKS_ACTOR`` environment variables; an option given wins over its variable.

About ``--actor``: every change goes through :class:`~pendo_webhooks.registry.WebhookRegistry`
with its default policy (admins only), and is audited under the actor's id. On the shell,
whoever can write the database file owns it, so the actor is an administrator unless
``--no-admin`` is given (which shows what a non-admin would be refused: exit code 4).
A change needs an actor (the option or the variable); a read does not: it goes through the
same policy as the actor ``cli`` (an administrator, unless ``--no-admin``), as the
``deliveries`` commands always did.

About ``--allow-private`` and ``--allow-http``: on a store they are recorded in the file
(its ``settings`` table), the first time they are given, and every later command on that
file (``worker`` included) builds its address guard from that record, saying so on stderr
when it relies on it. ``--no-allow-private`` and ``--no-allow-http`` take it back. Only the
console script reads the record: a :class:`~pendo_webhooks.registry.WebhookRegistry` made by
a host application keeps its own policy, strict by default.

Strictly private.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, StorageError, ValidationError
from ._common import (
    ENV_ACTOR,
    ENV_DB,
    PROG,
    Console,
    UsageError,
    add_destination_options,
    flag_names,
    iso,
    safe_url,
)


if TYPE_CHECKING:
    from ..guard import DestinationPolicy
    from ..registry import Actor, Webhook, WebhookRegistry
    from ..storage import SQLiteStorage


__all__ = [
    "DB_HELP",
    "READER_ID",
    "actor",
    "actor_id",
    "add_db_option",
    "database",
    "db_options",
    "destination_policy",
    "open_registry",
    "open_store",
    "table",
    "webhook_dict",
]

#: ``--db``'s help.
DB_HELP = f"the pendo-webhooks SQLite database (default: ${ENV_DB})"
#: The actor of a read (and of the deliveries commands) when none is given.
READER_ID = "cli"
#: What a store records of the address guard (its ``settings`` table): per option, the
#: setting's key, and what the file allows while it is on.
_RECORDED = {
    "allow_private": (
        "cli.allow_private",
        "private destinations (loopback, plain http, any port)",
    ),
    "allow_http": ("cli.allow_http", "plain http destinations"),
}
# Notes go to stderr; the commands' own output is unaffected.
_NOTES = Console()


def add_db_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """
    Add ``--db FILE``, which ``PENDO_WEBHOOKS_DB`` stands in for.
    """
    parser.add_argument("--db", metavar="FILE", help=DB_HELP)


def db_options(
    *, actor_required: bool, flags: Mapping[str, str] | None = None
) -> argparse.ArgumentParser:
    """
    A parent parser with ``--db``, ``--actor``, ``--admin``, the address guard and ``--json``.

    Without *actor_required* (a read), the actor defaults to ``cli``. *flags* names the
    options that set the registry's arguments, for its error messages.
    """
    parent = argparse.ArgumentParser(add_help=False)
    # reaches: the command checks or reaches destinations (see destination_policy).
    parent.set_defaults(actor_required=actor_required, reaches=False, flags=flags or {})
    group = parent.add_argument_group("store")
    add_db_option(group)
    group.add_argument(
        "--actor",
        metavar="ID",
        help=f"who is acting, recorded in the audit log (default: ${ENV_ACTOR}"
        + (")" if actor_required else f", else {READER_ID})"),
    )
    group.add_argument(
        "--admin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="act as an administrator (default: yes, as whoever can write FILE owns it; "
        "--no-admin is refused by the default admins-only policy: exit code 4)",
    )
    add_destination_options(parent, stored=True)
    parent.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parent


def _environment(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def database(args: argparse.Namespace) -> str:
    """
    The database file: ``--db``, else ``PENDO_WEBHOOKS_DB``.

    Raises:
        UsageError: If neither is given.
        ValidationError: If ``--db`` is empty.
    """
    if args.db is not None and not args.db.strip():
        raise ValidationError("--db", "must not be empty")
    path: str | None = args.db if args.db is not None else _environment(ENV_DB)
    if path is None:
        raise UsageError(f"no database given: use --db FILE, or set {ENV_DB}")
    return path


def actor_id(args: argparse.Namespace) -> str:
    """
    Who is acting: ``--actor``, else ``PENDO_WEBHOOKS_ACTOR``, else (for a read) ``cli``.

    Raises:
        UsageError: If a change has neither.
        ValidationError: If ``--actor`` is empty.
    """
    given: str | None = getattr(args, "actor", None)
    if given is not None and not given.strip():
        raise ValidationError("--actor", "must not be empty")
    found = given if given is not None else _environment(ENV_ACTOR)
    if found is not None:
        return found
    if getattr(args, "actor_required", False):
        raise UsageError(
            f"no actor given: use --actor ID, or set {ENV_ACTOR} (changes are audited "
            "under it; reads need none)"
        )
    return READER_ID


def actor(args: argparse.Namespace) -> Actor:
    """
    The :class:`~pendo_webhooks.registry.Actor` that ``--actor`` and ``--admin`` describe.
    """
    from ..registry import Actor  # noqa: PLC0415 - loaded when a command runs

    return Actor(actor_id(args), is_admin=getattr(args, "admin", True))


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
    except ConfigurationError:  # ":memory:", "file:...": the library's words are Python's
        raise ValidationError("--db", f"{path!r} is not the name of a database file") from None
    except StorageError as exc:
        raise ValidationError("--db", str(exc)) from None


def destination_policy(args: argparse.Namespace, storage: SQLiteStorage) -> DestinationPolicy:
    """
    The address guard's policy for a command on *storage*: what the store records, after
    recording what ``--allow-private``/``--allow-http`` (or their ``--no-`` forms) say.

    A change is said on stderr; so is a recorded option that a command relies on without
    giving it, if the command checks or reaches destinations (``args.reaches``).

    Raises:
        PermissionDenied: If the actor may not change the store (``--no-admin``).
    """
    from ..guard import DestinationPolicy  # noqa: PLC0415 - loaded when a command runs
    from ..storage._sqlite_settings import read_setting, write_setting  # noqa: PLC0415

    allowed: dict[str, bool] = {}
    for option, (key, what) in _RECORDED.items():
        given: bool | None = getattr(args, option)
        record = read_setting(storage, key)
        stored = record is not None and record.value == "yes"
        allowed[option] = stored if given is None else given
        flag = "--" + option.replace("_", "-")
        if given is not None and given != stored:
            from ..registry import WebhookRegistry  # noqa: PLC0415

            who = actor(args)
            WebhookRegistry(storage).policy.check(who, "update", None)
            write_setting(storage, key, "yes" if given else "no", by=who.id)
            change = (
                f"now allows {what} for every command on it, until --no-{flag[2:]}"
                if given
                else f"no longer allows {what}"
            )
            _NOTES.err(f"{PROG}: note: {storage.path} {change}")
        elif given is None and stored and args.reaches:
            _NOTES.err(
                f"{PROG}: note: {storage.path} allows {what}, as {flag} recorded "
                f"(--no-{flag[2:]} takes it back)"
            )
    if allowed["allow_private"]:
        return DestinationPolicy.local_testing()
    return DestinationPolicy(allow_http=allowed["allow_http"])


@contextlib.contextmanager
def open_registry(args: argparse.Namespace, *, create: bool = False) -> Iterator[WebhookRegistry]:
    """
    Open the database and yield a registry on it, guarded as the store records (and
    ``--allow-private/-http`` change).
    """
    from ..registry import WebhookRegistry  # noqa: PLC0415

    path = database(args)
    if args.actor_required:
        actor_id(args)  # a change without an actor stops here, before the file is touched
    with open_store(path, create=create) as storage:
        registry = WebhookRegistry(storage, destinations=destination_policy(args, storage))
        # The registry's errors name its Python arguments; the command's options instead.
        with flag_names(getattr(args, "flags", {})):
            yield registry


def webhook_dict(webhook: Webhook) -> dict[str, Any]:
    """
    What ``--json`` shows of a webhook: everything but its secrets, write key, PII hash key
    and header values, and with the destination's query string hidden.
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
        "filters": [str(f) for f in webhook.filters],
        "has_hash_key": webhook.hash_key is not None,
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
