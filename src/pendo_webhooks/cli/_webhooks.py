"""
``pendo-webhooks webhooks ...``: manage the webhooks of a SQLite store, audited.

Secrets are read from ``--secret TEXT``, ``--secret -`` (stdin) or ``--secret-file FILE``
(the last two keep them out of shell history), or generated into a new file that only its
owner can read (``--generate-secret FILE``). ``webhooks create`` without any of these
generates one and prints it once, the only secret any command prints; ``--unsigned`` makes
a webhook without a secret, on purpose. ``--drop PATH`` and ``--hash PATH`` are PII
filters (``--no-filters`` removes them); the hash key is never printed.

Strictly private.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import UnsignedWebhookWarning, ValidationError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    add_command,
    event_category,
    format_duration,
    health_dict,
    health_of,
    parse_duration,
    parse_header,
    read_secret_options,
    safe_url,
    usage_error,
)
from ._db import actor, db_options, open_registry, table, webhook_dict


if TYPE_CHECKING:
    from ..registry import Webhook
    from ..signing._secret import Secret


__all__ = ["register"]


def _categories(values: list[str]) -> list[str]:
    # --event npsSubmitted --event pollSubmitted, or --event npsSubmitted,pollSubmitted;
    # a misspelled one is refused here, with the closest name, before the store is opened.
    # An operations event (pendo_webhooks.webhook.disabled) is taken as it is.
    from ..events._category import OperationsCategory  # noqa: PLC0415 - only on this path

    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    operations = {c.value for c in OperationsCategory}
    return [name if name in operations else event_category(name).value for name in names]


def _subscriptions(args: argparse.Namespace) -> list[str]:
    # create: --event EVENT..., or --operations for every operations event.
    if args.operations:
        if args.events:
            usage_error(args, "--operations subscribes to every operations event; drop --event")
        from ..alerts import OPERATIONS_CATEGORIES  # noqa: PLC0415 - only on this path

        return [c.value for c in OPERATIONS_CATEGORIES]
    if not args.events:
        usage_error(args, "give --event EVENT (or --operations for an operations webhook)")
    return _categories(args.events)


#: The CLI's option for each field the registry checks, for its error messages.
_FLAGS = {
    "name": "--name",
    "url": "--url",
    "categories": "--event",
    "category": "--event",
    "secret": "--secret",
    "signature_scheme": "--scheme",
    "signature_header": "--signature-header",
    "headers": "--header",
    "write_key": "--segment",
    "segment_endpoint": "--segment-endpoint",
    "reason": "--reason",
    "grace": "--grace",
    "filters": "--drop/--hash",
}


def register(subparsers: Any) -> None:
    """
    Add the ``webhooks`` command group.
    """
    group = subparsers.add_parser(
        "webhooks",
        help="list, create, change, enable, test and delete webhooks in a SQLite store",
        description="Manage the webhooks of a SQLite store. Every change is audited.",
    )
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    parent = db_options(actor_required=True, flags=_FLAGS)

    def command(name: str, help: str, *, reads: bool = False) -> argparse.ArgumentParser:  # noqa: A002
        # Reads (list, show) need no --actor.
        options = db_options(actor_required=False, flags=_FLAGS) if reads else parent
        return add_command(commands, name, help=help, parents=[options])

    parser = command("list", "list the webhooks", reads=True)
    state = parser.add_mutually_exclusive_group()
    state.add_argument("--enabled", dest="enabled", action="store_true", default=None)
    state.add_argument("--disabled", dest="enabled", action="store_false")
    parser.add_argument("--event", metavar="EVENT", help="only those subscribed to EVENT")
    parser.set_defaults(handler=_list)

    parser = command("show", "show one webhook (never its secrets)", reads=True)
    parser.add_argument("id", metavar="ID")
    parser.set_defaults(handler=_show)

    parser = command("create", "register a webhook (disabled unless --enable)")
    parser.add_argument("--name", required=True, help="a name admins recognize")
    parser.add_argument("--url", help="where to POST (or use --segment)")
    _add_event_option(parser, replaces=False)
    _add_secret_options(
        parser,
        unsigned_help="send unsigned, without a secret (receivers cannot tell its requests "
        "from forged ones); without this or a secret option, a secret is generated and "
        "printed once",
    )
    _add_signing_options(parser)
    _add_segment_options(parser)
    _add_filter_options(parser)
    parser.add_argument("--enable", action="store_true", help="enable it at once")
    parser.set_defaults(handler=_create, reaches=True)

    parser = command("update", "change some fields of a webhook")
    parser.add_argument("id", metavar="ID")
    parser.add_argument("--name")
    parser.add_argument("--url")
    _add_event_option(parser, replaces=True)
    _add_secret_options(
        parser,
        unsigned_help="remove the secret and send unsigned (receivers cannot tell its "
        "requests from forged ones)",
    )
    parser.add_argument(
        "--no-secret", action="store_true", help="remove the secret; needs --unsigned"
    )
    _add_signing_options(parser)
    parser.add_argument("--no-headers", action="store_true", help="remove every extra header")
    _add_segment_options(parser)
    _add_filter_options(parser, replaces=True)
    parser.add_argument(
        "--expected-version",
        type=int,
        metavar="N",
        help="refuse the change (exit 1) if someone changed the webhook since version N",
    )
    parser.set_defaults(handler=_update, reaches=True)

    for name, help_text, handler in (
        ("enable", "start sending to a webhook", _enable),
        ("disable", "stop sending to a webhook (its pending deliveries are cancelled)", _disable),
        ("delete", "delete a webhook for good (its audit history stays)", _delete),
    ):
        parser = command(name, help_text)
        parser.add_argument("id", metavar="ID")
        if name == "disable":
            parser.add_argument("--reason", help="why, for the audit log and other admins")
        parser.set_defaults(handler=handler, reaches=name == "enable")

    _register_rotate_and_test(command)


def _register_rotate_and_test(command: Any) -> None:
    parser = command("rotate-secret", "replace a webhook's secret; the old one signs for a while")
    parser.add_argument("id", metavar="ID")
    _add_secret_options(parser)
    parser.add_argument(
        "--grace",
        default="24h",
        metavar="DURATION",
        help="how long the old secret keeps signing, like 24h or 0 for a leaked secret "
        "(default: 24h)",
    )
    parser.set_defaults(handler=_rotate)

    parser = command("test", "send a sample event to a webhook now, even a disabled one")
    parser.add_argument("id", metavar="ID")
    parser.add_argument(
        "--event", metavar="EVENT", help="the sample's type (default: its first category)"
    )
    parser.set_defaults(handler=_test, reaches=True)


def _add_event_option(parser: argparse.ArgumentParser, *, replaces: bool) -> None:
    parser.add_argument(
        "--event",
        dest="events",
        action="append",
        metavar="EVENT",
        help="an event type to send (repeatable, or comma-separated)"
        + ("; replaces the current ones" if replaces else ""),
    )
    if not replaces:
        parser.add_argument(
            "--operations",
            action="store_true",
            help="an operations webhook: it receives the library's own signed alerts "
            "(pendo_webhooks.delivery.exhausted, .webhook.disabled, .webhook.recovered) "
            "instead of Pendo events",
        )


def _add_secret_options(
    parser: argparse.ArgumentParser, *, unsigned_help: str | None = None
) -> None:
    group = parser.add_mutually_exclusive_group()
    if unsigned_help is not None:
        group.add_argument("--unsigned", action="store_true", help=unsigned_help)
    group.add_argument("--secret", metavar="TEXT", help="the secret ('-' reads it from stdin)")
    group.add_argument("--secret-file", metavar="FILE", help="read the secret from FILE")
    group.add_argument(
        "--generate-secret",
        metavar="FILE",
        help="generate a random whsec_ secret and write it to FILE, a new file only you can "
        "read (give it to the receiver from there)",
    )


def _add_signing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheme", choices=("both", "pendo", "standard"))
    parser.add_argument("--signature-header", metavar="NAME")
    parser.add_argument(
        "--header",
        dest="headers",
        action="append",
        metavar="'NAME: VALUE'",
        help="an extra header to send (repeatable; replaces the current ones)",
    )


def _add_filter_options(parser: argparse.ArgumentParser, *, replaces: bool = False) -> None:
    more = "; replaces the current filters" if replaces else ""
    parser.add_argument(
        "--drop",
        dest="filters",
        action="append",
        type=lambda path: f"drop:{path}",
        metavar="PATH",
        help="a PII filter: leave the field at PATH (like properties.nps.reason) out of "
        f"every event (repeatable{more})",
    )
    parser.add_argument(
        "--hash",
        dest="filters",
        action="append",
        type=lambda path: f"hash:{path}",
        metavar="PATH",
        help="a PII filter: replace the text at PATH (like visitorId) with its keyed "
        f"HMAC-SHA256, the same for one value every time (repeatable{more})",
    )
    if replaces:
        parser.add_argument("--no-filters", action="store_true", help="remove every PII filter")


def _add_segment_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--segment",
        metavar="WRITE_KEY",
        help="a Segment webhook with this write key ('-' reads it from stdin)",
    )
    group.add_argument("--segment-file", metavar="FILE", help="read the write key from FILE")
    parser.add_argument(
        "--segment-endpoint",
        metavar="URL",
        help="Segment's API (default https://api.segment.io; EU: "
        "https://events.eu1.segmentapis.com)",
    )
    parser.add_argument(
        "--segment-gzip",
        action=argparse.BooleanOptionalAction,
        help="gzip Segment batches",
    )


def _show_change(
    console: Console,
    args: argparse.Namespace,
    verb: str,
    hook: Webhook,
    *,
    new_secret: Secret | None = None,
) -> int:
    """
    Print the changed webhook; *new_secret*, a generated secret, is printed this once.
    """
    if args.json:
        shown = webhook_dict(hook)
        if new_secret is not None:
            shown["secret"] = new_secret.reveal()
        console.json(shown)
    else:
        state = "enabled" if hook.enabled else "disabled"
        console.out(f"{verb} {hook.id} ({hook.name!r}, {state}, version {hook.version})")
        if new_secret is not None:
            console.out(f"secret: {new_secret.reveal()}")
    if new_secret is not None:
        console.err(
            "the generated secret is shown this once and never again: give it to the "
            "receiver now (or rotate-secret later)"
        )
    return EXIT_OK


@contextlib.contextmanager
def _unsigned_warnings(console: Console) -> Iterator[None]:
    """
    Print the registry's UnsignedWebhookWarning to stderr as a CLI warning line.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsignedWebhookWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, UnsignedWebhookWarning):
            console.err(f"warning: {warning.message}")
        else:  # not ours to swallow
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _list(args: argparse.Namespace, console: Console) -> int:
    category = None if args.event is None else _categories([args.event])[0]
    with open_registry(args) as registry:
        hooks = registry.list(actor(args), enabled=args.enabled, category=category)
    if args.json:
        console.json([webhook_dict(h) for h in hooks])
        return EXIT_OK
    rows = [
        [
            h.id,
            "yes" if h.enabled else "no",
            h.kind.value,
            h.name,
            safe_url(h.destination),
            ",".join(sorted(c.value for c in h.categories)),
        ]
        for h in hooks
    ]
    for line in table(["ID", "ENABLED", "KIND", "NAME", "DESTINATION", "EVENTS"], rows):
        console.out(line)
    return EXIT_OK


