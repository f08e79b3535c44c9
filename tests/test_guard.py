"""Tests for the address guard: address verdicts, URL checks and the policy object."""

from __future__ import annotations

import ipaddress
import platform
import socket
from typing import NamedTuple

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pendo_webhooks.exceptions import (
    ConfigurationError,
    InvalidDestination,
    PendoWebhooksError,
    ValidationError,
)
from pendo_webhooks.guard import (
    DEFAULT_ALLOWED_PORTS,
    MAX_URL_LENGTH,
    DestinationPolicy,
    IPAddress,
    _ipclass,
    is_public_address,
    parse_ip_host,
)


V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


# --------------------------------------------------------------------------------------------
# The destination table: every URL, judged by three policies.
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Ok:
    """
    The URL is accepted and normalizes to *url* (``None``: to itself).
    """

    url: str | None = None


@attrs.frozen
class No:
    """
    The URL is refused with a reason containing *reason*.
    """

    reason: str


class Case(NamedTuple):
    url: str
    default: Ok | No  # DestinationPolicy()
    local: Ok | No  # DestinationPolicy.local_testing()
    with_http: Ok | No | None = None  # DestinationPolicy(allow_http=True); None: as default


PUBLIC = "is not a public address"
LOOPBACK = "is a loopback name, and loopback is not allowed"
ONE27 = "is 127.0.0.1, which is not a public address"
SCHEME_HTTP = "scheme 'http' is not allowed; use https (or set allow_http=True)"
BAD_PORT = "port must be a number from 1 to 65535"
CREDENTIALS = "credentials in the URL are not allowed"
NO_HOST = "must have a host"
BRACKETS = "host is not a valid IPv6 address in brackets"
IDNA = "host is not a valid internationalized domain name"
CHARS = "must not contain whitespace, control or invisible formatting characters"
HOST_CHARS = "host contains characters that are not allowed in a host name"
EMPTY_LABEL = "host has an empty label"
PERCENT = "host must not contain '%'"
LOOPBACK_URL = Ok("https://127.0.0.1/")


def _fullwidth(text: str) -> str:
    """
    Spell ASCII *text* with full-width forms (U+FF01..U+FF5E), which IDNA maps back to ASCII.
    """
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


FULL_127 = _fullwidth("127.0.0.1")
FULL_LOCALHOST = _fullwidth("localhost")


def refused_everywhere(url: str, reason: str) -> Case:
    return Case(url, No(reason), No(reason))


def loopback_only(url: str, reason: str, local: Ok | No | None = None) -> Case:
    return Case(url, No(reason), local or Ok())


