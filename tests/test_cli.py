"""
The ``pendo-webhooks`` console script: every command, run as a real subprocess, and the
branches behind them, run in-process through ``main()``.

The subprocess tests use the installed ``pendo-webhooks`` script when it sits next to the
interpreter, else ``python -m pendo_webhooks`` (the same ``main``).
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import io
import json
import os
import select
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendo_webhooks import (
    Dispatcher,
    SQLiteStorage,
    WebhookRegistry,
    __version__,
    cli,
    transports,
)
from pendo_webhooks.cli import _common as common
from pendo_webhooks.cli import main
from pendo_webhooks.cli._sample import sample
from pendo_webhooks.cli._send import retry_policy
from pendo_webhooks.cli._worker import CountingTransport, _progress
from pendo_webhooks.events import new_unique_id, parse_event, to_wire
from pendo_webhooks.exceptions import (
    ConfigurationError,
    ConflictError,
    DestinationBlocked,
    InvalidEventPayload,
    NotFound,
    PermissionDenied,
    SignatureError,
    StorageError,
    TransportError,
    UnknownEventType,
    ValidationError,
)
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.testing import (
    LocalReceiver,
    RecordingTransport,
    Reply,
    sample_event,
    signed_request,
)
from pendo_webhooks.transports import OutgoingRequest


pytestmark = pytest.mark.slow

SECRET = "s3cr3t-with-special-chars!&?<>"
ADMIN = ("--actor", "ann")
#: Pendo's published guideDisplayed sample (WIRE.md section 2).
GUIDE_SHA256 = "7bdd459447ab0e01e83bed0056d94c6f95528a1b1fe1d218b6ffddb1bb9870ff"
ERROR = "pendo-webhooks: error: "
UNSIGNED_TAIL = "its receiver cannot tell its requests from forged ones"


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("pendo-webhooks")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pendo_webhooks"]


CLI = _cli_command()


def run(
    *args: str, stdin: bytes = b"", cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """
    Run the console script; it must never print a traceback.
    """
    proc = subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, cwd=cwd, timeout=timeout, check=False
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess[bytes], code: int, text: str) -> None:
    """
    The command failed with *code* and exactly one error line on stderr containing *text*.
    """
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == code, proc.stderr.decode()
    assert len(lines) == 1, lines
    assert lines[0].startswith(ERROR)
    assert text in lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _no_cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own PENDO_WEBHOOKS_DB/ACTOR must not change what these tests see.
    monkeypatch.delenv(common.ENV_DB, raising=False)
    monkeypatch.delenv(common.ENV_ACTOR, raising=False)


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[LocalReceiver]:
    # These tests look at what was sent, signed with SECRET or not: answer it all from the
    # script (a plain LocalReceiver with secrets answers 401 to what does not verify).
    with LocalReceiver(secrets=[SECRET], accept_unverified=True) as receiver:
        yield receiver


@pytest.fixture(name="invoke")
def _invoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., tuple[int, str, str]]:
    """
    Run ``main()`` in this process (for coverage) from *tmp_path*; returns (code, out, err).
    """
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return invoke


# -- the script itself -------------------------------------------------------------------------


def test_help_lists_commands_and_exit_codes() -> None:
    """
    The real script's --help names every command and documents the exit codes.
    """
    proc = run("--help")

    out = proc.stdout.decode()
    assert proc.returncode == 0
    for command in ("sample", "send", "verify", "listen", "webhooks", "deliveries", "worker"):
        assert command in out
    assert "130  interrupted" in out
    assert "3    bad input" in out


@pytest.mark.parametrize(
    "command",
    [
        ["sample"],
        ["send"],
        ["verify"],
        ["listen"],
        ["worker"],
        ["webhooks"],
        *(["webhooks", a] for a in ("list", "show", "create", "update", "enable")),
        *(["webhooks", a] for a in ("disable", "delete", "rotate-secret", "test")),
        ["deliveries"],
        *(["deliveries", a] for a in ("list", "enqueue", "show", "redeliver", "purge")),
        ["exclusions"],
        *(["exclusions", a] for a in ("list", "add", "remove")),
    ],
    ids=" ".join,
)
def test_every_command_has_help(command: list[str], invoke: Callable[..., Any]) -> None:
    """
    --help works on every command and group; commands end with the exit codes.
    """
    code, out, _ = invoke(*command, "--help")

    assert code == 0
    assert out.startswith("usage: pendo-webhooks " + " ".join(command))
    if command[0] not in ("webhooks", "deliveries", "exclusions") or len(command) > 1:
        assert "4    permission denied" in out


def test_version() -> None:
    """
    --version prints the package version.
    """
    proc = run("--version")

    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"pendo-webhooks {__version__}"


def test_usage_error_exits_2(invoke: Callable[..., Any]) -> None:
    """
    A command line argparse cannot read exits 2, with argparse's usage message.
    """
    code, _, err = invoke("send", "--retries", "many")

    assert code == 2
    assert "usage: pendo-webhooks send" in err
    assert invoke()[0] == 2


def test_python_dash_m_is_the_same_script() -> None:
    """
    ``python -m pendo_webhooks`` runs the console script.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "pendo_webhooks", "sample", "guideDisplayed"],
        capture_output=True,
        check=False,
    )

    assert proc.returncode == 0
    assert hashlib.sha256(proc.stdout).hexdigest() == GUIDE_SHA256


