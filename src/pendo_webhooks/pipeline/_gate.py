"""
What decides whether an event goes to a webhook: skip reasons, decisions, the event gate,
and :func:`evaluate` (the logic of ``Dispatcher.explain``).

The order is fixed. For the event: an excluded visitor, then an excluded account (the
account id, and the parent and child of a ``"P::C"`` account), then an excluded source IP
address, then an agent too old for NPS and polls. Then, for each webhook: disabled, not
subscribed to the category, destination blocked by the address guard, payload too large;
PII filters its channel cannot apply; otherwise it will send (saying which of the webhook's
PII filters change this event's body). The first rule that applies is the reason.

Strictly private; import these names from :mod:`pendo_webhooks.pipeline`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

import attrs

from ..channels import ChannelTable, channel_table, format_for
from ..channels._filtering import unsupported_reason
from ..channels._formatters import Formatter
from ..channels.url import DEFAULT_MAX_BODY_BYTES
from ..events import SURVEY_CATEGORIES
from ..events._agent_version import MIN_SURVEY_AGENT_VERSION, AgentVersion
from ..events._category import EventCategory
from ..events._models import Event, IPAddress, ParentChildAccountCreated
from ..events._serialize import to_wire_dict
from ..exceptions import (
    DestinationBlocked,
    InvalidDestination,
    PayloadError,
    PayloadTooLarge,
    TransportError,
    ValidationError,
)
from ..guard import DestinationPolicy
from ..model._exclusions import EMPTY_MATCHER, ExclusionMatcher, ExclusionRule
from ..model._filters import apply_filters
from ..model._webhook import Webhook, WebhookKind


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Decision",
    "DestinationResolver",
    "PayloadMeasure",
    "SkipReason",
    "account_candidates",
    "describe",
    "evaluate",
    "event_gate",
    "is_agent_too_old",
    "observation_gate",
    "payload_measure",
]


class SkipReason(str, enum.Enum):
    """
    Why an event is not sent to a webhook; :attr:`text` says it for people.

    >>> SkipReason.AGENT_TOO_OLD.text
    'NPS and poll events need Pendo agent 2.33.0 or later'
    >>> str(SkipReason.VISITOR_EXCLUDED)
    'visitor_excluded'
    """

    VISITOR_EXCLUDED = "visitor_excluded"
    ACCOUNT_EXCLUDED = "account_excluded"
    IP_EXCLUDED = "ip_excluded"
    AGENT_TOO_OLD = "agent_too_old"
    WEBHOOK_DISABLED = "webhook_disabled"
    NOT_SUBSCRIBED = "not_subscribed"
    DESTINATION_BLOCKED = "destination_blocked"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    FILTERS_UNSUPPORTED = "filters_unsupported"

    @property
    def text(self) -> str:
        """
        A short human description.
        """
        return _TEXTS[self]

    def __str__(self) -> str:
        return self.value


_TEXTS = {
    SkipReason.VISITOR_EXCLUDED: "the visitor is on the exclusion list",
    SkipReason.ACCOUNT_EXCLUDED: "the account is on the exclusion list",
    SkipReason.IP_EXCLUDED: "the source IP address is on the exclusion list",
    SkipReason.AGENT_TOO_OLD: (
        f"NPS and poll events need Pendo agent {MIN_SURVEY_AGENT_VERSION} or later"
    ),
    SkipReason.WEBHOOK_DISABLED: "the webhook is disabled",
    SkipReason.NOT_SUBSCRIBED: "the webhook is not subscribed to this event category",
    SkipReason.DESTINATION_BLOCKED: "the address guard refuses the destination",
    SkipReason.PAYLOAD_TOO_LARGE: "the message is over the size limit",
    SkipReason.FILTERS_UNSUPPORTED: "the webhook's channel cannot apply its PII filters",
}


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Decision:
    """
    Whether one event goes to one webhook, and if not, why.

    Attributes:
        webhook_id: The webhook.
        will_send: ``True`` if the event would be delivered.
        reason: The :class:`SkipReason`, ``None`` when it will send.
        detail: More about it, such as the rule that matched or the guard's refusal;
            never a secret or a URL's query string. When it will send through PII
            filters, which ones change the body (``"filtered: drop:userAgent"``).
        filters: The webhook's PII filters that change this event's body
            (``"drop:<path>"``, ``"hash:<path>"``); empty if none does.

    >>> Decision(webhook_id="wh_1", will_send=True).text
    'will send'
    >>> Decision(webhook_id="wh_1", will_send=False, reason=SkipReason.WEBHOOK_DISABLED).text
    'the webhook is disabled'
    >>> Decision(webhook_id="wh_1", will_send=True, detail="filtered: drop:userAgent",
    ...          filters=("drop:userAgent",)).text
    'will send (filtered: drop:userAgent)'
    """

    webhook_id: str
    will_send: bool
    reason: SkipReason | None = None
    detail: str = ""
    filters: tuple[str, ...] = attrs.field(default=(), converter=_texts)

    def __attrs_post_init__(self) -> None:
        if self.will_send is (self.reason is not None):
            msg = "must be None exactly when will_send is True"
            raise ValidationError("reason", msg)

    @property
    def text(self) -> str:
        """
        ``"will send"``, or the reason's text and its detail (see :func:`describe`).
        """
        return describe(self.reason, self.detail)


def describe(reason: SkipReason | None, detail: str = "") -> str:
    """
    Say a decision in words: ``"will send"`` or the reason's text, then the detail.

    >>> describe(SkipReason.AGENT_TOO_OLD, "agent 2.32.9")
    'NPS and poll events need Pendo agent 2.33.0 or later: agent 2.32.9'
    """
    text = "will send" if reason is None else reason.text
    if not detail:
        return text
    return f"{text} ({detail})" if reason is None else f"{text}: {detail}"


# -- the event gate --------------------------------------------------------------------------


def is_agent_too_old(category: EventCategory, agent_version: AgentVersion | None) -> bool:
    """
    Whether an event of *category* from *agent_version* is held back.

    Only NPS and poll events are gated, and only when they carry a version: one below
    2.33.0 (a pre-release of 2.33.0 included) is held back; no version means delivered.

    >>> from pendo_webhooks.events import AgentVersion
    >>> is_agent_too_old(EventCategory.NPS_SUBMITTED, AgentVersion.parse("2.32.9"))
    True
    >>> is_agent_too_old(EventCategory.NPS_SUBMITTED, None)
    False
    >>> is_agent_too_old(EventCategory.GUIDE_DISPLAYED, AgentVersion.parse("1.0.0"))
    False
    """
    return (
        category in SURVEY_CATEGORIES
        and agent_version is not None
        and agent_version < MIN_SURVEY_AGENT_VERSION
    )


def account_candidates(account_id: str) -> Iterator[str]:
    """
    Yield *account_id*, then, for each ``"::"`` in it, the parts before and after.

    With parent accounts, ``"P::C"`` is checked as a whole and as ``P`` and ``C``; where an
    id itself contains ``"::"``, every split is tried, so a rule can only match more.

    >>> list(account_candidates("P::C"))
    ['P::C', 'P', 'C']
    """
    yield account_id
    start = account_id.find("::")
    while start >= 0:
        yield account_id[:start]
        yield account_id[start + 2 :]
        start = account_id.find("::", start + 1)


def _account_rule(matcher: ExclusionMatcher, account_ids: Iterable[str]) -> ExclusionRule | None:
    for account_id in account_ids:
        if "::" not in account_id:  # the common case: the id is its only candidate
            rule = matcher.account(account_id)
            if rule is not None:
                return rule
            continue
        for candidate in account_candidates(account_id):
            rule = matcher.account(candidate)
            if rule is not None:
                return rule
    return None


def _excluded(
    matcher: ExclusionMatcher,
    visitor_id: str,
    account_ids: Iterable[str],
    source_ip: IPAddress | None,
) -> tuple[SkipReason, str] | None:
    rule = matcher.visitor(visitor_id)
    if rule is not None:
        return SkipReason.VISITOR_EXCLUDED, f"matches visitor rule {rule.pattern!r}"
    rule = _account_rule(matcher, account_ids)
    if rule is not None:
        return SkipReason.ACCOUNT_EXCLUDED, f"matches account rule {rule.pattern!r}"
    if source_ip is not None:
        rule = matcher.ip(source_ip)
        if rule is not None:
            return SkipReason.IP_EXCLUDED, f"matches ip rule {rule.pattern!r}"
    return None


def event_gate(
    event: Event, exclusions: ExclusionMatcher = EMPTY_MATCHER
) -> tuple[SkipReason, str] | None:
    """
    Return why *event* goes to no webhook at all, with a detail, or ``None``.

    >>> from pendo_webhooks.testing import sample_event
    >>> from pendo_webhooks.pipeline import ExclusionMatcher, ExclusionRule
    >>> event_gate(sample_event("npsSubmitted", agent_version="2.32.9"))
    (<SkipReason.AGENT_TOO_OLD: 'agent_too_old'>, 'agent 2.32.9')
    >>> matcher = ExclusionMatcher([ExclusionRule("account", "Webhook *")])
    >>> event_gate(sample_event("guideDisplayed"), matcher)[0]
    <SkipReason.ACCOUNT_EXCLUDED: 'account_excluded'>
    """
    if exclusions:
        accounts = [event.account_id]
        if isinstance(event, ParentChildAccountCreated):
            accounts += [event.parent_account_id, event.child_account_id]
        found = _excluded(exclusions, event.visitor_id, accounts, event.source_ip)
        if found is not None:
            return found
    if is_agent_too_old(event.category, event.agent_version):
        return SkipReason.AGENT_TOO_OLD, f"agent {event.agent_version}"
    return None


def observation_gate(
    exclusions: ExclusionMatcher,
    visitor_id: str,
    account_ids: Iterable[str],
    source_ip: IPAddress | None,
) -> tuple[SkipReason, str] | None:
    """
    Return why an in-app sighting is excluded (visitor, account or IP), or ``None``.

    The tracker's half of :func:`event_gate`: excluded visitors fire nothing.
    """
    return _excluded(exclusions, visitor_id, account_ids, source_ip)


# -- per webhook -----------------------------------------------------------------------------


class DestinationResolver(Protocol):
    """
    **Protocol**: Resolves a destination URL and vets every address it gets, connecting to none.

    A transport that offers this (a method ``check_destination(url)``) lets ``explain`` see
    what the address guard will decide at send time.
    """

    def __call__(self, url: str) -> None:
        """
        Return if the destination's addresses are allowed.

        Raises:
            DestinationBlocked: If any address is refused.
            TransportError: If the name does not resolve (not a refusal).
        """


#: Returns the size of *webhook*'s message for the event and the limit it must respect.
PayloadMeasure = Callable[[Webhook], tuple[int, int]]


def payload_measure(
    event: Event,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    formatters: Mapping[WebhookKind, Formatter] | None = None,
    channels: ChannelTable | None = None,
) -> PayloadMeasure:
    """
    Return a :data:`PayloadMeasure` that formats *event* once per webhook kind.

    A webhook with PII filters is measured with its own filtered message (and raises
    :class:`~pendo_webhooks.exceptions.PayloadError` if its channel cannot filter).
    Each kind's :class:`~pendo_webhooks.channels.Channel` formats and limits: URL webhooks
    carry Pendo's body (at most *max_body_bytes*), Segment webhooks a ``track`` message
    (at most 32,768 bytes). *channels* (a dispatcher's
    :class:`~pendo_webhooks.channels.ChannelTable`) replaces the built-in channels, and
    *max_body_bytes* with them; *formatters* replaces the formatter of a kind, so the size
    measured is that of the bytes the dispatcher would store.

    >>> from pendo_webhooks.testing import sample_event
    >>> from pendo_webhooks.registry import Webhook
    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> hook = Webhook(
    ...     id="wh_1", name="n", url="https://example.com/", categories=["guideDisplayed"],
    ...     created_at=t, created_by="u", updated_at=t, updated_by="u",
    ... )
    >>> payload_measure(sample_event("guideDisplayed"))(hook)
    (917, 262144)
    """
    sizes: dict[WebhookKind, int] = {}
    table = channel_table(max_body_bytes=max_body_bytes) if channels is None else channels
    chosen: Mapping[WebhookKind, Formatter] = formatters or {}

    def measure(webhook: Webhook) -> tuple[int, int]:
        kind = webhook.kind
        channel = table.for_webhook(webhook)
        if webhook.filters and kind not in chosen:
            body, _ = format_for(channel, event, webhook)
            if body is None:
                raise PayloadError(unsupported_reason(channel, webhook))
            return len(body), channel.max_message_bytes
        size = sizes.get(kind)
        if size is None:
            size = sizes[kind] = len(chosen.get(kind, channel).format(event))
        return size, channel.max_message_bytes

    return measure


def _blocked(
    webhook: Webhook, destinations: DestinationPolicy, resolve: DestinationResolver | None
) -> str | None:
    try:
        url = destinations.check_url(webhook.destination)
    except InvalidDestination as exc:
        return exc.reason
    if resolve is not None:
        try:
            resolve(url)
        except DestinationBlocked as exc:
            return exc.detail
        except TransportError:
            return None  # not a refusal: the send will retry it
    return None


def evaluate(
    event: Event,
    webhooks: Iterable[Webhook],
    *,
    exclusions: ExclusionMatcher = EMPTY_MATCHER,
    destinations: DestinationPolicy | None = None,
    resolve: DestinationResolver | None = None,
    measure: PayloadMeasure | None = None,
) -> list[Decision]:
    """
    Decide, for each of *webhooks*, whether *event* would be sent to it, and why not.

    Pure: nothing is sent or stored. The rules run in the order of the module docs and the
    first that applies is the reason. The destination is checked with
    ``destinations.check_url`` (skipped when *destinations* is ``None``) and then, if
    given, *resolve* (a refusal blocks; a name that does not resolve does not, because
    the send would retry it).

    Args:
        event: The event.
        webhooks: Every webhook to decide for (disabled and unsubscribed ones included).
        exclusions: The compiled exclusion list.
        destinations: The address guard's URL policy.
        resolve: Resolves a URL and vets its addresses (see :class:`DestinationResolver`).
        measure: Returns a webhook's message size and limit; :func:`payload_measure` of
            *event* by default.

    >>> from pendo_webhooks.testing import sample_event
    >>> from pendo_webhooks.registry import Webhook
    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> hook = Webhook(
    ...     id="wh_1", name="n", url="https://example.com/", categories=["npsSubmitted"],
    ...     created_at=t, created_by="u", updated_at=t, updated_by="u", enabled=True,
    ... )
    >>> [d.text for d in evaluate(sample_event("npsSubmitted"), [hook])]
    ['will send']
    >>> [d.reason for d in evaluate(sample_event("guideDisplayed"), [hook])]
    [<SkipReason.NOT_SUBSCRIBED: 'not_subscribed'>]
    """
    webhooks = list(webhooks)
    gate = event_gate(event, exclusions)
    if gate is not None:
        reason, detail = gate
        return [
            Decision(webhook_id=w.id, will_send=False, reason=reason, detail=detail)
            for w in webhooks
        ]
    measure = payload_measure(event) if measure is None else measure
    return [_decide(event, w, destinations, resolve, measure) for w in webhooks]


def _decide(
    event: Event,
    webhook: Webhook,
    destinations: DestinationPolicy | None,
    resolve: DestinationResolver | None,
    measure: PayloadMeasure,
) -> Decision:
    def skip(reason: SkipReason, detail: str = "") -> Decision:
        return Decision(webhook_id=webhook.id, will_send=False, reason=reason, detail=detail)

    if not webhook.enabled:
        return skip(SkipReason.WEBHOOK_DISABLED, webhook.disabled_reason or "")
    if event.category not in webhook.categories:
        return skip(SkipReason.NOT_SUBSCRIBED, str(event.category))
    if destinations is not None:
        blocked = _blocked(webhook, destinations, resolve)
        if blocked is not None:
            return skip(SkipReason.DESTINATION_BLOCKED, blocked)
    try:
        size, limit = measure(webhook)
    except PayloadTooLarge as exc:
        size, limit = exc.size, exc.limit
    except PayloadError as exc:
        if not webhook.filters:
            raise
        return skip(SkipReason.FILTERS_UNSUPPORTED, str(exc))
    if size > limit:
        return skip(SkipReason.PAYLOAD_TOO_LARGE, f"{size} bytes > {limit}")
    return _will_send(event, webhook)


def _will_send(event: Event, webhook: Webhook) -> Decision:
    # Which of the webhook's PII filters change this event's body, if it has any.
    if not webhook.filters:
        return Decision(webhook_id=webhook.id, will_send=True)
    _, applied = apply_filters(to_wire_dict(event), webhook.filters, webhook.hash_key)
    names = tuple(str(f) for f in applied)
    detail = f"filtered: {', '.join(names)}" if names else "no PII filter matches this event"
    return Decision(webhook_id=webhook.id, will_send=True, detail=detail, filters=names)