CASES = [
    # Public destinations: accepted by every policy, normalized.
    Case("https://example.com/hook", Ok(), Ok()),
    Case(
        "HTTPS://Example.COM/Path/?Q=Mixed",
        Ok("https://example.com/Path/?Q=Mixed"),
        Ok("https://example.com/Path/?Q=Mixed"),
    ),
    Case("https://example.com", Ok(), Ok()),
    Case("https://example.com?x=1", Ok(), Ok()),
    Case("https://example.com:8443/x", Ok(), Ok()),
    Case("https://example.com:443", Ok(), Ok()),
    Case(
        "https://example.com:00443/",
        Ok("https://example.com:443/"),
        Ok("https://example.com:443/"),
    ),
    Case("https://8.8.8.8/", Ok(), Ok()),
    Case("https://[2606:4700::1111]/", Ok(), Ok()),
    Case("https://[2606:4700::1111]:8443/", Ok(), Ok()),
    Case(
        "https://[2606:4700::ABCD]/",
        Ok("https://[2606:4700::abcd]/"),
        Ok("https://[2606:4700::abcd]/"),
    ),
    Case(
        "https://bücher.example/",
        Ok("https://xn--bcher-kva.example/"),
        Ok("https://xn--bcher-kva.example/"),
    ),
    Case("https://xn--bcher-kva.example/", Ok(), Ok()),
    Case("https://my_host.example.com/", Ok(), Ok()),
    Case("https://example.com/p%20q?r=%2F", Ok(), Ok()),
    Case("https://[::ffff:8.8.8.8]/", Ok(), Ok()),
    Case("https://[64:ff9b::808:808]/", Ok(), Ok()),
    Case("https://[2002:808:808::1]/", Ok(), Ok()),
    Case("https://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/", Ok(), Ok()),  # Teredo, both public
    # Names are judged by what they resolve to, at send time.
    Case("https://metadata.google.internal/", Ok(), Ok()),
    Case("https://printer.local/", Ok(), Ok()),
    # Loopback: refused, except by local_testing().
    loopback_only("https://127.0.0.1/", f"'127.0.0.1' {PUBLIC}"),
    Case("http://127.0.0.1:8000/", No(SCHEME_HTTP), Ok(), No("port 8000 is not allowed")),
    loopback_only("https://localhost/", f"'localhost' {LOOPBACK}"),
    loopback_only("https://api.localhost:8080/", LOOPBACK),
    loopback_only(
        "https://LOCALHOST.localdomain/", LOOPBACK, Ok("https://localhost.localdomain/")
    ),
    loopback_only("https://ip6-localhost/", LOOPBACK),
    loopback_only("https://2130706433/", f"'2130706433' {ONE27}", LOOPBACK_URL),
    loopback_only("https://0x7f000001/", f"'0x7f000001' {ONE27}", LOOPBACK_URL),
    loopback_only("https://0177.0.0.1/", f"'0177.0.0.1' {ONE27}", LOOPBACK_URL),
    loopback_only("https://127.1/", f"'127.1' {ONE27}", LOOPBACK_URL),
    loopback_only("https://0x7f.1/", f"'0x7f.1' {ONE27}", LOOPBACK_URL),
    loopback_only("https://017700000001/", f"'017700000001' {ONE27}", LOOPBACK_URL),
    loopback_only("https://127.000.000.001/", f"'127.000.000.001' {ONE27}", LOOPBACK_URL),
    loopback_only("https://0X7F.0.0.1/", f"'0x7f.0.0.1' {ONE27}", LOOPBACK_URL),
    loopback_only(f"https://{FULL_127}/", f"'127.0.0.1' {PUBLIC}", LOOPBACK_URL),
    loopback_only(f"https://{FULL_LOCALHOST}/", LOOPBACK, Ok("https://localhost/")),
    Case("http://[::ffff:127.0.0.1]/", No(SCHEME_HTTP), Ok(), No(PUBLIC)),
    loopback_only("https://[::ffff:127.0.0.1]/", f"'[::ffff:127.0.0.1]' {PUBLIC}"),
    loopback_only("https://[::1]/", f"'[::1]' {PUBLIC}"),
    loopback_only("https://[0000:0:0000::01]/", PUBLIC),
    # Internal, link-local, metadata and reserved: refused by every policy, in every spelling.
    refused_everywhere("https://[::ffff:a9fe:a9fe]/", PUBLIC),
    refused_everywhere("https://[64:ff9b::a9fe:a9fe]/", PUBLIC),
    refused_everywhere("https://[64:ff9b::7f00:1]/", PUBLIC),  # NAT64 is not our loopback
    refused_everywhere("https://[2002:a9fe:a9fe::1]/", PUBLIC),
    refused_everywhere("https://[2002:7f00:1::1]/", PUBLIC),
    refused_everywhere("https://[64:ff9b:1::a9fe:a9fe]/", PUBLIC),
    refused_everywhere("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", PUBLIC),  # Teredo
    refused_everywhere("https://[::8.8.8.8]/", PUBLIC),  # deprecated IPv4-compatible
    refused_everywhere("https://[fd00:ec2::254]/", PUBLIC),
    refused_everywhere("https://[fe80::1]/", PUBLIC),
    refused_everywhere("https://[ff02::1]/", PUBLIC),
    refused_everywhere("https://[2001:db8::1]/", PUBLIC),
    refused_everywhere("https://[::]/", PUBLIC),
    refused_everywhere("https://169.254.169.254/latest/meta-data/", PUBLIC),
    refused_everywhere("https://100.64.0.1/", PUBLIC),
    refused_everywhere("https://10.0.0.1/", PUBLIC),
    refused_everywhere("https://172.16.0.1/", PUBLIC),
    refused_everywhere("https://192.168.1.1/", PUBLIC),
    refused_everywhere("https://0.0.0.0/", PUBLIC),
    refused_everywhere("https://0/", f"'0' is 0.0.0.0, which {PUBLIC}"),
    refused_everywhere("https://224.0.0.1/", PUBLIC),
    refused_everywhere("https://255.255.255.255/", PUBLIC),
    refused_everywhere("https://198.18.0.1/", PUBLIC),
    refused_everywhere("https://192.0.2.1/", PUBLIC),
    refused_everywhere("https://192.88.99.1/", PUBLIC),
    # Schemes.
    refused_everywhere("file:///etc/passwd", "scheme 'file' is not allowed; use https"),
    refused_everywhere("gopher://x/", "scheme 'gopher' is not allowed"),
    refused_everywhere("ftp://x/", "scheme 'ftp' is not allowed"),
    refused_everywhere("javascript:alert(1)", "scheme 'javascript' is not allowed"),
    refused_everywhere("user:secret@example.com/", "scheme of this URL is not allowed"),
    Case("http://h:6379/", No(SCHEME_HTTP), Ok(), No("port 6379 is not allowed")),
    Case("http://h/", No(SCHEME_HTTP), Ok(), Ok()),
    Case("HTTP://H:8080/x", No(SCHEME_HTTP), Ok("http://h:8080/x"), Ok("http://h:8080/x")),
    # Ports.
    Case("https://h:22/", No("port 22 is not allowed (allowed: 80, 443, 8080, 8443)"), Ok()),
    refused_everywhere("https://h:0/", BAD_PORT),
    refused_everywhere("https://h:65536/", BAD_PORT),
    Case("https://h:0000000000443/", Ok("https://h:443/"), Ok("https://h:443/")),
    refused_everywhere("https://h:abc/", BAD_PORT),
    refused_everywhere("https://h:/", BAD_PORT),
    refused_everywhere("https://h:-1/", BAD_PORT),
    refused_everywhere("https://h:٤٤٣/", BAD_PORT),
    # Credentials and fragments.
    refused_everywhere("https://u:p@h/", CREDENTIALS),
    refused_everywhere("https://@h/", CREDENTIALS),
    refused_everywhere("https://h\\@127.0.0.1/", CREDENTIALS),
    refused_everywhere("https://example.com/#top", "must not have a fragment"),
    # Host syntax.
    refused_everywhere("https://exa%6dple.com/", PERCENT),
    refused_everywhere("https://[fe80::1%25eth0]/", PERCENT),
    refused_everywhere("https://a..b/", EMPTY_LABEL),
    refused_everywhere("https://example.com./", EMPTY_LABEL),
    refused_everywhere("https://.example.com/", EMPTY_LABEL),
    refused_everywhere("https://xn--zz.example/", IDNA),
    refused_everywhere("https://☃.net/", IDNA),
    refused_everywhere("https://my_host.bücher.de/", IDNA),
    refused_everywhere("https://exa$mple.com/", HOST_CHARS),
    refused_everywhere("https://127.0.0.1\\.evil.com/", HOST_CHARS),
    refused_everywhere(
        "https://256.1.1.1/", "host '256.1.1.1' looks like an IPv4 address but is not a valid one"
    ),
    refused_everywhere("https://1.2.3.4.5/", "looks like an IPv4 address"),
    refused_everywhere("https://example.0x/", "looks like an IPv4 address"),
    refused_everywhere("https://::1/", "an IPv6 host must be in brackets"),
    refused_everywhere("https://[::1/", BRACKETS),
    refused_everywhere("https://[::1]x/", BRACKETS),
    refused_everywhere("https://[127.0.0.1]/", BRACKETS),
    refused_everywhere("https://" + "a" * 64 + ".com/", "host has a label longer than 63"),
    refused_everywhere("https://" + ("a" * 60 + ".") * 5 + "com/", "host is longer than 253"),
    # Shape of the URL.
    refused_everywhere("https:///path", NO_HOST),
    refused_everywhere("https:example.com", NO_HOST),
    refused_everywhere("https://", NO_HOST),
    refused_everywhere("https://:443/", NO_HOST),
    refused_everywhere("example.com/hook", "must be an absolute URL"),
    refused_everywhere("//example.com/", "must be an absolute URL"),
    refused_everywhere("", "must not be empty"),
    refused_everywhere("https://e.com/" + "a" * MAX_URL_LENGTH, "must be at most 2048 characters"),
    refused_everywhere("https://ex ample.com/", CHARS),
    refused_everywhere(" https://example.com/", CHARS),
    refused_everywhere("https://example.com/\x00", CHARS),
    refused_everywhere("https://example.com/\x7f", CHARS),
    refused_everywhere("https://ex\u202eample.com/", CHARS),
    refused_everywhere("https://example.com/\u3000", CHARS),
    refused_everywhere("https://example.com/\u0085", CHARS),
    refused_everywhere("https://bad\udcff.example/", CHARS),
]