def test_unexpected_error_is_one_line(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    An unexpected exception is one line naming its type (never its text); exit 1.
    """

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("https://hooks.example.com/?token=SECRET")

    monkeypatch.setattr("pendo_webhooks.cli._sample.with_overrides", boom)

    code, _, err = invoke("sample", "npsSubmitted")

    assert code == 1
    assert err == f"{ERROR}unexpected RuntimeError (run with --debug for the traceback)\n"


def test_debug_shows_the_traceback(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """
    With --debug (before or after the command), the unexpected error's traceback is shown.
    """

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("pendo_webhooks.cli._sample.with_overrides", boom)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))

    for argv in (["--debug", "sample", "npsSubmitted"], ["sample", "npsSubmitted", "--debug"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err
        assert err.endswith(f"{ERROR}unexpected RuntimeError\n")


def test_interrupt_exits_130(invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Ctrl-C (KeyboardInterrupt) stops a command with exit code 130 and one line.
    """

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("pendo_webhooks.cli._sample.with_overrides", interrupted)

    assert invoke("sample", "npsSubmitted") == (130, "", "pendo-webhooks: interrupted\n")


def test_broken_pipe_is_quiet(invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A reader that went away (``| head``) ends the command quietly with exit code 1.
    """

    def gone(*args: Any, **kwargs: Any) -> None:
        raise BrokenPipeError

    silenced: list[bool] = []
    monkeypatch.setattr(common.Console, "write_bytes", gone)
    monkeypatch.setattr("pendo_webhooks.cli._silence_stdout", lambda: silenced.append(True))

    assert invoke("sample", "npsSubmitted") == (1, "", "")
    assert silenced == [True]


def test_broken_pipe_for_real(tmp_path: Path) -> None:
    """
    Piping a long output into a reader that stops early gives no traceback.
    """
    proc = subprocess.run(  # noqa: S602 - a real pipe, with our own command line
        f"{' '.join(CLI)} sample guideDisplayed | head -c 10",
        shell=True,
        capture_output=True,
        check=False,
    )

    assert proc.stdout == b'{"app":{"i'
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (PermissionDenied("no"), 4),
        (DestinationBlocked(), 3),
        (SignatureError("bad"), 1),
        (ConflictError("stale"), 1),
        (StorageError("disk full"), 1),
        (TransportError("timeout", "slow"), 1),
        (ValidationError("name", "empty"), 3),
        (ConfigurationError("bad"), 3),
        (UnknownEventType("x"), 3),
        (InvalidEventPayload(["a: b"]), 3),
        (NotFound("nope"), 3),
    ],
)
def test_exit_codes_of_library_errors(exc: Exception, code: int) -> None:
    """
    Each library error maps to the documented exit code.
    """
    assert common.exit_code_for(exc) == code  # type: ignore[arg-type]


# -- sample --------------------------------------------------------------------------------------


def test_sample_prints_pendos_exact_bytes() -> None:
    """
    ``sample`` writes the exact wire bytes, without a newline when stdout is not a terminal.
    """
    proc = run("sample", "guideDisplayed")

    assert proc.returncode == 0
    assert len(proc.stdout) == 917
    assert hashlib.sha256(proc.stdout).hexdigest() == GUIDE_SHA256


def test_sample_unknown_event_is_bad_input() -> None:
    """
    An unknown event type is one line listing the known ones, and exit code 3.
    """
    proc = run("sample", "pageViewed")

    assert_one_line_error(proc, 3, "unknown event type: 'pageViewed' (one of: guideDisplayed,")
    assert proc.stdout == b""


def test_sample_set_changes_fields() -> None:
    """
    --set takes Python names, wire names and dotted paths; values are JSON when they parse.
    """
    proc = run(
        "sample",
        "npsSubmitted",
        "--set",
        "nps.rating=3",
        "--set",
        "nps.reason=Too slow",
        "--set",
        "visitorId=ann@example.com",
        "--set",
        "guide_properties.steps.0.type=lightbox",
    )

    event = parse_event(proc.stdout)
    assert proc.returncode == 0
    assert (event.nps.rating, event.nps.reason, event.visitor_id) == (
        3,
        "Too slow",
        "ann@example.com",
    )  # type: ignore[union-attr]
    assert event.guide_properties.steps[0].type == "lightbox"  # type: ignore[union-attr]


def test_sample_bad_value_names_the_wire_path() -> None:
    """
    A value the event does not allow is bad input, reported under its wire path.
    """
    proc = run("sample", "npsSubmitted", "--set", "nps.rating=11")

    assert_one_line_error(proc, 3, "properties.nps.rating: must be between 0 and 10")


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["reason"], "--set: expected KEY=VALUE, got 'reason'"),
        (["=1"], "--set: expected KEY=VALUE"),
        (["reason=x"], "reason: npsSubmitted has no field 'reason'"),
        (["event=pollSubmitted"], "event: the event type is the EVENT argument"),
        (["nps.score=1"], "nps.score: there is no field 'score' here"),
        (["guide_properties.steps.1.type=x"], "is not an index of this list of 1"),
        (["guide_properties.steps.x=x"], "'x' is not an index"),
        (["nps.rating.x=1"], "nps.rating.x: 'x': the value before it is not an object"),
    ],
)
def test_sample_set_mistakes(sets: list[str], message: str) -> None:
    """
    A --set that names no field, or is not KEY=VALUE, is a ValidationError naming it.
    """
    with pytest.raises(ValidationError) as info:
        sample("npsSubmitted", sets)

    assert message in str(info.value)


def test_sample_set_grows_free_form_event_properties() -> None:
    """
    The track event's own properties are free-form: new keys, nested too, may be added.
    """
    event = sample(
        "trackEventReceived",
        ["event_properties.plan=pro", "properties.eventProperties.limits.seats=5"],
    )

    assert event.event_properties == {  # type: ignore[union-attr]
        "fromTier": "basic",
        "toTier": "pro",
        "plan": "pro",
        "limits": {"seats": 5},
    }


def test_sample_set_keeps_non_json_as_text_and_refuses_nan() -> None:
    """
    A value that is not JSON (NaN included) is kept as a string.
    """
    event = sample("pollSubmitted", ["poll.response=NaN", "language=en-GB"])

    assert event.poll.response == "NaN"  # type: ignore[union-attr]
    assert event.language == "en-GB"  # type: ignore[union-attr]


def test_sample_fresh_changes_id_and_time() -> None:
    """
    --fresh gives a new uniqueId and the current time.
    """
    before = sample_event("accountCreated")

    event = sample("accountCreated", [], fresh=True)

    assert event.unique_id != before.unique_id
    assert event.timestamp > before.timestamp


def test_sample_newline_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """
    On a terminal a newline follows the payload, so the prompt is not glued to it.
    """
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    assert main(["sample", "accountCreated"]) == 0

    assert capsysbinary.readouterr().out == to_wire(sample_event("accountCreated")) + b"\n"


@settings(max_examples=50, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40))
def test_sample_set_json_strings_round_trip(text: str) -> None:
    """
    Any text given as a JSON string through --set becomes exactly that field's value.
    """
    event = sample("visitorCreated", ["user_agent=" + json.dumps(text)])

    assert event.user_agent == text


# -- send ----------------------------------------------------------------------------------------


def test_send_rehearses_a_retry_with_the_real_policy(tmp_path: Path) -> None:
    """
    sample | send: each attempt is printed as it happens; a 503 is retried; exit 0 once
    delivered. Every attempt carries the same body bytes and webhook-id, signed afresh.
    """
    payload = run("sample", "npsSubmitted").stdout
    with LocalReceiver(secrets=[SECRET], statuses=[503]) as receiver:
        proc = run(
            "send",
            receiver.url,
            "--event",
            "npsSubmitted",
            "--payload",
            "-",
            "--secret",
            SECRET,
            "--allow-private",
            "--max-wait",
            "0.2",
            stdin=payload,
        )
        requests = receiver.requests

    lines = proc.stdout.decode().splitlines()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert lines[0] == (
        f"sending npsSubmitted 5801148fbe546938e04eb2d8aecb7e989ff6b12b to {receiver.url} "
        "(signed: both)"
    )
    assert lines[1].startswith("attempt 1: HTTP 503 in ")
    assert " ms; retrying in " in lines[1]
    assert lines[1].endswith(" (retry 1 of 5)")
    assert lines[2].startswith("attempt 2: HTTP 200 in ")
    assert lines[2].endswith("; delivered")
    assert len(lines) == 3
    assert [(r.status, r.verified) for r in requests] == [(503, True), (200, True)]
    assert {r.body for r in requests} == {payload}
    assert requests[0].header("webhook-id") == requests[1].header("webhook-id")


def test_send_unreadable_payload_file_is_bad_input(tmp_path: Path) -> None:
    """
    A payload file that cannot be read: one line naming it, exit 3, nothing sent.
    """
    proc = run(
        "send",
        "https://hooks.example.com/in",
        "--event",
        "npsSubmitted",
        "--payload",
        str(tmp_path / "missing.json"),
    )

    assert_one_line_error(proc, 3, "--payload: cannot read")
    assert "missing.json: No such file or directory" in proc.stderr.decode()


def test_send_invalid_payload_is_bad_input() -> None:
    """
    A payload that is not a Pendo event of that type is bad input, named by wire path.
    """
    proc = run(
        "send",
        "https://hooks.example.com/in",
        "--event",
        "npsSubmitted",
        "--payload",
        "-",
        stdin=b'{"event":"npsSubmitted"}',
    )

    assert_one_line_error(proc, 3, "app: required")


def test_send_unknown_event_is_bad_input() -> None:
    """
    An unknown --event is one line and exit code 3.
    """
    proc = run("send", "https://hooks.example.com/in", "--event", "pageViewed")

    assert_one_line_error(proc, 3, "unknown event type: 'pageViewed'")


def test_send_blocked_url_is_bad_input() -> None:
    """
    The real address guard applies by default: a private address is refused with the
    guard's reason, exit 3, and no connection is made.
    """
    proc = run("send", "https://10.0.0.1/hook", "--event", "npsSubmitted")

    assert_one_line_error(proc, 3, "URL: ")
    assert "--allow-private" in proc.stderr.decode()
    assert proc.stdout == b""


def test_send_plain_http_needs_allow_http() -> None:
    """
    A plain http URL is refused unless --allow-http (or --allow-private) is given.
    """
    proc = run("send", "http://hooks.example.com/in", "--event", "npsSubmitted")

    assert_one_line_error(proc, 3, "URL: scheme 'http' is not allowed; use https (or --allow-")


def test_send_unreachable_url_fails() -> None:
    """
    Nothing listening: the connection error is an attempt, retried per the policy, then
    the command fails with exit code 1.
    """
    port = free_port()

    proc = run(
        "send",
        f"http://127.0.0.1:{port}/",
        "--event",
        "npsSubmitted",
        "--allow-private",
        "--retries",
        "1",
        "--max-wait",
        "0.05",
    )

    lines = proc.stdout.decode().splitlines()
    assert_one_line_error(proc, 1, f"not delivered: could not connect to 127.0.0.1:{port}")
    assert "gave up after 2 attempts" in proc.stderr.decode()
    assert lines[1].startswith(f"attempt 1: could not connect to 127.0.0.1:{port}: ")
    assert lines[2].startswith("attempt 2: could not connect")
    assert lines[2].endswith("; gave up after 2 attempts")


def test_send_json(receiver: LocalReceiver) -> None:
    """
    --json prints one JSON object with every attempt on stdout; progress goes to stderr.
    """
    receiver.queue(429)

    proc = run(
        "send",
        receiver.url,
        "--event",
        "visitorCreated",
        "--secret",
        SECRET,
        "--allow-private",
        "--max-wait",
        "0.05",
        "--json",
    )

    result = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert result["delivered"] is True
    assert result["event"] == "visitorCreated"
    assert [a["status"] for a in result["attempts"]] == [429, 200]
    assert [a["outcome"] for a in result["attempts"]] == ["retry", "delivered"]
    assert 0 < result["attempts"][0]["retry_in_s"] <= 0.05
    assert "attempt 2: HTTP 200" in proc.stderr.decode()


def test_send_final_failure(invoke: Callable[..., Any]) -> None:
    """
    A 404 is a final failure: not retried, exit 1.
    """
    with LocalReceiver(default_status=404) as receiver:
        code, out, err = invoke(
            "send", receiver.url, "--event", "accountCreated", "--allow-private"
        )
        assert len(receiver.requests) == 1

    assert code == 1
    assert out.splitlines()[0].endswith("(no signature)")
    assert receiver.requests[0].header("webhook-signature") is None
    assert receiver.requests[0].header("X-Pendo-Signature") is None
    assert out.splitlines()[1].endswith("; failed, not retried")
    assert err == f"{ERROR}not delivered: HTTP 404, not retried\n"


def test_send_gone(invoke: Callable[..., Any]) -> None:
    """
    A 410 Gone is a final failure too, said so.
    """
    with LocalReceiver(default_status=410) as receiver:
        code, out, _ = invoke("send", receiver.url, "--event", "accountCreated", "--allow-private")

    assert code == 1
    assert out.splitlines()[1].endswith("; failed: 410 Gone")


def test_send_honours_retry_after(invoke: Callable[..., Any]) -> None:
    """
    A Retry-After longer than the scheduled wait stretches it, up to --max-wait.
    """
    with LocalReceiver(statuses=[Reply(status=503, headers={"Retry-After": "9"})]) as receiver:
        code, out, _ = invoke(
            "send",
            receiver.url,
            "--event",
            "accountCreated",
            "--allow-private",
            "--max-wait",
            "0.1",
        )

    assert code == 0
    assert "(retry 1 of 5, Retry-After)" in out.splitlines()[1]


def test_send_sample_with_headers_and_scheme(invoke: Callable[..., Any]) -> None:
    """
    Without --payload the sample is sent (with --set applied), with extra headers and the
    chosen scheme; a secret can come from a file.
    """
    secret_file = Path("secret.txt")
    secret_file.write_text(SECRET + "\n")
    with LocalReceiver(
        secrets=[SECRET], scheme="pendo", signature_header="X-Signature"
    ) as receiver:
        code, out, _ = invoke(
            "send",
            receiver.url,
            "--event",
            "npsSubmitted",
            "--set",
            "nps.rating=0",
            "--secret-file",
            str(secret_file),
            "--scheme",
            "pendo",
            "--signature-header",
            "X-Signature",
            "--header",
            "X-Team: growth",
            "--allow-private",
        )
        request = receiver.requests[0]

    assert code == 0
    assert "(signed: pendo)" in out
    assert request.header("X-Team") == "growth"
    assert request.header("X-Signature") is not None
    assert request.verified is True
    assert request.header("webhook-signature") is None
    assert request.event.nps.rating == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", "npsSubmitted"], "URL: is required (or --segment WRITE_KEY"),
        (
            [
                "https://h.example.com/",
                "--event",
                "npsSubmitted",
                "--payload",
                "-",
                "--secret",
                "-",
            ],
            "--payload: stdin cannot carry both",
        ),
        (
            ["https://h.example.com/", "--event", "npsDisplayed", "--payload", "-"],
            "--payload: is a npsSubmitted event, not npsDisplayed",
        ),
        (
            ["https://h.example.com/", "--event", "pageViewed", "--payload", "-"],
            "unknown event type: 'pageViewed'",
        ),
        (["https://h.example.com/", "--event", "npsSubmitted", "--header", "nocolon"], "--header"),
        (["https://h.example.com/", "--event", "npsSubmitted", "--secret", ""], "--secret"),
    ],
)
def test_send_bad_input(invoke: Callable[..., Any], args: list[str], message: str) -> None:
    """
    Inconsistent or missing input is one line and exit code 3; nothing is sent.
    """
    code, out, err = invoke("send", *args, stdin=to_wire(sample_event("npsSubmitted")))

    assert code == 3
    assert out == ""
    assert err.startswith(ERROR)
    assert message in err


def test_send_blocked_when_resolved(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A name that resolves to a private address is blocked at send time: exit 3 with the
    guard's reason.
    """

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))]

    monkeypatch.setattr(
        transports,
        "Urllib3Transport",
        functools.partial(transports.Urllib3Transport, resolver=resolve),
    )

    code, out, err = invoke("send", "https://internal.example.com/in", "--event", "npsSubmitted")

    assert code == 3
    assert out.splitlines()[1].startswith("attempt 1: ")
    assert "10.1.2.3" in out.splitlines()[1]
    assert err.startswith(f"{ERROR}destination blocked: ")


