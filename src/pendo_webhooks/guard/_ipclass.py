"""
Address classification tables and parsers behind :mod:`pendo_webhooks.guard`.

Strictly private: import the public names from :mod:`pendo_webhooks.guard`.

Addresses are handled as plain integers here (``int(ip)``): the checks run on
every resolved address of every delivery attempt, and integer masks are both
fast and independent of the interpreter's :mod:`ipaddress` tables, which
CPython changed across patch releases (gh-113171).
"""

from __future__ import annotations

import ipaddress
import re


_M32 = 0xFFFF_FFFF


def _table(*cidrs: str) -> tuple[tuple[int, int], ...]:
    """
    Turn CIDR strings into ``(network, netmask)`` integer pairs.
    """
    nets = (ipaddress.ip_network(c) for c in cidrs)
    return tuple((int(n.network_address), int(n.netmask)) for n in nets)


# IPv4 ranges that are never a webhook destination. Everything else in IPv4 is
# public unicast.
_V4_DENY = _table(
    "0.0.0.0/8",  # "this network" (RFC 791); 0.0.0.0 reaches the local host on Linux
    "10.0.0.0/8",  # private (RFC 1918)
    "100.64.0.0/10",  # shared address space / carrier-grade NAT (RFC 6598)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, including cloud metadata 169.254.169.254
    "172.16.0.0/12",  # private (RFC 1918)
    "192.0.0.0/24",  # IETF protocol assignments (RFC 6890): DS-Lite, NAT64 discovery, ...
    "192.0.2.0/24",  # documentation TEST-NET-1
    "192.88.99.0/24",  # former 6to4 relay anycast (RFC 7526)
    "192.168.0.0/16",  # private (RFC 1918)
    "198.18.0.0/15",  # benchmarking (RFC 2544)
    "198.51.100.0/24",  # documentation TEST-NET-2
    "203.0.113.0/24",  # documentation TEST-NET-3
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, including the limited broadcast 255.255.255.255
)

# IPv6 must be global unicast (2000::/3) and outside these. The ranges outside
# 2000::/3 are listed too, so the table reads as the complete policy.
_V6_GLOBAL_UNICAST = _table("2000::/3")[0]
_V6_DENY = _table(
    "::/8",  # IETF reserved: ::, ::1, IPv4-compatible ::a.b.c.d, IPv4-translated, ...
    "100::/64",  # discard-only (RFC 6666)
    "2001::/23",  # IETF protocol assignments: benchmarking, ORCHID(v2), AMT, AS112, ...
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation (RFC 9637)
    "5f00::/16",  # SRv6 segment identifiers (RFC 9602)
    "fc00::/7",  # unique local, including AWS metadata fd00:ec2::254
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
)

# Prefixes of IPv6 forms that carry an IPv4 address. These are checked before
# the table above, so Teredo (inside 2001::/23) and the NAT64 and mapped forms
# (inside ::/8) get the verdict of what they embed instead.
_MAPPED = 0xFFFF  # ::ffff:0:0/96, compared against value >> 32
_NAT64_WELL_KNOWN = 0x0064_FF9B_0000_0000_0000_0000  # 64:ff9b::/96, value >> 32
_NAT64_LOCAL_USE = 0x0064_FF9B_0001  # 64:ff9b:1::/48, value >> 80
_SIX_TO_FOUR = 0x2002  # 2002::/16, value >> 112
_TEREDO = 0x2001_0000  # 2001::/32, value >> 96

# Where RFC 6052 puts the IPv4 address for each prefix length that fits inside
# 64:ff9b:1::/48: byte offsets into the 16-byte address (byte 8, the "u" octet,
# is always skipped).
_RFC6052_OFFSETS = (
    (6, 7, 9, 10),  # /48
    (7, 9, 10, 11),  # /56
    (9, 10, 11, 12),  # /64
    (12, 13, 14, 15),  # /96
)


def _in(value: int, table: tuple[tuple[int, int], ...]) -> bool:
    return any(value & mask == net for net, mask in table)


def v4_table_allows(value: int) -> bool:
    """
    Tell whether the IPv4 address *value* is outside our IPv4 deny table.

    >>> v4_table_allows(int(ipaddress.IPv4Address("8.8.8.8")))
    True
    >>> v4_table_allows(int(ipaddress.IPv4Address("100.64.0.1")))
    False
    """
    return not _in(value, _V4_DENY)


