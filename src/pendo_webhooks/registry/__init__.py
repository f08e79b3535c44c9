"""
The webhook registry: admins create, edit, enable, rotate and delete webhooks, all audited.

>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> registry = WebhookRegistry(InMemoryStorage())
>>> admin = Actor("u-1", is_admin=True)
>>> hook = registry.create(
...     admin, name="NPS to Zapier", url="https://hooks.example.com/catch/1",
...     secret="any text, special chars ok!&?<>", categories={"npsSubmitted"},
... )
>>> hook.enabled, hook.version
(False, 1)
>>> registry.enable(admin, hook.id).enabled
True
>>> [e.action for e in registry.audit(admin, webhook_id=hook.id)]
['enable', 'create']
>>> [h.name for h in registry.subscribed("npsSubmitted")]
['NPS to Zapier']
"""

from __future__ import annotations

import builtins
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import attrs

from .._clock import Clock, utcnow
from ..events import EventCategory
from ..events._category import AnyCategory
from ..events._ids import new_id
from ..exceptions import ConflictError, InvalidType, UnsignedWebhookWarning, ValidationError
from ..guard import DestinationPolicy
from ..instrumentation import Hooks, WebhookChanged, WebhookState, to_hooks
from ..model._audit import (
    DEFAULT_AUDIT_LIMIT,
    AuditEntry,
    AuditQuery,
    AuditValue,
    created,
    deleted,
    diff,
)
from ..model._delivery import clip_error
from ..model._exclusions import Exclusion, ExclusionKind
from ..model._filters import FieldFilter, FilterAction, hash_value, new_hash_key, to_filters
from ..model._health import WebhookHealth
from ..model._webhook import (
    DEFAULT_SIGNATURE_HEADER,
    MAX_NAME_LENGTH,
    MAX_REASON_LENGTH,
    SEGMENT_EU_ENDPOINT,
    SEGMENT_US_ENDPOINT,
    RetiredSecret,
    Webhook,
    WebhookKind,
    check_visible_text,
    secret_or_none,
    segment_base_endpoint,
    to_category,
    to_kind,
    to_secret,
    to_subscription,
)
from ..signing import SignatureScheme
from ..signing._secret import Secret
from ..storage import Storage
from ..storage._errors import stale_version
from ..storage.protocols import HealthStore, capabilities
from . import _exclusion_admin
from ._filter_paths import check_webhook_filters, filterable_paths
from ._policy import SYSTEM_ACTOR_ID, Actor, AdminOnly, PermissionPolicy
from ._transitions import (
    DEFAULT_ROTATION_GRACE,
    UNSET,
    Keep,
    check_grace,
    rotated,
    updated,
)


__all__ = [
    "DEFAULT_ROTATION_GRACE",
    "SEGMENT_EU_ENDPOINT",
    "SEGMENT_US_ENDPOINT",
    "SYSTEM_ACTOR_ID",
    "UNSET",
    "Actor",
    "AdminOnly",
    "AuditEntry",
    "FieldFilter",
    "FilterAction",
    "PermissionPolicy",
    "RetiredSecret",
    "Webhook",
    "WebhookKind",
    "WebhookRegistry",
    "filterable_paths",
    "hash_value",
    "new_hash_key",
    "new_id",
]

# Changes without an expected_version re-read and re-apply this often when another writer
# got in between (each attempt is one read and one short write transaction).
_MAX_ATTEMPTS = 10

_T = TypeVar("_T")


def _check_unsigned(unsigned: object) -> None:
    if not isinstance(unsigned, bool):
        msg = f"must be True or False, not {type(unsigned).__name__}"
        raise InvalidType("unsigned", msg)


def _hashes(filters: Iterable[FieldFilter]) -> bool:
    return any(f.action is FilterAction.HASH for f in filters)


def _warn_unsigned(webhook: Webhook) -> None:
    msg = (
        f"webhook {webhook.id} ({webhook.name!r}) is unsigned: its receiver cannot tell its "
        "requests from forged ones"
    )
    # 1 is this function, 2 the registry method, 3 the caller of the registry.
    warnings.warn(msg, UnsignedWebhookWarning, stacklevel=3)


