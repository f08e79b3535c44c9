"""The package installs, exposes its version, and every exported name resolves."""

from __future__ import annotations

import importlib.metadata
import pickle

import pytest

import pendo_webhooks
from pendo_webhooks import exceptions


def test_version_matches_metadata() -> None:
    """
    ``__version__`` is the installed distribution's version.
    """
    assert pendo_webhooks.__version__ == importlib.metadata.version("pendo-webhooks")


@pytest.mark.parametrize("name", pendo_webhooks.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    """
    Every name in ``__all__`` is an attribute of the package.
    """
    assert getattr(pendo_webhooks, name) is not None


def _error_classes() -> list[type[BaseException]]:
    return [getattr(exceptions, n) for n in exceptions.__all__]


_SAMPLE_ARGS: dict[str, tuple[object, ...]] = {
    "ValidationError": ("name", "must not be empty"),
    "InvalidDestination": ("url", "scheme must be https"),
    "InvalidVersion": ("agent_version", "not a version"),
    "UnknownEventType": ("pageViewed",),
    "InvalidEventPayload": (("visitorId: required", "timestamp: must be an integer"),),
    "PayloadTooLarge": (32769, 32768),
    "TransportError": ("timeout", "no response within 15.0 s"),
    "DestinationBlocked": ("blocked", "127.0.0.1 is loopback"),
}


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_derives_from_the_base_and_pickles(cls: type[BaseException]) -> None:
    """
    Each exception is a ``PendoWebhooksError`` and survives a pickle round trip with its message.
    """
    args = _SAMPLE_ARGS.get(cls.__name__, ("something went wrong",))
    err = cls(*args)
    assert isinstance(err, exceptions.PendoWebhooksError)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is cls
    assert str(clone) == str(err)
    assert clone.args == err.args


def test_semantic_errors_also_match_builtins() -> None:
    """
    Callers that catch built-ins still catch ours where one fits.
    """
    assert issubclass(exceptions.ValidationError, ValueError)
    assert issubclass(exceptions.PermissionDenied, PermissionError)
    assert issubclass(exceptions.UnknownWebhook, LookupError)
    assert issubclass(exceptions.SignatureError, ValueError)