def _case_id(case: Case) -> str:
    return ascii(case.url)[1:-1][:60]


def _assert_verdict(policy: DestinationPolicy, url: str, expected: Ok | No) -> None:
    if isinstance(expected, Ok):
        assert policy.check_url(url) == (expected.url or url)
    else:
        with pytest.raises(InvalidDestination) as info:
            policy.check_url(url)
        assert info.value.field == "url"
        assert expected.reason in info.value.reason


def test_table_is_broad() -> None:
    """
    The table holds at least 45 URLs, with both accepted and refused ones under each policy.
    """
    assert len(CASES) >= 45
    for column in ("default", "local"):
        verdicts = {type(getattr(c, column)) for c in CASES}
        assert verdicts == {Ok, No}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_default_policy(case: Case) -> None:
    """
    The default policy (https, default ports, public addresses) gives each URL its verdict.
    """
    _assert_verdict(DestinationPolicy(), case.url, case.default)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_allow_http_policy(case: Case) -> None:
    """
    allow_http=True changes only the verdicts of http URLs; ports and addresses still count.
    """
    expected = case.default if case.with_http is None else case.with_http
    _assert_verdict(DestinationPolicy(allow_http=True), case.url, expected)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_local_testing_policy(case: Case) -> None:
    """
    local_testing() additionally accepts loopback (any spelling), http and any port; nothing else.
    """
    _assert_verdict(DestinationPolicy.local_testing(), case.url, case.local)


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c.default, Ok)], ids=_case_id)
def test_normalized_url_is_a_fixed_point(case: Case) -> None:
    """
    Checking an accepted URL's normalized form gives it back unchanged.
    """
    policy = DestinationPolicy()
    normalized = policy.check_url(case.url)
    assert normalized == policy.check_url(normalized)


