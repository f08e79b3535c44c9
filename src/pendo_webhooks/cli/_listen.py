"""
``pendo-webhooks listen``: a local receiver that prints each request and checks its signature.

Strictly private.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..exceptions import ValidationError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    add_command,
    header_lines,
    iso,
    read_secret_options,
    whole_number,
)
from ._verify import add_verify_options


if TYPE_CHECKING:
    from ..testing import ReceivedRequest, Reply


__all__ = ["register"]

# The receiver writes its answer right after the callback that counts a request returns;
# with --exit-after, give that answer this long to go out before the server closes.
_ANSWER_GRACE = 0.2


_status = whole_number(200, 599)


def _statuses(text: str) -> list[int]:
    return [_status(part.strip()) for part in text.split(",")]


def register(subparsers: Any) -> None:
    """
    Add the ``listen`` command.
    """
    parser = add_command(
        subparsers,
        "listen",
        help="run a local receiver that prints each request and checks its signature",
        description=(
            "Run a webhook receiver on this machine for trying things out: it prints each "
            "request and whether its signature verifies, and answers with the statuses "
            "you give (--status 503,503 rehearses two retries), then --default-status. "
            "With --secret (or --write-key), a request that fails verification is answered "
            "401 (--invalid-status to choose another code, --accept-unverified to answer it "
            "like any other). Runs until Ctrl-C or SIGTERM (or --exit-after N requests); "
            "exits 0 if no request failed verification, 1 otherwise."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=whole_number(0, 65535),
        default=8000,
        help="port to listen on, 0 for any (default: 8000)",
    )
    add_verify_options(parser, required=False)
    parser.add_argument(
        "--write-key",
        metavar="KEY",
        help="act as Segment's batch endpoint: check HTTP Basic auth against this write key "
        "('-' reads it from stdin) instead of signatures",
    )
    parser.add_argument(
        "--status",
        dest="statuses",
        type=_statuses,
        action="append",
        default=[],
        metavar="CODE[,CODE...]",
        help="answer the first requests with these statuses, in order (repeatable)",
    )
    parser.add_argument(
        "--default-status",
        type=_status,
        default=200,
        metavar="CODE",
        help="the answer once the --status list is used up (default: 200)",
    )
    parser.add_argument(
        "--invalid-status",
        type=_status,
        metavar="CODE",
        help="answer this to a request that fails verification (default: 401)",
    )
    parser.add_argument(
        "--accept-unverified",
        action="store_true",
        help="answer requests that fail verification like any other, from --status and "
        "--default-status (they are still printed as NOT verified)",
    )
    parser.add_argument(
        "--retry-after",
        metavar="SECONDS",
        help="send this Retry-After header with every 429 and 503 answer",
    )
    parser.add_argument(
        "--save",
        metavar="DIR",
        help="save each request as DIR/NNNN.body and DIR/NNNN.headers (for `verify "
        "--body ... --headers-file ...`)",
    )
    parser.add_argument(
        "--exit-after", type=whole_number(1), metavar="N", help="stop after N requests"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per request, one per line"
    )
    parser.set_defaults(handler=_run)


def _reply(status: int, retry_after: str | None) -> Reply:
    from ..testing import Reply  # noqa: PLC0415 - loaded when the command runs

    if retry_after is not None and status in (429, 503):
        return Reply(status=status, headers={"Retry-After": retry_after})
    return Reply(status=status)


class _Printer:
    """
    Prints (and saves) each request; counts them, and those that failed verification.
    """

    def __init__(
        self, console: Console, *, as_json: bool, save: Path | None, checks: bool = False
    ) -> None:
        self._console = console
        self._checks = checks
        self._json = as_json
        self._save = save
        self._lock = threading.Lock()
        self.count = 0
        self.invalid = 0
        self.done = threading.Event()
        self.limit: int | None = None

    def __call__(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.count += 1
            number = self.count
            self.invalid += request.verified is False
        if self._save is not None:
            stem = self._save / f"{number:04d}"
            stem.with_suffix(".body").write_bytes(request.body)
            stem.with_suffix(".headers").write_text(header_lines(request.headers), "utf-8")
        if self._json:
            self._console.out(json.dumps(_as_dict(request), ensure_ascii=False))
        else:
            self._console.out(_as_line(request, checks=self._checks))
        if self.limit is not None and number >= self.limit:
            self.done.set()


def _as_dict(request: ReceivedRequest) -> dict[str, Any]:
    event = request.event
    return {
        "received_at": iso(request.received_at),
        "method": request.method,
        "path": request.path,
        "event": None if event is None else event.category.value,
        "event_id": None if event is None else event.unique_id,
        "webhook_id": request.header("webhook-id"),
        "bytes": len(request.body),
        "status": request.status,
        "verified": request.verified,
        "error": request.error,
    }


def _as_line(request: ReceivedRequest, *, checks: bool = False) -> str:
    event = request.event
    what = f"{len(request.body)} bytes"
    if event is not None:
        what = f"{event.category} {event.unique_id} ({what})"
    problems = request.error or ""
    # With --secret or --write-key, only a body that could not be read goes unchecked.
    checked = "not checked (unreadable body)" if checks else "not verified (no --secret)"
    if request.verified is True:
        checked = "signature verified"
    elif request.verified is False:
        # The signature problem comes first; what follows is about the body.
        checked, _, problems = problems.partition("; ")
        checked = f"NOT verified: {checked}"
    line = f"{request.received_at:%H:%M:%S} {request.method} {request.path} {what} -> "
    line += f"{request.status}; {checked}"
    return line + (f"; {problems}" if problems else "")


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..testing import LocalReceiver  # noqa: PLC0415 - loaded when the command runs

    if args.retry_after is not None and not args.retry_after.strip():
        raise ValidationError("--retry-after", "must not be empty")
    secrets = read_secret_options(args.secrets, args.secret_files, console)
    write_key = None
    if args.write_key is not None:
        write_key = read_secret_options([args.write_key], None, console, field="--write-key")[0]
    save = None
    if args.save is not None:
        save = Path(args.save)
        try:
            save.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create {save}: {exc.strerror or exc}"
            raise ValidationError("--save", msg) from None
    statuses = [s for group in args.statuses for s in group]
    printer = _Printer(
        console, as_json=args.json, save=save, checks=bool(secrets) or write_key is not None
    )
    printer.limit = args.exit_after
    # Handlers first: a SIGTERM right after the banner must already stop us cleanly.
    with (
        _stop_on_signals() as stop,
        LocalReceiver(
            secrets=secrets,
            scheme=args.scheme,
            signature_header=args.signature_header,
            tolerance=args.tolerance,
            write_key=write_key,
            statuses=[_reply(s, args.retry_after) for s in statuses],
            default_status=_reply(args.default_status, args.retry_after),
            invalid_status=args.invalid_status,
            accept_unverified=args.accept_unverified,
            on_request=printer,
            host=args.host,
            port=args.port,
        ) as receiver,
    ):
        answers = f"{args.default_status}"
        if statuses:
            answers = f"{', '.join(str(s) for s in statuses)}, then {answers}"
        checking = "nothing (no --secret)"
        if secrets:
            checking = f"{args.scheme} signatures"
        elif write_key is not None:
            checking = "the Segment write key"
        if (secrets or write_key is not None) and args.accept_unverified:
            checking += " (accepting unverified requests)"
        banner = f"listening on {receiver.url}; checking {checking}; answering {answers}"
        (console.err if args.json else console.out)(banner + "; Ctrl-C to stop")
        while not (stop.is_set() or printer.done.is_set()):
            printer.done.wait(0.1)
        if printer.done.is_set():
            time.sleep(_ANSWER_GRACE)
    console.err(f"stopped after {printer.count} requests; {printer.invalid} failed verification")
    return EXIT_FAILED if printer.invalid else EXIT_OK


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """
    Yield an event that SIGINT or SIGTERM sets (handlers only in the main thread).
    """
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