@attrs.frozen
class WebhookRegistry:
    """
    Registers webhooks for admins and tells the dispatcher which ones to send to.

    Every admin call takes the acting :class:`Actor` first and asks *policy*
    before touching storage. Every change is stored together with its audit
    entry, and bumps the webhook's ``version``; a change based on a version that
    someone else has changed since raises
    :class:`~pendo_webhooks.exceptions.ConflictError` instead of overwriting
    their edit.

    Args:
        storage: Where webhooks and the audit log live.
        policy: Who may do what; admins only by default.
        destinations: Which URLs are allowed (https, ports, no private
            addresses unless allow-listed); the same policy the delivery
            engine's address guard enforces at send time.
        clock: Returns the current aware UTC time.
        ids: Makes ids from a prefix (``"wh"``, ``"aud"``); random by default.
        hash_keys: Makes a webhook's PII hash key (:func:`new_hash_key`, 256 random
            bits, by default), the first time one of its filters hashes.
        hooks: Called with a :class:`~pendo_webhooks.instrumentation.WebhookChanged`
            when a webhook is enabled or disabled; a dispatcher built on this registry
            calls them for its deliveries too (see :mod:`pendo_webhooks.instrumentation`).
    """

    storage: Storage
    policy: PermissionPolicy = attrs.field(factory=AdminOnly, kw_only=True)
    destinations: DestinationPolicy = attrs.field(factory=DestinationPolicy, kw_only=True)
    clock: Clock = attrs.field(default=utcnow, kw_only=True, repr=False)
    ids: Callable[[str], str] = attrs.field(default=new_id, kw_only=True, repr=False)
    hash_keys: Callable[[], Secret] = attrs.field(default=new_hash_key, kw_only=True, repr=False)
    hooks: Hooks = attrs.field(factory=Hooks, converter=to_hooks, kw_only=True, repr=False)

    # -- admin calls: changes --------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        *,
        name: str,
        categories: Iterable[EventCategory | str],
        url: str | None = None,
        kind: WebhookKind | str = WebhookKind.URL,
        write_key: Secret | str | None = None,
        segment_endpoint: str | None = None,
        segment_gzip: bool = False,
        secret: Secret | str | None = None,
        unsigned: bool = False,
        signature_scheme: SignatureScheme | str = SignatureScheme.BOTH,
        signature_header: str = DEFAULT_SIGNATURE_HEADER,
        headers: Mapping[str, str] | None = None,
        filters: Iterable[FieldFilter | str] | None = None,
    ) -> Webhook:
        """
        Register a new webhook, disabled; return it.

        A URL webhook needs *url* and is always signed unless told otherwise:
        without a *secret*, a random ``whsec_`` secret is generated. Read it
        once from the returned webhook's ``secret.reveal()`` to give to the
        receiver (it is stored, but no call shows it again). ``unsigned=True``
        is the only way to make a URL webhook without a secret: it issues an
        :class:`~pendo_webhooks.exceptions.UnsignedWebhookWarning` and the
        audit entry records ``"unsigned": (None, True)``.

        A Segment webhook (``kind="segment"``) needs *write_key* instead, and
        takes neither *secret* nor *unsigned*; it sends to *segment_endpoint*
        (:data:`SEGMENT_US_ENDPOINT` unless given; stored as its base, without a
        pasted ``/v1/batch``, ``/v1`` or trailing slash), gzip-compressed if
        *segment_gzip*.

        *filters* (:class:`FieldFilter` values, or ``"drop:<path>"``/``"hash:<path>"``
        texts) drop or hash fields of every event before it is stored; a webhook that
        hashes gets its own random ``hash_key``. Each path must be in the body of at
        least one of *categories*, and its action must leave the body valid for the
        webhook's kind (see :func:`filterable_paths`). The audit entry shows the
        filters; the key shows as ``"<redacted>"``.

        Raises:
            PermissionDenied: If *actor* may not create webhooks.
            ValidationError: Naming the field, for any bad value
                (:class:`~pendo_webhooks.exceptions.InvalidDestination` for a
                refused URL), for *unsigned* together with a *secret*, for
                *unsigned* on a Segment webhook, or naming ``filters`` for a path
                none of *categories* has or an action it does not allow.

        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> registry = WebhookRegistry(InMemoryStorage())
        >>> hook = registry.create(
        ...     Actor("u-1", is_admin=True), name="NPS", url="https://hooks.example.com/n",
        ...     categories={"npsSubmitted"}, filters=["drop:properties.nps.reason", "hash:visitorId"],
        ... )
        >>> [str(f) for f in hook.filters], hook.hash_key
        (['drop:properties.nps.reason', 'hash:visitorId'], Secret('<redacted>'))
        >>> registry.create(
        ...     Actor("u-1", is_admin=True), name="Guides", url="https://hooks.example.com/g",
        ...     categories={"guideDisplayed"}, filters=["drop:properties.nps.reason"],
        ... )
        Traceback (most recent call last):
          ...
        pendo_webhooks.exceptions.ValidationError: filters: 'drop:properties.nps.reason': no field 'properties.nps.reason' in the events this webhook is subscribed to (guideDisplayed)
        """  # noqa: E501 - doctest lines
        self.policy.check(actor, "create", None)
        kind = to_kind(kind)
        _check_unsigned(unsigned)
        if kind is WebhookKind.URL:
            url = None if url is None else self._check_url(url, "url")
            if unsigned and secret is not None:
                msg = "cannot be combined with a secret: give a secret, or unsigned=True"
                raise ValidationError("unsigned", msg)
            if secret is None and not unsigned:
                secret = Secret.generate()
        else:
            if unsigned:
                msg = "is only for URL webhooks; Segment webhooks authenticate with a write key"
                raise ValidationError("unsigned", msg)
            endpoint = SEGMENT_US_ENDPOINT if segment_endpoint is None else segment_endpoint
            segment_endpoint = self._check_endpoint(endpoint)
        name = check_visible_text("name", name, max_length=MAX_NAME_LENGTH)
        chosen = to_filters(filters)
        hash_key = self.hash_keys() if _hashes(chosen) else None
        now = self.clock()
        webhook = Webhook(
            id=self.ids("wh"),
            name=name,
            kind=kind,
            url=url,
            write_key=write_key,
            segment_endpoint=segment_endpoint,
            segment_gzip=segment_gzip,
            secret=secret,
            categories=categories,
            signature_scheme=signature_scheme,
            signature_header=signature_header,
            headers=headers,
            filters=chosen,
            hash_key=hash_key,
            created_at=now,
            created_by=actor.id,
            updated_at=now,
            updated_by=actor.id,
        )
        check_webhook_filters(webhook)
        changes = created(webhook)
        if unsigned:
            changes["unsigned"] = (None, True)
        entry = self._entry(now, actor.id, "create", webhook.id, changes)
        self.storage.insert_webhook(webhook, audit=entry)
        if unsigned:
            _warn_unsigned(webhook)
        return webhook

    def update(
        self,
        actor: Actor,
        webhook_id: str,
        *,
        expected_version: int | None = None,
        name: str | Keep = UNSET,
        url: str | Keep | None = UNSET,
        write_key: Secret | str | Keep | None = UNSET,
        segment_endpoint: str | Keep | None = UNSET,
        segment_gzip: bool | Keep = UNSET,
        secret: Secret | str | Keep | None = UNSET,
        categories: Iterable[EventCategory | str] | Keep = UNSET,
        signature_scheme: SignatureScheme | str | Keep = UNSET,
        signature_header: str | Keep = UNSET,
        headers: Mapping[str, str] | Keep | None = UNSET,
        kind: WebhookKind | str | Keep = UNSET,
        unsigned: bool = False,
        filters: Iterable[FieldFilter | str] | Keep | None = UNSET,
    ) -> Webhook:
        """
        Change the given fields; return the new version (the same one if nothing changed).

        Fields left out stay as they are. A new *secret* replaces the old one
        at once, retired ones included (use :meth:`rotate_secret` for a grace
        period). Removing a URL webhook's secret makes it unsigned, so it takes
        an explicit ``unsigned=True`` (``secret=None`` may be given too, or
        left out): that issues an
        :class:`~pendo_webhooks.exceptions.UnsignedWebhookWarning` and the audit
        entry records ``"unsigned": (False, True)``. ``headers=None`` removes
        all extra headers; ``segment_endpoint=None`` restores the US endpoint.
        The kind cannot change: create a new webhook instead.

        *filters* replaces the PII filters (``None`` or ``()`` removes them all), checked
        as :meth:`create` checks them; so are the current ones when *categories*
        change. The first hash filter gives the webhook its ``hash_key``, which is kept
        from then on (also when the filters go), so a visitor's hash never changes.

        Args:
            expected_version: The version the edit is based on (what the admin
                saw). If given and stale, nothing is written. If not given, the
                fields are applied to whatever version is current.

        Raises:
            PermissionDenied: If *actor* may not update webhooks.
            UnknownWebhook: If no webhook has this id.
            ConflictError: If the webhook is no longer at *expected_version*.
            ValidationError: Naming the field, for any bad value; for
                ``secret=None`` on a signed URL webhook without ``unsigned=True``;
                for *unsigned* with a new secret, or on a Segment webhook; naming
                ``filters`` as :meth:`create` does.
        """
        self.policy.check(actor, "update", webhook_id)
        _check_unsigned(unsigned)
        if unsigned:
            if secret is not UNSET and secret is not None:
                msg = "cannot be combined with a new secret: give a secret, or unsigned=True"
                raise ValidationError("unsigned", msg)
            secret = None
        if kind is not UNSET:
            kind = to_kind(kind)
        if name is not UNSET:
            name = check_visible_text("name", name, max_length=MAX_NAME_LENGTH)
        if isinstance(url, str):
            url = self._check_url(url, "url")
        if isinstance(segment_endpoint, str):
            segment_endpoint = self._check_endpoint(segment_endpoint)
        if secret is not UNSET:
            secret = secret_or_none("secret", secret)  # typed, to compare with the current one
        if filters is not UNSET:
            filters = to_filters(filters)
        changes: dict[str, Any] = {
            field: value
            for field, value in {
                "name": name,
                "url": url,
                "write_key": write_key,
                "segment_endpoint": segment_endpoint,
                "segment_gzip": segment_gzip,
                "secret": secret,
                "categories": categories,
                "signature_scheme": signature_scheme,
                "signature_header": signature_header,
                "headers": headers,
                "filters": filters,
            }.items()
            if value is not UNSET
        }

        removed: list[Webhook] = []  # the webhook whose secret this update removed, if any

        def apply(current: Webhook, _now: datetime) -> Webhook:
            removed.clear()
            if current.kind is WebhookKind.SEGMENT and unsigned:
                msg = "is only for URL webhooks; Segment webhooks authenticate with a write key"
                raise ValidationError("unsigned", msg)
            fields = changes
            if current.hash_key is None and _hashes(changes.get("filters", ())):
                fields = {**changes, "hash_key": self.hash_keys()}
            new = updated(current, fields, kind)
            if new.filters != current.filters or new.categories != current.categories:
                check_webhook_filters(new)
            if current.secret is not None and new.secret is None:
                if not unsigned:
                    msg = (
                        "removing the secret makes the webhook unsigned; pass unsigned=True "
                        "to do that on purpose, or rotate_secret() to replace the secret"
                    )
                    raise ValidationError("secret", msg)
                removed.append(new)
            return new

        def extra() -> dict[str, tuple[AuditValue, AuditValue]]:
            return {"unsigned": (False, True)} if removed else {}

        webhook = self._change(
            actor.id, webhook_id, "update", apply, expected_version, extra=extra
        )
        if removed:
            _warn_unsigned(webhook)
        return webhook

    def enable(self, actor: Actor, webhook_id: str) -> Webhook:
        """
        Start sending to a webhook; return it. Enabling an enabled webhook changes nothing.

        The destination is checked again against the current *destinations*
        policy, which may have changed since the webhook was created. A webhook enabled
        again starts with a blank health record (no failures, no outage): the
        dispatcher's auto-disable measures afresh.

        Raises:
            PermissionDenied: If *actor* may not enable webhooks.
            UnknownWebhook: If no webhook has this id.
            InvalidDestination: If the destination is no longer allowed.
        """
        self.policy.check(actor, "enable", webhook_id)
        was_disabled: list[bool] = []

        def apply(current: Webhook, _now: datetime) -> Webhook:
            if current.enabled:
                return current
            field = "url" if current.kind is WebhookKind.URL else "segment_endpoint"
            self._check_url(current.destination, field)
            was_disabled.append(True)
            return attrs.evolve(current, enabled=True, disabled_reason=None, disabled_by=None)

        before = self.storage.get_webhook(webhook_id).version if self.hooks else None
        webhook = self._change(actor.id, webhook_id, "enable", apply)
        if was_disabled:
            self._reset_health(webhook_id)
        self._announce(before, webhook, WebhookState.ENABLED, actor.id, None)
        return webhook

    def _reset_health(self, webhook_id: str) -> None:
        # A blank record, by compare-and-set (a worker may be writing one too).
        if not capabilities(self.storage).webhook_health:
            return
        store = cast(HealthStore, self.storage)
        for _ in range(8):
            current = store.get_webhook_health(webhook_id)
            if current is None:
                return
            blank = WebhookHealth(webhook_id=webhook_id)
            if store.put_webhook_health(blank, expected_version=current.version):
                return

    def disable(self, actor: Actor, webhook_id: str, *, reason: str | None = None) -> Webhook:
        """
        Stop sending to a webhook, noting who did it and why; return it.

        Disabling a disabled webhook changes nothing. Its pending deliveries are
        cancelled (status ``cancelled``, the reason recorded): they are never sent
        later, not even once the webhook is enabled again.

        Raises:
            PermissionDenied: If *actor* may not disable webhooks.
            UnknownWebhook: If no webhook has this id.
            ValidationError: If *reason* is empty or longer than 500 characters.
        """
        self.policy.check(actor, "disable", webhook_id)
        if reason is not None:
            reason = check_visible_text("reason", reason, max_length=MAX_REASON_LENGTH)
        return self._disable(actor.id, webhook_id, reason)

    def disable_by_system(self, webhook_id: str, *, reason: str) -> Webhook:
        """
        Disable a webhook on the library's own behalf (a ``410 Gone``); audited as ``"system"``.

        For the dispatcher, not for admins: no permission check.

        Raises:
            UnknownWebhook: If no webhook has this id.
            ValidationError: If *reason* is empty or longer than 500 characters.
        """
        reason = check_visible_text("reason", reason, max_length=MAX_REASON_LENGTH)
        return self._disable(SYSTEM_ACTOR_ID, webhook_id, reason)

    def _disable(self, actor_id: str, webhook_id: str, reason: str | None) -> Webhook:
        def apply(current: Webhook, _now: datetime) -> Webhook:
            if not current.enabled:
                return current
            return attrs.evolve(
                current, enabled=False, disabled_reason=reason, disabled_by=actor_id
            )

        before = self.storage.get_webhook(webhook_id).version if self.hooks else None
        webhook = self._change(actor_id, webhook_id, "disable", apply)
        why = f"webhook disabled by {actor_id}" + (f": {reason}" if reason else "")
        self._cancel_deliveries(webhook_id, why)
        self._announce(before, webhook, WebhookState.DISABLED, actor_id, reason)
        return webhook

    def _announce(
        self,
        before: int | None,
        webhook: Webhook,
        state: WebhookState,
        actor_id: str,
        reason: str | None,
    ) -> None:
        # Only a change this call stored is announced: not a no-op, not someone else's.
        if before is None or webhook.version == before or webhook.updated_by != actor_id:
            return
        self.hooks.emit(
            WebhookChanged(
                webhook_id=webhook.id,
                state=state,
                by=actor_id,
                reason=reason,
                at=webhook.updated_at,
            )
        )

    def rotate_secret(
        self,
        actor: Actor,
        webhook_id: str,
        new_secret: Secret | str | None = None,
        *,
        grace: timedelta = DEFAULT_ROTATION_GRACE,
    ) -> Webhook:
        """
        Replace a URL webhook's secret; the old one keeps signing for *grace*; return the webhook.

        With no *new_secret*, a random ``whsec_`` secret is generated: read it
        once from the returned webhook's ``secret.reveal()`` to give to the
        receiver. During the grace period both secrets sign (Standard Webhooks
        carries several signatures), so receivers can switch without downtime.
        At most three retired secrets are kept; expired ones are dropped. A
        *grace* of zero revokes the old secret at once (for a leaked secret).

        Raises:
            PermissionDenied: If *actor* may not rotate secrets.
            UnknownWebhook: If no webhook has this id.
            ValidationError: For a Segment webhook (it has a write key, not a
                secret), an empty *new_secret* or one equal to the current
                secret, or a *grace* outside 0 to 30 days.
        """
        self.policy.check(actor, "rotate_secret", webhook_id)
        grace = check_grace(grace)
        secret = Secret.generate() if new_secret is None else to_secret("new_secret", new_secret)

        def apply(current: Webhook, now: datetime) -> Webhook:
            return rotated(current, secret, now=now, grace=grace)

        return self._change(actor.id, webhook_id, "rotate_secret", apply)

    def delete(self, actor: Actor, webhook_id: str) -> None:
        """
        Delete a webhook for good. Its audit history stays readable; its pending
        deliveries are cancelled.

        Raises:
            PermissionDenied: If *actor* may not delete webhooks.
            UnknownWebhook: If no webhook has this id.
        """
        self.policy.check(actor, "delete", webhook_id)

        def attempt(current: Webhook) -> None:
            now = self.clock()
            entry = self._entry(now, actor.id, "delete", webhook_id, deleted(current))
            self.storage.delete_webhook(webhook_id, expected_version=current.version, audit=entry)

        self._retrying(webhook_id, None, attempt)
        self._cancel_deliveries(webhook_id, "webhook deleted")

    # -- admin calls: reads ----------------------------------------------------------------

    def get(self, actor: Actor, webhook_id: str) -> Webhook:
        """
        Return one webhook.

        Raises:
            PermissionDenied: If *actor* may not read webhooks.
            UnknownWebhook: If no webhook has this id.
        """
        self.policy.check(actor, "read", webhook_id)
        return self.storage.get_webhook(webhook_id)

    def list(
        self,
        actor: Actor,
        *,
        enabled: bool | None = None,
        kind: WebhookKind | str | None = None,
        category: AnyCategory | str | None = None,
    ) -> builtins.list[Webhook]:
        """
        Return the webhooks, enabled and disabled, oldest first; each filter given must match.

        *category* may name an operations event (``"webhook.disabled"``): the operations
        webhooks subscribed to it.

        Raises:
            PermissionDenied: If *actor* may not read webhooks.
            ValidationError: For an unknown *kind* or *category*.
        """
        self.policy.check(actor, "read", None)
        wanted_kind = None if kind is None else to_kind(kind)
        wanted_category = None if category is None else to_subscription(category)
        return [
            w
            for w in self.storage.list_webhooks()
            if (enabled is None or w.enabled is enabled)
            and (wanted_kind is None or w.kind is wanted_kind)
            and (wanted_category is None or wanted_category in w.categories)
        ]

    def audit(
        self,
        actor: Actor,
        *,
        webhook_id: str | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_AUDIT_LIMIT,
    ) -> builtins.list[AuditEntry]:
        """
        Return audit entries, newest first; each filter given must match.

        *since* is inclusive, *until* exclusive; at most *limit* entries (1 to 10,000).

        Raises:
            PermissionDenied: If *actor* may not read webhooks.
            ValidationError: For a bad *limit* or a naive datetime.
        """
        self.policy.check(actor, "read", webhook_id)
        query = AuditQuery(
            webhook_id=webhook_id,
            actor_id=actor_id,
            action=action,
            since=since,
            until=until,
            limit=limit,
        )
        return builtins.list(self.storage.audit_entries(query))

    # -- admin calls: the exclusion list -----------------------------------------------------

    def add_exclusion(self, actor: Actor, kind: ExclusionKind | str, pattern: str) -> Exclusion:
        """
        Exclude a visitor, an account or a source IP range from every webhook; return the rule.

        *kind* is ``"visitor"``, ``"account"`` or ``"ip"``. Id patterns are exact and
        case-sensitive, with ``*`` matching any run of characters (``"*@acme.com"``); IP
        patterns are an address or a CIDR range. Adding a rule that is already on the list
        returns it and changes nothing. Audited as ``"exclusion_add"``, with the rule's id
        in the entry's ``webhook_id``.

        Raises:
            PermissionDenied: If *actor* may not add exclusions.
            ValidationError: Naming ``kind`` or ``pattern``.
        """
        return _exclusion_admin.add_exclusion(self, actor, kind, pattern)

    def remove_exclusion(self, actor: Actor, rule_id: str) -> None:
        """
        Remove a rule from the exclusion list. Audited as ``"exclusion_remove"``.

        Raises:
            PermissionDenied: If *actor* may not remove exclusions.
            NotFound: If no exclusion has this id.
        """
        _exclusion_admin.remove_exclusion(self, actor, rule_id)

    def exclusions(self, actor: Actor) -> builtins.list[Exclusion]:
        """
        Return the exclusion list, oldest first.

        Raises:
            PermissionDenied: If *actor* may not read webhooks.
        """
        return _exclusion_admin.list_exclusions(self, actor)

    # -- the dispatcher's call -------------------------------------------------------------

    def subscribed(self, category: EventCategory | str) -> builtins.list[Webhook]:
        """
        Return the enabled webhooks subscribed to *category*, oldest first.

        For the dispatcher (the system), so no actor and no permission check.

        Raises:
            ValidationError: For an unknown *category*.
        """
        return builtins.list(self.storage.webhooks_for(to_category(category)))

    # -- machinery -------------------------------------------------------------------------

    def _cancel_deliveries(self, webhook_id: str, reason: str) -> None:
        # After the change, in a transaction of its own: a delivery enqueued in between is
        # still never sent, because the dispatcher re-reads the webhook before each attempt.
        self.storage.cancel_deliveries(
            webhook_id, reason=clip_error(reason) or "", now=self.clock()
        )

    def _check_url(self, url: str, field: str) -> str:
        return self.destinations.check_url(url, field=field)

    def _check_endpoint(self, endpoint: str) -> str:
        # Stored as the base: the batch URL users paste would post to /v1/batch/v1/batch.
        return segment_base_endpoint(self._check_url(endpoint, "segment_endpoint"))

    def _entry(
        self,
        now: datetime,
        actor_id: str,
        action: str,
        webhook_id: str,
        changes: Mapping[str, tuple[AuditValue, AuditValue]],
    ) -> AuditEntry:
        return AuditEntry(
            id=self.ids("aud"),
            at=now,
            actor_id=actor_id,
            action=action,
            webhook_id=webhook_id,
            changes=changes,
        )

    def _change(
        self,
        actor_id: str,
        webhook_id: str,
        action: str,
        apply: Callable[[Webhook, datetime], Webhook],
        expected_version: int | None = None,
        *,
        extra: Callable[[], Mapping[str, tuple[AuditValue, AuditValue]]] | None = None,
    ) -> Webhook:
        """
        Read the webhook, *apply* the change, store it with its audit entry if anything changed.

        *extra*, called after *apply*, gives entries to add to the audit entry's changes.
        """

        def attempt(current: Webhook) -> Webhook:
            now = self.clock()
            changed = apply(current, now)
            changes = diff(current, changed)
            if not changes:
                return current
            if extra is not None:
                changes.update(extra())
            new = attrs.evolve(
                changed, version=current.version + 1, updated_at=now, updated_by=actor_id
            )
            entry = self._entry(now, actor_id, action, webhook_id, changes)
            self.storage.replace_webhook(new, expected_version=current.version, audit=entry)
            return new

        return self._retrying(webhook_id, expected_version, attempt)

    def _retrying(
        self, webhook_id: str, expected_version: int | None, attempt: Callable[[Webhook], _T]
    ) -> _T:
        """
        Run *attempt* on the current webhook; on a conflict, re-read and retry unless pinned.

        With an *expected_version*, a stale read is the caller's conflict: no retry.
        """
        tries = 1 if expected_version is not None else _MAX_ATTEMPTS
        for remaining in range(tries, 0, -1):
            current = self.storage.get_webhook(webhook_id)
            if expected_version is not None and current.version != expected_version:
                raise stale_version(webhook_id, expected_version, current.version)
            try:
                return attempt(current)
            except ConflictError:
                if remaining == 1:
                    raise
        raise AssertionError("unreachable")
