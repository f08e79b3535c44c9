"""
docs/walkthrough.md, re-run: its commands, in its two terminals, give its output.

The page's ````console title="Terminal N"```` blocks are replayed in order. Terminal 1's
first block starts the receiver; its later blocks are what the receiver prints meanwhile
(and, after ``^C``, what it says when stopped). Terminal 2's blocks are ``$ command`` lines,
each followed by its output (stdout and stderr, as a terminal shows them), run in one shell
so that ``echo $?`` sees the previous command. Lines are compared exactly once times,
latencies, waits, random ids, the port and the padding of table columns (as wide as the
port makes them) are masked.
"""

from __future__ import annotations

import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import attrs
import pytest


pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parent.parent / "docs" / "walkthrough.md"
#: The port the page uses; the test uses a free one and masks it.
PAGE_PORT = "8000"
_BLOCK = re.compile(r'^```console title="Terminal (?P<n>[12])"\n(?P<body>.*?)^```$', re.M | re.S)
_MARKER = "@@@ next command @@@"
_MASKS = (
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "HH:MM:SS"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "TIME"),
    (re.compile(r"\b\d+(\.\d+)? (ms|s|min)\b"), r"N \2"),
    (re.compile(r"\b(wh|dlv|exc)_[A-Za-z0-9_-]{24}(?![A-Za-z0-9_-])"), r"\1_ID"),
    (re.compile(r"^worker [0-9a-f]{12}-\d+ "), "worker OWNER "),
    # A table's columns are as wide as their widest cell, which may show the port.
    (re.compile(r" {2,}"), "  "),
)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("pendo-webhooks")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pendo_webhooks"]


@attrs.frozen
class Block:
    """
    One console block of the page: which terminal, and its lines.
    """

    terminal: int
    lines: list[str]

    def commands(self) -> list[tuple[str, list[str]]]:
        """
        The ``$ command`` lines, each with the output lines that follow it.
        """
        steps: list[tuple[str, list[str]]] = []
        for line in self.lines:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        return steps


def blocks() -> list[Block]:
    """
    The page's terminal blocks, in order.
    """
    text = PAGE.read_text(encoding="utf-8")
    return [Block(int(m["n"]), m["body"].rstrip("\n").split("\n")) for m in _BLOCK.finditer(text)]


def mask(line: str, port: str) -> str:
    """
    Hide what changes from run to run: the port, times, latencies, waits and random ids.
    """
    line = line.replace(f":{port}/", f":{PAGE_PORT}/").replace(f":{port};", f":{PAGE_PORT};")
    for pattern, replacement in _MASKS:
        line = pattern.sub(replacement, line)
    return line


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for raw in stream:  # type: ignore[attr-defined]
        into.put(raw.decode().rstrip("\n"))


def run_terminal_2(block: Block, port: str, cwd: Path) -> list[tuple[str, list[str]]]:
    """
    Run the block's commands in one bash shell; return each command with its output lines.
    """
    cli = " ".join(shlex.quote(part) for part in _cli())
    script = [f'pendo-webhooks() {{ {cli} "$@"; }}', "exec 2>&1"]
    for command, _ in block.commands():
        script.append(f"__status=$?; printf '\\n{_MARKER}\\n'; (exit $__status)")
        script.append(command.replace(f":{PAGE_PORT}/", f":{port}/"))
    proc = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        capture_output=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    chunks = proc.stdout.decode().split(f"\n{_MARKER}\n")[1:]
    return [
        (command, chunk.rstrip("\n").split("\n") if chunk.strip("\n") else [])
        for (command, _), chunk in zip(block.commands(), chunks, strict=True)
    ]


@pytest.fixture(autouse=True)
def _no_cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The page sets the variables it uses; the developer's own must not leak in.
    monkeypatch.delenv("PENDO_WEBHOOKS_DB", raising=False)
    monkeypatch.delenv("PENDO_WEBHOOKS_ACTOR", raising=False)


def test_the_page_has_both_terminals() -> None:
    """
    The walkthrough starts the receiver in terminal 1 and sends from terminal 2.
    """
    found = blocks()
    first_in_terminal_1 = next(b for b in found if b.terminal == 1)

    assert found[0].terminal == 2
    assert first_in_terminal_1.lines[0].startswith("$ pendo-webhooks listen ")
    assert any(b.terminal == 2 and "| pendo-webhooks send" in "\n".join(b.lines) for b in found)
    assert found[-1].lines[0].startswith("^C")


def test_walkthrough_replays(tmp_path: Path) -> None:
    """
    Replaying the page gives the page's output: a 503 rehearsed and retried, signatures
    verified by the receiver and by ``verify``, the guard's refusal, a store and a worker.
    """
    port = free_port()
    page = blocks()
    listen_block = next(b for b in page if b.terminal == 1)
    listen_command = listen_block.lines[0][2:].replace(f"--port {PAGE_PORT}", f"--port {port}")
    args = shlex.split(listen_command)
    assert args[0] == "pendo-webhooks"
    listener = subprocess.Popen(
        [*_cli(), *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    printed: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(listener.stdout, printed), daemon=True)
    reader.start()
    try:
        for block in page:
            if block is listen_block:
                expected = block.lines[1:]
                got = [printed.get(timeout=30) for _ in expected]
                assert [mask(g, port) for g in got] == [mask(e, port) for e in expected]
            elif block.terminal == 1 and block.lines[0].startswith("^C"):
                listener.send_signal(signal.SIGINT)
                _, err = listener.communicate(timeout=30)
                expected = [block.lines[0][2:], *block.lines[1:]]
                assert err.decode().splitlines() == expected
                assert listener.returncode == 0
            elif block.terminal == 1:
                got = [printed.get(timeout=30) for _ in block.lines]
                assert [mask(g, port) for g in got] == [mask(e, port) for e in block.lines]
            else:
                for (command, expected), (_, got) in zip(
                    block.commands(), run_terminal_2(block, port, tmp_path), strict=True
                ):
                    assert [mask(g, port) for g in got] == [mask(e, port) for e in expected], (
                        command
                    )
        assert printed.empty()
    finally:
        if listener.poll() is None:
            listener.kill()
        listener.wait(10)
        reader.join(10)  # it stops at the end of the output; then the pipes can be closed
        for pipe in (listener.stdout, listener.stderr):
            if pipe is not None:
                pipe.close()