# --------------------------------------------------------------------------------------------
# check_url: errors, field names, ports, and what reasons never contain.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name"), [(None, "NoneType"), (b"https://example.com/", "bytes"), (443, "int")]
)
def test_check_url_refuses_non_text(value: object, type_name: str) -> None:
    """
    A URL that is not a str is refused with InvalidDestination naming its type.
    """
    with pytest.raises(InvalidDestination) as info:
        DestinationPolicy().check_url(value)  # type: ignore[arg-type]

    assert info.value.reason == f"must be text, not {type_name}"


def test_check_url_reports_the_callers_field() -> None:
    """
    The error names the field given by the caller, and is a ValueError and a library error.
    """
    with pytest.raises(InvalidDestination) as info:
        DestinationPolicy().check_url("ftp://x/", field="endpoint_url")

    assert info.value.field == "endpoint_url"
    assert str(info.value).startswith("endpoint_url: scheme 'ftp'")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PendoWebhooksError)


def test_the_default_port_counts_against_allowed_ports() -> None:
    """
    A URL without a port uses its scheme's default port, which must be allowed too.
    """
    https_only_8443 = DestinationPolicy(allowed_ports={8443})
    http_only_443 = DestinationPolicy(allow_http=True, allowed_ports={443})

    assert https_only_8443.check_url("https://h:8443/") == "https://h:8443/"
    with pytest.raises(InvalidDestination, match="port 443 is not allowed"):
        https_only_8443.check_url("https://h/")
    with pytest.raises(InvalidDestination, match="port 80 is not allowed"):
        http_only_443.check_url("http://h/")


def test_loopback_names_need_any_loopback_allowed() -> None:
    """
    localhost is accepted when either 127.0.0.1 or ::1 is allowed; the resolve check does the rest.
    """
    assert (
        DestinationPolicy(allow_networks="::1").check_url("https://localhost/")
        == "https://localhost/"
    )
    with pytest.raises(InvalidDestination, match="loopback"):
        DestinationPolicy(allow_networks="10.0.0.0/8").check_url("https://localhost/")


def test_allow_networks_reach_private_literals() -> None:
    """
    A private IP literal inside allow_networks is accepted; its neighbours are not.
    """
    policy = DestinationPolicy(allow_networks=["10.1.0.0/16", "fd00:ec2::/64"])

    assert policy.check_url("https://10.1.2.3/") == "https://10.1.2.3/"
    assert policy.check_url("https://[fd00:ec2::254]/") == "https://[fd00:ec2::254]/"
    with pytest.raises(InvalidDestination, match=PUBLIC):
        policy.check_url("https://10.2.0.1/")


MARKER = "Zq9SECRETq9Z"
_URL_TEXT = st.text(st.characters(codec="utf-8"), max_size=20).map(lambda t: t.replace(MARKER, ""))
_USERINFO_TEXT = st.text(
    st.characters(codec="ascii", exclude_characters="/?#@\\"), max_size=10
).map(lambda t: t.replace(MARKER, ""))
_HOSTS = st.sampled_from(
    [
        "example.com",
        "h:22",
        "h:abc",
        "127.0.0.1",
        "0x7f.1",
        "[::1]",
        "[fd00:ec2::254]:8443",
        "localhost",
        "exa%mple",
        "a..b",
        "bücher.example",
        "xn--zz",
        "[::1",
        "",
    ]
)


