"""
The address guard: which destinations pendo-webhooks may talk to.

Two checks, both pure (no DNS, no sockets) and cheap enough to run on every
attempt:

* :meth:`DestinationPolicy.check_url` vets a URL string: at registration, for
  early feedback, and by the transport before it opens any socket.
* :meth:`DestinationPolicy.is_allowed_address` vets each address a hostname
  resolved to. The transport calls it on **every** ``getaddrinfo`` answer and
  connects only to an address it approved; this is the security boundary
  (see [Security notes](../security.md#the-address-guard)). A hostname's verdict can
  only be known there.

Address policy (:func:`is_public_address`), deny by default:

* IPv4 is public unless it is in our own table: this network, private,
  carrier-grade NAT, loopback, link-local (cloud metadata), IETF protocol
  assignments, documentation, benchmarking, the old 6to4 relay anycast,
  multicast, reserved and broadcast.
* IPv6 is public only inside global unicast ``2000::/3`` and outside our table:
  ``::/8``, discard, IETF protocol assignments ``2001::/23`` (ORCHID,
  benchmarking, ...), documentation, SRv6, unique local (``fd00:ec2::254``),
  link-local, site-local and multicast.
* IPv6 forms that embed an IPv4 address **inherit the verdict of the IPv4
  address** (Hook0's policy, not Svix's "always block"): IPv4-mapped
  ``::ffff:0:0/96``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48`` (every
  RFC 6052 embedding must be public), 6to4 ``2002::/16``, and Teredo
  ``2001::/32`` (server *and* client must be public).
* Deprecated IPv4-compatible ``::a.b.c.d`` and IPv4-translated
  ``::ffff:0:a.b.c.d`` addresses are refused outright, like the rest of
  ``::/8``: nothing legitimate uses them, and inheriting would only widen.
* Our tables are meant to be a superset of CPython's (a test checks this on
  the running interpreter), so verdicts do not change across patch releases;
  an address must *also* be ``is_global`` there, as a safety net.

``allow_networks`` lets operators reach internal receivers. It matches the
address itself, or the IPv4 address inside an IPv4-mapped one (the same socket
destination). It does not see through NAT64, 6to4 or Teredo: those reach
another network's idea of that IPv4 address; list the IPv6 prefix if you want
them.

URL policy (:meth:`DestinationPolicy.check_url`): ``https`` only (``http``
with ``allow_http``), allowed ports only, no credentials, no fragment, and a
host that is a valid (IDNA) name or an allowed IP literal, including every
numeric spelling glibc's ``inet_aton`` accepts (``2130706433``, ``0x7f.1``,
``0177.0.0.1``, ``127.1``, ...; see :func:`parse_ip_host`). ``localhost``,
``*.localhost``, ``localhost.localdomain`` and the ``/etc/hosts`` names for
``::1`` count as loopback. Other names, ``*.local`` and ``*.internal``
included, pass here and are judged by what they resolve to at send time.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable

import attrs
import idna

from ..exceptions import ConfigurationError, InvalidDestination, ValidationError
from ._ipclass import embedded_ipv4s, parse_inet_aton, v4_table_allows, v6_table_allows


__all__ = [
    "DEFAULT_ALLOWED_PORTS",
    "MAX_URL_LENGTH",
    "DestinationPolicy",
    "IPAddress",
    "IPNetwork",
    "is_public_address",
    "parse_ip_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The ports a destination may use unless configured otherwise.
DEFAULT_ALLOWED_PORTS = frozenset({443, 80, 8443, 8080})

#: The longest destination URL accepted, in characters.
MAX_URL_LENGTH = 2048

_DEFAULT_PORTS = {"https": 443, "http": 80}
# Schemes named in refusals; any other is not echoed (it could be a user name
# from a URL that lacks its scheme, like "user:pass@host").
_NAMED_SCHEMES = frozenset(
    {"data", "dict", "file", "ftp", "ftps", "gopher", "jar", "javascript", "ldap", "ldaps"}
    | {"mailto", "netdoc", "sftp", "smb", "ssh", "telnet", "tftp", "ws", "wss"}
)
_LOOPBACK_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6"}
    | {"ip6-localhost", "ip6-loopback"}
)
_LOOPBACKS = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_ASCII_BAD = re.compile(r"[\x00-\x20\x7f]")
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})
_LABEL = re.compile(r"[a-z0-9_-]+")
# The last label of a name that inet_aton would read as a number (WHATWG's
# "ends in a number"): such a host must be a valid IPv4 spelling, not a name.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_MAX_HOST = 253
_MAX_LABEL = 63


def _to_networks(value: str | IPNetwork | Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """
    Convert *allow_networks* to a tuple of networks (a single entry is accepted too).
    """
    if isinstance(value, (str, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        value = (value,)
    if not isinstance(value, Iterable):
        msg = f"allow_networks: must be networks or CIDR strings, not {type(value).__name__}"
        raise ConfigurationError(msg)
    networks: list[IPNetwork] = []
    for item in value:
        if not isinstance(item, (str, ipaddress.IPv4Network, ipaddress.IPv6Network)):
            msg = f"allow_networks: entries must be CIDR strings or networks, not {item!r}"
            raise ConfigurationError(msg)
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            msg = f"allow_networks: {item!r} is not an IP network"
            raise ConfigurationError(msg) from None
    return tuple(networks)


def _to_ports(value: Iterable[int] | None) -> frozenset[int] | None:
    """
    Convert *allowed_ports* to a frozenset of valid port numbers (``None`` stays).
    """
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"allowed_ports: must be a collection of port numbers, not {type(value).__name__}"
        raise ConfigurationError(msg)
    try:
        ports = frozenset(value)
    except TypeError:  # an unhashable item
        msg = "allowed_ports: must hold port numbers from 1 to 65535"
        raise ConfigurationError(msg) from None
    if not ports:
        msg = "allowed_ports: must not be empty; use None to allow any port"
        raise ConfigurationError(msg)
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            msg = f"allowed_ports: {port!r} is not a port number from 1 to 65535"
            raise ConfigurationError(msg)
    return ports


def _check_bool(_instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        msg = f"{attribute.name}: must be True or False, not {value!r}"
        raise ConfigurationError(msg)


def _v4_is_public(value: int) -> bool:
    return v4_table_allows(value) and ipaddress.IPv4Address(value).is_global


def is_public_address(ip: IPAddress) -> bool:
    """
    Tell whether *ip* is a public unicast address that webhooks may reach.

    Deny by default; see the module docstring for the exact policy. IPv6
    forms that embed an IPv4 address (mapped, NAT64, 6to4, Teredo) get the
    verdict of the IPv4 address they embed.

    Args:
        ip: The address to judge.

    Returns:
        ``True`` only for globally routable unicast addresses.

    Raises:
        ValidationError: If *ip* is not an ``IPv4Address`` or ``IPv6Address``.

    >>> from ipaddress import ip_address
    >>> is_public_address(ip_address("8.8.8.8"))
    True
    >>> [is_public_address(ip_address(a)) for a in
    ...     ("169.254.169.254", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "fd00:ec2::254")]
    [False, False, False, False]
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_is_public(int(ip))
    if isinstance(ip, ipaddress.IPv6Address):
        value = int(ip)
        embedded = embedded_ipv4s(value)
        if embedded is not None:
            return all(_v4_is_public(v) for v in embedded)
        return v6_table_allows(value) and ip.is_global
    msg = f"must be an IPv4Address or IPv6Address, not {type(ip).__name__}"
    raise ValidationError("ip", msg)


