"""
pytest fixtures for teams that send or receive Pendo webhooks; registered as a pytest plugin.

Installing pendo-webhooks makes these fixtures available in every test session (the
``pendo_webhooks`` entry point in the ``pytest11`` group); nothing is imported from
pendo-webhooks until a test asks for one of them, so a session that does not use them
pays nothing. Disable the plugin with ``-p no:pendo_webhooks``.

Fixtures (all prefixed ``pendo_``, so they do not clash with yours):

* ``pendo_sample_event``: the :func:`~pendo_webhooks.testing.sample_event` factory.
* ``pendo_sample_events``: one sample event of each of the nine types.
* ``pendo_signed_request``: the :func:`~pendo_webhooks.testing.signed_request` factory,
  ``(event, secrets) -> (body, headers)`` signed exactly as the sender signs.
* ``pendo_verify_event``: :func:`~pendo_webhooks.signing.verify_event`, the one call a
  receiver's handler makes to verify a request and parse its event: ``(body, headers,
  secrets, expect=..., ...)``. When the test also uses ``pendo_frozen_clock``, signature
  timestamps are checked against that clock (sign with ``clock=pendo_frozen_clock`` then).
* ``pendo_receiver``: a started :class:`~pendo_webhooks.testing.LocalReceiver`, closed
  after the test. Configure it with ``@pytest.mark.pendo_receiver(secrets=[...],
  statuses=[503, 200], ...)`` (any :class:`~pendo_webhooks.testing.LocalReceiver`
  argument). When the test also uses ``pendo_frozen_clock``, the receiver checks
  signature timestamps against that clock.
* ``pendo_local_transport``: a :class:`~pendo_webhooks.transports.RequestsTransport`
  allowed to reach loopback over plain HTTP
  (:meth:`~pendo_webhooks.guard.DestinationPolicy.local_testing`), closed after the test.
* ``pendo_frozen_clock`` and ``pendo_recording_transport``: a fresh
  :class:`~pendo_webhooks.testing.FrozenClock` and
  :class:`~pendo_webhooks.testing.RecordingTransport`.
"""

# Every import of pendo_webhooks is inside a fixture, so loading the plugin costs nothing.
# ruff: noqa: PLC0415

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest


if TYPE_CHECKING:
    from .events import Event
    from .testing import FrozenClock, LocalReceiver, RecordingTransport, SignedRequest
    from .transports import RequestsTransport

__all__ = [
    "pendo_frozen_clock",
    "pendo_local_transport",
    "pendo_receiver",
    "pendo_recording_transport",
    "pendo_sample_event",
    "pendo_sample_events",
    "pendo_signed_request",
    "pendo_verify_event",
    "pytest_configure",
]

_MARKER = "pendo_receiver"


def pytest_configure(config: pytest.Config) -> None:
    """
    Register the ``pendo_receiver`` marker, so ``--strict-markers`` accepts it.
    """
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**kwargs): arguments for the pendo_receiver fixture's LocalReceiver "
        "(secrets=, statuses=, default_status=, invalid_status=, accept_unverified=, "
        "write_key=, ...)",
    )


@pytest.fixture
def pendo_sample_event() -> Callable[..., Event]:
    """
    The :func:`~pendo_webhooks.testing.sample_event` factory: ``(category, **overrides)``.
    """
    from .testing import sample_event

    return sample_event


@pytest.fixture
def pendo_sample_events() -> list[Event]:
    """
    One sample event of each of the nine types, in ``EventCategory`` order.
    """
    from .testing import sample_events

    return sample_events()


@pytest.fixture
def pendo_signed_request() -> Callable[..., SignedRequest]:
    """
    The :func:`~pendo_webhooks.testing.signed_request` factory: ``(event, secrets, ...)``.
    """
    from .testing import signed_request

    return signed_request


@pytest.fixture
def pendo_verify_event(request: pytest.FixtureRequest) -> Callable[..., Event]:
    """
    :func:`~pendo_webhooks.signing.verify_event`, on the frozen clock if the test uses it.
    """
    from functools import partial

    from .signing import verify_event

    if "pendo_frozen_clock" in request.fixturenames:
        return partial(verify_event, clock=request.getfixturevalue("pendo_frozen_clock"))
    return verify_event


@pytest.fixture
def pendo_receiver(request: pytest.FixtureRequest) -> Iterator[LocalReceiver]:
    """
    A started :class:`~pendo_webhooks.testing.LocalReceiver`, configured by the marker.

    With ``secrets=`` (or ``write_key=``) it answers 401 to requests that fail
    verification, as a real receiver does; ``accept_unverified=True`` in the
    marker answers them from the script instead.
    """
    from .testing import LocalReceiver

    kwargs: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(_MARKER))):
        if marker.args:
            msg = f"@pytest.mark.{_MARKER} takes keyword arguments only"
            raise pytest.UsageError(msg)
        kwargs.update(marker.kwargs)
    if "clock" not in kwargs and "pendo_frozen_clock" in request.fixturenames:
        kwargs["clock"] = request.getfixturevalue("pendo_frozen_clock")
    with LocalReceiver(**kwargs) as receiver:
        yield receiver


@pytest.fixture
def pendo_local_transport() -> Iterator[RequestsTransport]:
    """
    A :class:`~pendo_webhooks.transports.RequestsTransport` that may reach local receivers.
    """
    from .guard import DestinationPolicy
    from .transports import RequestsTransport

    with RequestsTransport(destinations=DestinationPolicy.local_testing()) as transport:
        yield transport


@pytest.fixture
def pendo_frozen_clock() -> FrozenClock:
    """
    A fresh :class:`~pendo_webhooks.testing.FrozenClock`, standing still until moved.
    """
    from .testing import FrozenClock

    return FrozenClock()


@pytest.fixture
def pendo_recording_transport() -> RecordingTransport:
    """
    A fresh :class:`~pendo_webhooks.testing.RecordingTransport` (answers 200 unless scripted).
    """
    from .testing import RecordingTransport

    return RecordingTransport()