def test_send_interrupted_while_waiting(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Ctrl-C while waiting for a retry stops cleanly with exit code 130.
    """

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("pendo_webhooks.cli._send.time.sleep", interrupted)
    with LocalReceiver(default_status=503) as receiver:
        code, out, err = invoke("send", receiver.url, "--event", "npsSubmitted", "--allow-private")

    assert code == 130
    assert "retrying in" in out
    assert err == "pendo-webhooks: interrupted\n"


def test_retry_policy_keeps_the_real_schedule_by_default() -> None:
    """
    Without --retries and --max-wait the policy is the real one.
    """
    assert retry_policy(None, None) == RetryPolicy()
    assert retry_policy(0, None).max_retries == 0
    assert retry_policy(None, 60).schedule[0].total_seconds() == 30


def test_send_segment(invoke: Callable[..., Any]) -> None:
    """
    --segment sends the event as a Segment track call, authenticated with the write key.
    """
    with LocalReceiver(write_key="wk-123") as endpoint:
        code, out, err = invoke(
            "send",
            endpoint.url,
            "--event",
            "visitorCreated",
            "--segment",
            "wk-123",
            "--allow-private",
        )
        requests = endpoint.requests

    assert code == 0, err
    assert "(write key)" in out.splitlines()[0]
    assert [(r.path, r.verified) for r in requests] == [("/v1/batch", True)]
    assert json.loads(requests[0].body)["batch"][0]["event"] == "visitorCreated"


# -- verify --------------------------------------------------------------------------------------


def _header_args(headers: dict[str, str]) -> list[str]:
    return [arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")]


def test_verify_accepts_a_good_signature() -> None:
    """
    A request signed with the secret verifies: exit 0.
    """
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET)

    proc = run("verify", "--secret", SECRET, *_header_args(headers), stdin=body)

    assert proc.returncode == 0
    assert proc.stdout == b"signature valid (both)\n"
    assert proc.stderr == b""


def test_verify_wrong_secret_fails_with_the_reason() -> None:
    """
    The wrong secret: one line with the reason, exit 1.
    """
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET)

    proc = run("verify", "--secret", "not-the-secret", *_header_args(headers), stdin=body)

    assert_one_line_error(proc, 1, "signature invalid: webhook-signature: no signature matches")
    assert proc.stdout == b""


def test_verify_json_and_rotation(tmp_path: Path) -> None:
    """
    --json prints the verdict; any of several secrets may match (a rotation).
    """
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET, scheme="pendo")
    good = run(
        "verify",
        "--secret",
        "old",
        "--secret",
        SECRET,
        "--scheme",
        "pendo",
        "--json",
        *_header_args(headers),
        stdin=body,
    )
    bad = run("verify", "--secret", "old", "--json", *_header_args(headers), stdin=body)

    assert (good.returncode, json.loads(good.stdout)) == (
        0,
        {"valid": True, "scheme": "pendo", "reason": None},
    )
    assert (bad.returncode, json.loads(bad.stdout)) == (
        1,
        {"valid": False, "scheme": "both", "reason": "webhook-id: missing"},
    )


def test_verify_headers_file_and_body_file(invoke: Callable[..., Any]) -> None:
    """
    Headers can come from a file of 'Name: value' lines, the body from --body, and the
    secret from stdin.
    """
    body, headers = signed_request(sample_event("pollSubmitted"), SECRET)
    Path("body").write_bytes(body)
    Path("headers").write_text("\n" + common.header_lines(headers))

    code, out, _ = invoke(
        "verify",
        "--secret",
        "-",
        "--headers-file",
        "headers",
        "--body",
        "body",
        stdin=(SECRET + "\n").encode(),
    )

    assert (code, out) == (0, "signature valid (both)\n")


def test_verify_stale_timestamp(invoke: Callable[..., Any]) -> None:
    """
    A Standard Webhooks timestamp older than --tolerance does not verify.
    """
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET, timestamp=1626803880)

    code, _, err = invoke("verify", "--secret", SECRET, *_header_args(headers), stdin=body)

    assert code == 1
    assert err == f"{ERROR}signature invalid: webhook-timestamp: too old\n"


def test_verify_refuses_a_header_given_twice(invoke: Callable[..., Any]) -> None:
    """
    Two values for one header name (in any case) are refused, never one picked.
    """
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET)
    doubled = [*_header_args(headers), "--header", f"WEBHOOK-ID: {headers['webhook-id']}"]

    code, _, err = invoke("verify", "--secret", SECRET, *doubled, stdin=body)

    assert code == 1
    assert err == f"{ERROR}signature invalid: webhook-id: given more than once\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--secret: give the secret to verify with"),
        (["--secret", "-"], "--secret: '-' reads stdin, so give the body with --body FILE"),
        (["--secret", "s", "--body", "missing"], "--body: cannot read missing"),
        (["--secret", "s", "--headers-file", "missing"], "--headers-file: cannot read"),
        (["--secret", "s", "--headers-file", "latin1"], "--headers-file: must be UTF-8 text"),
        (
            ["--secret", "s", "--headers-file", "nonsense"],
            "--headers-file: expected 'Name: value'",
        ),
        (["--secret", "s", "--header", ": v"], "--header: expected 'Name: value'"),
        (["--secret-file", "latin1"], "--secret-file: must be UTF-8 text"),
        (["--secret", "-", "--secret", "-", "--body", "latin1"], "'-' (read from stdin) can be"),
    ],
)
def test_verify_bad_input(invoke: Callable[..., Any], args: list[str], message: str) -> None:
    """
    Missing or unreadable input is one line and exit code 3.
    """
    Path("latin1").write_bytes("café".encode("latin-1"))
    Path("nonsense").write_text("no colon here\n")

    code, _, err = invoke("verify", *args, stdin=b"s\n")

    assert code == 3
    assert err.startswith(ERROR)
    assert message in err


# -- listen --------------------------------------------------------------------------------------


@pytest.fixture(name="listener")
def _listener(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str]]]:
    """
    Start ``pendo-webhooks listen --port 0 ...``; return the process and its URL.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], str]:
        proc = subprocess.Popen(
            [*CLI, "listen", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        started.append(proc)
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert banner.startswith("listening on http://127.0.0.1:"), banner
        return proc, banner.split()[2].rstrip(";")

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # also closes the pipes


def test_listen_prints_requests_and_rehearses_retries(
    listener: Callable[..., Any], tmp_path: Path
) -> None:
    """
    ``listen`` answers the scripted statuses, prints each request and whether its
    signature verifies, saves it for ``verify``, and exits 0 after --exit-after requests.
    """
    proc, url = listener(
        "--secret", SECRET, "--status", "503", "--save", "saved", "--exit-after", "2"
    )
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET)

    statuses = [post(url + "hook", body, headers) for _ in range(2)]
    out, err = proc.communicate(timeout=30)

    lines = out.decode().splitlines()
    assert statuses == [503, 200]
    assert proc.returncode == 0
    assert lines[0].endswith(
        " POST /hook npsSubmitted 5801148fbe546938e04eb2d8aecb7e989ff6b12b (984 bytes) -> 503;"
        " signature verified"
    )
    assert lines[1].endswith("-> 200; signature verified")
    assert err.decode() == "stopped after 2 requests; 0 failed verification\n"
    saved = tmp_path / "saved"
    assert (saved / "0002.body").read_bytes() == body
    check = run(
        "verify",
        "--secret",
        SECRET,
        "--headers-file",
        str(saved / "0002.headers"),
        "--body",
        str(saved / "0002.body"),
    )
    assert check.returncode == 0


def test_listen_reports_a_bad_signature(listener: Callable[..., Any]) -> None:
    """
    A request signed with another secret is printed as not verified, answered
    --invalid-status, and makes the exit code 1.
    """
    proc, url = listener("--secret", SECRET, "--invalid-status", "401", "--exit-after", "1")
    body, headers = signed_request(sample_event("guideDisplayed"), "another secret")

    status = post(url, body, headers)
    out, err = proc.communicate(timeout=30)

    assert status == 401
    assert proc.returncode == 1
    assert (
        out.decode()
        .splitlines()[0]
        .endswith("-> 401; NOT verified: webhook-signature: no signature matches")
    )
    assert err.decode() == "stopped after 1 requests; 1 failed verification\n"


def test_listen_stops_on_sigterm(listener: Callable[..., Any]) -> None:
    """
    SIGTERM stops the receiver cleanly: exit 0, a summary line.
    """
    proc, _ = listener()

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)

    assert proc.returncode == 0
    assert out == b""
    assert err.decode() == "stopped after 0 requests; 0 failed verification\n"


