"""
``pendo-webhooks deliveries ...``: read the outbox of a SQLite store, redeliver, purge.

Strictly private.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    add_command,
    format_duration,
    health_of,
    iso,
    parse_moment,
    usage_error,
    whole_number,
)
from ._db import actor, db_options, open_registry, table
from ._sample import add_event_options, event_from_args


if TYPE_CHECKING:
    from ..dispatcher import Attempt, Delivery, Dispatcher


__all__ = ["register"]

_STATUSES = ("pending", "delivered", "failed", "dead", "cancelled")


def register(subparsers: Any) -> None:
    """
    Add the ``deliveries`` command group.
    """
    group = subparsers.add_parser(
        "deliveries",
        help="list and show deliveries and their attempts; redeliver; purge old bodies",
        description="Read and manage the outbox of a SQLite store.",
    )
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    parent = db_options(actor_required=False)

    parser = add_command(commands, "list", help="list deliveries, newest first", parents=[parent])
    parser.add_argument("--webhook", metavar="ID", help="only this webhook's")
    parser.add_argument("--status", choices=_STATUSES, help="only those in this state")
    parser.add_argument(
        "--limit",
        type=whole_number(1, 10_000),
        default=50,
        metavar="N",
        help="at most N (default: 50)",
    )
    parser.set_defaults(handler=_list)

    parser = add_command(
        commands,
        "enqueue",
        help="store an event for every enabled webhook subscribed to it; a worker sends it",
        description=(
            "Store an event in the outbox, as a host application's Dispatcher.enqueue does: "
            "one delivery per enabled webhook subscribed to its type, sent by a running "
            "`pendo-webhooks worker`. Exits 1 if no webhook takes it."
        ),
        parents=[parent],
    )
    add_event_options(parser, payload=True)
    parser.set_defaults(handler=_enqueue)

    parser = add_command(
        commands, "show", help="show one delivery and its attempts", parents=[parent]
    )
    parser.add_argument("id", metavar="ID")
    parser.add_argument(
        "--body", action="store_true", help="print only the exact body bytes that are sent"
    )
    parser.set_defaults(handler=_show)

    parser = add_command(
        commands,
        "exchange",
        help="show one HTTP exchange and every delivery sent in it",
        description=(
            "Show one request (an EXCHANGE id from `deliveries show`) and what came of it: "
            "for a Segment batch, every delivery it carried and each one's decision."
        ),
        parents=[parent],
    )
    parser.add_argument("id", metavar="EXCHANGE")
    parser.set_defaults(handler=_exchange)

    parser = add_command(
        commands,
        "redeliver",
        help="send finished deliveries again (same body, same webhook-id)",
        description=(
            "Make a finished delivery pending again, or every failed and dead delivery of "
            "a webhook created since a moment; a running worker sends them."
        ),
        parents=[parent],
    )
    parser.add_argument("id", metavar="ID", nargs="?", help="the delivery")
    parser.add_argument("--webhook", metavar="ID", help="all failed and dead ones of a webhook")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="with --webhook: created since WHEN, an ISO-8601 date or time (UTC unless it "
        "says otherwise) or an age: 7d, 12h, 30m, 45s, 2w, '7d ago', '3 days ago'",
    )
    parser.add_argument(
        "--until", metavar="WHEN", help="with --webhook: created before WHEN (same forms)"
    )
    parser.set_defaults(handler=_redeliver)

    parser = add_command(
        commands,
        "purge",
        help="empty the bodies of deliveries finished before a moment",
        parents=[parent],
    )
    parser.add_argument(
        "--older-than",
        required=True,
        metavar="WHEN",
        help="an ISO-8601 date or time, or an age like 30d or '30d ago' (their metadata stays)",
    )
    parser.set_defaults(handler=_purge)


def _dispatcher(registry: Any) -> Dispatcher:
    from ..dispatcher import Dispatcher  # noqa: PLC0415 - loaded when the command runs

    return Dispatcher(registry)


def _delivery_dict(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": delivery.category.value,
        "event_id": delivery.event_id,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "updated_at": iso(delivery.updated_at),
        "finished_at": iso(delivery.finished_at),
        "redelivered_at": iso(delivery.redelivered_at),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "bytes": len(delivery.body),
        "purged": delivery.purged,
    }


def _attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "exchange_id": attempt.exchange_id,
        "started_at": iso(attempt.started_at),
        "latency_ms": round(attempt.duration * 1000, 1),
        "status": attempt.status_code,
        "error_kind": attempt.error_kind,
        "detail": attempt.detail,
        "verdict": attempt.verdict.value,
        "reason": attempt.reason,
    }


def _list(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry, _dispatcher(registry) as dispatcher:
        found = dispatcher.deliveries(
            actor(args), webhook_id=args.webhook, status=args.status, limit=args.limit
        )
        health = None if args.webhook is None else health_of(dispatcher.storage, args.webhook)
    if args.json:
        console.json([_delivery_dict(d) for d in found])
        return EXIT_OK
    rows = [
        [
            d.id,
            d.status.value,
            d.attempts,
            d.webhook_id,
            d.category.value,
            iso(d.created_at),
            d.last_error or ("" if d.last_status is None else f"HTTP {d.last_status}"),
        ]
        for d in found
    ]
    headings = ["ID", "STATUS", "ATTEMPTS", "WEBHOOK", "EVENT", "CREATED", "LAST"]
    for line in table(headings, rows):
        console.out(line)
    if health is not None:
        console.out(f"webhook {health.webhook_id}: {health.describe()}")
    return EXIT_OK


def _enqueue(args: argparse.Namespace, console: Console) -> int:
    from ..dispatcher import Outcome  # noqa: PLC0415

    event = event_from_args(args, console)
    with open_registry(args) as registry, _dispatcher(registry) as dispatcher:
        result = dispatcher.enqueue(event)
    stored = [o for o in result if o.outcome is Outcome.PENDING]
    if args.json:
        console.json(
            {
                "event": event.category.value,
                "event_id": event.unique_id,
                "deliveries": [
                    {
                        "webhook_id": o.webhook_id,
                        "delivery_id": o.delivery_id,
                        "outcome": o.outcome.value,
                        "reason": o.reason,
                    }
                    for o in result
                ],
            }
        )
    else:
        for o in result:
            console.out(
                f"{o.webhook_id}: {o.outcome}"
                + (f" as {o.delivery_id}" if o.delivery_id else f" ({o.reason})")
            )
    if not stored:
        console.error(f"no enabled webhook took {event.category} {event.unique_id}")
        return EXIT_FAILED
    return EXIT_OK


def _show(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry, _dispatcher(registry) as dispatcher:
        attempts = dispatcher.attempts(actor(args), args.id)
        delivery = dispatcher.storage.get_delivery(args.id)
    if args.body:
        console.write_bytes(delivery.body)
        return EXIT_OK
    shown = _delivery_dict(delivery)
    if args.json:
        console.json({**shown, "attempt_log": [_attempt_dict(a) for a in attempts]})
        return EXIT_OK
    for key, value in shown.items():
        console.out(f"{key}: {'' if value is None else value}")
    rows = [
        [
            a.number,
            iso(a.started_at),
            f"HTTP {a.status_code}" if a.status_code is not None else f"{a.error_kind}",
            format_duration(a.duration),
            a.reason,
            a.exchange_id,
        ]
        for a in attempts
    ]
    console.out("")
    for line in table(["ATTEMPT", "STARTED", "GOT", "LATENCY", "DECISION", "EXCHANGE"], rows):
        console.out(line)
    return EXIT_OK


def _exchange(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry, _dispatcher(registry) as dispatcher:
        attempts = dispatcher.exchange_attempts(actor(args), args.id)
    if not attempts:
        console.error(f"no exchange with id {args.id!r}")
        return EXIT_FAILED
    first = attempts[0]
    shown = {
        "exchange_id": first.exchange_id,
        "started_at": iso(first.started_at),
        "latency_ms": round(first.duration * 1000, 1),
        "status": first.status_code,
        "error_kind": first.error_kind,
        "detail": first.detail,
        "deliveries": len(attempts),
    }
    if args.json:
        deliveries = [
            {"delivery_id": a.delivery_id, "attempt": a.number, "verdict": a.verdict.value,
             "reason": a.reason}
            for a in attempts
        ]  # fmt: skip
        console.json({**shown, "attempts": deliveries})
        return EXIT_OK
    for key, value in shown.items():
        console.out(f"{key}: {'' if value is None else value}")
    console.out("")
    rows = [[a.delivery_id, a.number, a.reason] for a in attempts]
    for line in table(["DELIVERY", "ATTEMPT", "DECISION"], rows):
        console.out(line)
    return EXIT_OK


def _redeliver(args: argparse.Namespace, console: Console) -> int:
    if (args.id is None) == (args.webhook is None):
        usage_error(args, "give a delivery ID, or --webhook ID --since WHEN")
    if args.webhook is not None and args.since is None:
        usage_error(args, "--webhook needs --since WHEN")
    if args.id is not None and (args.since or args.until):
        usage_error(args, "--since and --until go with --webhook")
    now = datetime.now(timezone.utc)
    since = None if args.since is None else parse_moment(args.since, "--since", now=now)
    until = None if args.until is None else parse_moment(args.until, "--until", now=now)
    with open_registry(args) as registry, _dispatcher(registry) as dispatcher:
        # The Dispatcher's redeliver and purge take no actor: ask the registry's policy here.
        if args.id is not None:
            webhook_id = dispatcher.storage.get_delivery(args.id).webhook_id
            registry.policy.check(actor(args), "update", webhook_id)
            delivery = dispatcher.redeliver(args.id)
            count = 1
        else:
            registry.policy.check(actor(args), "update", args.webhook)
            dispatcher.storage.get_webhook(args.webhook)  # UnknownWebhook, not "0 redelivered"
            assert since is not None  # noqa: S101 - checked above: --webhook needs --since
            count = dispatcher.redeliver_failed(args.webhook, since, until)
    if args.json:
        console.json({"redelivered": count})
    elif args.id is not None:
        console.out(f"{delivery.id} is pending again; a running worker sends it")
    else:
        console.out(f"{count} deliveries are pending again; a running worker sends them")
    return EXIT_OK


def _purge(args: argparse.Namespace, console: Console) -> int:
    moment = parse_moment(args.older_than, "--older-than", now=datetime.now(timezone.utc))
    with open_registry(args) as registry, _dispatcher(registry) as dispatcher:
        registry.policy.check(actor(args), "delete", None)
        count = dispatcher.purge(moment)
    if args.json:
        console.json({"purged": count, "older_than": iso(moment)})
    else:
        console.out(f"purged the bodies of {count} deliveries finished before {iso(moment)}")
    return EXIT_OK
