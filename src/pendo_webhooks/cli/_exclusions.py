"""
``pendo-webhooks exclusions ...``: the visitors, accounts and IP ranges no webhook gets events of.

Strictly private.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import EXIT_OK, Console, add_command, iso
from ._db import actor, db_options, open_registry, table


if TYPE_CHECKING:
    from ..pipeline import Exclusion


__all__ = ["register"]


def register(subparsers: Any) -> None:
    """
    Add the ``exclusions`` command group.
    """
    group = subparsers.add_parser(
        "exclusions",
        help="list, add and remove exclusions (visitors, accounts, IP ranges never sent)",
        description=(
            "Manage the exclusion list of a SQLite store: events of an excluded visitor, "
            "account or source IP range go to no webhook. Every change is audited."
        ),
    )
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    parent = db_options(actor_required=True)

    parser = add_command(
        commands,
        "list",
        help="list the exclusions",
        parents=[db_options(actor_required=False)],  # reads need no --actor
    )
    parser.set_defaults(handler=_list)

    parser = add_command(
        commands,
        "add",
        help="exclude a visitor, an account or an IP range",
        description=(
            "Exclude a visitor, an account or a source IP range from every webhook. Visitor "
            "and account patterns are exact and case-sensitive, * matching any run of "
            "characters (*@acme.com); IP patterns are an address or a CIDR range."
        ),
        parents=[parent],
    )
    parser.add_argument("kind", choices=("visitor", "account", "ip"), metavar="KIND")
    parser.add_argument("pattern", metavar="PATTERN")
    parser.set_defaults(handler=_add, flags={"kind": "KIND", "pattern": "PATTERN"})

    parser = add_command(commands, "remove", help="remove an exclusion", parents=[parent])
    parser.add_argument("id", metavar="ID", help="the exclusion's id (exc_...)")
    parser.set_defaults(handler=_remove)


def _as_dict(exclusion: Exclusion) -> dict[str, Any]:
    return {
        "id": exclusion.id,
        "kind": exclusion.rule.kind.value,
        "pattern": exclusion.rule.pattern,
        "created_at": iso(exclusion.created_at),
        "created_by": exclusion.created_by,
    }


def _list(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry:
        found = registry.exclusions(actor(args))
    if args.json:
        console.json([_as_dict(e) for e in found])
        return EXIT_OK
    rows = [
        [e.id, e.rule.kind.value, e.rule.pattern, iso(e.created_at), e.created_by] for e in found
    ]
    for line in table(["ID", "KIND", "PATTERN", "CREATED", "BY"], rows):
        console.out(line)
    return EXIT_OK


def _add(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry:
        exclusion = registry.add_exclusion(actor(args), args.kind, args.pattern)
    if args.json:
        console.json(_as_dict(exclusion))
    else:
        console.out(
            f"excluded {exclusion.rule.kind.value} {exclusion.rule.pattern!r}: {exclusion.id}"
        )
    return EXIT_OK


def _remove(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry:
        registry.remove_exclusion(actor(args), args.id)
    if args.json:
        console.json({"id": args.id, "removed": True})
    else:
        console.out(f"removed {args.id}")
    return EXIT_OK
