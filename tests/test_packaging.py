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
    "UnexpectedEventType": ("npsSubmitted", "guideDisplayed"),
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


def test_importing_the_package_is_cheap() -> None:
    """
    ``import pendo_webhooks`` does not import requests or the storage backends (the pytest
    plugin entry point imports the package in every test session of every user).
    """
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys, pendo_webhooks; "
        "print(sorted(m for m in ('requests', 'sqlite3', 'urllib3') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_unknown_attributes_raise_attribute_error() -> None:
    """
    A misspelt name is an AttributeError naming it, not a lazy-import failure.
    """
    with pytest.raises(AttributeError, match="Dispatchr"):
        _ = pendo_webhooks.Dispatchr  # type: ignore[attr-defined]
    assert "Dispatcher" in dir(pendo_webhooks)