def test_listen_port_in_use_is_bad_input() -> None:
    """
    A port another server holds: one line and exit code 3.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        proc = run("listen", "--port", str(sock.getsockname()[1]))

    assert_one_line_error(proc, 3, "cannot listen on 127.0.0.1 port")


def _listen_in_thread(
    invoke: Callable[..., Any], *args: str, stdin: bytes = b""
) -> tuple[str, threading.Thread, list[Any]]:
    """
    Run ``listen`` through main() in a thread on a free port; return its URL once it is up.
    """
    port = free_port()
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(invoke("listen", "--port", str(port), *args, stdin=stdin))
    )
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "listen did not start"
            time.sleep(0.02)
    return f"http://127.0.0.1:{port}/", thread, result


def test_listen_json_segment_and_retry_after(invoke: Callable[..., Any]) -> None:
    """
    As Segment's endpoint, ``listen`` checks the write key; --json prints one object per
    request; --retry-after goes with 429 and 503 answers.
    """
    url, thread, result = _listen_in_thread(
        invoke,
        "--write-key",
        "-",
        "--status",
        "429,503",
        "--retry-after",
        "7",
        "--exit-after",
        "3",
        "--json",
        stdin=b"wk-1\n",
    )
    auth = {"Authorization": "Basic d2stMTo="}  # "wk-1:"

    replies = [post(url + "v1/batch", b'{"batch":[]}', auth) for _ in range(2)]
    replies.append(post(url + "v1/batch", b"{}", {"Authorization": "Basic eDo="}))
    thread.join(30)

    code, out, err = result[0]
    seen = [json.loads(line) for line in out.splitlines()]
    assert replies == [429, 503, 401]
    assert code == 1
    assert [(s["path"], s["status"], s["verified"]) for s in seen] == [
        ("/v1/batch", 429, True),
        ("/v1/batch", 503, True),
        ("/v1/batch", 401, False),
    ]
    assert seen[0]["event"] is None
    assert err.startswith("listening on http://127.0.0.1:")
    assert "checking the Segment write key; answering 429, 503, then 200" in err


def test_listen_accept_unverified_answers_forged_requests_from_the_script(
    invoke: Callable[..., Any],
) -> None:
    """
    With --accept-unverified a forged request gets the scripted answer, is printed as NOT
    verified, and still makes the exit code 1; the banner says so.
    """
    url, thread, result = _listen_in_thread(
        invoke, "--secret", SECRET, "--accept-unverified", "--status", "202", "--exit-after", "1"
    )
    forged = signed_request(sample_event("npsSubmitted"), "not-the-secret")

    assert post(url, forged.body, forged.headers) == 202
    thread.join(30)

    code, out, err = result[0]
    assert code == 1
    assert "checking both signatures (accepting unverified requests); answering 202" in out
    assert "-> 202; NOT verified: webhook-signature: no signature matches" in out
    assert err == "stopped after 1 requests; 1 failed verification\n"


def test_listen_answers_bad_chunked_framing_400_at_once(invoke: Callable[..., Any]) -> None:
    """
    A chunked body with a bad chunk size gets 400 at once from listen, on a raw socket that
    sends nothing more (the timeout is only a safety net), and is printed with the reason.
    """
    url, thread, result = _listen_in_thread(invoke, "--secret", SECRET, "--exit-after", "1")
    port = urllib.parse.urlsplit(url).port

    with socket.create_connection(("127.0.0.1", port or 0), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        answer = sock.recv(1024)
    thread.join(30)

    assert answer.startswith(b"HTTP/1.1 400 ")
    code, out, _ = result[0]
    assert code == 0
    assert out.splitlines()[1].endswith(
        "POST / 0 bytes -> 400; not checked (unreadable body); "
        "body: malformed framing (bad chunk size line)"
    )


def test_listen_without_secret_checks_nothing(invoke: Callable[..., Any]) -> None:
    """
    Without --secret nothing is verified; a body that is not an event is said so.
    """
    url, thread, result = _listen_in_thread(invoke, "--exit-after", "1")

    post(url, b'{"event":"pageViewed"}', {})
    thread.join(30)

    code, out, _ = result[0]
    assert code == 0
    assert "checking nothing (no --secret); answering 200" in out
    assert out.splitlines()[1].endswith(
        "POST / 22 bytes -> 200; not verified (no --secret); body: unknown event type: "
        "'pageViewed'"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--save", "file"], "--save: cannot create file"),
        (["--retry-after", " "], "--retry-after: must not be empty"),
        (["--secret", "s", "--write-key", "k"], "write_key: a receiver checks secrets or"),
        (
            ["--secret", "s", "--accept-unverified", "--invalid-status", "403"],
            "accept_unverified: not together with invalid_status",
        ),
    ],
)
def test_listen_bad_input(invoke: Callable[..., Any], args: list[str], message: str) -> None:
    """
    Unusable options are one line and exit code 3.
    """
    Path("file").write_text("in the way")

    code, _, err = invoke("listen", "--port", "0", *args)

    assert code == 3
    assert message in err


# -- webhooks ------------------------------------------------------------------------------------


def _created_id(proc: subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    webhook_id: str = json.loads(proc.stdout)["id"]
    return webhook_id


def test_webhooks_lifecycle(tmp_path: Path, receiver: LocalReceiver) -> None:
    """
    create (with a generated secret in a new private file), list, show, update, enable,
    test, rotate-secret, disable and delete a webhook; secrets never appear in the output.
    """
    # --allow-private is recorded in the store by the first command that gives it; giving
    # it again changes nothing (test_allow_private_is_recorded_in_the_store goes without).
    db = ("--db", "hooks.db", *ADMIN, "--allow-private")

    def webhooks(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return run("webhooks", *args, *db, stdin=stdin, cwd=tmp_path)

    created = webhooks(
        "create",
        "--name",
        "NPS to the lab",
        "--url",
        receiver.url + "in?token=t0k3n",
        "--event",
        "npsSubmitted,npsDisplayed",
        "--generate-secret",
        "secret.txt",
        "--json",
    )
    hook_id = _created_id(created)
    secret_file = tmp_path / "secret.txt"
    secret = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret.startswith("whsec_")
    assert created.stderr == (
        b"pendo-webhooks: note: hooks.db now allows private destinations (loopback, plain "
        b"http, any port) for every command on it, until --no-allow-private\n"
        b"the new secret is in secret.txt\n"
    )

    listed = webhooks("list")
    assert listed.returncode == 0
    header, row = listed.stdout.decode().splitlines()
    assert header.split() == ["ID", "ENABLED", "KIND", "NAME", "DESTINATION", "EVENTS"]
    assert row.startswith(f"{hook_id}  no       url   NPS to the lab  {receiver.url}in?…")
    assert row.endswith("npsDisplayed,npsSubmitted")

    shown = json.loads(webhooks("show", hook_id, "--json").stdout)
    assert shown["has_secret"] is True
    assert shown["version"] == 1
    assert "t0k3n" not in json.dumps(shown)

    stale = webhooks("update", hook_id, "--name", "x", "--expected-version", "7")
    assert_one_line_error(stale, 1, "the change is based on version 7, but version 1 is stored")
    updated = webhooks("update", hook_id, "--name", "NPS", "--header", "X-Team: lab")
    assert updated.stdout == f"updated {hook_id} ('NPS', disabled, version 2)\n".encode()

    assert webhooks("enable", hook_id).returncode == 0
    receiver.clear()
    tested = webhooks("test", hook_id, "--event", "npsDisplayed")
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.decode().startswith("test npsDisplayed ")
    assert tested.stdout.decode().rstrip().endswith("; accepted")
    assert [r.verified for r in receiver.requests] == [False]  # the receiver has SECRET only
    assert receiver.requests[0].header("X-Team") == "lab"

    rotated = webhooks(
        "rotate-secret", hook_id, "--secret", "-", "--grace", "1h", stdin=b"rotated-s3cret-Q7\n"
    )
    assert (
        rotated.stdout == f"rotated the secret of {hook_id} ('NPS', enabled, version 4)\n".encode()
    )

    disabled = webhooks("disable", hook_id, "--reason", "maintenance", "--json")
    assert json.loads(disabled.stdout)["disabled_reason"] == "maintenance"
    assert webhooks("delete", hook_id).stdout == f"deleted {hook_id}\n".encode()
    assert_one_line_error(webhooks("show", hook_id), 3, f"no webhook with id '{hook_id}'")

    everything = b"".join(
        p.stdout + p.stderr for p in (created, listed, updated, tested, rotated, disabled)
    )
    assert secret.encode() not in everything
    assert b"rotated-s3cret-Q7" not in everything


def test_webhooks_create_prints_a_generated_secret_once(tmp_path: Path) -> None:
    """
    The real script: create without a secret option prints the generated secret on stdout
    (a second line, or "secret" with --json) with a note on stderr; it is the stored one, and
    no later command shows it.
    """
    db = ("--db", "hooks.db", *ADMIN)
    url = ("--url", "https://hooks.example.com/in", "--event", "npsSubmitted")

    text = run("webhooks", "create", *db, "--name", "A", *url, cwd=tmp_path)
    as_json = run("webhooks", "create", *db, "--name", "B", *url, "--json", cwd=tmp_path)

    assert text.returncode == 0, text.stderr
    first, second = text.stdout.decode().splitlines()
    assert first.startswith("created wh_")
    assert first.endswith("('A', disabled, version 1)")
    assert second.startswith("secret: whsec_")
    note = b"the generated secret is shown this once and never again: give it to the receiver"
    assert text.stderr.startswith(note)
    shown = json.loads(as_json.stdout)
    assert shown["secret"].startswith("whsec_")
    assert shown["has_secret"] is True
    assert as_json.stderr.startswith(note)
    storage = SQLiteStorage(tmp_path / "hooks.db")
    try:
        stored_a = storage.get_webhook(first.split()[1]).secret
        stored_b = storage.get_webhook(shown["id"]).secret
    finally:
        storage.close()
    assert stored_a is not None
    assert stored_a.reveal() == second.removeprefix("secret: ")
    assert stored_b is not None
    assert stored_b.reveal() == shown["secret"]
    later = [
        run("webhooks", command, *db, *rest, cwd=tmp_path)
        for command, *rest in (("list", "--json"), ("show", shown["id"], "--json"))
    ]
    for proc in later:
        assert proc.returncode == 0
        assert stored_a.reveal().encode() not in proc.stdout + proc.stderr
        assert stored_b.reveal().encode() not in proc.stdout + proc.stderr


def test_webhooks_unsigned_is_an_explicit_choice_with_a_warning(
    invoke: Callable[..., Any],
) -> None:
    """
    --unsigned makes a URL webhook without a secret, says so on stderr and prints no secret;
    update --unsigned removes a secret the same way; a given secret is never printed.
    """
    db = ("--db", "hooks.db", *ADMIN)
    url = ("--url", "https://hooks.example.com/in", "--event", "npsSubmitted")

    code, out, err = invoke("webhooks", "create", *db, "--name", "U", *url, "--unsigned")
    hook_id = out.split()[1]
    assert (code, out) == (0, f"created {hook_id} ('U', disabled, version 1)\n")
    assert err == f"warning: webhook {hook_id} ('U') is unsigned: {UNSIGNED_TAIL}\n"
    assert json.loads(invoke("webhooks", "show", hook_id, *db, "--json")[1])["has_secret"] is False

    code, out, err = invoke("webhooks", "create", *db, "--name", "S", *url, "--secret", SECRET)
    signed_id = out.split()[1]
    assert (code, err, SECRET in out) == (0, "", False)
    assert len(out.splitlines()) == 1

    code, out, err = invoke("webhooks", "update", signed_id, *db, "--unsigned", "--json")
    assert (code, json.loads(out)["has_secret"]) == (0, False)
    assert err == f"warning: webhook {signed_id} ('S') is unsigned: {UNSIGNED_TAIL}\n"


def test_webhooks_pass_other_warnings_on(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Only UnsignedWebhookWarning becomes a stderr line; any other warning goes on as it came.
    """
    real_create = WebhookRegistry.create

    def create(self: WebhookRegistry, *args: Any, **kwargs: Any) -> Any:
        warnings.warn("something else", DeprecationWarning, stacklevel=1)
        return real_create(self, *args, **kwargs)

    monkeypatch.setattr(WebhookRegistry, "create", create)
    url = ("--url", "https://hooks.example.com/in", "--event", "npsSubmitted")
    with pytest.warns(DeprecationWarning, match="something else"):
        code, _, err = invoke("webhooks", "create", "--db", "h.db", *ADMIN, "--name", "U", *url)
    assert code == 0
    assert "something else" not in err


