"""
Exceptions raised by *pendo_webhooks*.

Every error a caller can see derives from :class:`PendoWebhooksError`, and,
where one fits, from the matching built-in too, so ``except ValueError`` keeps
working for code that does not know this library::

    PendoWebhooksError
    +-- ConfigurationError         (also ValueError)   a bad argument to a constructor
    +-- ValidationError            (also ValueError)   a bad field value; .field names it
    |   +-- InvalidDestination                          a destination URL we refuse
    |   +-- InvalidVersion                              an unparseable agent version
    +-- UnknownEventType           (also ValueError)   an ``event`` name we do not know
    +-- InvalidEventPayload        (also ValueError)   a wire payload with bad fields
    |   +-- UnexpectedEventType                         another event type than asked for
    +-- PayloadError               (also ValueError)   an event that cannot be serialized
    |   +-- PayloadTooLarge                             over a size limit
    +-- SignatureError             (also ValueError)   a signature that does not verify
    +-- PermissionDenied           (also PermissionError)
    +-- NotFound                   (also LookupError)
    |   +-- UnknownWebhook
    |   +-- UnknownDelivery
    |   +-- UnknownExclusion
    +-- ConflictError                                   a stale edit
    +-- StorageError                                    the store failed or is not ours
    +-- TransportError                                  no HTTP response arrived; .kind says why
        +-- DestinationBlocked                          the address guard refused

All of them pickle and unpickle to an equal message: their ``args`` are their
constructor arguments. None of them ever carries a secret, a write key, a
signature or a URL query string in its message.
"""

from __future__ import annotations

from collections.abc import Iterable


__all__ = [
    "ConfigurationError",
    "ConflictError",
    "DestinationBlocked",
    "InvalidDestination",
    "InvalidEventPayload",
    "InvalidVersion",
    "NotFound",
    "PayloadError",
    "PayloadTooLarge",
    "PendoWebhooksError",
    "PermissionDenied",
    "SignatureError",
    "StorageError",
    "TransportError",
    "UnexpectedEventType",
    "UnknownDelivery",
    "UnknownEventType",
    "UnknownExclusion",
    "UnknownWebhook",
    "ValidationError",
]


class PendoWebhooksError(Exception):
    """
    Base class for every exception raised by *pendo_webhooks*.

    >>> from pendo_webhooks.exceptions import PendoWebhooksError, UnknownEventType
    >>> isinstance(UnknownEventType("pageViewed"), PendoWebhooksError)
    True
    """


class ConfigurationError(PendoWebhooksError, ValueError):
    """
    A constructor or setting got a value it cannot work with.
    """


class ValidationError(PendoWebhooksError, ValueError):
    """
    A field has a value that is not allowed.

    Attributes:
        field: The field's name (Python name for models, wire path for payloads).
        reason: What is wrong with it, without echoing secret values.

    >>> str(ValidationError("name", "must not be empty"))
    'name: must not be empty'
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class InvalidDestination(ValidationError):
    """
    A destination URL is refused (scheme, port, credentials, or a non-public host).
    """


class InvalidVersion(ValidationError):
    """
    An agent version string could not be parsed.
    """


class UnknownEventType(PendoWebhooksError, ValueError):
    """
    A payload names an ``event`` type that does not exist.

    Attributes:
        event: The offending value, as found.
    """

    def __init__(self, event: object) -> None:
        super().__init__(event)
        self.event = event

    def __str__(self) -> str:
        return f"unknown event type: {self.event!r}"


class InvalidEventPayload(PendoWebhooksError, ValueError):
    """
    A wire payload could not be turned into an event.

    Attributes:
        errors: One message per problem, each starting with its wire path,
            like ``"properties.nps.rating: must be between 0 and 10"``.

    >>> str(InvalidEventPayload(["visitorId: required", "timestamp: must be an integer"]))
    'visitorId: required; timestamp: must be an integer'
    """

    def __init__(self, errors: Iterable[str]) -> None:
        errors = tuple(errors)
        super().__init__(errors)
        self.errors = errors

    def __str__(self) -> str:
        return "; ".join(self.errors)


class UnexpectedEventType(InvalidEventPayload):
    """
    A valid-looking payload of another event type than the one asked for.

    :func:`~pendo_webhooks.events.parse_event` raises it when given the event class it
    expects and the body names another known event type. A receiver that handles only some
    types can catch it apart from a malformed body.

    Attributes:
        expected: The ``event`` name asked for.
        actual: The ``event`` name the payload has.

    >>> str(UnexpectedEventType("npsSubmitted", "guideDisplayed"))
    "event: expected 'npsSubmitted', got 'guideDisplayed'"
    """

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__([f"event: expected {expected!r}, got {actual!r}"])
        self.args = (expected, actual)  # the constructor's arguments, for pickle
        self.expected = expected
        self.actual = actual


class PayloadError(PendoWebhooksError, ValueError):
    """
    An event or message cannot be serialized to the wire (NaN, lone surrogates, ...).
    """


class PayloadTooLarge(PayloadError):
    """
    A serialized message is over a size limit; it is never sent.

    Attributes:
        size: The serialized size in bytes.
        limit: The limit it broke, in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"payload is {self.size} bytes, over the limit of {self.limit} bytes"


class SignatureError(PendoWebhooksError, ValueError):
    """
    A signature is missing, malformed, stale, or does not match.
    """


class PermissionDenied(PendoWebhooksError, PermissionError):
    """
    The acting user may not do this.
    """


class NotFound(PendoWebhooksError, LookupError):
    """
    Something was looked up by id and does not exist.
    """


class UnknownWebhook(NotFound):
    """
    No webhook has this id (it may have been deleted).
    """


class UnknownDelivery(NotFound):
    """
    No delivery has this id (it may have been purged).
    """


class UnknownExclusion(NotFound):
    """
    No exclusion rule has this id (it may have been removed).
    """


class ConflictError(PendoWebhooksError):
    """
    An edit was based on a version that someone else has changed since.
    """


class StorageError(PendoWebhooksError):
    """
    The store failed, or a file is not a pendo-webhooks database.
    """


class TransportError(PendoWebhooksError):
    """
    No HTTP response arrived.

    Attributes:
        kind: One of ``"timeout"``, ``"connect"``, ``"dns"``, ``"tls"``,
            ``"blocked"``, ``"too-large"`` or ``"error"``.
        detail: A short human description, free of secrets and query strings.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class DestinationBlocked(TransportError):
    """
    The address guard refused the destination; no connection was made.
    """

    def __init__(self, kind: str = "blocked", detail: str = "destination is not public") -> None:
        super().__init__(kind, detail)
