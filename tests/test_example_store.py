"""
The example store in examples/custom_store.py, written only against the public storage seam,
passes the shipped storage contract suite: what a host runs on its own store.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from pendo_webhooks.storage.protocols import Capabilities, Storage, capabilities
from pendo_webhooks.testing.storage_contract import StorageContract


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_store.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("custom_store", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("custom_store", module)
    spec.loader.exec_module(module)
    return module


custom_store = _load_example()


class TestPlainSQLiteStore(StorageContract):
    """
    The whole contract, on a fresh PlainSQLiteStore per test.
    """

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[Storage]:
        with custom_store.PlainSQLiteStore(tmp_path / "outbox.db") as store:
            yield store


def test_the_example_store_has_only_the_health_capability(tmp_path: Path) -> None:
    """
    It is the plain seam, plus webhook health (outage-aware retries): the engine takes its
    general paths with it.
    """
    with custom_store.PlainSQLiteStore(tmp_path / "outbox.db") as store:
        found = capabilities(store)
    assert found == Capabilities(
        chained_claim=False, shared_outcomes=False, host_connection=False, webhook_health=True
    )


def test_the_example_store_imports_only_public_names() -> None:
    """
    Written as a host would write it: no private module of pendo_webhooks is imported.
    """
    text = EXAMPLE.read_text(encoding="utf-8")
    imports = [line for line in text.splitlines() if "import" in line and "pendo_webhooks" in line]
    assert imports
    assert not [line for line in imports if "._" in line or "pendo_webhooks._" in line]