def test_webhooks_non_admin_is_refused(tmp_path: Path) -> None:
    """
    --no-admin acts as a non-admin, whom the default policy refuses: exit code 4.
    """
    proc = run(
        "webhooks",
        "create",
        "--db",
        "hooks.db",
        *ADMIN,
        "--no-admin",
        "--name",
        "x",
        "--url",
        "https://hooks.example.com/in",
        "--event",
        "npsSubmitted",
        cwd=tmp_path,
    )

    assert_one_line_error(proc, 4, "actor 'ann' may not create webhooks: admins only")


def test_webhooks_database_not_ours(tmp_path: Path) -> None:
    """
    A file that is not a pendo-webhooks database is refused and left untouched: exit 3.
    """
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    before = foreign.read_bytes()
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, " * 100)

    for path in (foreign, text):
        proc = run("webhooks", "list", "--db", str(path), *ADMIN)
        assert_one_line_error(proc, 3, "--db: ")
        assert "is not a" in proc.stderr.decode()
    assert foreign.read_bytes() == before


def test_webhooks_missing_database(tmp_path: Path) -> None:
    """
    Only ``webhooks create`` makes a new database; anything else on a missing file is
    bad input, and creates nothing.
    """
    proc = run("webhooks", "list", "--db", "missing.db", *ADMIN, cwd=tmp_path)

    assert_one_line_error(proc, 3, "--db: missing.db: no such file")
    assert not (tmp_path / "missing.db").exists()


def test_webhooks_segment(invoke: Callable[..., Any]) -> None:
    """
    A Segment webhook takes a write key (here from a file) instead of a URL.
    """
    Path("key.txt").write_text("wk-1\n")

    code, out, _ = invoke(
        "webhooks",
        "create",
        "--db",
        "hooks.db",
        *ADMIN,
        "--name",
        "Segment",
        "--segment-file",
        "key.txt",
        "--segment-endpoint",
        "https://events.eu1.segmentapis.com",
        "--segment-gzip",
        "--event",
        "visitorCreated",
        "--json",
    )

    shown = json.loads(out)
    assert code == 0
    assert (shown["kind"], shown["segment_gzip"], shown["has_secret"]) == ("segment", True, False)
    assert shown["destination"] == "https://events.eu1.segmentapis.com"
    code, out, _ = invoke(
        "webhooks",
        "update",
        shown["id"],
        "--db",
        "hooks.db",
        *ADMIN,
        "--segment",
        "wk-2",
        "--no-segment-gzip",
    )
    assert (code, out.endswith("version 2)\n")) == (0, True)


def test_webhooks_list_filters_and_show_text(invoke: Callable[..., Any]) -> None:
    """
    list filters on state and event; show prints one field per line.
    """
    db = ("--db", "hooks.db", *ADMIN)
    _, out, _ = invoke(
        "webhooks",
        "create",
        *db,
        "--name",
        "A",
        "--url",
        "https://a.example.com/",
        "--event",
        "npsSubmitted",
        "--enable",
        "--json",
    )
    first = json.loads(out)["id"]
    invoke(
        "webhooks",
        "create",
        *db,
        "--name",
        "B",
        "--url",
        "https://b.example.com/",
        "--event",
        "guideDisplayed",
    )

    def ids(*args: str) -> list[str]:
        code, out, _ = invoke("webhooks", "list", *db, "--json", *args)
        assert code == 0
        return [h["name"] for h in json.loads(out)]

    assert ids() == ["A", "B"]
    assert ids("--enabled") == ["A"]
    assert ids("--disabled") == ["B"]
    assert ids("--event", "guideDisplayed") == ["B"]
    code, out, _ = invoke("webhooks", "show", first, *db)
    assert code == 0
    assert "categories: npsSubmitted\n" in out
    assert "disabled_reason: \n" in out
    assert "enabled: True\n" in out
    assert invoke("webhooks", "delete", first, *db)[:2] == (0, f"deleted {first}\n")
    assert ids() == ["B"]


def test_webhooks_update_fields(invoke: Callable[..., Any]) -> None:
    """
    update changes only what is given; --no-secret and --no-headers remove them.
    """
    db = ("--db", "hooks.db", *ADMIN)
    _, out, _ = invoke(
        "webhooks",
        "create",
        *db,
        "--name",
        "A",
        "--url",
        "https://a.example.com/",
        "--event",
        "npsSubmitted",
        "--secret",
        "s",
        "--header",
        "X-A: 1",
        "--json",
    )
    hook_id = json.loads(out)["id"]

    code, out, err = invoke(
        "webhooks",
        "update",
        hook_id,
        *db,
        "--no-secret",
        "--unsigned",
        "--no-headers",
        "--event",
        "pollSubmitted",
        "--event",
        "pollDisplayed",
        "--scheme",
        "standard",
        "--signature-header",
        "X-Sig",
        "--url",
        "https://b.example.com/",
        "--json",
    )

    shown = json.loads(out)
    assert code == 0
    assert err == f"warning: webhook {hook_id} ('A') is unsigned: {UNSIGNED_TAIL}\n"
    assert (shown["has_secret"], shown["headers"]) == (False, [])
    assert shown["categories"] == ["pollDisplayed", "pollSubmitted"]
    assert (shown["signature_scheme"], shown["signature_header"]) == ("standard", "X-Sig")
    assert shown["destination"] == "https://b.example.com/"
    code, out, _ = invoke("webhooks", "update", hook_id, *db, "--generate-secret", "new.txt")
    assert code == 0
    assert Path("new.txt").read_text().startswith("whsec_")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["create", "--name", "x", "--event", "npsSubmitted"], 2, "give either --url or"),
        (["update", "wh_1", "--no-secret", "--secret", "s"], 2, "--no-secret cannot go"),
        (["update", "wh_1", "--no-secret"], 2, "add --unsigned to do that on purpose"),
        (["update", "wh_1", "--unsigned", "--secret", "s"], 2, "not allowed with argument"),
        (
            [
                "create",
                "--name",
                "x",
                "--url",
                "https://x.example.com/",
                "--event",
                "npsSubmitted",
                "--unsigned",
                "--secret-file",
                "s.txt",
            ],
            2,
            "not allowed with argument",
        ),
        (
            ["create", "--name", "x", "--segment", "wk", "--event", "npsSubmitted", "--unsigned"],
            2,
            "--unsigned is for URL webhooks",
        ),
        (["update", "wh_1", "--no-headers", "--header", "A: b"], 2, "--no-headers cannot go"),
        (["update", "wh_1"], 2, "nothing to change"),
        (["rotate-secret", "wh_1"], 2, "give the new secret"),
        (["rotate-secret", "wh_1", "--secret", "s", "--grace", "soon"], 3, "--grace: expected"),
        (["enable", "wh_1"], 3, "no webhook with id 'wh_1'"),
        (
            ["create", "--name", "x", "--url", "https://x.example.com/", "--event", "pageViewed"],
            3,
            "unknown event type: 'pageViewed' (one of: guideDisplayed,",
        ),
        (
            [
                "create",
                "--name",
                "x",
                "--url",
                "https://x.example.com/",
                "--event",
                "npsSubmitted",
                "--generate-secret",
                "taken.txt",
            ],
            3,
            "--generate-secret: taken.txt exists",
        ),
        (
            [
                "create",
                "--name",
                "x",
                "--url",
                "https://x.example.com/",
                "--event",
                "npsSubmitted",
                "--generate-secret",
                "no/such/dir/s.txt",
            ],
            3,
            "--generate-secret: cannot create",
        ),
    ],
)
def test_webhooks_bad_command_lines(
    invoke: Callable[..., Any], args: list[str], code: int, message: str
) -> None:
    """
    Impossible combinations are usage errors (2); bad values are bad input (3).
    """
    Path("taken.txt").write_text("mine")
    invoke(
        "webhooks",
        "create",
        "--db",
        "hooks.db",
        *ADMIN,
        "--name",
        "seed",
        "--url",
        "https://seed.example.com/",
        "--event",
        "npsSubmitted",
    )

    got, _, err = invoke("webhooks", *args, "--db", "hooks.db", *ADMIN)

    assert got == code, err
    assert message in err
    assert Path("taken.txt").read_text() == "mine"


