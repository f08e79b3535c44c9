"""The examples run, as a new user would run them, and print what the README promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_quickstart_runs_the_whole_life_of_a_webhook(tmp_path: Path) -> None:
    """
    The quick start prints WIRE.md's known answers, delivers every type, and rides out an outage.
    """
    done = _run("quickstart.py", "--db", str(tmp_path / "demo.sqlite3"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "7bdd459447ab0e01e83bed0056d94c6f95528a1b1fe1d218b6ffddb1bb9870ff" in out
    assert (
        "X-Pendo-Signature: fec6901b52720e8fa4977fc73b4c3b331dd5921572c913c1bd41fa9614acb282"
        in out
    )
    assert "webhook-signature: v1,EdToaLZ0I/yXF1GDZK0yTA3ERU+fz1i2HhtT98bmBwQ=" in out
    assert out.count("delivered\n") >= 9
    assert "delivered after 3 attempts" in out
    assert "receiver: 13 requests, 13 with valid signatures" in out
    assert "the outage: 3 requests, one webhook-id, same bytes: True" in out
    assert "s3cr3t-with-special-chars" not in out
    assert (tmp_path / "demo.sqlite3").exists()