_SCHEMES = st.sampled_from(["https", "http", "HTTPS", "ftp", "file", "gopher"])


@st.composite
def _urls_with_userinfo(draw: st.DrawFn) -> str:
    user, password = draw(_USERINFO_TEXT), draw(_USERINFO_TEXT)
    host, path, query = draw(_HOSTS), draw(_URL_TEXT), draw(_URL_TEXT)
    return f"{draw(_SCHEMES)}://{user}{MARKER}:{password}{MARKER}@{host}/{path}?{query}"


@st.composite
def _urls_with_query(draw: st.DrawFn) -> str:
    host, path = draw(_HOSTS), draw(_URL_TEXT).replace("?", "")
    before, after = draw(_URL_TEXT), draw(_URL_TEXT)
    return f"{draw(_SCHEMES)}://{host}/{path}?{before}{MARKER}{after}"


def _refusal_text(policy: DestinationPolicy, url: str) -> str:
    """
    Everything a refusal shows (str, repr and args), or "" if the URL is accepted.
    """
    try:
        policy.check_url(url)
    except InvalidDestination as exc:
        return f"{exc} {exc!r} {exc.args!r}"
    return ""


@given(_urls_with_userinfo())
@example(f"https://{MARKER}:{MARKER}@example.com/")
@example(f"ftp://{MARKER}@127.0.0.1:22/")
def test_reasons_never_echo_userinfo(url: str) -> None:
    """
    Whatever else is wrong with a URL, a refusal never repeats its user name or password.
    """
    for policy in (DestinationPolicy(), DestinationPolicy.local_testing()):
        text = _refusal_text(policy, url)
        assert text  # always refused: credentials are never allowed
        assert MARKER not in text


@given(_urls_with_query())
@example(f"https://127.0.0.1/?token={MARKER}")
@example(f"https://h:22/?{MARKER}#frag")
def test_reasons_never_echo_the_query(url: str) -> None:
    """
    A refusal never repeats anything from the query string.
    """
    for policy in (DestinationPolicy(), DestinationPolicy.local_testing()):
        assert MARKER not in _refusal_text(policy, url)


# --------------------------------------------------------------------------------------------
# is_public_address: the deny tables, range by range.
# --------------------------------------------------------------------------------------------

DENIED_V4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
DENIED_V6 = [
    "::/128",
    "::1/128",
    "::/8",
    "100::/64",
    "2001:db8::/32",
    "2001:2::/48",
    "2001:10::/28",
    "2001:20::/28",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "4000::/2",  # outside global unicast 2000::/3
]


@pytest.mark.parametrize("cidr", DENIED_V4 + DENIED_V6)
def test_every_denied_range_is_refused_edge_to_edge(cidr: str) -> None:
    """
    The first and last address of each denied range are refused.
    """
    network = ipaddress.ip_network(cidr)

    assert not is_public_address(network.network_address)
    assert not is_public_address(network.broadcast_address)


@pytest.mark.parametrize(
    "address",
    [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450:4001::1",
        "2001:200::1",  # just past 2001::/23
        "3fff:1000::1",  # just past 3fff::/20
        "::ffff:1.1.1.1",
        "64:ff9b::8.8.8.8",
        "2002:101:101::1",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    """
    Public unicast addresses, including those just outside each denied range, are allowed.
    """
    ip = ipaddress.ip_address(address)

    assert is_public_address(ip)
    assert DestinationPolicy().is_allowed_address(ip)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", True),  # server 65.54.227.120, client 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # client 192.0.2.45
        ("2001:0:a00:1:8000:63bf:f7f7:f7f7", False),  # server 10.0.0.1
        ("64:ff9b:1::808:808", False),  # /96 reads 8.8.8.8, /64 reads 0.0.8.8
        ("64:ff9b:1:808:8:808:0:0", False),  # /48 reads 8.8.8.8, /96 reads 0.0.0.0
        ("64:ff9b:1:808:808:808:808:808", True),  # 8.8.8.8 in every RFC 6052 position
        ("::ffff:0:808:808", False),  # IPv4-translated (deprecated)
        ("::808:808", False),  # IPv4-compatible (deprecated)
    ],
)
def test_wrapper_forms(address: str, expected: bool) -> None:
    """
    Teredo needs both IPv4s public; local-use NAT64 needs every embedding public; old forms fail.
    """
    assert is_public_address(V6(address)) is expected