def test_webhooks_generated_secret_is_removed_when_the_change_fails(
    invoke: Callable[..., Any],
) -> None:
    """
    If the webhook cannot be created, the file the secret was generated into is removed.
    """
    code, _, err = invoke(
        "webhooks",
        "create",
        "--db",
        "hooks.db",
        *ADMIN,
        "--name",
        " ",
        "--url",
        "https://x.example.com/",
        "--event",
        "npsSubmitted",
        "--generate-secret",
        "s.txt",
    )

    assert code == 3
    assert "name" in err
    assert not Path("s.txt").exists()


def test_webhooks_test_not_accepted(invoke: Callable[..., Any]) -> None:
    """
    A test send the receiver does not accept exits 1; --json shows the result.
    """
    with LocalReceiver(default_status=500) as receiver:
        _, out, _ = invoke(
            "webhooks",
            "create",
            "--db",
            "hooks.db",
            *ADMIN,
            "--name",
            "x",
            "--url",
            receiver.url,
            "--event",
            "npsSubmitted",
            "--allow-private",
            "--json",
        )
        hook_id = json.loads(out)["id"]
        code, out, _ = invoke(
            "webhooks", "test", hook_id, "--db", "hooks.db", *ADMIN, "--allow-private"
        )
        json_code, json_out, _ = invoke(
            "webhooks", "test", hook_id, "--db", "hooks.db", *ADMIN, "--allow-private", "--json"
        )

    assert code == 1
    assert out.rstrip().endswith(
        "HTTP 500 in " + out.split(" in ")[-1].split(";")[0] + "; not accepted (HTTP 500)"
    )
    assert json_code == 1
    assert json.loads(json_out)["status"] == 500


# -- deliveries, exclusions, worker --------------------------------------------------------------


@pytest.fixture(name="store")
def _store(tmp_path: Path, receiver: LocalReceiver) -> tuple[Path, str]:
    """
    A database with one enabled webhook to the local receiver; returns (file, webhook id).
    """
    proc = run(
        "webhooks",
        "create",
        "--db",
        "hooks.db",
        *ADMIN,
        "--name",
        "Lab",
        "--url",
        receiver.url,
        "--event",
        "npsSubmitted",
        "--secret",
        SECRET,
        "--enable",
        "--allow-private",
        "--json",
        cwd=tmp_path,
    )
    return tmp_path / "hooks.db", _created_id(proc)


def _enqueue(db: Path, count: int) -> None:
    with SQLiteStorage(db) as storage, Dispatcher(WebhookRegistry(storage)) as dispatcher:
        for _ in range(count):
            dispatcher.enqueue(sample_event("npsSubmitted", unique_id=new_unique_id()))


def _stderr_until(proc: subprocess.Popen[bytes], wanted: bytes, *, timeout: float) -> bytes:
    """
    Read *proc*'s stderr until a line holding *wanted* (or *timeout* seconds); return it all.
    """
    assert proc.stderr is not None
    got = b""
    deadline = time.monotonic() + timeout
    while wanted not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        line = proc.stderr.readline()
        if not line:
            break
        got += line
    return got


def test_worker_delivers_until_sigterm(store: tuple[Path, str], receiver: LocalReceiver) -> None:
    """
    The worker delivers the outbox, schedules a retry for a 503, prints progress while
    deliveries are pending, and on SIGTERM finishes and exits 0 with a summary (the retry,
    30 s away by the policy, still pending).
    """
    db, _ = store
    receiver.queue(503)
    _enqueue(db, 3)
    proc = subprocess.Popen(
        [
            *CLI,
            "worker",
            "--db",
            str(db),
            "--allow-private",
            "--progress-every",
            "0.1",
            "--poll-interval",
            "0.05",
            "--concurrency",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The 503 is retried after the policy's 30 s (24 to 36 with jitter): not waited for.
        assert receiver.wait_for(3, timeout=30)
        early = _stderr_until(proc, b"delivered 2, retrying 1, failed 0, pending 1", timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        err = early + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)  # also closes the pipes

    lines = err.decode().splitlines()
    assert proc.returncode == 0, err
    assert out == b""
    assert lines[0].startswith("worker ")
    assert lines[0].endswith(f"delivering {db} (concurrency 1) until SIGTERM or Ctrl-C")
    assert "delivered 2, retrying 1, failed 0, pending 1" in lines
    assert lines[-1] == (
        "worker stopped: delivered 2, retried 1, failed 0, dead 0, cancelled 0; 1 pending"
    )
    assert [r.status for r in receiver.requests] == [503, 200, 200]


def test_worker_until_idle(invoke: Callable[..., Any], store: tuple[Path, str]) -> None:
    """
    --until-idle exits 0 once nothing is pending; --log-level info shows the dispatcher's log.
    """
    db, _ = store
    _enqueue(db, 2)

    code, out, err = invoke(
        "worker", "--db", str(db), "--allow-private", "--until-idle", "--log-level", "debug"
    )

    assert (code, out) == (0, "")
    assert " DEBUG delivery dlv_" in err
    assert err.endswith(
        "worker stopped: delivered 2, retried 0, failed 0, dead 0, cancelled 0; 0 pending\n"
    )


def test_worker_until_idle_times_out(
    invoke: Callable[..., Any], store: tuple[Path, str], receiver: LocalReceiver
) -> None:
    """
    --until-idle with work left when --max-time runs out exits 1.
    """
    db, _ = store
    receiver.queue(503)
    _enqueue(db, 1)

    code, _, err = invoke(
        "worker", "--db", str(db), "--allow-private", "--until-idle", "--max-time", "0.5"
    )

    assert code == 1
    assert err.endswith(
        "worker stopped: delivered 0, retried 1, failed 0, dead 0, cancelled 0; 1 pending\n"
    )


def test_worker_database_not_ours(tmp_path: Path) -> None:
    """
    The worker refuses a file that is not a pendo-webhooks database: exit 3.
    """
    (tmp_path / "x.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)

    proc = run("worker", "--db", str(tmp_path / "x.db"))

    assert_one_line_error(proc, 3, "--db: ")


def test_counting_transport_counts_errors() -> None:
    """
    Network errors count as retrying, blocked ones as failed, and unknown kinds and
    unexpected exceptions as retrying (the dispatcher retries them as "error").
    """
    request = OutgoingRequest(url="https://hooks.example.com/in", body=b"{}")
    answers = [
        TransportError("timeout", "slow"),
        DestinationBlocked(),
        TransportError("weird", "?"),
        RuntimeError("bug"),
        404,
    ]
    transport = CountingTransport(RecordingTransport(answers), RetryPolicy())

    for _ in range(4):
        with pytest.raises(Exception):  # noqa: B017 - each of the kinds above
            transport.send(request)
    transport.send(request)

    assert transport.counts() == {"delivered": 0, "retrying": 3, "failed": 2}


def test_deliveries_commands(store: tuple[Path, str], receiver: LocalReceiver) -> None:
    """
    enqueue, list, show (text, JSON and exact body), redeliver and purge, on the real script.
    """
    db, hook_id = store
    where = ("--db", str(db))
    payload = to_wire(sample_event("npsSubmitted"))

    enqueued = run(
        "deliveries", "enqueue", *where, "--event", "npsSubmitted", "--payload", "-", stdin=payload
    )
    assert enqueued.returncode == 0
    delivery_id = enqueued.stdout.decode().split(" as ")[1].strip()
    assert enqueued.stdout.decode() == f"{hook_id}: pending as {delivery_id}\n"
    again = run(
        "deliveries", "enqueue", *where, "--event", "npsSubmitted", "--payload", "-", stdin=payload
    )
    assert_one_line_error(again, 1, "no enabled webhook took npsSubmitted")
    assert "skipped (duplicate" in again.stdout.decode()

    worked = run("worker", *where, "--allow-private", "--until-idle")
    assert worked.returncode == 0

    listed = run("deliveries", "list", *where)
    assert listed.stdout.decode().splitlines()[1].split()[:5] == [
        delivery_id,
        "delivered",
        "1",
        hook_id,
        "npsSubmitted",
    ]
    shown = run("deliveries", "show", delivery_id, *where)
    assert "status: delivered\n" in shown.stdout.decode()
    assert "ATTEMPT  STARTED" in shown.stdout.decode()
    as_json = json.loads(run("deliveries", "show", delivery_id, *where, "--json").stdout)
    assert [a["status"] for a in as_json["attempt_log"]] == [200]
    assert run("deliveries", "show", delivery_id, *where, "--body").stdout == payload

    redelivered = run("deliveries", "redeliver", delivery_id, *where)
    assert (
        redelivered.stdout
        == f"{delivery_id} is pending again; a running worker sends it\n".encode()
    )
    pending = run("deliveries", "redeliver", delivery_id, *where)
    assert_one_line_error(pending, 1, "is still pending")
    run("worker", *where, "--allow-private", "--until-idle")
    assert [r.body for r in receiver.requests] == [payload, payload]

    purged = run("deliveries", "purge", *where, "--older-than", "0s", "--json")
    assert json.loads(purged.stdout)["purged"] == 1
    assert run("deliveries", "show", delivery_id, *where, "--body").stdout == b""


def test_deliveries_redeliver_failed_of_a_webhook(
    invoke: Callable[..., Any], store: tuple[Path, str], receiver: LocalReceiver
) -> None:
    """
    redeliver --webhook --since makes a webhook's failed deliveries pending again.
    """
    db, hook_id = store
    receiver.queue(400, 400)
    _enqueue(db, 2)
    invoke("worker", "--db", str(db), "--allow-private", "--until-idle")

    code, out, _ = invoke(
        "deliveries", "redeliver", "--webhook", hook_id, "--since", "1h", "--db", str(db)
    )
    json_code, json_out, _ = invoke(
        "deliveries",
        "redeliver",
        "--webhook",
        hook_id,
        "--since",
        "2000-01-01",
        "--until",
        "2000-01-02",
        "--db",
        str(db),
        "--json",
    )
    _, listed, _ = invoke("deliveries", "list", "--db", str(db), "--status", "pending", "--json")

    assert (code, out) == (0, "2 deliveries are pending again; a running worker sends them\n")
    assert (json_code, json.loads(json_out)) == (0, {"redelivered": 0})
    assert len(json.loads(listed)) == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["redeliver"], 2, "give a delivery ID, or --webhook ID --since WHEN"),
        (["redeliver", "dlv_1", "--webhook", "wh_1"], 2, "give a delivery ID, or"),
        (["redeliver", "--webhook", "wh_1"], 2, "--webhook needs --since WHEN"),
        (["redeliver", "dlv_1", "--since", "1d"], 2, "--since and --until go with --webhook"),
        (["redeliver", "dlv_1"], 3, "dlv_1"),
        (["redeliver", "--webhook", "wh_1", "--since", "1d"], 3, "wh_1"),
        (["redeliver", "--webhook", "WH", "--since", "yesterday"], 3, "--since: expected"),
        (["show", "dlv_1"], 3, "dlv_1"),
        (["purge", "--older-than", "99999999999999999999d"], 3, "--older-than: "),
        (["purge", "--older-than", "30d", "--no-admin"], 4, "admins only"),
        (["list", "--no-admin"], 4, "admins only"),
        (["enqueue", "--event", "npsSubmitted", "--payload", "nope.json"], 3, "--payload"),
    ],
)
def test_deliveries_bad_command_lines(
    invoke: Callable[..., Any], store: tuple[Path, str], args: list[str], code: int, message: str
) -> None:
    """
    Impossible combinations are usage errors (2), unknown ids and bad values bad input
    (3), and a non-admin is refused (4).
    """
    db, hook_id = store

    got, _, err = invoke(
        "deliveries", *[hook_id if a == "WH" else a for a in args], "--db", str(db)
    )

    assert got == code, err
    assert message in err


