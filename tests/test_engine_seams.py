"""
The engine names no backend: what it needs to know of a store, it asks ``capabilities()``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.exceptions import ConfigurationError
from pendo_webhooks.registry import WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage
from pendo_webhooks.storage.protocols import capabilities
from pendo_webhooks.testing import RecordingTransport


class OwnMemoryStore(InMemoryStorage):
    """
    A host's own process-local store (here borrowing the in-memory one's workings).
    """


class Proxy:
    """
    Forwards everything to the store behind it, as a host's instrumentation might.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Declared:
    """
    Any class may say it is process-local.
    """

    process_local: ClassVar[bool] = True


def test_the_memory_store_is_process_local_and_others_are_not() -> None:
    assert capabilities(InMemoryStorage()).process_local
    assert capabilities(Declared()).process_local
    assert not capabilities(object()).process_local
    # A proxy shares the state of the store behind it: it is not another such store.
    assert not capabilities(Proxy(InMemoryStorage())).process_local


@pytest.mark.parametrize("store", [InMemoryStorage, OwnMemoryStore])
def test_a_second_process_local_store_is_refused(store: type[InMemoryStorage]) -> None:
    registry = WebhookRegistry(InMemoryStorage())
    with pytest.raises(ConfigurationError, match="registry's own store") as raised:
        Dispatcher(registry, storage=store(), transport=RecordingTransport())
    assert store.__name__ in str(raised.value)


def test_the_registry_s_own_process_local_store_is_accepted() -> None:
    storage = OwnMemoryStore()
    registry = WebhookRegistry(storage)
    with Dispatcher(registry, storage=storage, transport=RecordingTransport()) as dispatcher:
        assert dispatcher.storage is storage
