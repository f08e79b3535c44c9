"""
``pendo-webhooks portal``: the real console script in a subprocess on 127.0.0.1, and its
branches in-process through ``main()``.
"""

from __future__ import annotations

import io
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pendo_webhooks import Dispatcher, SQLiteStorage, WebhookRegistry
from pendo_webhooks.cli import _common as common
from pendo_webhooks.cli import main
from pendo_webhooks.cli._portal import InFlight, bind_address
from pendo_webhooks.events import new_unique_id
from pendo_webhooks.registry import Actor
from pendo_webhooks.testing import LocalReceiver, sample_event

from .portal_pages import Page, create_form


pytestmark = pytest.mark.slow

ADMIN = Actor("setup", is_admin=True)
ERROR = "pendo-webhooks: error: "


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("pendo-webhooks")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pendo_webhooks"]


CLI = _cli_command()


@pytest.fixture(autouse=True)
def _no_cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(common.ENV_DB, raising=False)
    monkeypatch.delenv(common.ENV_ACTOR, raising=False)


@pytest.fixture(name="db")
def _db(tmp_path: Path) -> Path:
    """
    A store with one webhook, "NPS to CRM", disabled.
    """
    path = tmp_path / "webhooks.sqlite3"
    with SQLiteStorage(path) as storage:
        WebhookRegistry(storage).create(
            ADMIN,
            name="NPS to CRM",
            url="https://hooks.example.com/nps",
            categories=["npsSubmitted"],
        )
    return path


def _line(stream: Any, timeout: float) -> bytes:
    """
    One line from a subprocess's pipe, waiting at most *timeout* seconds for it.
    """
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"nothing within {timeout} s"
    line: bytes = stream.readline()
    return line


