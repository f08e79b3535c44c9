"""
What every command shares: exit codes, the console, error handling, and reading user input.

Strictly private. Nothing here imports more than the standard library at import time, so
``pendo-webhooks --help`` stays fast; commands import what they need when they run.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import re
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast
from urllib.parse import urlsplit

from ..exceptions import (
    ConflictError,
    DestinationBlocked,
    InvalidDestination,
    PendoWebhooksError,
    PermissionDenied,
    SignatureError,
    StorageError,
    TransportError,
    UnknownEventType,
    ValidationError,
)
from ..model._health import WebhookHealth


if TYPE_CHECKING:
    from ..events._category import EventCategory
    from ..guard import DestinationPolicy


__all__ = [
    "ENV_ACTOR",
    "ENV_DB",
    "EXIT_BAD_INPUT",
    "EXIT_CODES_HELP",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PERMISSION",
    "EXIT_USAGE",
    "LIBRARY_WORDS",
    "MOMENT_FORMS",
    "PROG",
    "Console",
    "UsageError",
    "add_command",
    "add_destination_options",
    "cli_words",
    "close_event",
    "describe",
    "destination_policy",
    "event_category",
    "exit_code_for",
    "flag_names",
    "format_duration",
    "header_lines",
    "health_dict",
    "health_of",
    "iso",
    "one_line",
    "parse_duration",
    "parse_header",
    "parse_json_value",
    "parse_moment",
    "read_bytes",
    "read_secret_options",
    "safe_url",
    "seconds",
    "usage_error",
    "whole_number",
]

#: The program name in usage lines and error messages.
PROG = "pendo-webhooks"

#: The environment variable read when ``--db`` is not given.
ENV_DB = "PENDO_WEBHOOKS_DB"
#: The environment variable read when ``--actor`` is not given.
ENV_ACTOR = "PENDO_WEBHOOKS_ACTOR"

#: The operation succeeded (delivered, signature valid, change made).
EXIT_OK = 0
#: The operation ran and failed: not delivered, signature invalid, a conflicting edit.
EXIT_FAILED = 1
#: The command line is wrong (argparse's own exit code).
EXIT_USAGE = 2
#: Bad input: unknown event, unreadable file, invalid payload, blocked URL, not our database.
EXIT_BAD_INPUT = 3
#: The actor may not do this.
EXIT_PERMISSION = 4
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the operation ran and failed (not delivered, signature invalid, ...)
  2    usage error
  3    bad input (unknown event, unreadable file, invalid payload, blocked URL,
       a database file that is not a pendo-webhooks database)
  4    permission denied
  130  interrupted (Ctrl-C); for listen, worker and portal, Ctrl-C and SIGTERM
       are the normal way to stop them, and they exit as above"""


class UsageError(Exception):
    """
    A command line that cannot work, reported as one error line with exit code 2.

    For what argparse cannot check itself (an option an environment variable may stand
    in for); :func:`usage_error` is for the rest, with the usage text.
    """