def test_is_public_address_refuses_other_types() -> None:
    """
    Wrong argument types are a ValidationError naming the argument, not an AttributeError.
    """
    with pytest.raises(ValidationError) as info:
        is_public_address("8.8.8.8")  # type: ignore[arg-type]

    assert info.value.field == "ip"
    with pytest.raises(ValidationError):
        DestinationPolicy().is_allowed_address("8.8.8.8")  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        parse_ip_host(b"127.0.0.1")  # type: ignore[arg-type]
    assert info.value.field == "host"


def _in_network(cidr: str) -> st.SearchStrategy[int]:
    network = ipaddress.ip_network(cidr)
    first = int(network.network_address)
    return st.integers(first, first + network.num_addresses - 1)


_V4_VALUES = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from(DENIED_V4).flatmap(_in_network))


@given(_V4_VALUES)
@example(0x7F00_0001)
@example(0xA9FE_A9FE)
@example(0x0808_0808)
def test_wrappers_inherit_the_ipv4_verdict(v: int) -> None:
    """
    IPv4 v, ::ffff:v, 64:ff9b::v and the 6to4 address 2002:v::1 share one verdict.
    """
    verdict = is_public_address(V4(v))

    assert verdict is is_public_address(V6(0xFFFF_0000_0000 | v))
    assert verdict is is_public_address(V6((0x0064_FF9B << 96) | v))
    assert verdict is is_public_address(V6((0x2002 << 112) | (v << 80) | 1))


@given(_V4_VALUES)
def test_allow_lists_see_through_ipv4_mapping(v: int) -> None:
    """
    Under local_testing(), v and ::ffff:v are allowed alike.
    """
    policy = DestinationPolicy.local_testing()

    assert policy.is_allowed_address(V4(v)) is policy.is_allowed_address(V6(0xFFFF_0000_0000 | v))


def _inherits(value: int) -> bool:
    return (
        value >> 32 == 0xFFFF
        or value >> 32 == 0x0064_FF9B_0000_0000_0000_0000
        or value >> 80 == 0x0064_FF9B_0001
    )


@given(
    st.one_of(
        st.integers(0, 2**120 - 1),
        st.integers(0, 2**32 - 1),  # ::a.b.c.d, IPv4-compatible
        st.integers(0, 2**32 - 1).map(lambda v: 0xFFFF << 48 | v),  # ::ffff:0:a.b.c.d
    ).filter(lambda v: not _inherits(v))
)
@example(0)
@example(1)
@example(0xFFFF_0000_0000_0000 | 0x0808_0808)  # ::ffff:0:8.8.8.8, IPv4-translated
def test_everything_else_in_the_reserved_block_is_refused(value: int) -> None:
    """
    Every ::/8 address other than the mapped and NAT64 forms is refused.
    """
    assert not is_public_address(V6(value))


@st.composite
def _network_and_member(draw: st.DrawFn) -> tuple[str, IPAddress]:
    bits = draw(st.sampled_from([32, 128]))
    prefix = draw(st.integers(0, bits))
    kind = ipaddress.IPv4Network if bits == 32 else ipaddress.IPv6Network
    network = kind((draw(st.integers(0, 2**bits - 1)), prefix), strict=False)
    offset = draw(st.integers(0, network.num_addresses - 1))
    member = int(network.network_address) + offset
    return str(network), (V4(member) if bits == 32 else V6(member))


@given(_network_and_member())
def test_every_address_in_an_allowed_network_is_allowed(pair: tuple[str, IPAddress]) -> None:
    """
    Whatever an allow_networks entry covers is allowed, private or not.
    """
    network, member = pair

    assert DestinationPolicy(allow_networks=[network]).is_allowed_address(member)


@pytest.mark.parametrize(
    ("allow", "address"),
    [("::ffff:10.0.0.0/104", "10.1.2.3"), ("10.0.0.0/8", "::ffff:10.1.2.3")],
)
def test_allow_networks_match_across_ipv4_mapping(allow: str, address: str) -> None:
    """
    An IPv4 network allows the mapped form of its addresses, and a mapped network the IPv4 form.
    """
    policy = DestinationPolicy(allow_networks=allow)

    assert policy.is_allowed_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["64:ff9b::7f00:1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:80ff:fffe"]
)
def test_allow_networks_do_not_see_through_translation(address: str) -> None:
    """
    NAT64, 6to4 and Teredo forms of an allowed IPv4 address reach another network: refused.
    """
    assert not DestinationPolicy.local_testing().is_allowed_address(V6(address))