def parse_ip_host(host: str) -> IPAddress | None:
    """
    Return the IP address a URL host denotes, or ``None`` if it is a name.

    Accepts a bracketed or bare IPv6 address (``[::1]``, ``::1``; brackets
    around anything else give ``None``), and every IPv4 spelling glibc's
    ``inet_aton`` (and so ``getaddrinfo``) accepts: one to four dot-separated
    parts, each decimal, octal with a leading ``0`` or hex with a leading
    ``0x``, the last part filling the remaining bytes. So ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``, ``127.1``, ``0x7f.1``, ``017700000001``
    and ``127.000.000.001`` are all ``127.0.0.1``.

    *host* is taken as ASCII text as it appears in a URL (IDNA mapping is
    :meth:`DestinationPolicy.check_url`'s job); anything else gives ``None``.

    Raises:
        ValidationError: If *host* is not a ``str``.

    >>> parse_ip_host("0x7f.1")
    IPv4Address('127.0.0.1')
    >>> parse_ip_host("[::1]")
    IPv6Address('::1')
    >>> parse_ip_host("example.com") is None
    True
    """
    if not isinstance(host, str):
        msg = f"must be text, not {type(host).__name__}"
        raise ValidationError("host", msg)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" not in host:
        return parse_inet_aton(host)
    try:
        return ipaddress.IPv6Address(host)
    except ValueError:
        return None