class Console:
    """
    Where a command writes: results to stdout, diagnostics to stderr; reads stdin as bytes.

    The streams are looked up on every call, so pytest's ``capsys`` sees what is written.
    Writes are serialized: the receiver and the worker write from several threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def out(self, text: str = "") -> None:
        """
        Write one line to stdout and flush it (a pipe sees each line as it happens).
        """
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def err(self, text: str) -> None:
        """
        Write one line to stderr.
        """
        with self._lock:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def error(self, message: str) -> None:
        """
        Write ``pendo-webhooks: error: <message>`` to stderr, on one line.
        """
        self.err(f"{PROG}: error: {one_line(message)}")

    def json(self, value: Any) -> None:
        """
        Write *value* as indented JSON to stdout.
        """
        self.out(json.dumps(value, indent=2, ensure_ascii=False))

    def write_bytes(self, data: bytes) -> None:
        """
        Write *data* to stdout exactly; add a newline only when stdout is a terminal.
        """
        with self._lock:
            stream = sys.stdout
            newline = b"\n" if stream.isatty() else b""
            binary = getattr(stream, "buffer", None)
            if binary is None:  # a text-only stream (doctest's)
                stream.write((data + newline).decode("utf-8", "replace"))
                return
            stream.flush()
            binary.write(data + newline)
            binary.flush()

    @staticmethod
    def read_stdin() -> bytes:
        """
        Read all of stdin as bytes.
        """
        return sys.stdin.buffer.read()


def one_line(text: str) -> str:
    """
    Join the lines of *text* so an error message stays on one line.

    >>> one_line("a\\nb")
    'a b'
    """
    return " ".join(text.split("\n"))


#: What the library's messages say in Python's words (they are written for callers of the
#: API), and what the console script says instead: each phrase names a keyword argument
#: that one of the CLI's options sets.
LIBRARY_WORDS: tuple[tuple[str, str], ...] = (
    ("(or set allow_http=True)", "(or --allow-http, or --allow-private to try things locally)"),
    ("give a secret, or unsigned=True", "give --secret, or --unsigned"),
    (
        "pass unsigned=True to do that on purpose, or rotate_secret() to replace the secret",
        "give --unsigned to do that on purpose, or use 'webhooks rotate-secret' to replace it",
    ),
    ("lease_duration:", "--lease:"),
    ("the transport's deadline of", "the --timeout of"),
)


def cli_words(message: str) -> str:
    """
    *message* with the library's Python words (``allow_http=True``) put as the CLI's options.

    >>> cli_words("use https (or set allow_http=True)")
    'use https (or --allow-http, or --allow-private to try things locally)'
    """
    for python, shell in LIBRARY_WORDS:
        message = message.replace(python, shell)
    return message


def describe(exc: PendoWebhooksError) -> str:
    """
    The error line's message for *exc*, in the CLI's words; for an unknown event type, the
    closest known one, or the list of them.

    >>> from pendo_webhooks.exceptions import UnknownEventType
    >>> describe(UnknownEventType("npsSubmited"))
    "unknown event type: 'npsSubmited'; did you mean 'npsSubmitted'?"
    >>> describe(UnknownEventType("pageViewed"))[:68]
    "unknown event type: 'pageViewed' (one of: guideDisplayed, trackEvent"
    """
    message = cli_words(str(exc))
    if isinstance(exc, InvalidDestination) and "--allow-" not in message:
        return f"{message} (to try things locally: --allow-private, or --allow-http)"
    if isinstance(exc, UnknownEventType):
        from ..events._category import EventCategory  # noqa: PLC0415 - only on this path

        guess = close_event(str(exc.event))
        if guess is not None:
            return f"{message}; did you mean {guess!r}?"
        return f"{message} (one of: {', '.join(c.value for c in EventCategory)})"
    return message


def close_event(name: str) -> str | None:
    """
    The event type *name* was probably meant to be, or ``None`` if none is close.

    Case is ignored, and the enum's member names count too (``NPS_SUBMITTED``).

    >>> close_event("npsSubmited"), close_event("VISITORCREATED"), close_event("NPS_SUBMITTED")
    ('npsSubmitted', 'visitorCreated', 'npsSubmitted')
    >>> close_event("pageViewed") is None
    True
    """
    from ..events._category import EventCategory  # noqa: PLC0415 - only on this path

    spellings: dict[str, str] = {}
    for category in EventCategory:
        spellings[category.value.lower()] = category.value
        spellings[category.name.lower()] = category.value
        spellings[category.name.replace("_", "").lower()] = category.value
    found = difflib.get_close_matches(name.strip().lower(), spellings, n=1)
    return spellings[found[0]] if found else None


def event_category(name: str) -> EventCategory:
    """
    The event type named *name* (its wire name, as ``sample`` shows it).

    Raises:
        UnknownEventType: If *name* names none (the error line suggests the closest).

    >>> event_category("pollSubmitted").name
    'POLL_SUBMITTED'
    """
    from ..events._category import EventCategory  # noqa: PLC0415 - only on this path

    try:
        return EventCategory(name)
    except ValueError:
        raise UnknownEventType(name) from None


@contextlib.contextmanager
def flag_names(flags: Mapping[str, str]) -> Iterator[None]:
    """
    Within the block, a library ValidationError names the CLI's option instead of the
    Python argument it checked (*flags* maps one to the other).

    >>> with flag_names({"signature_header": "--signature-header"}):
    ...     raise ValidationError("signature_header", "must be a header name")
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: --signature-header: must be a header name
    """
    try:
        yield
    except ValidationError as exc:
        if exc.field not in flags:
            raise
        raise type(exc)(flags[exc.field], exc.reason) from None


def exit_code_for(exc: PendoWebhooksError) -> int:
    """
    The exit code for a library error that reached the top of a command.

    >>> from pendo_webhooks.exceptions import UnknownEventType, PermissionDenied
    >>> exit_code_for(UnknownEventType("pageViewed")), exit_code_for(PermissionDenied("no"))
    (3, 4)
    """
    if isinstance(exc, PermissionDenied):
        return EXIT_PERMISSION
    if isinstance(exc, DestinationBlocked):
        return EXIT_BAD_INPUT
    if isinstance(exc, SignatureError | ConflictError | StorageError | TransportError):
        return EXIT_FAILED
    # ValidationError, ConfigurationError, UnknownEventType, InvalidEventPayload,
    # PayloadError and NotFound: what the user typed or pointed at is wrong.
    return EXIT_BAD_INPUT


def add_command(
    subparsers: Any,
    name: str,
    *,
    help: str,  # noqa: A002 - argparse's name for it
    description: str | None = None,
    parents: Iterable[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """
    Add a command whose ``--help`` ends with the exit codes; ``--debug`` works after it too.

    The parser is the command's ``args.parser``, for :func:`usage_error`.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        # The raw formatter keeps the exit codes' layout; the description is wrapped here.
        description=textwrap.fill(description or help, 79),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    parser.set_defaults(parser=parser)
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an unexpected error",
    )
    return parser


def whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    """
    An argparse ``type``: a whole number from *least* to *most* (no upper bound if ``None``).

    >>> whole_number(0, 20)("5")
    5
    >>> whole_number(1)("0")
    Traceback (most recent call last):
      ...
    argparse.ArgumentTypeError: must be at least 1, got 0
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        _check_range(value, least, most)
        return value

    return parse


def seconds(least: float, most: float) -> Callable[[str], float]:
    """
    An argparse ``type``: a number of seconds from *least* to *most*.

    >>> seconds(0.01, 30)("2.5")
    2.5
    >>> seconds(0.01, 30)("nan")
    Traceback (most recent call last):
      ...
    argparse.ArgumentTypeError: must be from 0.01 to 30, got nan
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        _check_range(value, least, most)
        return value

    return parse


def _check_range(value: float, least: float, most: float | None) -> None:
    if most is None:
        if not value >= least:
            raise argparse.ArgumentTypeError(f"must be at least {least:g}, got {value:g}")
    elif not least <= value <= most:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be from {least:g} to {most:g}, got {value:g}")


def add_destination_options(parser: argparse.ArgumentParser, *, stored: bool = False) -> None:
    """
    Add ``--allow-private`` and ``--allow-http``, which loosen the address guard.

    With *stored*, for the commands on a store: the choice is recorded in the file (see
    ``_db.destination_policy``), and ``--no-allow-private``/``--no-allow-http`` undo it.
    """
    if stored:
        group = parser.add_argument_group("address guard (recorded in the store)")
        group.add_argument(
            "--allow-private",
            action=argparse.BooleanOptionalAction,
            help="for local testing: allow loopback addresses, plain http and any port; "
            "recorded in the store, so every later command on it (and its worker) allows "
            "them too, until --no-allow-private",
        )
        group.add_argument(
            "--allow-http",
            action=argparse.BooleanOptionalAction,
            help="allow plain http URLs to public addresses; recorded in the store like "
            "--allow-private, until --no-allow-http",
        )
        return
    parser.add_argument(
        "--allow-private",
        action="store_true",
        help="for local testing: allow loopback addresses, plain http and any port "
        "(DestinationPolicy.local_testing())",
    )
    parser.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http URLs (public addresses only, unless --allow-private)",
    )


