"""
The address guard: which destinations pendo-webhooks may talk to.

INTERFACE STUB -- being implemented (see the helper brief). Public surface:

* ``is_public_address(ip) -> bool``
* ``DestinationPolicy`` (frozen attrs): ``allow_networks``, ``allow_http``,
  ``allowed_ports``; methods ``is_allowed_address(ip) -> bool`` and
  ``check_url(url, *, field="url") -> str`` (raises ``InvalidDestination``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOWED_PORTS = frozenset({443, 80, 8443, 8080})


def _to_networks(value: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in value)


def is_public_address(ip: IPAddress) -> bool:
    """Stub."""
    raise NotImplementedError


@attrs.frozen(kw_only=True)
class DestinationPolicy:
    """Stub."""

    allow_networks: tuple[IPNetwork, ...] = attrs.field(default=(), converter=_to_networks)
    allow_http: bool = False
    allowed_ports: frozenset[int] | None = DEFAULT_ALLOWED_PORTS

    def is_allowed_address(self, ip: IPAddress) -> bool:
        """Stub."""
        raise NotImplementedError

    def check_url(self, url: str, *, field: str = "url") -> str:
        """Stub."""
        raise NotImplementedError