def _show(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry:
        hook = registry.get(actor(args), args.id)
        health = health_of(registry.storage, hook.id)
    shown = webhook_dict(hook)
    if args.json:
        console.json(shown if health is None else {**shown, "health": health_dict(health)})
        return EXIT_OK
    for key, value in shown.items():
        text = ", ".join(value) if isinstance(value, list) else value
        console.out(f"{key}: {'' if text is None else text}")
    if health is not None:
        console.out(f"health: {health.describe()}")
    return EXIT_OK


@contextlib.contextmanager
def _new_secret_file(path: str) -> Iterator[Secret]:
    """
    Generate a secret into a new file only its owner can read; remove the file on failure.
    """
    from ..signing._secret import Secret  # noqa: PLC0415

    secret = Secret.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ValidationError(
            "--generate-secret", f"{path} exists; it is never overwritten"
        ) from None
    except OSError as exc:
        raise ValidationError(
            "--generate-secret", f"cannot create {path}: {exc.strerror}"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(secret.reveal() + "\n")
    try:
        yield secret
    except BaseException:
        Path(path).unlink()
        raise


@contextlib.contextmanager
def _secret_from(args: argparse.Namespace, console: Console) -> Iterator[Secret | str | None]:
    if args.generate_secret is not None:
        with _new_secret_file(args.generate_secret) as secret:
            yield secret
        console.err(f"the new secret is in {args.generate_secret}")
        return
    secrets = read_secret_options(
        [args.secret] if args.secret is not None else None,
        [args.secret_file] if args.secret_file is not None else None,
        console,
    )
    yield secrets[0] if secrets else None


def _write_key(args: argparse.Namespace, console: Console) -> str | None:
    keys = read_secret_options(
        [args.segment] if args.segment is not None else None,
        [args.segment_file] if args.segment_file is not None else None,
        console,
        field="--segment",
    )
    return keys[0] if keys else None


def _headers(values: list[str] | None) -> dict[str, str] | None:
    if values is None:
        return None
    return dict(parse_header(h, "--header") for h in values)


def _create(args: argparse.Namespace, console: Console) -> int:
    write_key = _write_key(args, console)
    if (args.url is None) == (write_key is None):
        usage_error(args, "give either --url or --segment WRITE_KEY")
    optional: dict[str, Any] = {
        "signature_scheme": args.scheme,
        "signature_header": args.signature_header,
        "headers": _headers(args.headers),
        "segment_endpoint": args.segment_endpoint,
        "segment_gzip": args.segment_gzip,
        "filters": args.filters,
    }
    fields = {k: v for k, v in optional.items() if v is not None}
    subscriptions = _subscriptions(args)
    if args.unsigned:
        if write_key is not None:
            usage_error(args, "--unsigned is for URL webhooks; Segment webhooks use a write key")
        fields["unsigned"] = True
    who = actor(args)
    with (
        open_registry(args, create=True) as registry,
        _secret_from(args, console) as secret,
        _unsigned_warnings(console),
    ):
        if write_key is not None:
            fields.update(kind="segment", write_key=write_key)
        hook = registry.create(
            who,
            name=args.name,
            url=args.url,
            categories=subscriptions,
            secret=secret,
            **fields,
        )
        if args.enable:
            hook = registry.enable(who, hook.id)
    generated = None
    if secret is None and hook.secret is not None:
        generated = hook.secret  # made by the registry: the caller sees it only now
    return _show_change(console, args, "created", hook, new_secret=generated)


def _update(args: argparse.Namespace, console: Console) -> int:
    new_secret = (args.secret, args.secret_file, args.generate_secret)
    if args.no_secret and any(value is not None for value in new_secret):
        usage_error(args, "--no-secret cannot go with a new secret")
    if args.no_secret and not args.unsigned:
        usage_error(
            args,
            "removing the secret makes the webhook unsigned: add --unsigned to do that on "
            "purpose (or rotate-secret to replace the secret)",
        )
    if args.no_headers and args.headers:
        usage_error(args, "--no-headers cannot go with --header")
    if args.no_filters and args.filters:
        usage_error(args, "--no-filters cannot go with --drop or --hash")
    changes: dict[str, Any] = {
        "name": args.name,
        "url": args.url,
        "categories": None if args.events is None else _categories(args.events),
        "signature_scheme": args.scheme,
        "signature_header": args.signature_header,
        "headers": _headers(args.headers),
        "segment_endpoint": args.segment_endpoint,
        "segment_gzip": args.segment_gzip,
        "write_key": _write_key(args, console),
        "filters": args.filters,
    }
    fields = {k: v for k, v in changes.items() if v is not None}
    if args.no_headers:
        fields["headers"] = None
    if args.no_filters:
        fields["filters"] = None
    if args.unsigned:
        fields.update(secret=None, unsigned=True)
    with (
        open_registry(args) as registry,
        _secret_from(args, console) as secret,
        _unsigned_warnings(console),
    ):
        if secret is not None:
            fields["secret"] = secret
        if not fields:
            usage_error(args, "nothing to change: give at least one field")
        hook = registry.update(
            actor(args), args.id, expected_version=args.expected_version, **fields
        )
    return _show_change(console, args, "updated", hook)


def _enable(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry:
        hook = registry.enable(actor(args), args.id)
    return _show_change(console, args, "enabled", hook)


def _disable(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry:
        hook = registry.disable(actor(args), args.id, reason=args.reason)
    return _show_change(console, args, "disabled", hook)


def _delete(args: argparse.Namespace, console: Console) -> int:
    with open_registry(args) as registry:
        registry.delete(actor(args), args.id)
    if args.json:
        console.json({"id": args.id, "deleted": True})
    else:
        console.out(f"deleted {args.id}")
    return EXIT_OK


def _rotate(args: argparse.Namespace, console: Console) -> int:
    if args.secret is None and args.secret_file is None and args.generate_secret is None:
        usage_error(args, "give the new secret (--secret, --secret-file or --generate-secret)")
    grace = parse_duration(args.grace, "--grace")
    with open_registry(args) as registry, _secret_from(args, console) as secret:
        hook = registry.rotate_secret(actor(args), args.id, secret, grace=grace)
    return _show_change(console, args, "rotated the secret of", hook)


def _test(args: argparse.Namespace, console: Console) -> int:
    from ..dispatcher import Dispatcher  # noqa: PLC0415 - loaded when the command runs

    with open_registry(args) as registry, Dispatcher(registry) as dispatcher:
        event = None if args.event is None else event_category(args.event)
        result = dispatcher.send_test(actor(args), args.id, event)
        destination = safe_url(registry.storage.get_webhook(args.id).destination)
    if args.json:
        console.json(
            {
                "webhook_id": result.webhook_id,
                "event": result.category.value,
                "event_id": result.event_id,
                "accepted": result.accepted,
                "status": result.status,
                "latency_ms": round(result.latency * 1000, 1),
                "error": result.error,
                "response_excerpt": result.response_excerpt,
                "filters": list(result.filters),
            }
        )
    else:
        got = f"HTTP {result.status}" if result.status is not None else "no response"
        console.out(
            f"test {result.category} {result.event_id} to {destination}: {got} in "
            f"{format_duration(result.latency)}; "
            + ("accepted" if result.accepted else f"not accepted ({result.error})")
        )
        if result.filters:
            console.out(f"filtered: {', '.join(result.filters)}")
    return EXIT_OK if result.accepted else EXIT_FAILED