def _stderr_until(proc: subprocess.Popen[bytes], *wanted: bytes, timeout: float = 30) -> bytes:
    """
    Read *proc*'s stderr until it holds each of *wanted* as often as given (a request is
    logged once answered), at most *timeout* seconds; return what was read.
    """
    assert proc.stderr is not None
    got = b""
    deadline = time.monotonic() + timeout
    while any(got.count(w) < wanted.count(w) for w in wanted):
        ready, _, _ = select.select([proc.stderr], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        got += chunk
    return got


def _read_all(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got


# -- the real script -----------------------------------------------------------------------------


@pytest.fixture(name="portal")
def _portal(db: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str]]]:
    """
    Start ``pendo-webhooks portal --db DB --port 0 ...``; return the process and its login
    link, read from its stdout.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], str]:
        proc = subprocess.Popen(
            [*CLI, "portal", "--db", str(db), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started.append(proc)
        link = _line(proc.stdout, timeout=60).decode().strip()
        assert link.startswith("http://127.0.0.1:"), link
        return proc, link

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # also closes the pipes


def test_log_in_once_see_the_list_and_stop_on_sigint(
    portal: Callable[..., tuple[subprocess.Popen[bytes], str]], db: Path
) -> None:
    """
    The link logs one browser in (cookie, then the list); a second use is refused, as is a
    browser without the cookie; SIGINT stops the server cleanly with exit code 0. The token
    is printed once, on stdout, and neither it nor the session cookie is ever logged.
    """
    proc, link = portal()
    base = link.partition("/login?")[0]
    token = link.partition("token=")[2]

    browser = requests.Session()
    listed = browser.get(link, timeout=10)
    [cookie] = list(browser.cookies)
    stranger = requests.get(base + "/", timeout=10)
    again = requests.get(link, timeout=10)
    detail_links = [u for u in Page(listed.text).urls if u.startswith("/webhooks/")]
    detail = browser.get(base + detail_links[0], timeout=10)
    rebound = browser.get(base + "/", headers={"Host": "evil.example"}, timeout=10)
    # The stranger's and the rebound one's.
    early = _stderr_until(proc, b" GET /login 303\n", b" GET / 403\n", b" GET / 403\n")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    err = early + err

    assert [r.status_code for r in listed.history] == [303]
    assert listed.status_code == 200
    assert listed.url == base + "/"
    assert Page(listed.text).heading.strip() == "Webhooks"
    assert "NPS to CRM" in listed.text
    assert listed.headers["X-Frame-Options"] == "DENY"
    assert cookie.name.startswith("pendo_webhooks_portal_")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert not cookie.secure
    assert detail.status_code == 200
    assert "NPS to CRM" in detail.text
    assert stranger.status_code == 403
    assert "open the login link printed by `pendo-webhooks portal`" in stranger.text
    assert "NPS to CRM" not in stranger.text
    assert again.status_code == 403
    assert "used already" in again.text
    assert rebound.status_code == 403
    assert "NPS to CRM" not in rebound.text

    assert proc.returncode == 0, err.decode()
    assert out == b""  # the link was read before; nothing more came
    text = err.decode()
    lines = text.splitlines()
    assert lines[0] == (
        f"pendo-webhooks: serving {db} at {base}/ (this machine only); open this link once "
        "to log in, Ctrl-C to stop:"
    )
    assert lines[-1] == "portal stopped"
    assert any(line.endswith(" GET /login 303") for line in lines)
    assert any(line.endswith(" GET / 403") for line in lines)
    assert token not in text
    assert cookie.value is not None
    assert cookie.value not in text
    assert "Traceback" not in text


def test_sigterm_stops_it_too(portal: Callable[..., tuple[subprocess.Popen[bytes], str]]) -> None:
    proc, _ = portal()

    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 0
    assert err.decode().endswith("portal stopped\n")


def test_a_malformed_request_line_does_not_log_the_token(
    portal: Callable[..., tuple[subprocess.Popen[bytes], str]],
) -> None:
    """
    The server's own error messages quote the request line: none of them is logged; a
    path's control characters (a terminal's escapes) are not written to stderr.
    """
    proc, link = portal()
    port = int(link.split(":")[2].split("/")[0])
    token = link.partition("token=")[2]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /login?token={token} HTTP/9.9 extra\r\n\r\n".encode())
        answer = _read_all(sock)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /\x1b[2J?token=x HTTP/1.0\r\n\r\n")
        escaped = _read_all(sock)  # all: a request is logged once its answer is sent

    early = _stderr_until(proc, b" - - 400\n", b" GET /?[2J 403\n")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    err = early + err

    assert b"Error code: 400" in answer
    assert token not in err.decode()
    assert "- 400" in err.decode()
    assert escaped.startswith(b"HTTP/1.0 403")
    assert " GET /?[2J 403\n" in err.decode()
    assert "\x1b" not in err.decode()


def test_the_script_lists_the_command() -> None:
    proc = subprocess.run([*CLI, "--help"], capture_output=True, timeout=60, check=False)

    assert "    portal " in proc.stdout.decode()
    assert "serve its settings page" in " ".join(proc.stdout.decode().split())


def test_help_says_loopback_and_how_to_stop() -> None:
    proc = subprocess.run([*CLI, "portal", "--help"], capture_output=True, timeout=60, check=False)

    out = " ".join(proc.stdout.decode().split())
    assert proc.returncode == 0
    assert "--host HOST the loopback address to serve on" in out
    assert "prints a login link that works once" in out
    assert "for listen, worker and portal, Ctrl-C and SIGTERM are the normal way" in out


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::", "example.com", "127.1"])
def test_a_host_that_is_not_loopback_is_refused(tmp_path: Path, host: str) -> None:
    """
    Exit code 2 and one line that says why, before the store is opened or created.
    """
    db = tmp_path / "new.sqlite3"

    proc = subprocess.run(
        [*CLI, "portal", "--db", str(db), "--host", host, "--port", "0"],
        capture_output=True,
        timeout=60,
        check=False,
    )

    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert lines == [
        (
            f"{ERROR}--host {host} is not a loopback address: the portal lets whoever opens its "
            "login link manage the webhooks, so it serves this machine only (127.0.0.1, another "
            "127.x.y.z, ::1 or localhost); to serve other people, mount "
            "pendo_webhooks.portal.Portal in your own web application"
        )
    ]
    assert not db.exists()


# -- in-process, for the branches ----------------------------------------------------------------


class _Stdout(io.StringIO):
    """
    A stdout that a test thread can wait on, line by line.
    """

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            written = super().write(text)
            self.changed.notify_all()
            return written

    def wait_line(self, timeout: float) -> str:
        with self.changed:
            assert self.changed.wait_for(lambda: "\n" in self.getvalue(), timeout)
            return self.getvalue().splitlines()[0]


@pytest.fixture(name="serve")
def _serve(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, list[Any]]]:
    """
    Run ``main(["portal", ...])`` in this thread; meanwhile, in another, call *visit* with
    the login link, then send SIGTERM. Return the exit code, stderr and what *visit* returned.
    """

    def serve(
        *args: str, visit: Callable[[str], Any] = lambda link: None
    ) -> tuple[int, str, list[Any]]:
        stdout = _Stdout()
        monkeypatch.setattr(sys, "stdout", stdout)
        results: list[Any] = []

        def visitor() -> None:
            try:
                results.append(visit(stdout.wait_line(timeout=60)))
            except BaseException as exc:
                results.append(exc)
            finally:
                if callable(signal.getsignal(signal.SIGTERM)):  # ours, installed
                    os.kill(os.getpid(), signal.SIGTERM)

        thread = threading.Thread(target=visitor)
        thread.start()
        code = main(["portal", "--port", "0", *args])
        thread.join(60)
        _, err = capsys.readouterr()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return code, err, results

    return serve


def test_in_process_serves_until_sigterm(
    serve: Callable[..., tuple[int, str, list[Any]]], db: Path
) -> None:
    before = signal.getsignal(signal.SIGTERM)

    def visit(link: str) -> tuple[int, str, int, str]:
        base = link.partition("/login?")[0]
        with requests.Session() as browser:
            page = browser.get(link, timeout=10)
            form = Page(browser.get(f"{base}/new", timeout=10).text)
            made = browser.post(
                f"{base}/new", data=create_form(form.hidden["csrf_token"], "Guides"), timeout=10
            )
            return page.status_code, page.text, made.status_code, made.text

    code, err, [(status, html, made, created)] = serve("--db", str(db), visit=visit)

    assert code == 0
    assert status == 200
    assert "NPS to CRM" in html
    assert made == 200
    assert "Webhook created" in created
    assert err.endswith("portal stopped\n")
    assert signal.getsignal(signal.SIGTERM) == before
    with SQLiteStorage(db) as storage:
        hooks = WebhookRegistry(storage).list(ADMIN)
    assert [(h.name, h.created_by) for h in hooks] == [
        ("NPS to CRM", "setup"),
        ("Guides", "portal-cli"),
    ]


def test_in_process_on_ipv6_loopback(
    serve: Callable[..., tuple[int, str, list[Any]]], db: Path
) -> None:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:  # pragma: no cover - a machine without IPv6
        pytest.skip("no IPv6 loopback here")

    code, err, [link] = serve("--db", str(db), "--host", "::1", visit=lambda link: link)

    assert code == 0
    assert link.startswith("http://[::1]:")
    assert " at http://[::1]:" in err


def test_localhost_is_127_0_0_1_without_a_lookup(
    serve: Callable[..., tuple[int, str, list[Any]]], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_lookups(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("looked up a name")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookups)
    monkeypatch.setattr(socket, "gethostbyaddr", no_lookups)
    monkeypatch.setattr(socket, "getfqdn", no_lookups)

    code, _, [link] = serve("--db", str(db), "--host", "localhost", visit=lambda link: link)

    assert code == 0
    assert link.startswith("http://127.0.0.1:")


def test_with_worker_it_delivers_the_outbox(
    serve: Callable[..., tuple[int, str, list[Any]]], tmp_path: Path
) -> None:
    """
    --worker delivers what is pending while the page is served, and says what it did.
    """
    db = tmp_path / "webhooks.sqlite3"
    with LocalReceiver() as receiver:
        with SQLiteStorage(db) as storage:
            registry = WebhookRegistry(storage, destinations=_local())
            hook = registry.create(
                ADMIN, name="local", url=receiver.url, categories=["npsSubmitted"]
            )
            registry.enable(ADMIN, hook.id)
            with Dispatcher(registry) as dispatcher:
                dispatcher.enqueue(sample_event("npsSubmitted", unique_id=new_unique_id()))

        code, err, [delivered] = serve(
            "--db",
            str(db),
            "--worker",
            "--allow-private",
            visit=lambda _: receiver.wait_for(1, 30),
        )

    assert code == 0
    assert delivered is True
    assert "(this machine only, delivering its outbox)" in err
    assert (
        "worker stopped: delivered 1, retried 0, failed 0, dead 0, cancelled 0; 0 pending" in err
    )


def _local() -> Any:
    from pendo_webhooks.guard import DestinationPolicy  # noqa: PLC0415

    return DestinationPolicy.local_testing()


def test_a_port_in_use_is_bad_input(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]

        code = main(["portal", "--db", str(db), "--port", str(port), "--worker"])

    [line] = capsys.readouterr().err.splitlines()  # the worker never started
    assert code == 3
    assert line.startswith(f"{ERROR}--port: cannot serve on 127.0.0.1 port {port} (")


def test_the_host_is_checked_in_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["portal", "--db", str(tmp_path / "x.sqlite3"), "--host", "192.168.1.1"])

    assert code == 2
    assert "--host 192.168.1.1 is not a loopback address" in capsys.readouterr().err


def test_without_jinja2_it_says_which_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pendo_webhooks.portal", None)

    code = main(["portal", "--db", str(db)])

    assert code == 3
    assert capsys.readouterr().err == (
        f"{ERROR}the portal needs Jinja2: pip install 'pendo-webhooks[portal]'\n"
    )


def test_a_new_file_is_made(
    serve: Callable[..., tuple[int, str, list[Any]]], tmp_path: Path
) -> None:
    db = tmp_path / "new.sqlite3"

    code, _, _ = serve("--db", str(db))

    assert code == 0
    assert db.exists()


def test_the_database_is_needed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["portal"]) == 2
    assert "no database given" in capsys.readouterr().err


def test_bind_address() -> None:
    assert bind_address("127.0.0.1") == "127.0.0.1"
    assert bind_address("127.255.0.9") == "127.255.0.9"
    assert bind_address("LOCALHOST") == "127.0.0.1"
    assert bind_address("0:0:0:0:0:0:0:1") == "::1"


# -- waiting for the requests under way ----------------------------------------------------------


def test_in_flight_counts_until_the_body_is_closed() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            return iter([b"a", b"b"])

        def close(self) -> None:
            closed.append(True)

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        return Body()

    counted = InFlight(app)
    body = counted({}, lambda *a: None)

    assert not counted.wait_idle(0)
    assert b"".join(body) == b"ab"
    body.close()  # type: ignore[attr-defined]
    assert closed == [True]
    assert counted.wait_idle(0)

    plain = InFlight(lambda environ, start_response: [b"x"])
    plain({}, lambda *a: None).close()  # type: ignore[attr-defined]
    assert plain.wait_idle(0)


def test_in_flight_counts_an_app_that_raises() -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("boom")

    counted = InFlight(app)
    with pytest.raises(RuntimeError):
        counted({}, lambda *a: None)

    assert counted.wait_idle(0)


def test_a_stop_waits_for_a_slow_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A request being answered when the stop comes is finished before the store closes.
    """
    release = threading.Event()
    entered = threading.Event()

    def slow(environ: Any, start_response: Any) -> Iterable[bytes]:
        entered.set()
        release.wait(10)
        start_response("200 OK", [])
        return [b"done"]

    counted = InFlight(slow)
    waited: list[bool] = []
    caller = threading.Thread(target=lambda: counted({}, lambda *a: None).close())  # type: ignore[attr-defined]
    caller.start()
    assert entered.wait(10)
    waiter = threading.Thread(target=lambda: waited.append(counted.wait_idle(10)))
    waiter.start()
    release.set()
    caller.join(10)
    waiter.join(10)

    assert waited == [True]