def destination_policy(args: argparse.Namespace) -> DestinationPolicy:
    """
    The address guard's policy that ``--allow-private`` and ``--allow-http`` ask for.
    """
    from ..guard import DestinationPolicy  # noqa: PLC0415 - loaded when a command runs

    if args.allow_private:
        return DestinationPolicy.local_testing()
    return DestinationPolicy(allow_http=args.allow_http)


def usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    """
    Stop with argparse's usage message and exit code 2, for a command line that cannot work.
    """
    parser: argparse.ArgumentParser = args.parser
    parser.error(message)


def read_bytes(path: str, field: str, console: Console) -> bytes:
    """
    Read a whole file as bytes; ``-`` reads stdin.

    Raises:
        ValidationError: Naming *field*, if the file cannot be read.
    """
    if path == "-":
        return console.read_stdin()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(field, f"cannot read {path}: {exc.strerror or exc}") from None


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def _decode(data: bytes, field: str) -> str:
    try:
        return _strip_newline(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValidationError(field, "must be UTF-8 text") from None


def read_secret_options(
    values: Iterable[str] | None,
    files: Iterable[str] | None,
    console: Console,
    *,
    field: str = "--secret",
) -> list[str]:
    """
    Collect secrets given as text, as ``-`` (one secret read from stdin) or in files.

    One trailing newline of stdin or a file is not part of the secret (``echo`` adds one).

    Raises:
        ValidationError: If a file cannot be read or is not UTF-8, ``-`` is given twice,
            or a secret is empty.
    """
    secrets: list[str] = []
    from_stdin = 0
    for value in values or ():
        if value == "-":
            from_stdin += 1
            if from_stdin > 1:
                raise ValidationError(field, "'-' (read from stdin) can be given once")
            secrets.append(_decode(console.read_stdin(), field))
        else:
            secrets.append(value)
    for path in files or ():
        secrets.append(_decode(read_bytes(path, f"{field}-file", console), f"{field}-file"))
    for secret in secrets:
        if not secret:
            raise ValidationError(field, "must not be empty")
    return secrets


def parse_header(text: str, field: str) -> tuple[str, str]:
    """
    Split ``"Name: value"`` into its name and value (surrounding spaces dropped).

    Raises:
        ValidationError: Naming *field*, if there is no colon or no name.

    >>> parse_header("Webhook-Id:  msg_1 ", "--header")
    ('Webhook-Id', 'msg_1')
    """
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ValidationError(field, f"expected 'Name: value', got {text[:60]!r}")
    return name.strip(), value.strip()


def parse_json_value(text: str) -> Any:
    """
    Read *text* as JSON when it parses (NaN and infinities excluded), else keep the string.

    >>> [parse_json_value(text) for text in ("9", '["a"]', "Keep going", "NaN")]
    [9, ['a'], 'Keep going', 'NaN']
    """

    def refuse(_constant: str) -> Any:
        raise ValueError(_constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        return text


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, field: str) -> timedelta:
    """
    Read a duration: a number of seconds, or a count with a unit ``s``, ``m``, ``h`` or ``d``.

    Raises:
        ValidationError: Naming *field*, if *text* is not one.

    >>> parse_duration("36h", "--grace"), parse_duration("0", "--grace")
    (datetime.timedelta(days=1, seconds=43200), datetime.timedelta(0))
    """
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:], 0)
    number = value[:-1] if unit else value
    if not number.isdigit():
        msg = f"expected a duration like 90, 30m, 12h or 7d; got {text[:40]!r}"
        raise ValidationError(field, msg)
    try:
        return timedelta(seconds=int(number) * (unit or 1))
    except OverflowError:
        raise ValidationError(field, f"{text[:40]!r} is too long") from None


#: What parse_moment reads as an age: a count, a unit (s, m, h, d or w, or its word), and
#: an optional "ago": 7d, 7d ago, 12 h, 30 minutes ago, 2w.
_AGE = re.compile(
    r"(?P<count>\d+)\s*(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?"
    r"|w|weeks?)(?:\s+ago)?",
    re.IGNORECASE,
)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