@given(
    st.one_of(
        st.integers(0, 2**32 - 1).map(V4),
        st.integers(0, 2**128 - 1).filter(lambda v: _ipclass.embedded_ipv4s(v) is None).map(V6),
        st.sampled_from([*DENIED_V6, "2000::/3"]).flatmap(_in_network).map(V6),
    )
)
def test_our_tables_are_at_least_as_strict_as_the_interpreters(ip: IPAddress) -> None:
    """
    Whatever our own tables allow, this Python's is_global allows too (its check is a backstop).
    """
    if isinstance(ip, V4):
        ours = _ipclass.v4_table_allows(int(ip))
    else:
        ours = _ipclass.v6_table_allows(int(ip))
    if ours:
        assert ip.is_global
    assert is_public_address(ip) is ours


# --------------------------------------------------------------------------------------------
# parse_ip_host: every spelling inet_aton accepts, and nothing else.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0x7f000001",
        "0X7F000001",
        "0177.0.0.1",
        "127.1",
        "0x7f.1",
        "017700000001",
        "127.000.000.001",
        "127.0.1",
        "0x7f.0x0.0x0.0x1",
        "0x0000000000000000007f.1",
    ],
)
def test_parse_ip_host_reads_every_inet_aton_spelling(host: str) -> None:
    """
    Decimal, octal, hex and short forms of 127.0.0.1 all parse to 127.0.0.1.
    """
    assert parse_ip_host(host) == V4("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("[::1]", V6("::1")),
        ("::ffff:127.0.0.1", V6("::ffff:7f00:1")),
        ("[2606:4700::1111]", V6("2606:4700::1111")),
        ("8.8.8.8", V4("8.8.8.8")),
        ("0", V4("0.0.0.0")),
        ("255.255.255.255", V4("255.255.255.255")),
        ("4294967295", V4("255.255.255.255")),
        ("1.16777215", V4("1.255.255.255")),
        ("1.2.65535", V4("1.2.255.255")),
    ],
)
def test_parse_ip_host_literals(host: str, expected: IPAddress) -> None:
    """
    Bracketed and bare IPv6, and IPv4 at the edges of each part's range, parse exactly.
    """
    assert parse_ip_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost",
        "",
        "[::1",
        "[nope]",
        "[127.0.0.1]",
        "::g",
        "08.1.1.1",
        "0x.1",
        "00x1",
        "1..2",
        "127.0.0.1.",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.16777216",
        "1.2.65536",
        "4294967296",
        "0x100000000",
        "1" * 40,
        "127.0.0.1 ",
        FULL_127,
        "٣.1.1.1",
    ],
)
def test_parse_ip_host_returns_none_for_names_and_bad_spellings(host: str) -> None:
    """
    Names, malformed and out-of-range spellings are not IP literals.
    """
    assert parse_ip_host(host) is None


@st.composite
def _spelling(draw: st.DrawFn) -> tuple[int, str]:
    value = draw(st.integers(0, 2**32 - 1))
    count = draw(st.integers(1, 4))
    parts = [(value >> (24 - 8 * i)) & 0xFF for i in range(count - 1)]
    parts.append(value & (0xFFFF_FFFF >> (8 * (count - 1))))
    spelled = []
    for part in parts:
        style = draw(st.sampled_from(["dec", "oct", "hex", "HEX"]))
        zeros = "0" * draw(st.integers(0, 3))
        spelled.append(
            {
                "dec": str(part),
                "oct": "0" + zeros + format(part, "o"),
                "hex": "0x" + zeros + format(part, "x"),
                "HEX": "0X" + zeros + format(part, "X"),
            }[style]
        )
    return value, ".".join(spelled)


@given(_spelling())
def test_every_spelling_of_every_ipv4_parses(pair: tuple[int, str]) -> None:
    """
    Any mix of decimal, octal and hex parts, in 1 to 4 parts, parses to the address it spells.
    """
    value, spelled = pair

    assert parse_ip_host(spelled) == V4(value)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the oracle is glibc's inet_aton")
@given(st.one_of(st.text("0123456789abcdefxX.", max_size=24), _spelling().map(lambda p: p[1])))
@example("0x.1")
@example("1.0x")
@example("0x" + "0" * 30 + "1")
def test_parse_ip_host_agrees_with_glibc(text: str) -> None:
    """
    parse_ip_host accepts exactly what glibc's inet_aton accepts, with the same result.
    """
    try:
        expected: V4 | None = V4(socket.inet_aton(text))
    except OSError:
        expected = None

    assert parse_ip_host(text) == expected


