"""
The portal's pages: one method per route, for one request by one admin.

Strictly private.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ..dispatcher import DeliveryStatus, Dispatcher
from ..exceptions import ConflictError, ValidationError
from ..model._audit import AuditValue
from ..registry import Actor, Webhook, WebhookKind
from ._attention import WINDOW, needs_attention, read_dead_counts, read_health
from ._csrf import CsrfTokens
from ._forms import CATEGORY_LABELS, FIELD_LABELS, OPERATIONS_LABELS, WebhookForm
from ._render import Pages
from ._wsgi import PageRequest, PageResponse


__all__ = [
    "BODY_SHOWN",
    "COUNTED",
    "DONE",
    "STATUSES",
    "Views",
    "shown_body",
    "shown_changes",
    "shown_value",
]

#: What ``?done=<code>`` says after a redirect; any other code says nothing. PageRequest text
#: is never shown back.
DONE: Mapping[str, str] = {
    "enabled": "Enabled.",
    "disabled": "Disabled.",
    "saved": "Changes saved.",
    "deleted": "Webhook deleted.",
    "redelivered": "Redelivery queued: a worker sends it again shortly.",
}

#: What ``?done=<code>&count=<n>`` says: for no delivery, one, and *n* of them. Only the
#: number is taken from the query, and only as digits.
COUNTED: Mapping[str, tuple[str, str, str]] = {
    "redelivered-failed": (
        "Nothing to redeliver: no failed or dead deliveries created in the last 7 days.",
        "1 failed or dead delivery queued for redelivery: a worker sends it again shortly.",
        "{count} failed or dead deliveries queued for redelivery: a worker sends them again.",
    ),
}

#: The choices of the deliveries table's status filter (besides "All").
STATUSES: tuple[str, ...] = tuple(status.value for status in DeliveryStatus)

_RECENT_DELIVERIES = 20
_REDELIVER_DISABLED = (
    "Nothing redelivered: this webhook is disabled, and a disabled webhook's deliveries are "
    "cancelled. Enable it first, then redeliver."
)
_HISTORY = 20
#: The delivery page shows at most this much of a body (a Segment batch may be far larger).
BODY_SHOWN = 64 * 1024
_REDELIVER_ONE_DISABLED = (
    "Not redelivered: its webhook is disabled, and a disabled webhook's deliveries are "
    "cancelled. Enable the webhook first, then redeliver."
)
_REDELIVER_DELETED = "Not redelivered: its webhook was deleted."
_CONFLICT = (
    "Someone changed this webhook while you were editing it. The form shows your values: "
    "check them and save again to replace that change."
)


class Views:
    """
    The handlers of one request. Strictly private.
    """

    def __init__(
        self,
        pages: Pages,
        tokens: CsrfTokens,
        dispatcher: Dispatcher,
        request: PageRequest,
        actor: Actor,
    ) -> None:
        self.pages = pages
        self.tokens = tokens
        self.request = request
        self.actor = actor
        self.registry = dispatcher.registry
        self.dispatcher = dispatcher
        #: The posted form, read (and its CSRF token checked) before a POST handler runs.
        self.data: Mapping[str, Sequence[str]] = {}

    # -- rendering ------------------------------------------------------------------------

    def render(
        self, template: str, page_title: str, status: int = 200, **context: Any
    ) -> PageResponse:
        body = self.pages.render(
            template,
            self.request,
            page_title=page_title,
            csrf_token=self.tokens.issue(self.actor.id),
            **context,
        )
        return PageResponse(status, body)

    def done(self) -> str | None:
        code = self.request.query("done")
        if code is None:
            return None
        if code not in COUNTED:
            return DONE.get(code)
        count = self.request.query("count") or ""
        if not (count.isascii() and count.isdigit() and len(count) <= 9):
            return None
        number = int(count)
        none, one, many = COUNTED[code]
        return none if number == 0 else one if number == 1 else many.format(count=number)

    def redirect(
        self, path: str, done: str | None = None, *, count: int | None = None
    ) -> PageResponse:
        query = "" if done is None else f"?done={done}"
        if count is not None:
            query += f"&count={count:d}"
        return PageResponse.redirect(self.request.url(path) + query)

    # -- the list -------------------------------------------------------------------------

    def index(self) -> PageResponse:
        webhooks = self.registry.list(self.actor)
        health = read_health(self.dispatcher, self.actor, webhooks)
        rows = [
            {
                "webhook": webhook,
                "health": "not recorded" if health is None else health[webhook.id].state.value,
            }
            for webhook in webhooks
        ]
        dead = read_dead_counts(self.dispatcher, self.actor, self.dispatcher.clock() - WINDOW)
        return self.render(
            "list.html",
            self.pages.title,
            rows=rows,
            attention=needs_attention(webhooks, health, dead.by_webhook),
            # How many were read, if that was all that may be: the counts are lower bounds.
            dead_capped=dead.capped,
            done=self.done(),
        )

    # -- create ---------------------------------------------------------------------------

    def _form_page(
        self, form: WebhookForm, *, webhook: Webhook | None = None, status: int = 200
    ) -> PageResponse:
        if webhook is None:
            return self.render(
                "form.html",
                "New webhook",
                status,
                form=form,
                creating=True,
                operations=False,
                action=self.request.url("/new"),
                submit="Create webhook",
            )
        return self.render(
            "form.html",
            f"Edit {webhook.name}",
            status,
            form=form,
            creating=False,
            operations=webhook.is_operations,
            action=self.request.url(f"/webhooks/{quote(webhook.id, safe='')}/edit"),
            submit="Save changes",
        )

    def new(self) -> PageResponse:
        return self._form_page(WebhookForm())

    def create(self) -> PageResponse:
        form = WebhookForm.read(self.data)
        try:
            webhook = self.registry.create(self.actor, **form.create_arguments(self.data))
        except ValidationError as exc:
            return self._form_page(form.failed(exc), status=400)
        return self._secret_page(webhook, "Webhook created", "Webhook created (inactive).")

    def _secret_page(self, webhook: Webhook, title: str, message: str) -> PageResponse:
        secret = None if webhook.secret is None else webhook.secret.reveal()
        return self.render(
            "secret.html",
            title,
            webhook=webhook,
            message=message,
            secret=secret,
            segment=webhook.kind is WebhookKind.SEGMENT,
        )

    # -- one webhook ----------------------------------------------------------------------

    def _detail(
        self,
        webhook_id: str,
        *,
        status: int = 200,
        test: object = None,
        error: str | None = None,
    ) -> PageResponse:
        webhook = self.registry.get(self.actor, webhook_id)
        wanted = self.request.query("status")
        shown = wanted if wanted in STATUSES else None
        deliveries = self.dispatcher.deliveries(
            self.actor, webhook_id=webhook.id, status=shown, limit=_RECENT_DELIVERIES
        )
        # The webhook is read: its health straight from the store (as the list reads it).
        health = read_health(self.dispatcher, self.actor, [webhook])
        history = self.registry.audit(self.actor, webhook_id=webhook.id, limit=_HISTORY)
        return self.render(
            "detail.html",
            webhook.name,
            status,
            webhook=webhook,
            history=[(entry, shown_changes(entry.changes)) for entry in history],
            health=None if health is None else health[webhook.id],
            deliveries=deliveries,
            statuses=STATUSES,
            shown=shown,
            test=test,
            error=error,
            done=self.done(),
        )

    def detail(self, webhook_id: str) -> PageResponse:
        return self._detail(webhook_id)

    def test(self, webhook_id: str) -> PageResponse:
        result = self.dispatcher.send_test(self.actor, webhook_id)
        return self._detail(webhook_id, test=result)

    def enable(self, webhook_id: str) -> PageResponse:
        try:
            self.registry.enable(self.actor, webhook_id)
        except ValidationError as exc:  # the destination is no longer allowed
            return self._detail(webhook_id, status=400, error=f"Not enabled: {exc}")
        return self.redirect(f"/webhooks/{quote(webhook_id, safe='')}", "enabled")

    def disable(self, webhook_id: str) -> PageResponse:
        reason = (self.data.get("reason") or [""])[0].strip() or None
        try:
            self.registry.disable(self.actor, webhook_id, reason=reason)
        except ValidationError as exc:  # too long, or invisible characters
            return self._detail(
                webhook_id, status=400, error=f"Not disabled: the reason {exc.reason}"
            )
        return self.redirect(f"/webhooks/{quote(webhook_id, safe='')}", "disabled")

    def redeliver_failed(self, webhook_id: str) -> PageResponse:
        # Dispatcher.redeliver_failed takes no actor: ask the policy here, as redeliver does.
        self.registry.policy.check(self.actor, "read", webhook_id)
        self.registry.policy.check(self.actor, "update", webhook_id)
        webhook = self.registry.get(self.actor, webhook_id)
        if not webhook.enabled:  # a worker would cancel every one of them again
            return self._detail(webhook.id, status=409, error=_REDELIVER_DISABLED)
        count = self.dispatcher.redeliver_failed(webhook.id, self.dispatcher.clock() - WINDOW)
        path = f"/webhooks/{quote(webhook.id, safe='')}"
        return self.redirect(path, "redelivered-failed", count=count)

    def rotate(self, webhook_id: str) -> PageResponse:
        try:
            webhook = self.registry.rotate_secret(self.actor, webhook_id)
        except ValidationError as exc:  # a Segment webhook has no secret
            return self._detail(webhook_id, status=400, error=f"Not rotated: {exc.reason}")
        return self._secret_page(
            webhook,
            "Secret rotated",
            "Secret rotated. The old secret keeps signing for 24 hours, so the receiver "
            "can switch over.",
        )

    def edit(self, webhook_id: str) -> PageResponse:
        webhook = self.registry.get(self.actor, webhook_id)
        return self._form_page(WebhookForm.of(webhook), webhook=webhook)

    def save(self, webhook_id: str) -> PageResponse:
        webhook = self.registry.get(self.actor, webhook_id)
        form = WebhookForm.read(self.data, kind=webhook.kind.value)
        try:
            arguments = form.update_arguments(self.data)
            if webhook.is_operations:  # the form has no operations events to tick
                del arguments["categories"]
            self.registry.update(self.actor, webhook_id, **arguments)
        except ValidationError as exc:
            return self._form_page(form.failed(exc), webhook=webhook, status=400)
        except ConflictError:
            current = self.registry.get(self.actor, webhook_id)
            form.version = current.version
            form.error = _CONFLICT
            return self._form_page(form, webhook=current, status=409)
        return self.redirect(f"/webhooks/{quote(webhook_id, safe='')}", "saved")

    def confirm_delete(self, webhook_id: str) -> PageResponse:
        webhook = self.registry.get(self.actor, webhook_id)
        return self.render(
            "confirm_delete.html", f"Delete webhook {webhook.name}?", webhook=webhook
        )

    def delete(self, webhook_id: str) -> PageResponse:
        self.registry.delete(self.actor, webhook_id)
        return self.redirect("/", "deleted")

    # -- deliveries -----------------------------------------------------------------------

    def delivery(
        self, delivery_id: str, *, status: int = 200, error: str | None = None
    ) -> PageResponse:
        attempts = self.dispatcher.attempts(self.actor, delivery_id)
        delivery = self.dispatcher.storage.get_delivery(delivery_id)
        try:
            webhook: Webhook | None = self.registry.get(self.actor, delivery.webhook_id)
        except LookupError:  # deleted since
            webhook = None
        return self.render(
            "delivery.html",
            f"Delivery {delivery.id}",
            status,
            delivery=delivery,
            webhook=webhook,
            attempts=attempts,
            can_redeliver=delivery.status.is_finished and not delivery.purged,
            webhook_enabled=webhook is not None and webhook.enabled,
            body=shown_body(delivery.body),
            error=error,
            done=self.done(),
        )

    def redeliver(self, delivery_id: str) -> PageResponse:
        delivery = self.dispatcher.storage.get_delivery(delivery_id)
        # Dispatcher.redeliver takes no actor: ask the policy here, as for a change.
        self.registry.policy.check(self.actor, "read", delivery.webhook_id)
        self.registry.policy.check(self.actor, "update", delivery.webhook_id)
        try:
            webhook = self.registry.get(self.actor, delivery.webhook_id)
        except LookupError:  # deleted since: nothing could send it
            return self.delivery(delivery_id, status=409, error=_REDELIVER_DELETED)
        if not webhook.enabled:  # a worker would cancel it again
            return self.delivery(delivery_id, status=409, error=_REDELIVER_ONE_DISABLED)
        try:
            self.dispatcher.redeliver(delivery_id)
        except ConflictError:
            message = "Not redelivered: it is still pending, or its body was purged."
            return self.delivery(delivery_id, status=409, error=message)
        return self.redirect(f"/deliveries/{quote(delivery_id, safe='')}", "redelivered")


def shown_body(body: bytes) -> str:
    """
    A delivery's body for its page: JSON indented for reading, anything else as text.

    Cut to :data:`BODY_SHOWN` bytes (and then not re-indented); never raises.

    >>> print(shown_body(b'{"event":"npsSubmitted","data":[1]}'))
    {
      "event": "npsSubmitted",
      "data": [
        1
      ]
    }
    >>> shown_body(b"not JSON: <b>")
    'not JSON: <b>'
    """
    if len(body) > BODY_SHOWN:
        cut = body[:BODY_SHOWN].decode("utf-8", "replace")
        return f"{cut}\n[... {len(body) - BODY_SHOWN:,} more bytes not shown]"
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace")


def shown_value(value: AuditValue) -> str:
    """
    An audited value for the History table (secrets arrive already as ``<redacted>``).

    >>> shown_value(None), shown_value(True), shown_value(("a", "b")), shown_value(3)
    ('none', 'yes', 'a, b', '3')
    >>> shown_value({"X-Team": "<redacted>"})
    'X-Team: <redacted>'
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "none"
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {item}" for key, item in value.items()) if value else "none"
    return str(value)


