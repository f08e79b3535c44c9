"""The pytest plugin: fixtures for teams that send or receive Pendo webhooks."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pendo_webhooks.pytest_plugin


pytest_plugins = ["pytester"]

# Once the package is installed with its pytest11 entry point, every pytest session loads
# the plugin by itself (and a second "-p" for the same module would be refused).
_INSTALLED = bool(importlib.metadata.entry_points(group="pytest11", name="pendo_webhooks"))
PLUGIN: tuple[str, ...] = () if _INSTALLED else ("-p", "pendo_webhooks.pytest_plugin")


def test_sample_fixtures(pytester: pytest.Pytester) -> None:
    """
    pendo_sample_event is the sample_event factory; pendo_sample_events holds all nine types.
    """
    pytester.makepyfile(
        """
        import pytest
        from pendo_webhooks.events import EventCategory
        from pendo_webhooks.exceptions import ValidationError

        def test_one(pendo_sample_event):
            assert pendo_sample_event("npsSubmitted").nps.rating == 9
            assert pendo_sample_event("visitorCreated", sample_group=3).sample_group == 3
            with pytest.raises(ValidationError):
                pendo_sample_event("npsSubmitted", nps=None)

        def test_all(pendo_sample_events):
            assert [e.category for e in pendo_sample_events] == list(EventCategory)
        """
    )
    result = pytester.runpytest(*PLUGIN, "--strict-markers")
    result.assert_outcomes(passed=2)


def test_verify_event_fixture(pytester: pytest.Pytester) -> None:
    """
    pendo_verify_event verifies and parses in one call, on the frozen clock when there is one.
    """
    pytester.makepyfile(
        """
        import pytest
        from pendo_webhooks.events import NpsSubmitted
        from pendo_webhooks.exceptions import SignatureError, UnexpectedEventType

        def test_real_clock(pendo_verify_event, pendo_signed_request, pendo_sample_event):
            body, headers = pendo_signed_request(pendo_sample_event("npsSubmitted"), "s3cr3t")
            assert pendo_verify_event(body, headers, "s3cr3t", expect=NpsSubmitted).nps.rating == 9
            with pytest.raises(SignatureError):
                pendo_verify_event(body, headers, "not it")

        def test_frozen_clock(pendo_verify_event, pendo_signed_request, pendo_frozen_clock):
            from pendo_webhooks.testing import sample_event
            event = sample_event("guideDisplayed")
            body, headers = pendo_signed_request(event, "s3cr3t", clock=pendo_frozen_clock)
            assert pendo_verify_event(body, headers, "s3cr3t") == event
            with pytest.raises(UnexpectedEventType):
                pendo_verify_event(body, headers, "s3cr3t", expect=NpsSubmitted)
            pendo_frozen_clock.advance(301)
            with pytest.raises(SignatureError, match="too old"):
                pendo_verify_event(body, headers, "s3cr3t")
        """
    )
    result = pytester.runpytest(*PLUGIN, "--strict-markers")
    result.assert_outcomes(passed=2)


def test_receiver_fixture_is_configured_by_the_marker(pytester: pytest.Pytester) -> None:
    """
    @pytest.mark.pendo_receiver passes its keywords to the LocalReceiver; the closest wins.
    """
    pytester.makepyfile(
        """
        import urllib.error, urllib.request
        import pytest

        pytestmark = pytest.mark.pendo_receiver(statuses=[500], default_status=202)

        def _post(url, body, headers):
            try:
                return urllib.request.urlopen(
                    urllib.request.Request(url, data=body, headers=headers), timeout=10
                ).status
            except urllib.error.HTTPError as exc:
                return exc.code

        @pytest.mark.pendo_receiver(secrets=["s3cr3t"], statuses=[503])
        def test_verifies(pendo_receiver, pendo_signed_request, pendo_sample_event):
            event = pendo_sample_event("guideDisplayed")
            body, headers = pendo_signed_request(event, "s3cr3t")
            assert _post(pendo_receiver.url, body, headers) == 503
            assert _post(pendo_receiver.url, body, headers) == 202
            assert [(r.verified, r.event) for r in pendo_receiver.requests] == [(True, event)] * 2

        def test_module_marker(pendo_receiver):
            assert _post(pendo_receiver.url, b"", {}) == 500
            assert pendo_receiver.requests[0].verified is None
        """
    )
    result = pytester.runpytest(*PLUGIN, "--strict-markers")
    result.assert_outcomes(passed=2)


def test_receiver_marker_takes_keywords_only(pytester: pytest.Pytester) -> None:
    """
    Positional marker arguments are a usage error, reported before the test runs.
    """
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pendo_receiver([503])
        def test_it(pendo_receiver):
            pass
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*takes keyword arguments only*"])


def test_the_receiver_is_closed_after_the_test(pytester: pytest.Pytester) -> None:
    """
    The fixture's receiver stops when its test ends: the next test cannot connect to it.
    """
    pytester.makepyfile(
        """
        import socket
        import pytest

        seen = []

        def test_first(pendo_receiver):
            seen.append(pendo_receiver)

        def test_second():
            host, port = seen[0].url[len("http://"):-1].split(":")
            with pytest.raises(OSError):
                socket.create_connection((host, int(port)), timeout=1).close()
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=2)


