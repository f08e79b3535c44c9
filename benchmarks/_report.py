"""What every benchmark's header and target lines share (``bench_dispatch``, ``bench_segment``)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.registry import WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage


def machine() -> str:
    """CPUs, model name (from /proc/cpuinfo) and load average, as RESULTS.md records them."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    model = models[0] if models else platform.processor() or "unknown model"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.platform()}, {os.cpu_count()} CPUs ({model}), load average {load}"


def default_transport() -> str:
    """The class name of the transport a ``Dispatcher`` makes when given none."""
    with Dispatcher(WebhookRegistry(InMemoryStorage())) as dispatcher:
        return type(dispatcher.transport).__name__


def verdict(met: bool) -> str:
    """How a target line ends."""
    return "MET" if met else "NOT MET"
