"""
The :class:`Webhook` value and the field rules every webhook obeys, whoever builds it.

Rules that depend on the host's configuration (which destinations are allowed)
live in the registry; everything else is checked here, so a :class:`Webhook`
loaded from any storage is as sound as one an admin just created.

Strictly private; import these names from :mod:`pendo_webhooks.registry`.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import attrs

from ..events import EventCategory
from ..events._category import AnyCategory, OperationsCategory, to_any_category
from ..exceptions import InvalidType, ValidationError
from ..signing import DEFAULT_SIGNATURE_HEADER, SignatureScheme, validate_header_name
from ..signing._secret import Secret
from ._filters import FieldFilter, FilterAction, to_filters


__all__ = [
    "DEFAULT_SIGNATURE_HEADER",
    "MAX_HEADERS",
    "MAX_NAME_LENGTH",
    "MAX_REASON_LENGTH",
    "MAX_RETIRED_SECRETS",
    "SEGMENT_EU_ENDPOINT",
    "SEGMENT_US_ENDPOINT",
    "FrozenMap",
    "RetiredSecret",
    "Webhook",
    "WebhookKind",
    "check_text",
    "check_trimmed_text",
    "check_visible_text",
    "refuse_invisible",
    "secret_or_none",
    "segment_base_endpoint",
    "to_category",
    "to_kind",
    "to_secret",
]

#: Segment's HTTP tracking API in the US region (the default for Segment webhooks).
SEGMENT_US_ENDPOINT = "https://api.segment.io"
#: Segment's HTTP tracking API in the EU region.
SEGMENT_EU_ENDPOINT = "https://events.eu1.segmentapis.com"


#: What users paste after the base endpoint (the batch URL as Segment documents it, or
#: the API version alone), removed by :func:`segment_base_endpoint`; longest first.
_SEGMENT_API_SUFFIXES = ("/v1/batch", "/v1")


def segment_base_endpoint(endpoint: str) -> str:
    """
    The base of a Segment *endpoint*: without trailing slashes, ``/v1/batch`` or ``/v1``.

    Users copy the batch URL from Segment's documentation; the batch path is appended
    when sending, so it must not be stored with the endpoint (or batches go to
    ``/v1/batch/v1/batch``). A proxy's own path and query stay; a fragment (never sent)
    goes.

    >>> segment_base_endpoint("https://api.segment.io/v1/batch")
    'https://api.segment.io'
    >>> segment_base_endpoint("https://events.eu1.segmentapis.com/v1/")
    'https://events.eu1.segmentapis.com'
    >>> segment_base_endpoint("https://proxy.example.com/segment/v1/batch/?team=growth")
    'https://proxy.example.com/segment?team=growth'
    >>> segment_base_endpoint("https://proxy.example.com/v1batch")
    'https://proxy.example.com/v1batch'
    """
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    for suffix in _SEGMENT_API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)].rstrip("/")
            break
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


#: A webhook's name is 1 to this many characters after stripping.
MAX_NAME_LENGTH = 200
#: At most this many extra static headers per webhook.
MAX_HEADERS = 20
#: At most this many retired secrets stay valid for signing after rotations.
MAX_RETIRED_SECRETS = 3
#: A disable reason is at most this many characters.
MAX_REASON_LENGTH = 500

_MAX_HEADER_VALUE_LENGTH = 2000
# Refused in any stored text: controls, lone surrogates, line and paragraph separators.
_BAD_TEXT_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Also refused in what an admin types (names, reasons, actor ids): invisible format
# characters (bidi overrides and isolates, zero-width spaces, the BOM, tag characters) make
# a name in an admin page read as something else. ZWNJ and ZWJ stay allowed: Persian and
# Indic scripts need them, and so do emoji sequences. Rows stored before this rule still load.
_ALLOWED_FORMAT = frozenset({"\u200c", "\u200d"})

_V = TypeVar("_V")


class FrozenMap(Mapping[str, _V]):
    """
    An immutable, hashable mapping that keeps insertion order. Strictly private.

    >>> m = FrozenMap({"X-Team": "growth"})
    >>> m["X-Team"], len(m), m == {"X-Team": "growth"}
    ('growth', 1, True)
    """

    __slots__ = ("_data",)

    _data: dict[str, _V]

    def __init__(self, data: Mapping[str, _V] | Iterable[tuple[str, _V]] = ()) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getitem__(self, key: str) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __setattr__(self, name: str, value: object) -> None:
        msg = "FrozenMap is immutable"
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> None:
        msg = "FrozenMap is immutable"
        raise AttributeError(msg)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (self._data,))


class WebhookKind(str, enum.Enum):
    """
    Where a webhook sends: to a URL of the customer's, or to a Segment source.

    >>> WebhookKind("segment") is WebhookKind.SEGMENT
    True
    """

    #: Pendo's JSON, signed, POSTed to the webhook's URL.
    URL = "url"
    #: Segment ``track``/``identify``/``group`` calls authenticated with a write key.
    SEGMENT = "segment"

    def __str__(self) -> str:
        return self.value


def check_text(field: str, value: object, *, max_length: int) -> str:
    """
    Return *value* stripped, if it is 1..*max_length* characters of printable-ish text.

    Raises:
        ValidationError: Naming *field*, if *value* is empty or too long after
            stripping, or contains control characters, lone surrogates or
            line/paragraph separators; the message names the first such
            character by its code point. (:func:`check_visible_text` also
            refuses invisible format characters, for what admins type.)
        InvalidType: Naming *field*, if *value* is not a string.

    >>> check_text("name", "  NPS to Zapier ", max_length=200)
    'NPS to Zapier'
    >>> check_text("name", "line\\nbreak", max_length=200)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: name: must not contain U+000A (...)
    """
    if not isinstance(value, str):
        msg = f"must be text, not {type(value).__name__}"
        raise InvalidType(field, msg)
    text = value.strip()
    if not text:
        msg = "must not be empty"
        raise ValidationError(field, msg)
    if len(text) > max_length:
        msg = f"must be at most {max_length} characters, not {len(text)}"
        raise ValidationError(field, msg)
    bad = next((ch for ch in text if unicodedata.category(ch) in _BAD_TEXT_CATEGORIES), None)
    if bad is not None:
        msg = f"must not contain U+{ord(bad):04X} (control characters and line breaks)"
        raise ValidationError(field, msg)
    return text


def check_visible_text(field: str, value: object, *, max_length: int) -> str:
    """
    Like :func:`check_text`, and also refuse invisible format characters (Unicode ``Cf``).

    For what an admin types (names, reasons, actor ids): bidi overrides and
    isolates (U+202A to U+202E, U+2066 to U+2069), marks (U+200E, U+200F, U+061C),
    zero-width spaces, the BOM and tag characters make text in an admin page read
    as something else. ZWNJ and ZWJ (U+200C, U+200D) stay allowed: scripts such as
    Persian and Devanagari, and emoji sequences, need them.

    >>> check_visible_text("name", "Invoices\\u202egnp.exe", max_length=200)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: name: must not contain U+202E (...)
    >>> check_visible_text("name", "\\U0001f469\\u200d\\U0001f4bb NPS", max_length=200)
    '\U0001f469\u200d\U0001f4bb NPS'
    """
    return refuse_invisible(field, check_text(field, value, max_length=max_length))


def refuse_invisible(field: str, text: str) -> str:
    """
    Return *text* if it holds no invisible format character (see :func:`check_visible_text`).

    For text another check has already vetted (an actor id, checked untrimmed).
    """
    bad = next(
        (ch for ch in text if unicodedata.category(ch) == "Cf" and ch not in _ALLOWED_FORMAT),
        None,
    )
    if bad is not None:
        msg = (
            f"must not contain U+{ord(bad):04X} (invisible formatting characters such as "
            "bidi overrides and zero-width spaces)"
        )
        raise ValidationError(field, msg)
    return text


def to_kind(value: WebhookKind | str) -> WebhookKind:
    """
    Return *value* as a :class:`WebhookKind`; raise ``ValidationError("kind", ...)`` if unknown.
    """
    try:
        return WebhookKind(value)
    except ValueError:
        msg = f"must be one of {', '.join(repr(k.value) for k in WebhookKind)}"
        raise ValidationError("kind", msg) from None


def to_category(value: EventCategory | str, field: str = "category") -> EventCategory:
    """
    Return *value* as an :class:`EventCategory`; raise ``ValidationError(field, ...)`` if unknown.
    """
    try:
        return EventCategory(value)
    except ValueError:
        msg = f"unknown event category {str(value)[:100]!r}"
        raise ValidationError(field, msg) from None


def to_subscription(value: AnyCategory | str, field: str = "category") -> AnyCategory:
    """
    Return *value* as an :class:`EventCategory` or an :class:`OperationsCategory`.

    Raises:
        ValidationError: Naming *field*, if *value* is neither.
    """
    try:
        return to_any_category(value)
    except ValueError:
        msg = f"unknown event category {str(value)[:100]!r}"
        raise ValidationError(field, msg) from None


def _to_categories(value: Iterable[AnyCategory | str]) -> frozenset[AnyCategory]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = "must be a collection of event categories"
        raise ValidationError("categories", msg)
    categories = frozenset(to_subscription(v, "categories") for v in value)
    if not categories:
        msg = "must name at least one event category"
        raise ValidationError("categories", msg)
    operations = sum(isinstance(c, OperationsCategory) for c in categories)
    if operations and operations != len(categories):
        msg = (
            "cannot mix Pendo events and operations events (pendo_webhooks.*): "
            "an operations webhook receives operations events only"
        )
        raise ValidationError("categories", msg)
    return categories


def _to_scheme(value: SignatureScheme | str) -> SignatureScheme:
    try:
        return SignatureScheme(value)
    except ValueError:
        msg = f"must be one of {', '.join(repr(s.value) for s in SignatureScheme)}"
        raise ValidationError("signature_scheme", msg) from None


def to_secret(field: str, value: Secret | str) -> Secret:
    """
    Return *value* as a :class:`Secret` (text is wrapped); raise ``ValidationError(field, ...)``.
    """
    if isinstance(value, Secret):
        return value
    try:
        return Secret(value)
    except ValidationError as exc:  # InvalidType stays InvalidType
        raise type(exc)(field, exc.reason) from None


def secret_or_none(field: str, value: Secret | str | None) -> Secret | None:
    """
    Like :func:`to_secret`, with ``None`` passed through.
    """
    return None if value is None else to_secret(field, value)


def _to_secret(value: Secret | str | None) -> Secret | None:
    return secret_or_none("secret", value)


def _to_write_key(value: Secret | str | None) -> Secret | None:
    return secret_or_none("write_key", value)


def _to_hash_key(value: Secret | str | None) -> Secret | None:
    return secret_or_none("hash_key", value)


def _to_required_secret(value: Secret | str) -> Secret:
    return to_secret("secret", value)


def _as_utc(value: datetime) -> datetime:
    # Normalize aware datetimes; _check_aware reports anything else with the field's name.
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value.astimezone(timezone.utc)
    return value


def _check_aware(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        msg = "must be a timezone-aware datetime"
        raise ValidationError(attribute.name, msg)


def _to_name(value: str) -> str:
    return check_text("name", value, max_length=MAX_NAME_LENGTH)


def check_trimmed_text(field: str, value: object, *, max_length: int) -> str:
    """
    Like :func:`check_text`, but text with surrounding whitespace is refused, not stripped.
    """
    text = check_text(field, value, max_length=max_length)
    if text != value:
        msg = "must not start or end with whitespace"
        raise ValidationError(field, msg)
    return text


def _valid_text(max_length: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None:
            check_trimmed_text(attribute.name, value, max_length=max_length)

    return check


def _to_headers(value: Mapping[str, str] | None) -> FrozenMap[str]:
    if value is None:
        return FrozenMap()
    if not isinstance(value, Mapping):
        msg = "must be a mapping of header names to values"
        raise ValidationError("headers", msg)
    if len(value) > MAX_HEADERS:
        msg = f"at most {MAX_HEADERS} extra headers are allowed, not {len(value)}"
        raise ValidationError("headers", msg)
    seen: set[str] = set()
    for name, val in value.items():
        validate_header_name(name, "headers")
        if name.lower() in seen:
            msg = f"{name!r} is given more than once (header names ignore case)"
            raise ValidationError("headers", msg)
        seen.add(name.lower())
        # The value is never echoed: extra headers often carry API keys.
        if not isinstance(val, str):
            msg = f"the value of {name!r} must be text"
            raise ValidationError("headers", msg)
        if len(val) > _MAX_HEADER_VALUE_LENGTH:
            msg = f"the value of {name!r} must be at most {_MAX_HEADER_VALUE_LENGTH} characters"
            raise ValidationError("headers", msg)
        if any((ch < " " and ch != "\t") or ch == "\x7f" for ch in val) or not _is_utf8(val):
            msg = f"the value of {name!r} must not contain CR, LF or other control characters"
            raise ValidationError("headers", msg)
    return FrozenMap(value)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@attrs.frozen(kw_only=True)
class RetiredSecret:
    """
    A secret replaced by a rotation, still used for signing until *expires_at*.

    >>> from datetime import datetime, timezone
    >>> old = RetiredSecret(secret="old", expires_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
    >>> old.secret
    Secret('<redacted>')
    >>> old.is_valid_at(datetime(2026, 1, 1, 23, 59, tzinfo=timezone.utc))
    True
    """

    secret: Secret = attrs.field(converter=_to_required_secret)
    expires_at: datetime = attrs.field(converter=_as_utc, validator=_check_aware)

    def is_valid_at(self, now: datetime) -> bool:
        """
        Whether this secret still signs at *now* (valid strictly before :attr:`expires_at`).
        """
        return now < self.expires_at


def _to_retired(value: Iterable[RetiredSecret]) -> tuple[RetiredSecret, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = "must be a sequence of RetiredSecret values"
        raise ValidationError("previous_secrets", msg)
    retired = tuple(value)
    if any(not isinstance(r, RetiredSecret) for r in retired):
        msg = "must contain only RetiredSecret values"
        raise ValidationError("previous_secrets", msg)
    if len(retired) > MAX_RETIRED_SECRETS:
        msg = f"at most {MAX_RETIRED_SECRETS} retired secrets are kept"
        raise ValidationError("previous_secrets", msg)
    return retired


def _default_endpoint(webhook: Webhook) -> str | None:
    return SEGMENT_US_ENDPOINT if webhook.kind is WebhookKind.SEGMENT else None


def _check_bool(_: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        msg = f"must be True or False, not {type(value).__name__}"
        raise InvalidType(attribute.name, msg)


def _check_version(_: object, __: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = "must be an integer >= 1"
        raise ValidationError("version", msg)


@attrs.frozen(kw_only=True, repr=False)
class Webhook:
    """
    One registered destination: where to send, what, and how to sign it.

    Webhooks are immutable values: every change through
    :class:`~pendo_webhooks.registry.WebhookRegistry` stores a new one with
    :attr:`version` one higher. Building one checks every field; only the
    destination policy (which hosts are allowed) is the registry's to check.

    Attributes:
        id: ``"wh_"`` plus 24 random URL-safe characters.
        name: 1 to 200 characters, stripped, no control characters.
        kind: :attr:`WebhookKind.URL` or :attr:`WebhookKind.SEGMENT`.
        url: Where a URL webhook POSTs (``None`` for Segment webhooks).
        write_key: The Segment source's write key (Segment webhooks only).
        segment_endpoint: Segment's API base URL (Segment webhooks only;
            :data:`SEGMENT_US_ENDPOINT` unless given).
        segment_gzip: Send Segment batches gzip-compressed
            (``Content-Encoding: gzip``); Segment webhooks only, off by default.
        secret: The current signing secret (URL webhooks only). The registry
            generates one unless a webhook is made unsigned on purpose
            (``unsigned=True``); then it is ``None``.
        previous_secrets: Secrets replaced by rotation that still sign until
            they expire, newest first; at most :data:`MAX_RETIRED_SECRETS`.
        categories: The event categories sent (at least one): Pendo's, or the
            library's own operations events (:class:`OperationsCategory`), never both.
        enabled: Whether events are sent. New webhooks start disabled.
        signature_scheme: Which signature headers a URL webhook carries.
        signature_header: The header name for Pendo's hex signature.
        headers: Extra static headers (names are HTTP tokens the library does
            not set itself, values have no CR/LF; at most 20).
        filters: PII filters: the fields of its events to drop or hash before they
            are stored (:class:`~pendo_webhooks.registry.FieldFilter`; at most 50).
        hash_key: The key of its hash filters (HMAC-SHA256): generated by the
            registry the first time the webhook hashes a field, then kept, so hashes
            stay stable; required while a filter hashes. Never shown in reprs or the
            audit log.
        created_at, created_by, updated_at, updated_by: When and by whom.
        disabled_reason, disabled_by: Why and by whom it was last disabled
            (``"system"`` for an automatic disable), ``None`` while enabled.
        version: 1 at creation, one more per change (optimistic concurrency).

    The ``repr`` shows no secret, write key, header value or URL path:

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> hook = Webhook(
    ...     id="wh_1", name="NPS to Zapier", url="https://hooks.example.com/catch/123/abc",
    ...     secret="s3cret!", categories={"npsSubmitted"},
    ...     created_at=t, created_by="u-1", updated_at=t, updated_by="u-1",
    ... )
    >>> hook  # doctest: +NORMALIZE_WHITESPACE
    <Webhook(id='wh_1', name='NPS to Zapier', kind='url', enabled=False,
             categories=['npsSubmitted'], host='hooks.example.com')>
    >>> [s.reveal() for s in hook.signing_secrets(t)]
    ['s3cret!']
    """

    id: str = attrs.field(validator=_valid_text(200))
    name: str = attrs.field(converter=_to_name)
    kind: WebhookKind = attrs.field(default=WebhookKind.URL, converter=to_kind)
    url: str | None = None
    write_key: Secret | None = attrs.field(default=None, converter=_to_write_key)
    segment_endpoint: str | None = attrs.field(
        default=attrs.Factory(_default_endpoint, takes_self=True),
    )
    segment_gzip: bool = attrs.field(default=False, validator=_check_bool)
    secret: Secret | None = attrs.field(default=None, converter=_to_secret)
    previous_secrets: tuple[RetiredSecret, ...] = attrs.field(default=(), converter=_to_retired)
    categories: frozenset[AnyCategory] = attrs.field(converter=_to_categories)
    enabled: bool = attrs.field(default=False, validator=_check_bool)
    signature_scheme: SignatureScheme = attrs.field(
        default=SignatureScheme.BOTH, converter=_to_scheme
    )
    signature_header: str = DEFAULT_SIGNATURE_HEADER
    headers: Mapping[str, str] = attrs.field(factory=FrozenMap, converter=_to_headers)
    filters: tuple[FieldFilter, ...] = attrs.field(default=(), converter=to_filters)
    hash_key: Secret | None = attrs.field(default=None, converter=_to_hash_key)
    created_at: datetime = attrs.field(converter=_as_utc, validator=_check_aware)
    created_by: str = attrs.field(validator=_valid_text(200))
    updated_at: datetime = attrs.field(converter=_as_utc, validator=_check_aware)
    updated_by: str = attrs.field(validator=_valid_text(200))
    disabled_reason: str | None = attrs.field(
        default=None, validator=_valid_text(MAX_REASON_LENGTH)
    )
    disabled_by: str | None = attrs.field(default=None, validator=_valid_text(200))
    version: int = attrs.field(default=1, validator=_check_version)

    def __attrs_post_init__(self) -> None:
        self._check_kind()
        validate_header_name(self.signature_header, "signature_header")
        for name in self.headers:
            if name.lower() == self.signature_header.lower():
                msg = f"{name!r} is this webhook's signature header"
                raise ValidationError("headers", msg)
        if self.hash_key is None and any(f.action is FilterAction.HASH for f in self.filters):
            msg = "is required while a filter hashes"
            raise ValidationError("hash_key", msg)
        if self.enabled and (self.disabled_reason is not None or self.disabled_by is not None):
            msg = "must be empty while the webhook is enabled"
            raise ValidationError("disabled_reason", msg)

    @property
    def is_operations(self) -> bool:
        """
        Whether this is an *operations webhook*: subscribed to the library's own events.

        See :mod:`pendo_webhooks.alerts`.
        """
        return any(isinstance(c, OperationsCategory) for c in self.categories)

    def _check_kind(self) -> None:
        if self.kind is WebhookKind.SEGMENT and self.is_operations:
            msg = "operations events go to URL webhooks only, not to Segment"
            raise ValidationError("categories", msg)
        if self.kind is WebhookKind.URL:
            if not isinstance(self.url, str) or not self.url:
                msg = "is required for URL webhooks"
                raise ValidationError("url", msg)
            if self.write_key is not None:
                msg = "is only for Segment webhooks; URL webhooks sign with a secret"
                raise ValidationError("write_key", msg)
            if self.segment_endpoint is not None:
                msg = "is only for Segment webhooks"
                raise ValidationError("segment_endpoint", msg)
            if self.segment_gzip:
                msg = "is only for Segment webhooks"
                raise ValidationError("segment_gzip", msg)
            return
        if self.url is not None:
            msg = "Segment webhooks send to segment_endpoint; leave url unset"
            raise ValidationError("url", msg)
        if self.write_key is None:
            msg = "is required for Segment webhooks"
            raise ValidationError("write_key", msg)
        if not isinstance(self.segment_endpoint, str) or not self.segment_endpoint:
            msg = "is required for Segment webhooks"
            raise ValidationError("segment_endpoint", msg)
        if self.secret is not None or self.previous_secrets:
            msg = "Segment webhooks authenticate with the write key and take no secret"
            raise ValidationError("secret", msg)

    def signing_secrets(self, now: datetime) -> tuple[Secret, ...]:
        """
        Return the secrets to sign with at *now*: the current one, then unexpired retired ones.

        Empty when the webhook has no secret (Segment webhooks, unsigned URL webhooks).
        """
        if self.secret is None:
            return ()
        return (self.secret, *(r.secret for r in self.previous_secrets if r.is_valid_at(now)))

    @property
    def destination(self) -> str:
        """
        Where requests go: :attr:`url`, or :attr:`segment_endpoint` for Segment webhooks.
        """
        target = self.url if self.kind is WebhookKind.URL else self.segment_endpoint
        return str(target)

    def __repr__(self) -> str:
        categories = sorted(c.value for c in self.categories)
        filters = f", filters={len(self.filters)}" if self.filters else ""
        return (
            f"<Webhook(id={self.id!r}, name={self.name!r}, kind={self.kind.value!r}, "
            f"enabled={self.enabled!r}, categories={categories!r}, "
            f"host={_host(self.destination)!r}{filters})>"
        )


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None
