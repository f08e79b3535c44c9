"""
The console script for daily use: ``PENDO_WEBHOOKS_DB``/``PENDO_WEBHOOKS_ACTOR``, reads
without ``--actor``, the address guard recorded in the store, ``--since`` forms, "did you
mean", ``worker --json``, and errors in the CLI's words.

Run in-process through ``main()`` (for coverage), from a fresh directory each time.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pendo_webhooks import SQLiteStorage, WebhookRegistry
from pendo_webhooks.cli import _common as common
from pendo_webhooks.cli import main
from pendo_webhooks.cli._worker import _progress
from pendo_webhooks.exceptions import InvalidDestination, UnknownEventType, ValidationError
from pendo_webhooks.registry import Actor
from pendo_webhooks.testing import LocalReceiver


pytestmark = pytest.mark.slow

ERROR = "pendo-webhooks: error: "
SRC = Path(__file__).resolve().parent.parent / "src" / "pendo_webhooks"
NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=timezone.utc)

Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def _no_cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own PENDO_WEBHOOKS_DB/ACTOR must not change what these tests see.
    monkeypatch.delenv(common.ENV_DB, raising=False)
    monkeypatch.delenv(common.ENV_ACTOR, raising=False)


@pytest.fixture(name="invoke")
def _invoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Invoke:
    """
    Run ``main()`` in this process from *tmp_path*; returns (code, stdout, stderr).
    """
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return invoke


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as receiver:
        yield receiver


def one_error(err: str) -> str:
    """
    The single error line of *err*, without its prefix.
    """
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(ERROR), lines
    return lines[0][len(ERROR) :]


def create(invoke: Invoke, *args: str, url: str = "https://hooks.example.com/in") -> str:
    code, out, err = invoke(
        "webhooks", "create", "--name", "Lab", "--url", url, "--event", "npsSubmitted",
        "--json", *args,
    )  # fmt: skip
    assert code == 0, err
    hook_id: str = json.loads(out)["id"]
    return hook_id


# -- PENDO_WEBHOOKS_DB and PENDO_WEBHOOKS_ACTOR -----------------------------------------------


def test_the_environment_stands_in_for_db_and_actor(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    With both variables set, no store command needs --db or --actor; the change is
    audited under the variable's actor.
    """
    monkeypatch.setenv("PENDO_WEBHOOKS_DB", "env.db")
    monkeypatch.setenv("PENDO_WEBHOOKS_ACTOR", "eve@example.com")

    hook_id = create(invoke)
    code, out, _ = invoke("webhooks", "show", hook_id, "--json")

    assert code == 0
    assert json.loads(out)["created_by"] == "eve@example.com"
    assert Path("env.db").exists()
    code, out, _ = invoke("worker", "--until-idle", "--json")
    assert (code, json.loads(out.splitlines()[0])["db"]) == (0, "env.db")


