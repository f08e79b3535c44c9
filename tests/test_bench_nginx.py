"""
The benchmarks' nginx launcher (benchmarks/_nginx.py): its skip path, its config, its cleanup.

No timing is measured here; the benchmarks themselves print figures only.
"""

from __future__ import annotations

import http.client
import importlib.util
import shutil
import socket
import sys
import tempfile
import urllib.parse
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).parent.parent / "benchmarks" / "_nginx.py"
    spec = importlib.util.spec_from_file_location("bench_nginx_launcher", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


launcher = _load()


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the launcher's temporary prefix directories go, so a test can see them."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_a_missing_binary_says_why_and_how_to_install(temp_root: Path) -> None:
    with (
        pytest.raises(launcher.NginxUnavailable, match="not installed") as caught,
        launcher.nginx(binary=str(temp_root / "no-such-nginx")),
    ):
        pytest.fail("yielded without nginx")
    assert "apt-get install nginx-light" in str(caught.value)
    assert list(temp_root.iterdir()) == []


def test_no_nginx_anywhere_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("NGINX", raising=False)
    monkeypatch.setattr(launcher, "_KNOWN_PATHS", (str(tmp_path / "sbin" / "nginx"),))
    with pytest.raises(launcher.NginxUnavailable, match="apt-get install nginx-light"):
        launcher.find_nginx()


def test_nginx_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "my-nginx"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("NGINX", str(binary))
    assert launcher.find_nginx() == str(binary)


def test_a_binary_that_does_not_start_is_skipped_with_its_reason(temp_root: Path) -> None:
    binary = temp_root.parent / "broken-nginx"
    binary.write_text("#!/bin/sh\necho 'nginx: [emerg] something is wrong' >&2\nexit 1\n")
    binary.chmod(0o755)
    with (
        pytest.raises(launcher.NginxUnavailable, match=r"failed to start: .*something is wrong"),
        launcher.nginx(binary=str(binary)),
    ):
        pytest.fail("yielded without a listening nginx")
    assert list(temp_root.iterdir()) == []


def test_a_silent_exit_reports_its_status(temp_root: Path) -> None:
    binary = temp_root.parent / "quiet-nginx"
    binary.write_text("#!/bin/sh\nexit 3\n")
    binary.chmod(0o755)
    with (
        pytest.raises(launcher.NginxUnavailable, match="exited with status 3"),
        launcher.nginx(binary=str(binary)),
    ):
        pytest.fail("yielded without a listening nginx")


def test_the_config_stays_inside_its_prefix(tmp_path: Path) -> None:
    text = launcher.config(tmp_path, 18080, '{"success":true}', "application/json")
    assert "listen 127.0.0.1:18080" in text
    assert "access_log off;" in text
    assert "keepalive_requests 1000000;" in text
    assert "daemon off;" in text
    assert """return 200 '{"success":true}';""" in text
    assert "default_type application/json;" in text
    words = [word.rstrip(";") for word in text.split()]
    paths = [word for word in words if word.startswith("/") and word != "/"]  # not location /
    assert paths
    assert all(path.startswith(str(tmp_path)) for path in paths), paths


def test_an_empty_body_is_a_bare_return() -> None:
    text = launcher.config(Path("/p"), 1, "")
    assert "return 200;" in text


def test_quotes_in_the_body_are_escaped() -> None:
    text = launcher.config(Path("/p"), 1, "it's")
    assert r"return 200 'it\'s';" in text


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed (apt-get install nginx-light)",
)
def test_nginx_answers_keeps_alive_and_is_gone_afterwards(temp_root: Path) -> None:
    with launcher.nginx('{"success":true}', content_type="application/json") as url:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
        try:
            for size in (917, 500_000, 917):  # one connection: the body is read and discarded
                connection.request("POST", parts.path, body=b"x" * size)
                response = connection.getresponse()
                assert response.status == 200
                assert response.read() == b'{"success":true}'
                assert response.getheader("Content-Type") == "application/json"
        finally:
            connection.close()
        assert len(list(temp_root.iterdir())) == 1
    assert list(temp_root.iterdir()) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", parts.port)) != 0