def v6_table_allows(value: int) -> bool:
    """
    Tell whether the IPv6 address *value* is global unicast and outside our IPv6 deny table.

    Wrapper forms are not unwrapped here; see :func:`embedded_ipv4s`.

    >>> v6_table_allows(int(ipaddress.IPv6Address("2606:4700::1111")))
    True
    >>> v6_table_allows(int(ipaddress.IPv6Address("fd00:ec2::254")))
    False
    """
    net, mask = _V6_GLOBAL_UNICAST
    return value & mask == net and not _in(value, _V6_DENY)


def embedded_ipv4s(value: int) -> tuple[int, ...] | None:
    """
    Return the IPv4 addresses whose verdicts the IPv6 address *value* inherits.

    ``None`` means *value* is a native IPv6 address. Otherwise every returned
    IPv4 address must be public for *value* to be:

    * IPv4-mapped ``::ffff:a.b.c.d``: the socket talks to ``a.b.c.d`` itself.
    * NAT64 ``64:ff9b::a.b.c.d``: the translator talks to ``a.b.c.d``.
    * Local-use NAT64 ``64:ff9b:1::/48``: the operator's prefix length is not
      knowable from here, so every RFC 6052 position (/48, /56, /64, /96) counts.
    * 6to4 ``2002:AABB:CCDD::/48``: a relay forwards to ``AA.BB.CC.DD``.
    * Teredo ``2001::/32``: both the server (bits 32-63) and the client (the
      last 32 bits, inverted), since packets go to both.

    >>> [str(ipaddress.IPv4Address(v)) for v in embedded_ipv4s(int(ipaddress.IPv6Address(
    ...     "2002:a9fe:a9fe::1")))]
    ['169.254.169.254']
    >>> embedded_ipv4s(int(ipaddress.IPv6Address("2606:4700::1111"))) is None
    True
    """
    high32 = value >> 32
    if high32 in (_MAPPED, _NAT64_WELL_KNOWN):
        return (value & _M32,)
    if value >> 80 == _NAT64_LOCAL_USE:
        raw = value.to_bytes(16, "big")
        return tuple(int.from_bytes(bytes(raw[i] for i in pos), "big") for pos in _RFC6052_OFFSETS)
    if value >> 112 == _SIX_TO_FOUR:
        return ((value >> 80) & _M32,)
    if value >> 96 == _TEREDO:
        return ((value >> 64) & _M32, ~value & _M32)
    return None


# One inet_aton part: hex with at least one digit, octal (a lone "0" included),
# or decimal without a leading zero. ASCII only: str.isdigit() would accept "٣".
_AT_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_AT_LAST_MAX = (0xFFFF_FFFF, 0xFF_FFFF, 0xFFFF, 0xFF)
# A part with more significant digits than this is over 32 bits in any base.
_AT_MAX_DIGITS = 11


def parse_inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """
    Parse *text* the way glibc's ``inet_aton`` (and so ``getaddrinfo``) does.

    One to four dot-separated parts, each decimal, octal (leading ``0``) or hex
    (leading ``0x``); the last part fills all remaining bytes. Returns ``None``
    for anything else, including trailing dots, empty parts, out-of-range parts
    and trailing whitespace (which ``getaddrinfo`` also refuses).

    >>> str(parse_inet_aton("0x7f.1"))
    '127.0.0.1'
    >>> parse_inet_aton("08.1.1.1") is None
    True
    """
    parts = text.split(".")
    if len(parts) > 4:
        return None
    values: list[int] = []
    for part in parts:
        if _AT_PART.fullmatch(part) is None:
            return None
        if part[1:2] in ("x", "X"):
            base, digits = 16, part[2:]
        elif part.startswith("0"):
            base, digits = 8, part
        else:
            base, digits = 10, part
        digits = digits.lstrip("0") or "0"
        if len(digits) > _AT_MAX_DIGITS:
            return None
        values.append(int(digits, base))
    *head, last = values
    if any(v > 0xFF for v in head) or last > _AT_LAST_MAX[len(head)]:
        return None
    result = last
    for index, byte in enumerate(head):
        result |= byte << (24 - 8 * index)
    return ipaddress.IPv4Address(result)