@attrs.frozen(kw_only=True, repr=False)
class DestinationPolicy:
    """
    Which destination URLs and addresses webhooks may be delivered to.

    Args:
        allow_networks: Networks (CIDR strings or ``ipaddress`` networks) that
            are allowed even though they are not public, e.g. an internal
            receiver's subnet. A single entry may be given bare.
        allow_http: Allow plain ``http`` URLs (tests and self-hosted setups).
        allowed_ports: Ports a URL may use; a URL without a port uses its
            scheme's default (443 or 80). ``None`` allows any port.

    Raises:
        ConfigurationError: If an argument is invalid (the message names it).

    >>> DestinationPolicy()
    DestinationPolicy(allow_networks=(), allow_http=False, allowed_ports={80, 443, 8080, 8443})
    >>> DestinationPolicy(allow_networks="10.1.0.0/16").check_url("https://10.1.2.3/hook")
    'https://10.1.2.3/hook'
    """

    allow_networks: tuple[IPNetwork, ...] = attrs.field(default=(), converter=_to_networks)
    allow_http: bool = attrs.field(default=False, validator=_check_bool)
    allowed_ports: frozenset[int] | None = attrs.field(
        default=DEFAULT_ALLOWED_PORTS, converter=_to_ports
    )

    @classmethod
    def local_testing(cls) -> DestinationPolicy:
        """
        Return a policy for tests against local servers: loopback, ``http`` and any port allowed.

        >>> DestinationPolicy.local_testing()
        DestinationPolicy(allow_networks=('127.0.0.0/8', '::1/128'), allow_http=True, \
allowed_ports=None)
        """
        return cls(allow_networks=("127.0.0.0/8", "::1/128"), allow_http=True, allowed_ports=None)

    def __repr__(self) -> str:
        networks = tuple(str(n) for n in self.allow_networks)
        ports = "None"
        if self.allowed_ports is not None:
            ports = "{" + ", ".join(str(p) for p in sorted(self.allowed_ports)) + "}"
        return (
            f"DestinationPolicy(allow_networks={networks!r}, allow_http={self.allow_http!r}, "
            f"allowed_ports={ports})"
        )

    def is_allowed_address(self, ip: IPAddress) -> bool:
        """
        Tell whether a connection to *ip* is allowed.

        ``True`` if *ip*, or the IPv4 address inside an IPv4-mapped *ip*, is in
        :attr:`allow_networks`; otherwise :func:`is_public_address`. The
        transport calls this on every resolved address before connecting.

        Raises:
            ValidationError: If *ip* is not an ``IPv4Address`` or ``IPv6Address``.

        >>> from ipaddress import ip_address
        >>> policy = DestinationPolicy.local_testing()
        >>> policy.is_allowed_address(ip_address("::ffff:127.0.0.1"))
        True
        >>> policy.is_allowed_address(ip_address("10.0.0.1"))
        False
        """
        # Public addresses are the common case, and this also checks the type.
        if is_public_address(ip):
            return True
        candidates: tuple[IPAddress, ...]
        if isinstance(ip, ipaddress.IPv4Address):
            candidates = (ip, ipaddress.IPv6Address(0xFFFF_0000_0000 | int(ip)))
        elif ip.ipv4_mapped is not None:
            candidates = (ip, ip.ipv4_mapped)
        else:
            candidates = (ip,)
        return any(c in network for network in self.allow_networks for c in candidates)

    def check_url(self, url: str, *, field: str = "url") -> str:
        """
        Check a destination URL and return it normalized.

        Normalizing lowercases the scheme and host, IDNA-encodes the host
        (UTS 46, as ``requests`` does), writes numeric IPv4 hosts as dotted
        quads and strips leading zeros from the port; the path and query are
        kept as given. Pass the returned URL on: it is the one that was checked.

        No DNS happens here: a hostname passes unless it is a loopback name,
        and the addresses it resolves to are judged at send time.

        Args:
            url: The destination URL.
            field: The field name to report in errors.

        Returns:
            The normalized URL.

        Raises:
            InvalidDestination: If the URL is refused. The reason never
                contains the URL's credentials or query string.

        >>> policy = DestinationPolicy()
        >>> policy.check_url("HTTPS://Bücher.Example/Hook?a=1")
        'https://xn--bcher-kva.example/Hook?a=1'
        >>> policy.check_url("https://0x7f.1/")
        Traceback (most recent call last):
        ...
        pendo_webhooks.exceptions.InvalidDestination: url: host '0x7f.1' is 127.0.0.1, \
which is not a public address
        """
        try:
            return self._check_url(url)
        except InvalidDestination as exc:
            # The helpers report under a placeholder name; give the caller's.
            raise InvalidDestination(field, exc.reason) from None

    def _check_url(self, url: object) -> str:
        scheme, rest = self._split_scheme(_check_text(url))
        if not rest.startswith("//"):
            raise _refused("must have a host, as in https://example.com/hook")
        if "#" in rest:
            raise _refused("must not have a fragment (a '#' part)")
        end = _authority_end(rest)
        authority, tail = rest[2:end], rest[end:]
        if "@" in authority:
            raise _refused("credentials in the URL are not allowed")
        host_text, port_text = _split_authority(authority)
        port = self._check_port(scheme, port_text)
        host = self._check_host(host_text)
        port_part = "" if port is None else f":{port}"
        return f"{scheme}://{host}{port_part}{tail}"

    def _split_scheme(self, url: str) -> tuple[str, str]:
        scheme_text, colon, rest = url.partition(":")
        if not colon or _SCHEME.fullmatch(scheme_text) is None:
            raise _refused("must be an absolute URL, as in https://example.com/hook")
        scheme = scheme_text.lower()
        if scheme == "https" or (scheme == "http" and self.allow_http):
            return scheme, rest
        if scheme == "http":
            raise _refused("scheme 'http' is not allowed; use https (or set allow_http=True)")
        named = repr(scheme) if scheme in _NAMED_SCHEMES else "of this URL"
        raise _refused(f"scheme {named} is not allowed; use https")

    def _check_port(self, scheme: str, port_text: str | None) -> int | None:
        port = None
        if port_text is not None:
            digits = port_text.lstrip("0")
            if not (port_text.isascii() and port_text.isdigit()) or len(digits) > 5:
                raise _refused("port must be a number from 1 to 65535")
            port = int(port_text)
            if not 1 <= port <= 65535:
                raise _refused("port must be a number from 1 to 65535")
        effective = _DEFAULT_PORTS[scheme] if port is None else port
        if self.allowed_ports is not None and effective not in self.allowed_ports:
            allowed = ", ".join(str(p) for p in sorted(self.allowed_ports))
            raise _refused(f"port {effective} is not allowed (allowed: {allowed})")
        return port

    def _check_host(self, host_text: str) -> str:
        if not host_text:
            raise _refused("must have a host, as in https://example.com/hook")
        if "%" in host_text:
            raise _refused("host must not contain '%' (percent-encoding or an IPv6 zone)")
        if host_text.startswith("["):
            try:
                ip6 = ipaddress.IPv6Address(host_text[1:-1])
            except ValueError:
                raise _refused("host is not a valid IPv6 address in brackets") from None
            host = host_text.lower()
            self._check_ip(host, ip6, spelled="")
            return host
        host = _to_ascii_name(host_text)
        if _NUMERIC_LABEL.fullmatch(host.rpartition(".")[2]):
            ip4 = parse_inet_aton(host)
            if ip4 is None:
                raise _refused(f"host {host!r} looks like an IPv4 address but is not a valid one")
            canonical = str(ip4)
            self._check_ip(
                host, ip4, spelled="" if host == canonical else f" is {canonical}, which"
            )
            return canonical
        if (host in _LOOPBACK_NAMES or host.endswith(".localhost")) and not any(
            self.is_allowed_address(ip) for ip in _LOOPBACKS
        ):
            raise _refused(f"host {host!r} is a loopback name, and loopback is not allowed")
        return host

    def _check_ip(self, host: str, ip: IPAddress, *, spelled: str) -> None:
        if self.is_allowed_address(ip):
            return
        raise _refused(f"host {host!r}{spelled} is not a public address")