def test_deliveries_text_list_and_purge(
    invoke: Callable[..., Any], store: tuple[Path, str]
) -> None:
    """
    The text list shows the last status; purge says how many bodies it emptied.
    """
    db, _ = store
    _enqueue(db, 1)
    invoke("worker", "--db", str(db), "--allow-private", "--until-idle")

    _, listed, _ = invoke("deliveries", "list", "--db", str(db), "--limit", "1")
    code, purged, _ = invoke("deliveries", "purge", "--db", str(db), "--older-than", "2000-01-01")

    assert listed.splitlines()[1].endswith("HTTP 200")
    assert (code, purged) == (
        0,
        "purged the bodies of 0 deliveries finished before 2000-01-01T00:00:00Z\n",
    )


def test_deliveries_enqueue_json(invoke: Callable[..., Any], store: tuple[Path, str]) -> None:
    """
    enqueue --json lists one entry per subscribed webhook.
    """
    db, hook_id = store

    code, out, _ = invoke(
        "deliveries", "enqueue", "--db", str(db), "--event", "npsSubmitted", "--fresh", "--json"
    )

    result = json.loads(out)
    assert code == 0
    assert result["event"] == "npsSubmitted"
    assert [(d["webhook_id"], d["outcome"]) for d in result["deliveries"]] == [
        (hook_id, "pending")
    ]


def test_exclusions_commands(tmp_path: Path, store: tuple[Path, str]) -> None:
    """
    add, list and remove exclusions on the real script; a bad pattern is bad input.
    """
    db, _ = store
    where = ("--db", str(db), *ADMIN)

    added = run("exclusions", "add", "visitor", "*@test.example", *where, "--json")
    rule = json.loads(added.stdout)
    listed = run("exclusions", "list", *where)
    bad = run("exclusions", "add", "ip", "10.0.0.0/33", *where)
    removed = run("exclusions", "remove", rule["id"], *where)
    gone = run("exclusions", "remove", rule["id"], *where)

    assert (rule["kind"], rule["pattern"], rule["created_by"]) == (
        "visitor",
        "*@test.example",
        "ann",
    )
    assert listed.stdout.decode().splitlines()[1].split()[:3] == [
        rule["id"],
        "visitor",
        "*@test.example",
    ]
    assert_one_line_error(bad, 3, "PATTERN: ")
    assert removed.stdout == f"removed {rule['id']}\n".encode()
    assert_one_line_error(gone, 3, rule["id"])


def test_exclusions_text_and_json(invoke: Callable[..., Any], store: tuple[Path, str]) -> None:
    """
    add prints the rule; list --json and remove --json print JSON.
    """
    db, _ = store
    where = ("--db", str(db), *ADMIN)

    code, out, _ = invoke("exclusions", "add", "account", "acme-test", *where)
    rule_id = out.rsplit(" ", 1)[1].strip()
    _, listed, _ = invoke("exclusions", "list", *where, "--json")
    _, removed, _ = invoke("exclusions", "remove", rule_id, *where, "--json")

    assert (code, out) == (0, f"excluded account 'acme-test': {rule_id}\n")
    assert [e["id"] for e in json.loads(listed)] == [rule_id]
    assert json.loads(removed) == {"id": rule_id, "removed": True}


# -- the remaining branches, in-process ---------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["send", "--event", "x", "--retries", "21"],
        ["send", "--event", "x", "--retries", "x"],
        ["send", "--event", "x", "--max-wait", "0"],
        ["send", "--event", "x", "--max-wait", "soon"],
        ["send", "--event", "x", "--timeout", "31"],
        ["listen", "--status", "99"],
        ["listen", "--status", "ok"],
        ["listen", "--default-status", "600"],
        ["listen", "--exit-after", "0"],
        ["listen", "--exit-after", "x"],
        ["listen", "--port", "65536"],
        ["listen", "--port", "x"],
        ["verify", "--tolerance", "0"],
        ["verify", "--tolerance", "x"],
        ["worker", "--db", "x", "--concurrency", "0"],
        ["worker", "--db", "x", "--concurrency", "x"],
        ["worker", "--db", "x", "--poll-interval", "nan"],
        ["deliveries", "list", "--db", "x", "--limit", "0"],
        ["deliveries", "list", "--db", "x", "--limit", "x"],
        ["exclusions", "add", "country", "x", "--db", "x", "--actor", "a"],
        ["webhooks", "create", "--db", "x", "--name", "x", "--event", "e"],
    ],
    ids=" ".join,
)
def test_out_of_range_options_are_usage_errors(
    invoke: Callable[..., Any], args: list[str]
) -> None:
    """
    An option value of the wrong form or out of range is a usage error: exit code 2.
    """
    code, out, err = invoke(*args)

    assert code == 2
    assert out == ""
    assert "usage: pendo-webhooks" in err


def test_silence_stdout_points_stdout_at_devnull(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    After a broken pipe, what is still written to stdout goes nowhere.
    """
    with (tmp_path / "out").open("wb") as file:
        monkeypatch.setattr(sys, "stdout", type("Out", (), {"fileno": file.fileno})())
        cli._silence_stdout()
        os.write(file.fileno(), b"lost")

    assert (tmp_path / "out").read_bytes() == b""


def test_text_only_stdout_gets_decoded_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A stdout without a binary buffer (doctest's) gets the payload as text.
    """
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)

    common.Console().write_bytes(b'{"a":"\xc3\xa9"}')

    assert out.getvalue() == '{"a":"é"}'


def test_helpers() -> None:
    """
    The small readers and writers behave at their edges.
    """
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert common.parse_moment("2026-01-01T02:00:00+02:00", "w", now=now) == now
    with pytest.raises(ValidationError, match="too long ago"):
        common.parse_moment("999999999d", "w", now=now)
    assert common.safe_url("http://[::1/x") == "<unparseable URL>"
    assert common.format_duration(0.9996) == "1.0 s"
    assert common.format_duration(0.9994) == "999 ms"
    assert common._strip_newline("s\r\n") == "s"


