"""
The ``pendo-webhooks`` console script: sample payloads, ad-hoc sends, signature checks, a
local receiver, and the management of a SQLite store (webhooks, deliveries, exclusions, a
worker, the settings page on loopback).

Every command has ``--help``. Exit codes scripts can rely on: 0 success; 1 the operation
ran and failed (not delivered, signature invalid); 2 usage error; 3 bad input (unknown
event, unreadable file, invalid payload, blocked URL, a file that is not a pendo-webhooks
database); 4 permission denied; 130 interrupted. Errors are one line on stderr,
``pendo-webhooks: error: <message>``; ``--debug`` adds the traceback of an unexpected one.

The store commands read ``PENDO_WEBHOOKS_DB`` and ``PENDO_WEBHOOKS_ACTOR`` when ``--db``
and ``--actor`` are not given.

>>> main(["sample", "accountCreated", "--set", "visitor_id=Ann"])  # doctest: +ELLIPSIS
{"app":{"id":-323232,...,"event":"accountCreated",...,"visitorId":"Ann",...}0
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from .._version import __version__
from ..exceptions import PendoWebhooksError
from . import (
    _deliveries,
    _exclusions,
    _listen,
    _portal,
    _sample,
    _schema,
    _send,
    _verify,
    _webhooks,
    _worker,
)
from ._common import (
    ENV_ACTOR,
    ENV_DB,
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    Console,
    UsageError,
    describe,
    exit_code_for,
)


__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Pendo-style webhooks from the shell: print sample payloads and their schemas, send them with
the real retry policy, verify signatures, run a local receiver, and manage a SQLite store
and serve its settings page."""

_ENVIRONMENT_HELP = f"""\
environment:
  {ENV_DB}     the store's database file, when --db is not given
  {ENV_ACTOR}  who is acting on a store (audited), when --actor is not given
  (an option given on the command line wins over its variable)"""

_COMMANDS = (
    _sample,
    _schema,
    _send,
    _verify,
    _listen,
    _webhooks,
    _deliveries,
    _exclusions,
    _worker,
    _portal,
)


def build_parser() -> argparse.ArgumentParser:
    """
    Build the argument parser of every command.

    >>> build_parser().parse_args(["sample", "npsSubmitted"]).event
    'npsSubmitted'
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=f"{_ENVIRONMENT_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the ``pendo-webhooks`` command line *argv* (``sys.argv[1:]`` by default).

    Returns:
        The exit code; nothing is raised, not even for a usage error.

    >>> main(["sample", "pageViewed"])  # the one-line error went to stderr
    3
    """
    console = Console()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return _status(exc)
    try:
        code: int = args.handler(args, console)
    except SystemExit as exc:  # a usage error found by the command
        return _status(exc)
    except UsageError as exc:  # one the command explains in a line
        console.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.err(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback, unless --debug
        return _failure(exc, console, debug=args.debug)
    return code


def _failure(exc: Exception, console: Console, *, debug: bool) -> int:
    """
    Report an error that ended a command, and return the exit code it calls for.
    """
    if isinstance(exc, PendoWebhooksError):
        console.error(describe(exc))
        return exit_code_for(exc)
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`... | head`); say nothing more to it.
        _silence_stdout()
        return EXIT_FAILED
    if debug:
        traceback.print_exc()
    # The type only: the text of an unexpected error might quote a secret or a URL.
    hint = "" if debug else " (run with --debug for the traceback)"
    console.error(f"unexpected {type(exc).__name__}{hint}")
    return EXIT_FAILED


def _status(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else EXIT_FAILED


def _silence_stdout() -> None:
    import os  # noqa: PLC0415 - only on this rare path

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass
    finally:
        os.close(devnull)