def _refused(reason: str) -> InvalidDestination:
    """
    Build a refusal under a placeholder field; check_url re-raises it with the real one.
    """
    return InvalidDestination("url", reason)


def _check_text(url: object) -> str:
    if not isinstance(url, str):
        raise _refused(f"must be text, not {type(url).__name__}")
    if not url:
        raise _refused("must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise _refused(f"must be at most {MAX_URL_LENGTH} characters long")
    if url.isascii():
        bad = _ASCII_BAD.search(url) is not None
    else:
        bad = any(unicodedata.category(c) in _BAD_CATEGORIES or c.isspace() for c in url)
    if bad:
        raise _refused("must not contain whitespace, control or invisible formatting characters")
    return url


def _authority_end(rest: str) -> int:
    """
    Index in *rest* (which starts with ``//``) where the path or query starts.
    """
    ends = [i for i in (rest.find("/", 2), rest.find("?", 2)) if i != -1]
    return min(ends, default=len(rest))


def _split_authority(authority: str) -> tuple[str, str | None]:
    """
    Split ``host[:port]`` or ``[v6][:port]`` into the host text and the port text.
    """
    if authority.startswith("["):
        close = authority.find("]")
        after = authority[close + 1 :] if close != -1 else ""
        if close == -1 or (after and not after.startswith(":")):
            raise _refused("host is not a valid IPv6 address in brackets")
        return authority[: close + 1], (after[1:] if after else None)
    if authority.count(":") > 1:
        raise _refused("an IPv6 host must be in brackets, as in https://[2001:db8::1]/")
    host, colon, port = authority.partition(":")
    return host, (port if colon else None)


def _to_ascii_name(host_text: str) -> str:
    """
    Return the lowercase ASCII form of a host name, refusing invalid ones.

    Non-ASCII names go through IDNA with UTS 46 mapping, as ``requests`` does,
    so full-width digits, letters and dots (U+FF10..U+FF5A, U+3002) end up as
    the ASCII host that would really be looked up: a full-width ``127.0.0.1``
    is ``127.0.0.1``.
    """
    if host_text.isascii():
        host = host_text.lower()
    else:
        try:
            host = idna.encode(host_text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise _refused("host is not a valid internationalized domain name") from None
    if len(host) > _MAX_HOST:
        raise _refused(f"host is longer than {_MAX_HOST} characters")
    for label in host.split("."):
        if not label:
            raise _refused("host has an empty label (two dots, or a leading or trailing dot)")
        if len(label) > _MAX_LABEL:
            raise _refused(f"host has a label longer than {_MAX_LABEL} characters")
        if _LABEL.fullmatch(label) is None:
            raise _refused("host contains characters that are not allowed in a host name")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise _refused("host is not a valid internationalized domain name") from None
    return host
