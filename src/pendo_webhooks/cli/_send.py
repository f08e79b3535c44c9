"""
``pendo-webhooks send``: one ad-hoc delivery with the real retry policy, attempt by attempt.

The delivery goes through the real :class:`~pendo_webhooks.dispatcher.Dispatcher`, with a
throw-away :class:`~pendo_webhooks.storage.InMemoryStorage` holding one webhook: the same
signing, address guard, transport and retry decisions as a host application's. Only the
waits can be shortened (``--retries``, ``--max-wait``).

Strictly private.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import TYPE_CHECKING, Any

from ..exceptions import UnsignedWebhookWarning, ValidationError
from ._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    Console,
    add_command,
    add_destination_options,
    destination_policy,
    flag_names,
    format_duration,
    iso,
    parse_header,
    read_secret_options,
    safe_url,
    seconds,
    whole_number,
)
from ._sample import add_event_options, event_from_args


if TYPE_CHECKING:
    from ..dispatcher import Delivery, DeliveryOutcome, Dispatcher
    from ..events import Event
    from ..registry import Actor, Webhook, WebhookRegistry
    from ..retry import RetryPolicy


__all__ = ["register", "retry_policy"]

_ACTOR_ID = "cli"
#: The CLI's words for the fields the registry checks, for its error messages.
_FLAGS = {
    "url": "URL",
    "segment_endpoint": "URL",
    "secret": "--secret",
    "write_key": "--segment",
    "signature_header": "--signature-header",
    "headers": "--header",
}
# How long to wait before asking again when a retry was not due yet (clock granularity).
_NUDGE = 0.01


def register(subparsers: Any) -> None:
    """
    Add the ``send`` command.
    """
    parser = add_command(
        subparsers,
        "send",
        help="send one event to a URL (or a Segment source) with the real retry policy",
        description=(
            "Send one event to URL, signed like a real delivery, through the real dispatcher "
            "and retry policy; print each attempt (status, latency, wait) as it happens. "
            "Exits 0 only if the event was delivered. The payload is the sample of EVENT "
            "(see `pendo-webhooks sample`), or --payload, sent in Pendo's exact wire form."
        ),
    )
    parser.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        help="where to POST; with --segment, the Segment endpoint (default "
        "https://api.segment.io)",
    )
    add_event_options(parser, payload=True)
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret", metavar="TEXT", help="sign with this secret ('-' reads it from stdin)"
    )
    secret.add_argument("--secret-file", metavar="FILE", help="read the secret from FILE")
    secret.add_argument(
        "--segment",
        metavar="WRITE_KEY",
        help="send to Segment as a track call with this write key ('-' reads it from stdin)",
    )
    secret.add_argument("--segment-file", metavar="FILE", help="read the write key from FILE")
    parser.add_argument(
        "--scheme",
        choices=("both", "pendo", "standard"),
        default="both",
        help="which signature headers to send (default: both)",
    )
    parser.add_argument(
        "--signature-header",
        metavar="NAME",
        default="X-Pendo-Signature",
        help="the name of Pendo's signature header (default: X-Pendo-Signature)",
    )
    parser.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra header to send (repeatable)",
    )
    parser.add_argument(
        "--retries",
        type=whole_number(0, 20),
        metavar="N",
        help="retries after the first attempt, 0 to 20 (default: the policy's 5)",
    )
    parser.add_argument(
        "--max-wait",
        type=seconds(0.001, 365 * 86400),
        metavar="SECONDS",
        help="wait at most this long between attempts, Retry-After included (default: the "
        "real schedule, 30 s to 8 h)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds(0.001, 30),
        default=15.0,
        metavar="SECONDS",
        help="deadline of one attempt, at most 30 (default: 15)",
    )
    add_destination_options(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with every attempt at the end (progress goes to stderr)",
    )
    parser.set_defaults(handler=_run)


def retry_policy(retries: int | None, max_wait: float | None) -> RetryPolicy:
    """
    The real :class:`~pendo_webhooks.retry.RetryPolicy`, with fewer retries or shorter waits.

    With *max_wait*, no wait is longer: the schedule is capped so that even its jittered
    waits stay within it, and so is ``Retry-After``.

    >>> policy = retry_policy(2, 6)
    >>> policy.max_retries, [w.total_seconds() for w in policy.schedule]
    (2, [5.0, 5.0, 5.0, 5.0, 5.0])
    >>> policy.max_retry_after.total_seconds()
    6.0
    """
    from datetime import timedelta  # noqa: PLC0415 - loaded when the command runs

    import attrs  # noqa: PLC0415

    from ..retry import RetryPolicy  # noqa: PLC0415

    policy = RetryPolicy()
    if retries is not None:
        policy = attrs.evolve(policy, max_retries=retries)
    if max_wait is not None:
        cap = timedelta(seconds=max_wait)
        base = cap / (1 + policy.jitter)
        policy = attrs.evolve(
            policy, schedule=[min(w, base) for w in policy.schedule], max_retry_after=cap
        )
    return policy


def _credentials(args: argparse.Namespace, console: Console) -> tuple[str | None, str | None]:
    """
    Return (secret, write key) from the options; at most one of them is set.
    """
    if args.payload == "-" and "-" in (args.secret, args.segment):
        raise ValidationError("--payload", "stdin cannot carry both the payload and a secret")
    if args.segment is not None or args.segment_file is not None:
        keys = read_secret_options(
            [args.segment] if args.segment is not None else None,
            [args.segment_file] if args.segment_file is not None else None,
            console,
            field="--segment",
        )
        return None, keys[0]
    secrets = read_secret_options(
        [args.secret] if args.secret is not None else None,
        [args.secret_file] if args.secret_file is not None else None,
        console,
    )
    return (secrets[0] if secrets else None), None


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..dispatcher import Dispatcher, Outcome  # noqa: PLC0415
    from ..registry import Actor, WebhookRegistry  # noqa: PLC0415
    from ..storage import InMemoryStorage  # noqa: PLC0415
    from ..transports import Urllib3Transport  # noqa: PLC0415

    event = event_from_args(args, console)
    secret, write_key = _credentials(args, console)
    if args.url is None and write_key is None:
        raise ValidationError("URL", "is required (or --segment WRITE_KEY to send to Segment)")
    headers = dict(parse_header(h, "--header") for h in args.headers)
    policy = destination_policy(args)
    registry = WebhookRegistry(InMemoryStorage(), destinations=policy)
    actor = Actor(_ACTOR_ID, is_admin=True)
    with flag_names(_FLAGS):
        hook = _webhook(
            args,
            registry,
            actor=actor,
            event=event,
            secret=secret,
            write_key=write_key,
            headers=headers,
        )
    registry.enable(actor, hook.id)
    retry = retry_policy(args.retries, args.max_wait)
    report = _Report(console, as_json=args.json, max_retries=retry.max_retries)
    signed = "no signature" if secret is None else f"signed: {args.scheme}"
    what = "write key" if write_key is not None else signed
    report.line(
        f"sending {event.category} {event.unique_id} to {safe_url(hook.destination)} ({what})"
    )
    with (
        Urllib3Transport(destinations=policy, deadline=args.timeout) as transport,
        Dispatcher(registry, transport=transport, retry=retry) as dispatcher,
    ):
        outcome = dispatcher.dispatch(event).for_webhook(hook.id)
        report.attempt(dispatcher, outcome)
        while outcome.outcome is Outcome.RETRY and outcome.delivery_id is not None:
            outcome = _next_outcome(dispatcher, outcome.delivery_id)
            report.attempt(dispatcher, outcome)
    return report.finish(event, outcome)


def _webhook(
    args: argparse.Namespace,
    registry: WebhookRegistry,
    *,
    actor: Actor,
    event: Event,
    secret: str | None,
    write_key: str | None,
    headers: dict[str, str],
) -> Webhook:
    """
    Register the throw-away webhook the event is sent to.
    """
    if write_key is not None:
        return registry.create(
            actor,
            name="pendo-webhooks send",
            kind="segment",
            write_key=write_key,
            segment_endpoint=args.url,
            categories={event.category},
            headers=headers,
        )
    # Without --secret this one-off sends unsigned on purpose, and says so in its report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsignedWebhookWarning)
        return registry.create(
            actor,
            name="pendo-webhooks send",
            url=args.url,
            secret=secret,
            unsigned=secret is None,
            categories={event.category},
            signature_scheme=args.scheme,
            signature_header=args.signature_header,
            headers=headers,
        )


def _next_outcome(dispatcher: Dispatcher, delivery_id: str) -> DeliveryOutcome:
    """
    Sleep until the delivery's retry is due, then attempt it; return what happened.

    Nothing else uses this throw-away store, so the delivery stays pending until then.
    """
    while True:
        delivery: Delivery = dispatcher.storage.get_delivery(delivery_id)
        wait = (delivery.next_attempt_at - dispatcher.clock()).total_seconds()
        if wait > 0:
            time.sleep(wait)
            continue
        found = dispatcher.run_due()  # the store holds this one delivery only
        if found:
            return found[0]
        time.sleep(_NUDGE)


class _Report:
    """
    Prints each attempt as it happens (or collects them for ``--json``). Strictly private.
    """

    def __init__(self, console: Console, *, as_json: bool, max_retries: int) -> None:
        self._console = console
        self._json = as_json
        self._max_retries = max_retries
        self._attempts: list[dict[str, Any]] = []
        self._blocked: str | None = None

    def line(self, text: str) -> None:
        # With --json, stdout carries the JSON only; the progress still shows, on stderr.
        if self._json:
            self._console.err(text)
        else:
            self._console.out(text)

    def attempt(self, dispatcher: Dispatcher, outcome: DeliveryOutcome) -> None:
        from ..dispatcher import Outcome  # noqa: PLC0415

        if outcome.delivery_id is None or outcome.attempt is None:
            return  # nothing was sent (skipped, cancelled)
        row = dispatcher.storage.list_attempts(outcome.delivery_id)[-1]
        wait = None
        if outcome.next_attempt_at is not None:
            wait = max(0.0, (outcome.next_attempt_at - dispatcher.clock()).total_seconds())
        if row.error_kind == "blocked":
            self._blocked = row.detail or "the address guard refused it"
        self._attempts.append(
            {
                "attempt": row.number,
                "started_at": iso(row.started_at),
                "status": row.status_code,
                "error_kind": row.error_kind,
                "error": row.detail if row.status_code is None else None,
                "latency_ms": round(row.duration * 1000, 1),
                "outcome": outcome.outcome.value,
                "reason": row.reason,
                "retry_in_s": None if wait is None else round(wait, 3),
            }
        )
        got = f"HTTP {row.status_code}"
        if row.status_code is None:  # the transport's detail says what kind of failure
            got = row.detail or str(row.error_kind)
        then = {
            Outcome.DELIVERED: "delivered",
            Outcome.FAILED: "failed, not retried",
            Outcome.DEAD: f"gave up after {row.number} attempts",
        }.get(outcome.outcome, outcome.outcome.value)
        if outcome.outcome is Outcome.RETRY and wait is not None:
            then = f"retrying in {format_duration(wait)} (retry {row.number} of "
            then += f"{self._max_retries}{', Retry-After' if 'Retry-After' in row.reason else ''})"
        if row.status_code == 410:
            then = "failed: 410 Gone"
        self.line(f"attempt {row.number}: {got} in {format_duration(row.duration)}; {then}")

    def finish(self, event: Event, outcome: DeliveryOutcome) -> int:
        from ..dispatcher import Outcome  # noqa: PLC0415

        delivered = outcome.outcome is Outcome.DELIVERED
        if self._json:
            self._console.json(
                {
                    "delivered": delivered,
                    "outcome": outcome.outcome.value,
                    "reason": outcome.reason,
                    "event": event.category.value,
                    "event_id": event.unique_id,
                    "attempts": self._attempts,
                }
            )
        if delivered:
            return EXIT_OK
        if self._blocked is not None:
            self._console.error(f"destination blocked: {self._blocked}")
            return EXIT_BAD_INPUT
        if outcome.outcome is Outcome.FAILED and not self._attempts:
            # Refused before any request (over Segment's size limit): the input is wrong.
            self._console.error(f"not sent: {outcome.reason}")
            return EXIT_BAD_INPUT
        self._console.error(f"not delivered: {outcome.reason or outcome.outcome.value}")
        return EXIT_FAILED