# --------------------------------------------------------------------------------------------
# DestinationPolicy: configuration, repr, equality.
# --------------------------------------------------------------------------------------------


def test_default_policy_fields() -> None:
    """
    By default nothing extra is allowed, http is off and the ports are 80, 443, 8080 and 8443.
    """
    policy = DestinationPolicy()

    assert policy.allow_networks == ()
    assert policy.allow_http is False
    assert policy.allowed_ports == DEFAULT_ALLOWED_PORTS == frozenset({80, 443, 8080, 8443})


def test_allow_networks_are_converted() -> None:
    """
    Strings, network objects and a bare single entry all become networks; host bits are dropped.
    """
    network = ipaddress.ip_network("fd00::/8")

    mixed = DestinationPolicy(allow_networks=["10.1.2.3/8", network])
    single = DestinationPolicy(allow_networks=network)
    bare_address = DestinationPolicy(allow_networks="127.0.0.1")

    assert mixed.allow_networks == (ipaddress.ip_network("10.0.0.0/8"), network)
    assert single.allow_networks == (network,)
    assert bare_address.allow_networks == (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"allow_networks": ["10.0.0.0/33"]},
            "allow_networks: '10.0.0.0/33' is not an IP network",
        ),
        ({"allow_networks": ["intranet"]}, "allow_networks: 'intranet' is not an IP network"),
        ({"allow_networks": [10]}, "allow_networks: entries must be CIDR strings or networks"),
        ({"allowed_ports": set()}, "allowed_ports: must not be empty; use None"),
        ({"allowed_ports": {0}}, "allowed_ports: 0 is not a port number from 1 to 65535"),
        ({"allowed_ports": {65536}}, "allowed_ports: 65536 is not a port number"),
        ({"allowed_ports": {True}}, "allowed_ports: True is not a port number"),
        ({"allowed_ports": ["443"]}, "allowed_ports: '443' is not a port number"),
        ({"allow_http": "yes"}, "allow_http: must be True or False, not 'yes'"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], message: str) -> None:
    """
    Invalid arguments raise ConfigurationError naming the argument.
    """
    with pytest.raises(ConfigurationError) as info:
        DestinationPolicy(**kwargs)  # type: ignore[arg-type]

    assert str(info.value).startswith(message)


def test_allowed_ports_accept_any_iterable() -> None:
    """
    allowed_ports may be any iterable of ints, or None for any port.
    """
    assert DestinationPolicy(allowed_ports=[9443, 443]).allowed_ports == frozenset({443, 9443})
    assert DestinationPolicy(allowed_ports=None).allowed_ports is None


def test_local_testing_policy_fields() -> None:
    """
    local_testing() allows loopback networks, http, and any port.
    """
    policy = DestinationPolicy.local_testing()

    assert tuple(str(n) for n in policy.allow_networks) == ("127.0.0.0/8", "::1/128")
    assert policy.allow_http is True
    assert policy.allowed_ports is None


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        (
            DestinationPolicy(),
            (
                "DestinationPolicy(allow_networks=(), allow_http=False, "
                "allowed_ports={80, 443, 8080, 8443})"
            ),
        ),
        (
            DestinationPolicy.local_testing(),
            (
                "DestinationPolicy(allow_networks=('127.0.0.0/8', '::1/128'), allow_http=True, "
                "allowed_ports=None)"
            ),
        ),
        (
            DestinationPolicy(allow_networks="10.0.0.0/8", allowed_ports={8443}),
            (
                "DestinationPolicy(allow_networks=('10.0.0.0/8',), allow_http=False, "
                "allowed_ports={8443})"
            ),
        ),
    ],
)
def test_repr_is_readable_and_round_trips(policy: DestinationPolicy, text: str) -> None:
    """
    The repr shows networks as strings and ports sorted, and evaluates back to an equal policy.
    """
    assert repr(policy) == text
    assert policy == eval(text, {"DestinationPolicy": DestinationPolicy})  # noqa: S307


def test_policies_are_frozen_values() -> None:
    """
    Policies compare and hash by value and cannot be changed.
    """
    assert DestinationPolicy.local_testing() == DestinationPolicy.local_testing()
    assert len({DestinationPolicy(), DestinationPolicy()}) == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        DestinationPolicy().allow_http = True  # type: ignore[misc]