#: What the error for a moment that is none of them says is accepted.
MOMENT_FORMS = (
    "an ISO-8601 date or time (2026-01-02, 2026-01-02T09:30:00Z), "
    "or an age like 7d, 12h, 30m or '7d ago'"
)


def parse_moment(text: str, field: str, *, now: datetime) -> datetime:
    """
    Read a moment: an ISO-8601 date or time (UTC unless it says otherwise; a final ``Z``
    is UTC), or an age before *now*: a count and a unit, ``s``, ``m``, ``h``, ``d`` or
    ``w`` (or the word: ``minutes``, ``days``...), with or without a space and a final
    ``ago``.

    Raises:
        ValidationError: Naming *field*, if *text* is neither.

    >>> now = datetime(2026, 1, 31, tzinfo=timezone.utc)
    >>> [parse_moment(t, "--since", now=now).day for t in ("30d", "7d ago", "2 weeks ago")]
    [1, 24, 17]
    >>> parse_moment("2026-01-02", "--since", now=now).isoformat()
    '2026-01-02T00:00:00+00:00'
    >>> parse_moment("2026-01-02T09:30:00Z", "--since", now=now).isoformat()
    '2026-01-02T09:30:00+00:00'
    """
    value = text.strip()
    age = _AGE.fullmatch(value)
    if age is not None:
        seconds = int(age["count"]) * _AGE_UNITS[age["unit"][0].lower()]
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:
            raise ValidationError(field, f"{text[:40]!r} is too long ago") from None
    iso_text = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(iso_text)
    except ValueError:
        msg = f"expected {MOMENT_FORMS}; got {text[:60]!r}"
        raise ValidationError(field, msg) from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def health_of(storage: object, webhook_id: str) -> WebhookHealth | None:
    """
    The webhook's health as its store keeps it (blank if never attempted); ``None`` if the
    store keeps none.
    """
    from ..storage.protocols import HealthStore, capabilities  # noqa: PLC0415 - on use

    if not capabilities(storage).webhook_health:
        return None
    found = cast(HealthStore, storage).get_webhook_health(webhook_id)
    return WebhookHealth(webhook_id=webhook_id) if found is None else found


def health_dict(health: WebhookHealth) -> dict[str, Any]:
    """
    A webhook's health as JSON values (``--json``).
    """
    return {
        "state": health.state.value,
        "summary": health.describe(),
        "failing_since": iso(health.failing_since),
        "last_success_at": iso(health.last_success_at),
        "last_failure_at": iso(health.last_failure_at),
        "failures": health.failures,
        "streak": health.streak,
        "outage_since": iso(health.outage_since),
        "next_probe_at": iso(health.next_probe_at),
        "probes": health.probes,
    }


def iso(moment: datetime | None) -> str | None:
    """
    Show *moment* as ISO-8601 UTC to the second, or ``None``.

    >>> iso(datetime(2026, 1, 1, 12, 0, 0, 999, tzinfo=timezone.utc))
    '2026-01-01T12:00:00Z'
    """
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: float) -> str:
    """
    Show a latency or a wait the way people read them.

    >>> format_duration(0.0123), format_duration(5.06), format_duration(1830)
    ('12 ms', '5.1 s', '30.5 min')
    """
    if round(seconds * 1000) < 1000:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 600:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def safe_url(url: str) -> str:
    """
    Show a URL without user info and with its query string hidden (it may carry a token).

    >>> safe_url("https://user:pw@hooks.example.com/in?token=abc")
    'https://hooks.example.com/in?…'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def header_lines(headers: Mapping[str, str]) -> str:
    """
    Write headers as ``Name: value`` lines, as ``verify --headers-file`` reads them.

    >>> header_lines({"webhook-id": "m1", "Content-Type": "application/json"})
    'webhook-id: m1\\nContent-Type: application/json\\n'
    """
    return "".join(f"{name}: {value}\n" for name, value in headers.items())