def test_an_option_wins_over_its_variable(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    --db and --actor, when given, are used instead of the variables.
    """
    monkeypatch.setenv("PENDO_WEBHOOKS_DB", "env.db")
    monkeypatch.setenv("PENDO_WEBHOOKS_ACTOR", "eve@example.com")

    hook_id = create(invoke, "--db", "flag.db", "--actor", "fred@example.com")
    _, out, _ = invoke("webhooks", "show", hook_id, "--db", "flag.db", "--json")

    assert json.loads(out)["created_by"] == "fred@example.com"
    assert not Path("env.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["webhooks", "list"],
        ["webhooks", "create", "--actor", "a", "--name", "x", "--url", "https://x.example.com/",
         "--event", "npsSubmitted"],
        ["deliveries", "list"],
        ["exclusions", "list"],
        ["worker", "--until-idle"],
    ],
)  # fmt: skip
def test_no_database_is_one_line_naming_both_ways(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """
    Without --db or PENDO_WEBHOOKS_DB (an empty one counts as unset): one line, exit 2.
    """
    monkeypatch.setenv("PENDO_WEBHOOKS_DB", "  ")

    code, out, err = invoke(*args)

    assert (code, out) == (2, "")
    assert one_error(err) == "no database given: use --db FILE, or set PENDO_WEBHOOKS_DB"


@pytest.mark.parametrize(
    "args",
    [
        ["webhooks", "create", "--name", "x", "--url", "https://x.example.com/", "--event",
         "npsSubmitted"],
        ["webhooks", "enable", "wh_1"],
        ["webhooks", "delete", "wh_1"],
        ["exclusions", "add", "visitor", "bot@test.example"],
        ["exclusions", "remove", "exc_1"],
    ],
)  # fmt: skip
def test_a_change_needs_an_actor(invoke: Invoke, args: list[str]) -> None:
    """
    A change without --actor or PENDO_WEBHOOKS_ACTOR: one line naming both, exit 2, and
    the store is not touched.
    """
    code, _, err = invoke(*args, "--db", "hooks.db")

    assert code == 2
    assert one_error(err).startswith("no actor given: use --actor ID, or set PENDO_WEBHOOKS_ACTOR")
    assert not Path("hooks.db").exists()


@pytest.mark.parametrize("option", ["--db", "--actor"])
def test_an_empty_option_is_bad_input(invoke: Invoke, option: str) -> None:
    """
    --db '' or --actor '' (a script's unset variable) is refused in the CLI's words.
    """
    args = {"--db": "hooks.db", "--actor": "ann", option: " "}
    code, _, err = invoke(
        "webhooks", "create", "--db", args["--db"], "--actor", args["--actor"], "--name", "x",
        "--url", "https://x.example.com/", "--event", "npsSubmitted",
    )  # fmt: skip

    assert code == 3
    assert one_error(err) == f"{option}: must not be empty"
    assert not Path("hooks.db").exists()


def test_the_help_names_the_variables(invoke: Invoke) -> None:
    """
    The top-level help and every store command's --db/--actor help name the variables.
    """
    for args in (["webhooks", "list", "--help"], ["worker", "--help"]):
        code, out, _ = invoke(*args)
        assert code == 0
        assert "$PENDO_WEBHOOKS_DB" in out
    _, top, _ = invoke("--help")
    assert "PENDO_WEBHOOKS_DB" in top
    assert "PENDO_WEBHOOKS_ACTOR" in top
    _, changes, _ = invoke("webhooks", "create", "--help")
    _, reads, _ = invoke("webhooks", "list", "--help")
    assert "(default: $PENDO_WEBHOOKS_ACTOR)" in " ".join(changes.split())
    assert "(default: $PENDO_WEBHOOKS_ACTOR, else cli)" in " ".join(reads.split())


# -- reads need no --actor ----------------------------------------------------------------------


def test_reads_need_no_actor(invoke: Invoke) -> None:
    """
    webhooks list/show, exclusions list and deliveries list work without --actor: they
    read as the actor ``cli``, an administrator, through the registry's policy.
    """
    db = ("--db", "hooks.db")
    hook_id = create(invoke, *db, "--actor", "ann")
    assert (
        invoke("exclusions", "add", "visitor", "bot@test.example", *db, "--actor", "ann")[0] == 0
    )

    listed = invoke("webhooks", "list", *db, "--json")
    shown = invoke("webhooks", "show", hook_id, *db, "--json")
    excluded = invoke("exclusions", "list", *db, "--json")
    deliveries = invoke("deliveries", "list", *db, "--json")

    assert [code for code, _, _ in (listed, shown, excluded, deliveries)] == [0, 0, 0, 0]
    assert [h["id"] for h in json.loads(listed[1])] == [hook_id]
    assert json.loads(shown[1])["id"] == hook_id
    assert [e["pattern"] for e in json.loads(excluded[1])] == ["bot@test.example"]
    assert json.loads(deliveries[1]) == []


@pytest.mark.parametrize(
    "args", [["webhooks", "list"], ["webhooks", "show", "wh_1"], ["exclusions", "list"]]
)
def test_reads_still_go_through_the_policy(invoke: Invoke, args: list[str]) -> None:
    """
    --no-admin reads as a non-admin, whom the default admins-only policy refuses: exit 4.
    """
    create(invoke, "--db", "hooks.db", "--actor", "ann")

    code, _, err = invoke(*args, "--db", "hooks.db", "--no-admin")

    assert code == 4
    assert one_error(err).startswith("actor 'cli' may not read")


# -- the address guard, recorded in the store ---------------------------------------------------


def test_allow_private_is_recorded_in_the_store(invoke: Invoke, receiver: LocalReceiver) -> None:
    """
    A webhook created with --allow-private is enabled, tested and delivered by the worker
    without the option again; each command that relies on the record says so once.
    """
    db = ("--db", "hooks.db", "--actor", "ann")
    code, out, err = invoke(
        "webhooks", "create", *db, "--name", "Lab", "--url", receiver.url, "--event",
        "npsSubmitted", "--allow-private", "--json",
    )  # fmt: skip
    hook_id = json.loads(out)["id"]
    assert code == 0
    assert err.splitlines()[0] == (
        "pendo-webhooks: note: hooks.db now allows private destinations (loopback, plain "
        "http, any port) for every command on it, until --no-allow-private"
    )
    assert "generated secret is shown this once" in err.splitlines()[1]
    relied = (
        "pendo-webhooks: note: hooks.db allows private destinations (loopback, plain http, "
        "any port), as --allow-private recorded (--no-allow-private takes it back)\n"
    )

    enabled = invoke("webhooks", "enable", hook_id, *db)
    tested = invoke("webhooks", "test", hook_id, *db)
    enqueued = invoke("deliveries", "enqueue", "--db", "hooks.db", "--event", "npsSubmitted")
    worked = invoke("worker", "--db", "hooks.db", "--until-idle", "--json")
    listed = invoke("webhooks", "list", "--db", "hooks.db")
    again = invoke("webhooks", "enable", hook_id, *db, "--allow-private")

    assert (enabled[0], enabled[2]) == (0, relied)
    assert (tested[0], tested[2]) == (0, relied)
    assert (enqueued[0], enqueued[2]) == (0, "")  # stores only: nothing to check or reach
    assert (worked[0], worked[2]) == (0, relied)
    assert json.loads(worked[1].splitlines()[-1])["delivered"] == 1
    assert (listed[0], listed[2]) == (0, "")  # a read says nothing
    assert (again[0], again[2]) == (0, "")  # given, and already recorded: nothing to say
    assert len(receiver.requests) == 2  # the test, and the worker's delivery


def test_no_allow_private_takes_it_back(invoke: Invoke, receiver: LocalReceiver) -> None:
    """
    --no-allow-private records the store strict again: the local URL is refused.
    """
    db = ("--db", "hooks.db", "--actor", "ann")
    hook_id = create(invoke, *db, "--allow-private", url=receiver.url)

    code, _, err = invoke("webhooks", "disable", hook_id, *db, "--no-allow-private")
    assert code == 0
    assert err == (
        "pendo-webhooks: note: hooks.db no longer allows private destinations (loopback, "
        "plain http, any port)\n"
    )
    code, _, err = invoke("webhooks", "enable", hook_id, *db)

    assert code == 3
    assert one_error(err).startswith("--url: scheme 'http' is not allowed; use https (or ")


def test_allow_http_is_recorded_like_allow_private(invoke: Invoke) -> None:
    """
    --allow-http is recorded too: later commands accept plain http to public hosts.
    """
    db = ("--db", "hooks.db", "--actor", "ann")
    hook_id = create(invoke, *db, "--allow-http", url="http://hooks.example.com/in")

    code, _, err = invoke("webhooks", "enable", hook_id, *db)
    refused = invoke("webhooks", "update", hook_id, *db, "--url", "http://127.0.0.1/")

    assert code == 0
    assert err == (
        "pendo-webhooks: note: hooks.db allows plain http destinations, as --allow-http "
        "recorded (--no-allow-http takes it back)\n"
    )
    assert refused[0] == 3
    assert "--url: host '127.0.0.1' is not a public address" in refused[2]


def test_the_library_ignores_the_record(invoke: Invoke, tmp_path: Path) -> None:
    """
    Only the console script reads the record: a registry made by a host application on
    the same file keeps its own, strict, default policy.
    """
    hook_id = create(
        invoke, "--db", "hooks.db", "--actor", "ann", "--allow-private",
        url="http://127.0.0.1:9/",
    )  # fmt: skip

    with SQLiteStorage(tmp_path / "hooks.db") as storage:
        registry = WebhookRegistry(storage)
        with pytest.raises(InvalidDestination):
            registry.enable(Actor("ann", is_admin=True), hook_id)


def test_only_an_admin_changes_the_record(invoke: Invoke) -> None:
    """
    Recording is a change to the store: --no-admin is refused (exit 4), and nothing is
    recorded.
    """
    create(invoke, "--db", "hooks.db", "--actor", "ann")

    code, _, err = invoke("webhooks", "list", "--db", "hooks.db", "--no-admin", "--allow-private")
    after = invoke("webhooks", "create", "--db", "hooks.db", "--actor", "ann", "--name", "x",
                   "--url", "http://127.0.0.1:9/", "--event", "npsSubmitted")  # fmt: skip

    assert code == 4
    assert "may not update" in one_error(err)
    assert after[0] == 3


# -- deliveries redeliver --since ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("7d ago", NOW - timedelta(days=7)),
        ("7 d ago", NOW - timedelta(days=7)),
        ("7 days ago", NOW - timedelta(days=7)),
        ("1 day", NOW - timedelta(days=1)),
        ("12h", NOW - timedelta(hours=12)),
        ("12 hours ago", NOW - timedelta(hours=12)),
        ("30m", NOW - timedelta(minutes=30)),
        ("30 min ago", NOW - timedelta(minutes=30)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2w", NOW - timedelta(weeks=2)),
        ("  7D AGO ", NOW - timedelta(days=7)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=timezone.utc)),
        ("2026-03-01T09:30", datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)),
        ("2026-03-01T09:30:00Z", datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)),
        ("2026-03-01T09:30:00+02:00", datetime(2026, 3, 1, 7, 30, tzinfo=timezone.utc)),
        ("2026-03-01 09:30:00", datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)),
    ],
)
def test_every_moment_the_help_promises(text: str, expected: datetime) -> None:
    """
    --since (and --until, --older-than) read ISO dates and times and ages, "ago" or not.
    """
    assert common.parse_moment(text, "--since", now=NOW) == expected


@pytest.mark.parametrize(
    "text", ["", "ago", "7", "7 ago", "d7", "7y", "7d from now", "-7d", "yesterday", "2026-13-01"]
)
def test_a_bad_moment_is_one_clear_line(text: str) -> None:
    """
    Anything else is a ValidationError naming the option and the accepted forms.
    """
    with pytest.raises(ValidationError) as raised:
        common.parse_moment(text, "--since", now=NOW)

    assert str(raised.value) == f"--since: expected {common.MOMENT_FORMS}; got {text!r}"


def test_a_moment_too_long_ago() -> None:
    """
    An age beyond the calendar is said so, not a traceback.
    """
    with pytest.raises(ValidationError, match="too long ago"):
        common.parse_moment("99999999999d ago", "--since", now=NOW)


def test_a_duration_too_long() -> None:
    """
    --grace's durations (a count of seconds or of a unit) say a huge one is too long.
    """
    with pytest.raises(ValidationError, match="is too long"):
        common.parse_duration("99999999999999d", "--grace")


def test_redeliver_since_seven_days_ago(invoke: Invoke) -> None:
    """
    The form the help shows, "7d ago", works on the command line; a bad one is bad input
    (exit 3) before the store is read.
    """
    db = ("--db", "hooks.db")
    hook_id = create(invoke, *db, "--actor", "ann")

    code, out, _ = invoke(
        "deliveries", "redeliver", "--webhook", hook_id, "--since", "7d ago", *db, "--json"
    )
    bad = invoke("deliveries", "redeliver", "--webhook", "wh_x", "--since", "last week", *db)

    assert (code, json.loads(out)) == (0, {"redelivered": 0})
    assert bad[0] == 3
    assert one_error(bad[2]).startswith("--since: expected an ISO-8601 date or time")


def test_redeliver_help_shows_the_forms(invoke: Invoke) -> None:
    code, out, _ = invoke("deliveries", "redeliver", "--help")

    text = " ".join(out.split())
    assert code == 0
    for form in ("7d", "12h", "30m", "'7d ago'", "ISO-8601"):
        assert form in text
        if form != "ISO-8601":
            common.parse_moment(form.strip("'"), "--since", now=NOW)


# -- did you mean -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["sample", "npsSubmited"],
        ["send", "https://hooks.example.com/", "--event", "npsSubmited"],
        ["deliveries", "enqueue", "--db", "hooks.db", "--event", "npsSubmited"],
        ["webhooks", "create", "--db", "hooks.db", "--actor", "ann", "--name", "x", "--url",
         "https://x.example.com/", "--event", "npsDisplayed,npsSubmited"],
        ["webhooks", "update", "wh_1", "--db", "hooks.db", "--actor", "ann", "--event",
         "npsSubmited"],
        ["webhooks", "list", "--db", "hooks.db", "--event", "npsSubmited"],
        ["webhooks", "test", "wh_1", "--db", "hooks.db", "--actor", "ann", "--event",
         "npsSubmited"],
    ],
)  # fmt: skip
def test_did_you_mean_wherever_an_event_is_taken(invoke: Invoke, args: list[str]) -> None:
    """
    A mistyped event type or category gets the closest name, exit 3.
    """
    create(invoke, "--db", "hooks.db", "--actor", "ann")

    code, _, err = invoke(*args)

    assert code == 3
    assert one_error(err) == "unknown event type: 'npsSubmited'; did you mean 'npsSubmitted'?"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("npssubmitted", "npsSubmitted"),
        ("NPS_SUBMITTED", "npsSubmitted"),
        ("guideDisplay", "guideDisplayed"),
        ("trackEvent", "trackEventReceived"),
        ("visitorCreate", "visitorCreated"),
        ("parentChildAccount", "parentChildAccountCreated"),
        ("pollsubmited", "pollSubmitted"),
    ],
)
def test_close_event_names(typed: str, meant: str) -> None:
    assert common.close_event(typed) == meant


def test_nothing_close_lists_them_all(invoke: Invoke) -> None:
    code, _, err = invoke("sample", "pageViewed")

    assert code == 3
    assert one_error(err).startswith("unknown event type: 'pageViewed' (one of: guideDisplayed,")


def test_event_category_accepts_wire_names_only() -> None:
    assert common.event_category("npsSubmitted").value == "npsSubmitted"
    with pytest.raises(UnknownEventType):
        common.event_category("NPS_SUBMITTED")


# -- worker --json ------------------------------------------------------------------------------


def test_worker_json_lines(invoke: Invoke, receiver: LocalReceiver) -> None:
    """
    worker --json prints one JSON object per line to stdout, with the documented fields,
    and nothing on stderr.
    """
    db = ("--db", "hooks.db")
    create(invoke, *db, "--actor", "ann", "--allow-private", "--enable", url=receiver.url)
    invoke("deliveries", "enqueue", *db, "--event", "npsSubmitted")

    code, out, err = invoke("worker", *db, "--until-idle", "--json", "--concurrency", "2")

    started, stopped = (json.loads(line) for line in out.splitlines())
    assert code == 0
    assert err.startswith("pendo-webhooks: note: hooks.db allows private destinations")
    assert len(err.splitlines()) == 1
    assert started == {
        "event": "started",
        "worker": started["worker"],
        "db": "hooks.db",
        "concurrency": 2,
        "until": "idle",
    }
    assert re.fullmatch(r"[0-9a-f]{12}-\d+", started["worker"])
    assert stopped == {
        "event": "stopped",
        "delivered": 1,
        "retried": 0,
        "failed": 0,
        "dead": 0,
        "cancelled": 0,
        "pending": 0,
        "timed_out": False,
    }


def test_worker_json_progress(capsys: pytest.CaptureFixture[str]) -> None:
    """
    With --json, a progress line is a JSON object on stdout.
    """
    console = common.Console()
    printed = threading.Event()
    original = console.out

    def out(text: str = "") -> None:
        original(text)
        printed.set()

    console.out = out  # type: ignore[method-assign]
    counts = {"delivered": 1, "retrying": 2, "failed": 0}
    with _progress(console, 0.01, lambda: counts, lambda: 3, as_json=True):
        assert printed.wait(10)

    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[0]) == {
        "event": "progress",
        "delivered": 1,
        "retrying": 2,
        "failed": 0,
        "pending": 3,
    }
    assert captured.err == ""


def test_worker_help_documents_the_json_fields(invoke: Invoke) -> None:
    _, out, _ = invoke("worker", "--help")

    for field in ("started", "progress", "stopped", "timed_out", "pending", "concurrency"):
        assert field in out


# -- errors in the CLI's words ------------------------------------------------------------------


def _library_phrases() -> list[tuple[str, str]]:
    """
    Every string constant of the library (not the CLI, not reprs) that names a keyword
    argument set to a value, as ``allow_http=True``: (file, text).
    """
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "cli" in path.relative_to(SRC).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        found += [
            (path.name, node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and re.search(r"\b[a-z_]+=(True|False|None)\b", node.value)
        ]
    return found


#: Library messages naming a Python argument that no CLI command can meet, and why.
NOT_SHOWN_BY_THE_CLI = {
    "_postgres_core.py": "PostgreSQL only; the console script's stores are SQLite files",
}


def test_every_python_argument_in_a_message_has_cli_words() -> None:
    """
    Each library message that tells the caller to set a keyword argument is translated
    to the CLI's option (or cannot reach the CLI, for a stated reason).
    """
    phrases = _library_phrases()

    assert phrases  # the scan finds what it looks for
    for file, text in phrases:
        if file in NOT_SHOWN_BY_THE_CLI:
            continue
        translated = common.cli_words(text)
        assert not re.search(r"\b[a-z_]+=(True|False|None)\b", translated), (file, text)
        assert "--" in translated, (file, text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["webhooks", "create", "--url", "http://hooks.example.com/", "--event",
             "npsSubmitted", "--name", "x"],
            ("--url: scheme 'http' is not allowed; use https (or --allow-http, or "
            "--allow-private to try things locally)"),
        ),
        (
            ["webhooks", "create", "--segment", "wk", "--segment-endpoint",
             "http://api.example.com", "--event", "npsSubmitted", "--name", "x"],
            ("--segment-endpoint: scheme 'http' is not allowed; use https (or --allow-http, "
            "or --allow-private to try things locally)"),
        ),
        (
            ["webhooks", "create", "--url", "https://hooks.example.com/", "--event",
             "npsSubmitted", "--name", " "],
            "--name: must not be empty",
        ),
        (
            ["webhooks", "create", "--url", "https://hooks.example.com/", "--event",
             "npsSubmitted", "--name", "x", "--signature-header", "no spaces"],
            "--signature-header: must be an HTTP header name",
        ),
        (
            ["webhooks", "create", "--url", "https://hooks.example.com/", "--event",
             "npsSubmitted", "--name", "x", "--header", "Content-Type: text/plain"],
            "--header: ",
        ),
        (
            ["webhooks", "create", "--url", "https://10.0.0.1/", "--event", "npsSubmitted",
             "--name", "x"],
            ("--url: host '10.0.0.1' is not a public address (to try things locally: "
            "--allow-private, or --allow-http)"),
        ),
        (
            ["exclusions", "add", "ip", "10.0.0.0/33"],
            "PATTERN: ",
        ),
    ],
)  # fmt: skip
def test_store_errors_name_the_options(invoke: Invoke, args: list[str], message: str) -> None:
    """
    A library ValidationError shown by a store command names the option that set it.
    """
    create(invoke, "--db", "hooks.db", "--actor", "ann")

    code, _, err = invoke(*args, "--db", "hooks.db", "--actor", "ann")

    assert code == 3
    assert one_error(err).startswith(message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://hooks.example.com/"], "URL: scheme 'http' is not allowed; use https (or --"),
        (["https://hooks.example.com/", "--signature-header", "a b"], "--signature-header: "),
        (["https://hooks.example.com/", "--header", "webhook-id: x"], "--header: "),
        (["http://api.example.com", "--segment", "wk"], "URL: scheme 'http' is not allowed"),
    ],
)  # fmt: skip
def test_send_errors_name_the_options(invoke: Invoke, args: list[str], message: str) -> None:
    code, _, err = invoke("send", *args, "--event", "npsSubmitted")

    assert code == 3
    assert one_error(err).startswith(message)


def test_a_set_key_is_not_mistaken_for_an_option(invoke: Invoke) -> None:
    """
    Only the registry's errors are translated: a --set key called "url" stays a key.
    """
    code, _, err = invoke("send", "https://hooks.example.com/", "--event", "npsSubmitted",
                          "--set", "url=x")  # fmt: skip

    assert code == 3
    assert one_error(err).startswith("url: ")


def test_a_memory_database_is_refused_in_the_clis_words(invoke: Invoke) -> None:
    code, _, err = invoke(
        "webhooks", "create", "--db", ":memory:", "--actor", "ann", "--name", "x", "--url",
        "https://x.example.com/", "--event", "npsSubmitted",
    )  # fmt: skip

    assert code == 3
    assert one_error(err) == "--db: ':memory:' is not the name of a database file"