def _category_labels(value: AuditValue) -> AuditValue:
    # Categories in the words of the create form's checkboxes (as the Settings list shows them).
    if not isinstance(value, tuple):
        return value
    labels: dict[str, str] = {c.value: label for c, label in CATEGORY_LABELS.items()}
    labels.update({c.value: label for c, label in OPERATIONS_LABELS.items()})
    return tuple(sorted(labels.get(item, item) for item in value))


def shown_changes(
    changes: Mapping[str, tuple[AuditValue, AuditValue]],
) -> list[tuple[str, str, str]]:
    """
    An audit entry's changes as ``(field, old, new)`` texts, in the words of the form.

    >>> shown_changes({"url": ("https://a.example/", "https://b.example/"),
    ...                "categories": (("npsSubmitted",), ("npsSubmitted", "pollSubmitted")),
    ...                "enabled": (False, True)})
    ... # doctest: +NORMALIZE_WHITESPACE
    [('Destination URL', 'https://a.example/', 'https://b.example/'),
     ('Enabled', 'no', 'yes'),
     ('Events', 'NPS submitted', 'NPS submitted, Poll submitted')]
    """
    rows = []
    for field, pair in changes.items():
        label = FIELD_LABELS[field][0] if field in FIELD_LABELS else field.replace("_", " ")
        old, new = map(_category_labels, pair) if field == "categories" else pair
        rows.append((label[:1].upper() + label[1:], shown_value(old), shown_value(new)))
    return sorted(rows)