def test_in_process_store_errors(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """
    A missing file, a directory, or a foreign file as --db: bad input, exit 3.
    """
    Path("dir.db").mkdir()
    Path("foreign.db").write_text("hello " * 200)

    for db, message in (
        ("missing.db", "--db: missing.db: no such file"),
        ("dir.db", "--db: dir.db is a directory"),
        ("foreign.db", "--db: foreign.db is not a usable SQLite database"),
    ):
        code, _, err = invoke("exclusions", "list", "--db", db, *ADMIN)
        assert (code, err.startswith(f"{ERROR}{message}")) == (3, True), err


def test_in_process_blocked_url_hint(invoke: Callable[..., Any]) -> None:
    """
    A refused URL's message says how to loosen the guard for local tests.
    """
    code, _, err = invoke("send", "https://127.0.0.1:9/", "--event", "npsSubmitted")

    assert code == 3
    assert err.endswith("(to try things locally: --allow-private, or --allow-http)\n")


def test_send_segment_message_too_large(invoke: Callable[..., Any]) -> None:
    """
    A Segment message over 32 KB is refused before anything is sent: exit 3.
    """
    code, out, err = invoke(
        "send",
        "http://127.0.0.1:9/",
        "--event",
        "trackEventReceived",
        "--segment",
        "wk",
        "--set",
        "event_properties.blob=" + "x" * 40_000,
        "--allow-private",
        "--json",
    )

    assert code == 3
    assert json.loads(out)["attempts"] == []
    assert err.splitlines()[-1] == f"{ERROR}not sent: payload too large: 40660 bytes > 32768"


def test_send_waits_until_the_retry_is_due(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    If a retry is not due yet when asked (a coarse clock), send waits a little and asks again.
    """
    calls: list[int] = []
    real = Dispatcher.run_due

    def late(self: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return [] if len(calls) == 1 else real(self, **kwargs)

    monkeypatch.setattr(Dispatcher, "run_due", late)
    with LocalReceiver(statuses=[503]) as receiver:
        code, _, _ = invoke(
            "send",
            receiver.url,
            "--event",
            "npsSubmitted",
            "--allow-private",
            "--max-wait",
            "0.01",
        )

    assert code == 0
    assert len(calls) == 2


def _signal_when_handled(sig: signal.Signals) -> threading.Thread:
    """
    Send *sig* to this process once a Python handler for it is installed.
    """

    def wait_and_kill() -> None:
        deadline = time.monotonic() + 20
        while not callable(signal.getsignal(sig)) and time.monotonic() < deadline:
            time.sleep(0.01)
        if callable(signal.getsignal(sig)):
            os.kill(os.getpid(), sig)

    thread = threading.Thread(target=wait_and_kill, daemon=True)
    thread.start()
    return thread


def test_listen_in_the_main_thread_stops_on_sigterm(invoke: Callable[..., Any]) -> None:
    """
    In the main thread ``listen`` handles SIGTERM itself, and puts the old handler back.
    """
    before = signal.getsignal(signal.SIGTERM)
    killer = _signal_when_handled(signal.SIGTERM)

    code, out, err = invoke("listen", "--port", "0", "--secret", "s")

    killer.join(10)
    assert code == 0
    assert "checking both signatures; answering 200; Ctrl-C to stop" in out
    assert err == "stopped after 0 requests; 0 failed verification\n"
    assert signal.getsignal(signal.SIGTERM) == before


def test_worker_in_the_main_thread_stops_on_sigterm(
    invoke: Callable[..., Any], store: tuple[Path, str]
) -> None:
    """
    The worker loop (Dispatcher.run_worker) stops on SIGTERM and exits 0.
    """
    db, _ = store
    killer = _signal_when_handled(signal.SIGTERM)

    code, _, err = invoke("worker", "--db", str(db), "--allow-private", "--poll-interval", "0.05")

    killer.join(10)
    assert code == 0
    assert err.endswith("0 pending\n")


def test_progress_lines_only_while_pending(capsys: pytest.CaptureFixture[str]) -> None:
    """
    The progress line shows only while something is pending; a store error skips a beat.
    """
    answers = iter([RuntimeError("store down"), 0, 3])
    printed = threading.Event()

    def pending() -> int:
        answer = next(answers, 3)
        if isinstance(answer, Exception):
            raise answer
        return answer

    console = common.Console()
    original = console.err

    def err(text: str) -> None:
        original(text)
        printed.set()

    console.err = err  # type: ignore[method-assign]
    counts = {"delivered": 1, "retrying": 2, "failed": 0}
    with _progress(console, 0.01, lambda: counts, pending):
        assert printed.wait(10)

    assert capsys.readouterr().err.splitlines()[0] == (
        "delivered 1, retrying 2, failed 0, pending 3"
    )


def test_listen_saves_and_prints_in_process(invoke: Callable[..., Any]) -> None:
    """
    In-process too: --save writes each request, and a verified one is said so.
    """
    url, thread, result = _listen_in_thread(
        invoke, "--secret", SECRET, "--save", "saved", "--exit-after", "1"
    )
    body, headers = signed_request(sample_event("accountCreated"), SECRET)

    post(url, body, headers)
    thread.join(30)

    code, out, _ = result[0]
    assert code == 0
    assert out.splitlines()[1].endswith("-> 200; signature verified")
    assert Path("saved/0001.body").read_bytes() == body
    assert "webhook-signature: v1," in Path("saved/0001.headers").read_text()


def test_text_outputs(invoke: Callable[..., Any], store: tuple[Path, str]) -> None:
    """
    The text (not --json) forms of list, show, enable, disable, delete, verify and purge.
    """
    db, hook_id = store
    where = ("--db", str(db), *ADMIN)
    _enqueue(db, 1)
    invoke("worker", "--db", str(db), "--allow-private", "--until-idle")
    _, listed, _ = invoke("deliveries", "list", "--db", str(db), "--json")
    delivery_id = json.loads(listed)[0]["id"]

    _, hooks, _ = invoke("webhooks", "list", *where)
    _, shown, _ = invoke("webhooks", "show", hook_id, *where, "--json")
    _, disabled, _ = invoke("webhooks", "disable", hook_id, *where)
    _, enabled, _ = invoke("webhooks", "enable", hook_id, *where, "--allow-private")
    _, delivery, _ = invoke("deliveries", "show", delivery_id, "--db", str(db))
    _, redelivered, _ = invoke("deliveries", "redeliver", delivery_id, "--db", str(db), "--json")
    _, rules, _ = invoke("exclusions", "list", *where)
    _, deleted, _ = invoke("webhooks", "delete", hook_id, *where, "--json")

    assert hooks.splitlines()[1].startswith(f"{hook_id}  yes")
    assert json.loads(shown)["id"] == hook_id
    assert disabled.startswith(f"disabled {hook_id} ('Lab', disabled")
    assert enabled.startswith(f"enabled {hook_id} ('Lab', enabled")
    assert "status: delivered\n" in delivery
    assert delivery.splitlines()[-1].split()[2:4] == ["HTTP", "200"]
    assert json.loads(redelivered) == {"redelivered": 1}
    assert rules == "ID  KIND  PATTERN  CREATED  BY\n"
    assert json.loads(deleted) == {"id": hook_id, "deleted": True}


def test_rotate_secret_json_and_generated(
    invoke: Callable[..., Any], store: tuple[Path, str]
) -> None:
    """
    rotate-secret can generate the new secret into a file, and print JSON.
    """
    db, hook_id = store

    code, out, err = invoke(
        "webhooks",
        "rotate-secret",
        hook_id,
        "--db",
        str(db),
        *ADMIN,
        "--generate-secret",
        "next.txt",
        "--grace",
        "0",
        "--json",
    )

    assert code == 0
    assert json.loads(out)["retired_secrets"] == 0
    assert err == "the new secret is in next.txt\n"
    assert Path("next.txt").read_text().startswith("whsec_")


def test_verify_json_in_process(invoke: Callable[..., Any]) -> None:
    """
    verify --json, valid and invalid, in-process.
    """
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET)

    ok = invoke("verify", "--secret", SECRET, "--json", *_header_args(headers), stdin=body)
    bad = invoke("verify", "--secret", "x", "--json", *_header_args(headers), stdin=body)

    assert (ok[0], json.loads(ok[1])["valid"]) == (0, True)
    assert (bad[0], json.loads(bad[1])["valid"]) == (1, False)


def test_more_in_process_forms(
    invoke: Callable[..., Any], store: tuple[Path, str], receiver: LocalReceiver
) -> None:
    """
    The remaining output forms of deliveries, exclusions, verify and send, in-process.
    """
    db, hook_id = store
    where = ("--db", str(db))
    payload = to_wire(sample_event("npsSubmitted"))

    code, out, _ = invoke("deliveries", "enqueue", *where, "--event", "npsSubmitted")
    delivery_id = out.split(" as ")[1].strip()
    assert (code, out) == (0, f"{hook_id}: pending as {delivery_id}\n")
    code, out, err = invoke("deliveries", "enqueue", *where, "--event", "guideDisplayed")
    assert (code, out) == (1, "")
    guide_id = sample_event("guideDisplayed").unique_id
    assert err == f"{ERROR}no enabled webhook took guideDisplayed {guide_id}\n"
    invoke("worker", *where, "--allow-private", "--until-idle")
    code, out, _ = invoke("deliveries", "show", delivery_id, *where, "--json")
    assert [a["verdict"] for a in json.loads(out)["attempt_log"]] == ["delivered"]
    assert invoke("deliveries", "show", delivery_id, *where, "--body")[1] == payload.decode()
    code, out, _ = invoke("deliveries", "redeliver", delivery_id, *where)
    assert out == f"{delivery_id} is pending again; a running worker sends it\n"
    invoke("worker", *where, "--allow-private", "--until-idle")
    code, out, _ = invoke("deliveries", "purge", *where, "--older-than", "0s", "--json")
    assert json.loads(out)["purged"] == 1

    code, out, _ = invoke("exclusions", "add", "ip", "203.0.113.0/24", *where, *ADMIN, "--json")
    rule_id = json.loads(out)["id"]
    assert invoke("exclusions", "remove", rule_id, *where, *ADMIN)[1] == f"removed {rule_id}\n"

    body, headers = signed_request(sample_event("npsSubmitted"), SECRET)
    code, _, err = invoke(
        "verify", "--secret", "x", "--tolerance", "60", *_header_args(headers), stdin=body
    )
    assert (code, err) == (
        1,
        f"{ERROR}signature invalid: webhook-signature: no signature matches\n",
    )

    receiver.queue(503)
    code, out, err = invoke(
        "send", receiver.url, "--event", "npsSubmitted", "--allow-private", "--retries", "0"
    )
    assert code == 1
    assert out.splitlines()[1].endswith("; gave up after 1 attempts")
    assert err == f"{ERROR}not delivered: HTTP 503, gave up after 1 attempts\n"


def test_listen_bad_signature_in_process(invoke: Callable[..., Any]) -> None:
    """
    In-process: a request that does not verify, with a body that is not an event either.
    """
    url, thread, result = _listen_in_thread(invoke, "--secret", SECRET, "--exit-after", "1")

    post(url, b"{}", {"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,x"})
    thread.join(30)

    code, out, _ = result[0]
    assert code == 1
    assert out.splitlines()[1].endswith(
        "-> 401; NOT verified: webhook-timestamp: too old; body: event: required"
    )


def test_sample_set_list_index_in_process() -> None:
    """
    A list element is reached by its index.
    """
    event = sample("guideDisplayed", ["guide_properties.steps.0.reset_at=0"])

    assert event.guide_properties.steps[0].reset_at.timestamp() == 0  # type: ignore[union-attr]
