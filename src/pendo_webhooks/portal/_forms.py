"""
The create and edit forms: what they show, and the registry arguments they make.

Mirrors the console script's ``webhooks create`` / ``update``: a URL webhook or a Segment
one (with its write key), a secret that is generated when left blank, the event
categories, and PII filters written ``drop:<path>`` / ``hash:<path>``, one a line.

Strictly private.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..events import EventCategory, OperationsCategory
from ..exceptions import ValidationError
from ..registry import FieldFilter, Webhook, WebhookKind


__all__ = ["CATEGORY_LABELS", "FIELD_LABELS", "OPERATIONS_LABELS", "WebhookForm"]

#: The checkbox label of each event category, in the order the form shows them.
CATEGORY_LABELS: Mapping[EventCategory, str] = {
    EventCategory.GUIDE_DISPLAYED: "Guide displayed",
    EventCategory.TRACK_EVENT_RECEIVED: "Track event received",
    EventCategory.NPS_DISPLAYED: "NPS displayed",
    EventCategory.NPS_SUBMITTED: "NPS submitted",
    EventCategory.POLL_DISPLAYED: "Poll displayed",
    EventCategory.POLL_SUBMITTED: "Poll submitted",
    EventCategory.VISITOR_CREATED: "Visitor first seen",
    EventCategory.ACCOUNT_CREATED: "Account first seen",
    EventCategory.PARENT_CHILD_ACCOUNT_CREATED: "Parent-child account first seen",
}

#: The checkbox label of each operations event (the library's own alerts, for an operations
#: webhook), in the order the create form shows them.
OPERATIONS_LABELS: Mapping[OperationsCategory, str] = {
    OperationsCategory.DELIVERY_EXHAUSTED: "A delivery went dead",
    OperationsCategory.WEBHOOK_DISABLED: "A webhook was disabled",
    OperationsCategory.WEBHOOK_RECOVERED: "A webhook recovered",
}
_OPERATIONS = frozenset(c.value for c in OperationsCategory)

#: The form's label for each field the registry names in its errors, and the id of the
#: element an error on it is attached to.
FIELD_LABELS: Mapping[str, tuple[str, str]] = {
    "name": ("Name", "name"),
    "kind": ("Type", "kind"),
    "url": ("Destination URL", "url"),
    "write_key": ("Segment write key", "write_key"),
    "segment_endpoint": ("Segment write key", "write_key"),
    "secret": ("Secret", "secret"),
    "unsigned": ("Secret", "secret"),
    "categories": ("Events", "events"),
    "filters": ("PII filters", "filters"),
}


def _one(data: Mapping[str, Sequence[str]], name: str) -> str:
    values = data.get(name)
    return values[0] if values else ""


@attrs.define
class WebhookForm:
    """
    What the form holds: its values to show again, and the error to show. Strictly private.

    Never holds a secret or a write key: those fields always come back blank.
    """

    name: str = ""
    kind: str = WebhookKind.URL.value
    url: str = ""
    categories: frozenset[str] = frozenset()
    filters: str = ""
    version: int | None = None
    error: str | None = None
    error_field: str | None = None

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookForm:
        """
        The edit form of *webhook*.
        """
        return cls(
            name=webhook.name,
            kind=webhook.kind.value,
            url=webhook.url or "",
            categories=frozenset(c.value for c in webhook.categories),
            filters="\n".join(str(f) for f in webhook.filters),
            version=webhook.version,
        )

    @classmethod
    def read(cls, data: Mapping[str, Sequence[str]], *, kind: str | None = None) -> WebhookForm:
        """
        The values posted (*kind* fixed for an edit: it cannot change).
        """
        version = _one(data, "version")
        return cls(
            name=_one(data, "name"),
            kind=_one(data, "kind") if kind is None else kind,
            url=_one(data, "url").strip(),
            categories=frozenset(data.get("categories", ())),
            filters=_one(data, "filters"),
            version=int(version) if version.isascii() and version.isdigit() else None,
        )

    def failed(self, exc: ValidationError) -> WebhookForm:
        """
        This form with *exc* as its error, in the words of the form's labels.
        """
        label, anchor = FIELD_LABELS.get(exc.field, (exc.field, None))
        if exc.field == "categories" and self.categories & _OPERATIONS:
            label, anchor = "Operations alerts", "operations"
        return attrs.evolve(self, error=f"{label}: {exc.reason}", error_field=anchor)

    def filter_lines(self) -> list[FieldFilter]:
        """
        The PII filters, one ``drop:<path>`` or ``hash:<path>`` a line; blank lines skipped.

        Raises:
            ValidationError: Naming ``filters``, for a line that is no filter.
        """
        return [
            FieldFilter.parse(line.strip()) for line in self.filters.splitlines() if line.strip()
        ]

    def create_arguments(self, data: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """
        The arguments of :meth:`WebhookRegistry.create` (without the actor).

        Raises:
            ValidationError: Naming the field, for a type that is neither, or a value
                given for the other type.
        """
        secret = _one(data, "secret")
        write_key = _one(data, "write_key").strip()
        arguments: dict[str, Any] = {
            "name": self.name,
            "categories": sorted(self.categories),
            "filters": self.filter_lines(),
        }
        if self.kind == WebhookKind.URL.value:
            if write_key:
                msg = "is only for Segment webhooks; leave it blank for a URL webhook"
                raise ValidationError("write_key", msg)
            if not self.url:
                raise ValidationError("url", "is required for URL webhooks")
            arguments.update(url=self.url, secret=secret or None)
        elif self.kind == WebhookKind.SEGMENT.value:
            if self.url:
                msg = "is only for URL webhooks; leave it blank for a Segment webhook"
                raise ValidationError("url", msg)
            if not write_key:
                raise ValidationError("write_key", "is required for Segment webhooks")
            if secret:
                msg = "Segment webhooks authenticate with the write key; leave it blank"
                raise ValidationError("secret", msg)
            arguments.update(kind=WebhookKind.SEGMENT, write_key=write_key)
        else:
            raise ValidationError("kind", "choose URL or Segment.com")
        return arguments

    def update_arguments(self, data: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """
        The arguments of :meth:`WebhookRegistry.update` (without the actor and id).

        A blank write key keeps the current one; the secret is not on this form.

        Raises:
            ValidationError: Naming ``filters``, for a line that is no filter.
        """
        arguments: dict[str, Any] = {
            "name": self.name,
            "categories": sorted(self.categories),
            "filters": self.filter_lines(),
            "expected_version": self.version,
        }
        if self.kind == WebhookKind.URL.value:
            arguments["url"] = self.url
        else:
            write_key = _one(data, "write_key").strip()
            if write_key:
                arguments["write_key"] = write_key
        return arguments
