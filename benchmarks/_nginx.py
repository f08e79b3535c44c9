"""
nginx as a benchmark receiver: a C server on loopback, so the receiver is not what is measured.

Shared by ``bench_dispatch.py`` and ``bench_segment.py``. :func:`nginx` starts the
distribution's ``nginx`` (Debian: ``apt-get install nginx-light``) in the foreground, as a
child of this process, on a free loopback port, with a temporary prefix directory holding its
configuration, pid file, error log and temp directories: it never reads or writes a system
path. It answers every request ``200`` with a fixed body (empty by default), keeps
connections alive for as long as the client wants and writes no access log. The context
manager stops it (and removes the directory) on the way out, also on Ctrl-C or an error;
:func:`exit_on_sigterm` makes ``kill <pid>`` take the same way out.

Where nginx cannot run (not installed, or it failed to start) :func:`nginx` raises
:class:`NginxUnavailable`, whose message says why and how to install it; the scripts print
it and go on with their Python receivers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


INSTALL_HINT = "install it with `apt-get install nginx-light` (Debian/Ubuntu)"

#: Where Debian puts the binary; /usr/sbin is often not on a non-root user's PATH.
_KNOWN_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


class NginxUnavailable(RuntimeError):
    """nginx cannot serve this run; the message says why (and how to install it)."""


def find_nginx(binary: str | None = None) -> str:
    """
    The nginx binary to run: *binary* if given, else ``$NGINX``, ``nginx`` on ``PATH`` or a
    known install path. Raises :class:`NginxUnavailable` if there is none.
    """
    candidates = [binary] if binary else []
    if not binary:
        candidates += [os.environ.get("NGINX") or "", shutil.which("nginx") or "", *_KNOWN_PATHS]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    looked = binary or ", ".join(["$NGINX", "nginx on PATH", *_KNOWN_PATHS])
    raise NginxUnavailable(f"nginx is not installed (looked for {looked}); {INSTALL_HINT}")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def config(prefix: Path, port: int, body: str = "", content_type: str = "text/plain") -> str:
    """
    The whole nginx.conf: one worker, loopback only, every path inside *prefix*.

    ``return 200`` reads and discards the request body, so a keep-alive connection stays
    usable after a POST of any size up to ``client_max_body_size``.
    """
    answer = f"return 200 {_quote(body)};" if body else "return 200;"
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
# Written by benchmarks/_nginx.py for one benchmark run; removed afterwards.
worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
{temp}
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    client_max_body_size 64m;
    client_body_buffer_size 1m;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} backlog=512;
        location / {{
            default_type {content_type};
            {answer}
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGTERM: the master stops its worker first), then SIGKILL if stuck."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(process: subprocess.Popen[bytes], port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while process.poll() is None and time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.01)
    return False


@contextlib.contextmanager
def nginx(
    body: str = "",
    *,
    content_type: str = "text/plain",
    path: str = "/hook",
    binary: str | None = None,
    start_within: float = 10.0,
) -> Iterator[str]:
    """
    Run nginx answering ``200`` with *body* on a free loopback port; yield its URL (+ *path*).

    Raises :class:`NginxUnavailable` (before yielding) if nginx is missing or does not start.
    """
    executable = find_nginx(binary)
    prefix = Path(tempfile.mkdtemp(prefix="bench_nginx_"))
    process: subprocess.Popen[bytes] | None = None
    try:
        reason = ""
        for _ in range(3):  # another process may take the free port before nginx binds it
            port = _free_port()
            conf = prefix / "nginx.conf"
            conf.write_text(config(prefix, port, body, content_type))
            # -e: the error log before the configuration is read (the default is a root path).
            log = prefix / "error.log"
            with log.open("ab") as stderr:
                process = subprocess.Popen(
                    [executable, "-p", f"{prefix}/", "-c", str(conf), "-e", str(log)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            if _wait_listening(process, port, start_within):
                break
            _stop(process)
            found = log.read_text(errors="replace").strip()
            exited = process.returncode
            reason = (
                found.splitlines()[-1]
                if found
                else f"it exited with status {exited}"
                if exited is not None and exited >= 0
                else f"it did not listen on port {port} within {start_within:g} s"
            )
            process = None
            if "Address already in use" not in reason:
                break
        if process is None:
            raise NginxUnavailable(f"{executable} failed to start: {reason}")
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(prefix, ignore_errors=True)


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit, so the ``finally`` blocks stop nginx as Ctrl-C does."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
