"""
``pendo-webhooks schema [EVENT | --segment | --openapi | --operations [KIND]]``: the JSON
Schemas and the OpenAPI document of the bodies a receiver gets, generated from the models.

Strictly private.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import EXIT_OK, Console, add_command, read_bytes, usage_error


__all__ = ["register"]


def register(subparsers: Any) -> None:
    """
    Add the ``schema`` command.
    """
    parser = add_command(
        subparsers,
        "schema",
        help="print the JSON Schema of a webhook body, or the OpenAPI document of the webhooks",
        description=(
            "Print the JSON Schema (2020-12) of EVENT's webhook body; without EVENT, the "
            "schema of any body (its `event` picks the type). --segment prints the schema of "
            "a Segment track message, --openapi an OpenAPI 3.1 document with one `webhooks` "
            "entry per event type, --operations the schema of an operations webhook's alert "
            "body (of one KIND, e.g. webhook.disabled, if given). All are generated from the "
            "models, so they match what pendo-webhooks sends."
        ),
    )
    parser.add_argument(
        "event", metavar="EVENT", nargs="?", help="the event type, e.g. npsSubmitted"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--segment", action="store_true", help="the schema of a Segment track message"
    )
    which.add_argument(
        "--openapi", action="store_true", help="the OpenAPI 3.1 document of the webhooks"
    )
    which.add_argument(
        "--operations",
        action="store_true",
        help="the schema of an operations webhook's body (EVENT, if given, is its kind)",
    )
    openapi = parser.add_argument_group("with --openapi")
    openapi.add_argument("--title", help="the document's info.title")
    openapi.add_argument(
        "--version", dest="doc_version", metavar="VERSION", help="the document's info.version"
    )
    openapi.add_argument("--description", help="the document's info.description")
    openapi.add_argument(
        "--info",
        metavar="FILE",
        help="a JSON file ('-' reads stdin) holding the document's info object; --title, "
        "--version and --description change it further",
    )
    openapi.add_argument(
        "--server",
        dest="servers",
        action="append",
        default=[],
        metavar="URL",
        help="add a server URL (repeatable)",
    )
    openapi.add_argument(
        "--signature-header",
        metavar="NAME",
        help="the Pendo signature header's name, if your webhooks use another one",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, console: Console) -> int:
    from .. import schemas  # noqa: PLC0415 - loaded when the command runs

    openapi_only = (
        args.title,
        args.doc_version,
        args.description,
        args.info,
        args.servers,
        args.signature_header,
    )
    if not args.openapi and any(openapi_only):
        usage_error(args, "--title, --version, --description, --info, --server and "
                    "--signature-header go with --openapi")  # fmt: skip
    if args.event is not None and (args.openapi or args.segment):
        usage_error(args, "EVENT cannot go with --openapi or --segment")
    document: dict[str, Any]
    if args.openapi:
        options: dict[str, Any] = {"info": _info(args, console), "servers": args.servers}
        if args.signature_header is not None:
            options["signature_header"] = args.signature_header
        document = schemas.openapi_document(**options)
    elif args.segment:
        document = schemas.segment_schema()
    elif args.operations:
        document = schemas.operations_schema(args.event)
    elif args.event is not None:
        document = schemas.event_schema(args.event)
    else:
        document = schemas.events_schema()
    console.out(json.dumps(document, indent=2, ensure_ascii=False))
    return EXIT_OK


def _info(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from ..exceptions import ValidationError  # noqa: PLC0415

    info: dict[str, Any] = {}
    if args.info is not None:
        raw = read_bytes(args.info, "--info", console)
        try:
            loaded = json.loads(raw)
        except ValueError:
            raise ValidationError("--info", "is not JSON") from None
        if not isinstance(loaded, dict):
            raise ValidationError("--info", "must hold a JSON object")
        info.update(loaded)
    for key, value in (
        ("title", args.title),
        ("version", args.doc_version),
        ("description", args.description),
    ):
        if value is not None:
            info[key] = value
    return info
