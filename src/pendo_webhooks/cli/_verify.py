"""
``pendo-webhooks verify``: check the signature of a received request (body on stdin).

Strictly private.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import SignatureError, ValidationError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    add_command,
    parse_header,
    read_bytes,
    read_secret_options,
    whole_number,
)


__all__ = ["add_verify_options", "register"]


def register(subparsers: Any) -> None:
    """
    Add the ``verify`` command.
    """
    parser = add_command(
        subparsers,
        "verify",
        help="check a received request's signature (body on stdin)",
        description=(
            "Check the signature of a received webhook: the body on stdin (or --body), "
            "the headers with --header or --headers-file. Exits 0 if it verifies, 1 with "
            "the reason if not. The Standard Webhooks scheme also checks that "
            "webhook-timestamp is within --tolerance seconds of now."
        ),
    )
    add_verify_options(parser, required=True)
    parser.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable)",
    )
    parser.add_argument(
        "--headers-file",
        metavar="FILE",
        help="read 'Name: value' header lines from FILE (as `listen --save` writes them)",
    )
    parser.add_argument(
        "--body", metavar="FILE", default="-", help="read the body from FILE (default: stdin)"
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"valid": ..., "reason": ...} on stdout'
    )
    parser.set_defaults(handler=_run)


def add_verify_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """
    Add the secret and scheme options that ``verify`` and ``listen`` share.
    """
    parser.add_argument(
        "--secret",
        dest="secrets",
        action="append",
        metavar="TEXT",
        help="a secret that may have signed it ('-' reads it from stdin); repeat during a "
        "rotation" + ("; this or --secret-file is required" if required else ""),
    )
    parser.add_argument(
        "--secret-file",
        dest="secret_files",
        action="append",
        metavar="FILE",
        help="read a secret from FILE (repeatable)",
    )
    parser.add_argument(
        "--scheme",
        choices=("both", "pendo", "standard"),
        default="both",
        help="which signature must verify (default: both, as pendo-webhooks sends)",
    )
    parser.add_argument(
        "--signature-header",
        metavar="NAME",
        default="X-Pendo-Signature",
        help="the name of Pendo's signature header (default: X-Pendo-Signature)",
    )
    parser.add_argument(
        "--tolerance",
        type=whole_number(1),
        default=300,
        metavar="SECONDS",
        help="how far webhook-timestamp may be from now (default: 300)",
    )


def _read_headers(args: argparse.Namespace, console: Console) -> list[tuple[str, str]]:
    headers = [parse_header(h, "--header") for h in args.headers]
    if args.headers_file is not None:
        data = read_bytes(args.headers_file, "--headers-file", console)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("--headers-file", "must be UTF-8 text") from None
        headers += [
            parse_header(line, "--headers-file") for line in text.splitlines() if line.strip()
        ]
    return headers


def _header_map(pairs: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name.lower() in seen:
            # Two values for one name are ambiguous: never pick one of them silently.
            raise SignatureError(f"{name.lower()}: given more than once")
        seen.add(name.lower())
        headers[name] = value
    return headers


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..signing import verify  # noqa: PLC0415 - loaded when the command runs

    if not args.secrets and not args.secret_files:
        raise ValidationError("--secret", "give the secret to verify with (or --secret-file)")
    if args.body == "-" and "-" in (args.secrets or ()):
        raise ValidationError("--secret", "'-' reads stdin, so give the body with --body FILE")
    secrets = read_secret_options(args.secrets, args.secret_files, console)
    pairs = _read_headers(args, console)
    body = read_bytes(args.body, "--body", console)
    try:
        verify(
            body,
            _header_map(pairs),
            secrets,
            scheme=args.scheme,
            header=args.signature_header,
            tolerance=args.tolerance,
        )
    except SignatureError as exc:
        if args.json:
            console.json({"valid": False, "scheme": args.scheme, "reason": str(exc)})
        console.error(f"signature invalid: {exc}")
        return EXIT_FAILED
    if args.json:
        console.json({"valid": True, "scheme": args.scheme, "reason": None})
    else:
        console.out(f"signature valid ({args.scheme})")
    return EXIT_OK
