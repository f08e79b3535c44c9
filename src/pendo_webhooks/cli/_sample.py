"""
``pendo-webhooks sample EVENT [--set key=value ...]``: a realistic payload, as exact wire bytes.

Strictly private.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..exceptions import UnknownEventType, ValidationError
from ._common import EXIT_OK, Console, add_command, parse_json_value, read_bytes


if TYPE_CHECKING:
    from ..events import Event


__all__ = ["add_event_options", "event_from_args", "register", "sample", "with_overrides"]

_SET_HELP = (
    "change a field: KEY is the event's Python attribute name or its wire name, dotted for "
    "nested values (nps.rating=9, guide_properties.steps.0.type=lightbox, "
    "event_properties.plan=pro); VALUE is read as JSON when it parses, else as a string; "
    "times are epoch seconds (guide times: milliseconds), as on the wire"
)


def register(subparsers: Any) -> None:
    """
    Add the ``sample`` command.
    """
    parser = add_command(
        subparsers,
        "sample",
        help="print a realistic payload of one event type (exact wire bytes)",
        description=(
            "Print a realistic payload of EVENT, exactly the bytes pendo-webhooks sends "
            "(no newline at the end unless stdout is a terminal). The values are those of "
            "Pendo's published samples."
        ),
    )
    parser.add_argument("event", metavar="EVENT", help="the event type, e.g. npsSubmitted")
    add_event_options(parser)
    parser.set_defaults(handler=_run)


def add_event_options(parser: argparse.ArgumentParser, *, payload: bool = False) -> None:
    """
    Add ``--set`` and ``--fresh``; with *payload*, also ``--event`` and ``--payload``.
    """
    if payload:
        parser.add_argument("--event", required=True, metavar="EVENT", help="the event type")
        parser.add_argument(
            "--payload",
            metavar="FILE",
            help="the event's JSON body ('-' reads stdin), e.g. from `pendo-webhooks "
            "sample`; it must be of type EVENT (default: the sample of EVENT)",
        )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=_SET_HELP,
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="use a new random uniqueId and the current time (receivers de-duplicate on "
        "uniqueId, so the fixed sample is delivered once)",
    )


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..events import to_wire  # noqa: PLC0415 - loaded when the command runs

    event = sample(args.event, args.sets, fresh=args.fresh)
    console.write_bytes(to_wire(event))
    return EXIT_OK


def event_from_args(args: argparse.Namespace, console: Console) -> Event:
    """
    The event that ``--event``, ``--payload``, ``--set`` and ``--fresh`` describe.

    Raises:
        UnknownEventType: If ``--event`` names no event type.
        ValidationError: If the payload cannot be read, or is of another type.
        InvalidEventPayload: If the payload is not a valid Pendo event.
    """
    if args.payload is None:
        return sample(args.event, args.sets, fresh=args.fresh)
    from ..events import EventCategory, parse_event  # noqa: PLC0415

    try:
        wanted = EventCategory(args.event)
    except ValueError:
        raise UnknownEventType(args.event) from None
    event = parse_event(read_bytes(args.payload, "--payload", console))
    if event.category is not wanted:
        msg = f"is a {event.category} event, not {wanted}"
        raise ValidationError("--payload", msg)
    return with_overrides(event, args.sets, fresh=args.fresh)


def sample(name: str, sets: list[str], *, fresh: bool = False) -> Event:
    """
    Build the sample event of type *name*, with *sets* (``"key=value"`` strings) applied.

    Raises:
        UnknownEventType: If *name* names no event type.
        ValidationError: If a ``--set`` is not ``key=value`` or names no field.
        InvalidEventPayload: If a value is not allowed (the message names the wire path).

    >>> sample("npsSubmitted", ["nps.rating=3", "visitorId=ann"]).nps.rating
    3
    """
    from ..events import EventCategory  # noqa: PLC0415 - loaded when the command runs
    from ..testing import sample_event  # noqa: PLC0415

    try:
        category = EventCategory(name)
    except ValueError:
        raise UnknownEventType(name) from None
    return with_overrides(sample_event(category), sets, fresh=fresh)


def with_overrides(event: Event, sets: list[str], *, fresh: bool = False) -> Event:
    """
    Return *event* with *sets* applied, and a new ``uniqueId`` and the current time if *fresh*.

    The overrides are applied to the wire form and read back with
    :func:`~pendo_webhooks.events.parse_event`, so each is checked like a received payload
    and a problem is reported under its wire path.

    Raises:
        ValidationError: If a ``--set`` is not ``key=value`` or names no field.
        InvalidEventPayload: If a value is not allowed.
    """
    import json  # noqa: PLC0415 - loaded when the command runs
    from datetime import datetime, timezone  # noqa: PLC0415

    import attrs  # noqa: PLC0415

    from ..events import new_unique_id, parse_event, to_wire  # noqa: PLC0415

    if fresh:
        now = datetime.now(timezone.utc)
        event = attrs.evolve(event, unique_id=new_unique_id(), timestamp=now)
    if not sets:
        return event
    # Plain, mutable dicts in wire order (to_wire_dict shares the event's read-only values).
    wire: dict[str, Any] = json.loads(to_wire(event))
    for item in sets:
        key, equals, raw = item.partition("=")
        if not equals or not key:
            raise ValidationError("--set", f"expected KEY=VALUE, got {item[:60]!r}")
        _apply(wire, key, parse_json_value(raw))
    return parse_event(wire)


def _find_key(container: dict[str, Any], segment: str) -> str | None:
    from ..events._wire import camel  # noqa: PLC0415 - the events' own name mapping

    for candidate in (segment, camel(segment)):
        if candidate in container:
            return candidate
    return None


def _apply(wire: dict[str, Any], key: str, value: Any) -> None:
    """
    Set the field at dotted *key* of the wire dict *wire* to *value*.
    """
    first, *rest = key.split(".")
    container: Any = wire
    name: Any = _find_key(wire, first)
    if name == "event":
        raise ValidationError(key, "the event type is the EVENT argument")
    if name is None:
        name = _find_key(wire["properties"], first)
        container = wire["properties"]
    if name is None:
        raise ValidationError(key, f"{wire['event']} has no field {first!r}")
    free = False
    for segment in rest:
        # The track event's own properties are free-form: new keys may be added there.
        free = free or (container is wire["properties"] and name == "eventProperties")
        if free and isinstance(container, dict):
            container.setdefault(name, {})
        current = container[name]
        if isinstance(current, list):
            if not (segment.isdigit() and int(segment) < len(current)):
                msg = f"{segment!r} is not an index of this list of {len(current)}"
                raise ValidationError(key, msg)
            container, name = current, int(segment)
        elif isinstance(current, dict):
            found = _find_key(current, segment)
            if found is None and not free:
                raise ValidationError(key, f"there is no field {segment!r} here")
            container, name = current, segment if found is None else found
        else:
            raise ValidationError(key, f"{segment!r}: the value before it is not an object")
    container[name] = value