def test_the_receiver_follows_the_frozen_clock(pytester: pytest.Pytester) -> None:
    """
    With pendo_frozen_clock in the test, the receiver's replay window and times use that clock.
    """
    pytester.makepyfile(
        """
        import urllib.request
        import pytest

        @pytest.mark.pendo_receiver(secrets=["s"])
        def test_it(pendo_receiver, pendo_frozen_clock, pendo_signed_request, pendo_sample_event):
            event = pendo_sample_event("npsSubmitted")
            at = int(pendo_frozen_clock().timestamp())
            body, headers = pendo_signed_request(event, "s", timestamp=at)
            request = urllib.request.Request(pendo_receiver.url, data=body, headers=headers)
            urllib.request.urlopen(request, timeout=10).read()
            (got,) = pendo_receiver.requests
            assert got.verified, got.error
            assert got.received_at == pendo_frozen_clock()
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)


def test_recording_transport_and_frozen_clock_fixtures(pytester: pytest.Pytester) -> None:
    """
    pendo_recording_transport and pendo_frozen_clock are fresh fakes for each test.
    """
    pytester.makepyfile(
        """
        from datetime import timedelta
        from pendo_webhooks.transports import OutgoingRequest

        def test_one(pendo_recording_transport, pendo_frozen_clock):
            request = OutgoingRequest(url="https://hooks.example.com/", body=b"{}")
            assert pendo_recording_transport.send(request).status == 200
            assert len(pendo_recording_transport.requests) == 1
            start = pendo_frozen_clock()
            pendo_frozen_clock.sleep(5)
            assert pendo_frozen_clock() - start == timedelta(seconds=5)

        def test_two(pendo_recording_transport, pendo_frozen_clock):
            assert pendo_recording_transport.requests == []
            assert pendo_frozen_clock.sleeps == []
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=2)


def test_local_transport_reaches_the_receiver(pytester: pytest.Pytester) -> None:
    """
    pendo_local_transport may send to loopback over HTTP, where the default policy may not.
    """
    pytester.makepyfile(
        """
        import pytest
        from pendo_webhooks.exceptions import DestinationBlocked
        from pendo_webhooks.transports import OutgoingRequest, RequestsTransport

        def test_send(pendo_local_transport, pendo_receiver):
            request = OutgoingRequest(url=pendo_receiver.url, body=b"{}")
            assert pendo_local_transport.send(request).status == 200
            with RequestsTransport() as strict, pytest.raises(DestinationBlocked):
                strict.send(request)
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)


def test_a_session_without_the_fixtures_is_untouched(pytester: pytest.Pytester) -> None:
    """
    With the plugin loaded, a test that uses none of its fixtures imports none of the toolkit.
    """
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            assert "pendo_webhooks.testing._receiver" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_importing_the_plugin_adds_nothing_to_the_package() -> None:
    """
    Beyond pytest and the package, the plugin module imports nothing (no server, no helper).
    """
    code = (
        "import sys, pytest, pendo_webhooks; before = set(sys.modules); "
        "import pendo_webhooks.pytest_plugin; "
        "print(sorted(set(sys.modules) - before))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "['pendo_webhooks.pytest_plugin']"


def _fake_distribution(root: Path) -> Path:
    """
    Declare the plugin's entry point in a dist-info on *root*, as the installed package does.
    """
    dist = root / "pendo_webhooks_plugin_probe-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pendo-webhooks-plugin-probe\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[pytest11]\npendo_webhooks = pendo_webhooks.pytest_plugin\n"
    )
    return root


@pytest.mark.slow
def test_the_entry_point_registers_the_fixtures(tmp_path: Path) -> None:
    """
    Through a pytest11 entry point the fixtures work with no -p; -p no:pendo_webhooks removes them.
    """
    site = _fake_distribution(tmp_path / "site")
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_hook.py").write_text(
        "def test_it(pendo_sample_events):\n    assert len(pendo_sample_events) == 9\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra],
            capture_output=True,
            text=True,
            check=False,
            cwd=project,
            env=env,
            timeout=120,
        )

    with_plugin = run()
    assert with_plugin.returncode == 0, with_plugin.stdout + with_plugin.stderr
    assert "1 passed" in with_plugin.stdout
    without = run("-p", "no:pendo_webhooks")
    assert without.returncode == 1
    assert "fixture 'pendo_sample_events' not found" in without.stdout


def test_the_module_runs_completely_on_import() -> None:
    """
    Reloading the plugin re-runs its definitions (pytest may import it before coverage starts).
    """
    module = importlib.reload(pendo_webhooks.pytest_plugin)
    assert callable(module.pytest_configure)
    assert set(module.__all__) <= set(dir(module))
