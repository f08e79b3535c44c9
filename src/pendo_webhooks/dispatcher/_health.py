"""
Each webhook's health, kept by the delivery flow: outage-aware retries and auto-disable.

The deliverer asks a :class:`HealthKeeper` three things, and nothing else reads or writes
a webhook's health:

1. **gate** (before sending): during an outage, may this worker send one probe now? The
   probe is taken by compare-and-set on the stored health, so two workers never both
   probe; every other delivery is *held* (handed back unattempted, due later, no attempt
   counted);
2. **observe** (after each exchange, before its outcome is recorded): the next health,
   written by compare-and-set (:func:`next_health` is the whole rule); while the outage
   lasts, a retried delivery waits with the others instead of at its own retry time;
3. **follow up** (after the outcome is recorded): on recovery, the held backlog is spread
   out at ``recovery_rate`` a second; after a failed probe, the next probe is nominated
   (the pending delivery with the fewest attempts); a webhook whose exchanges have all
   failed for ``disable_after`` is disabled by the system.

Health is written right after the exchange, not in the outcome's transaction: a worker
killed in between loses one exchange's count, which only shifts the outage threshold by
one. Strictly private.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

import attrs

from .._clock import Clock
from ..exceptions import PendoWebhooksError
from ..instrumentation import WebhookChanged, WebhookState
from ..model._delivery import Delivery
from ..model._health import WebhookHealth
from ..model._outcomes import DeliveryOutcome
from ..model._webhook import Webhook
from ..registry import SYSTEM_ACTOR_ID, WebhookRegistry
from ..retry import Decision, OutagePolicy, RetryPolicy, Verdict
from ..storage import Storage
from ..storage.protocols import HealthStore, capabilities
from ._attempt import Exchange, host_of
from ._deliver_claims import Claimer
from ._deliver_outcome import released


__all__ = ["HealthChange", "HealthKeeper", "Observed", "next_health"]

logger = logging.getLogger("pendo_webhooks")

#: How precise ``WebhookHealth.last_success_at`` is: a success within this long of the
#: recorded one, on a healthy webhook, writes nothing (one write less per delivery).
SUCCESS_PRECISION = timedelta(minutes=1)
# What observe() starts from when gate() read nothing.
_UNSEEN: WebhookHealth | None = WebhookHealth(webhook_id="(unseen)")

# Compare-and-set tries before a health update is given up (logged): writers only race
# when several workers finish exchanges with one destination in the same instant.
_TRIES = 8
#: How long a worker trusts a healthy read of a webhook's health before reading it again.
#: An outage another worker declares meanwhile costs this one at most one more request
#: (its failure drops the trust at once); a healthy destination costs no read per batch.
HEALTHY_TRUST = timedelta(seconds=1)


class HealthChange(str, enum.Enum):
    """
    What an exchange changed in a webhook's health, if anything worth acting on.
    """

    #: The destination started failing hard: an outage is declared.
    OUTAGE = "outage"
    #: A probe failed: the next one is scheduled later.
    PROBE_FAILED = "probe-failed"
    #: The destination answered again during an outage: the backlog flows, paced.
    RECOVERED = "recovered"


def next_health(
    current: WebhookHealth,
    *,
    verdict: Verdict,
    started_at: datetime,
    now: datetime,
    owner: str,
    policy: OutagePolicy,
) -> tuple[WebhookHealth, HealthChange | None]:
    """
    The health after one exchange whose retry-policy verdict is *verdict*, and what changed.

    A 2xx clears everything but the time; a failure counts; a retryable one extends the
    streak (any other answer resets it: the destination is up); *threshold* of them in a
    row declare the outage; during one, the probe's failure (the worker holding the probe
    lease) schedules the next probe later; any answer but a retryable failure ends it.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> policy = OutagePolicy(threshold=2)
    >>> health = WebhookHealth(webhook_id="wh_1")
    >>> for _ in range(2):
    ...     health, change = next_health(health, verdict=Verdict.RETRY, started_at=t, now=t,
    ...                                  owner="w1", policy=policy)
    >>> str(health.state), change, health.next_probe_at == t + policy.probe_interval
    ('outage', <HealthChange.OUTAGE: 'outage'>, True)
    >>> health, change = next_health(health, verdict=Verdict.DELIVERED, started_at=t, now=t,
    ...                              owner="w1", policy=policy)
    >>> str(health.state), change
    ('healthy', <HealthChange.RECOVERED: 'recovered'>)
    """
    in_outage = current.outage_since is not None
    if verdict is Verdict.DELIVERED:
        healthy = WebhookHealth(
            webhook_id=current.webhook_id,
            last_success_at=now,
            last_failure_at=current.last_failure_at,
            version=current.version,
        )
        return healthy, HealthChange.RECOVERED if in_outage else None
    failed = attrs.evolve(
        current,
        failing_since=current.failing_since or started_at,
        last_failure_at=started_at,
        failures=current.failures + 1,
        streak=current.streak + 1 if verdict in _RETRYABLE else 0,
    )
    if verdict not in _RETRYABLE:
        if not in_outage:
            return failed, None
        # It answers (a 4xx, say): no outage any more, though still failing.
        return _no_outage(failed), HealthChange.RECOVERED
    return _after_retryable(failed, in_outage=in_outage, owner=owner, now=now, policy=policy)


_RETRYABLE = frozenset({Verdict.RETRY, Verdict.DEAD})


def _no_outage(health: WebhookHealth) -> WebhookHealth:
    return attrs.evolve(
        health,
        outage_since=None,
        next_probe_at=None,
        probes=0,
        probe_delivery=None,
        probe_owner=None,
        probe_until=None,
    )


def _after_retryable(
    failed: WebhookHealth, *, in_outage: bool, owner: str, now: datetime, policy: OutagePolicy
) -> tuple[WebhookHealth, HealthChange | None]:
    """
    :func:`next_health` after a retryable failure (*failed*: the counts already updated).
    """
    if not in_outage:
        if not policy.enabled or failed.streak < policy.threshold:
            return failed, None
        started = attrs.evolve(
            _no_outage(failed), outage_since=now, next_probe_at=now + policy.probe_wait(0)
        )
        return started, HealthChange.OUTAGE
    if failed.probe_owner != owner:
        return failed, None  # a straggler sent before the outage began: the probe decides
    probes = failed.probes + 1
    later = attrs.evolve(
        failed,
        probes=probes,
        next_probe_at=now + policy.probe_wait(probes),
        probe_delivery=None,
        probe_owner=None,
        probe_until=None,
    )
    return later, HealthChange.PROBE_FAILED


@attrs.frozen
class Observed:
    """
    What :meth:`HealthKeeper.observe` found: the health written, and what changed.
    """

    health: WebhookHealth
    change: HealthChange | None
    #: While this is set, retried deliveries of the webhook wait until then (an outage).
    hold_until: datetime | None


class HealthKeeper:
    """
    Reads and writes each webhook's health for the delivery flow. Strictly private.

    Args:
        storage: The store; without :class:`~pendo_webhooks.storage.protocols.HealthStore`
            every method does nothing (plain per-delivery retries, no auto-disable).
        registry: Disables a webhook that failed for ``disable_after``.
        claims: Who this worker is (the probe lease's owner), for how long it claims.
        policy: The outage policy.
        retry: Classifies each exchange (retryable or not).
        clock: The current aware UTC time.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        registry: WebhookRegistry,
        claims: Claimer,
        policy: OutagePolicy,
        retry: RetryPolicy,
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._store: HealthStore | None = (
            cast(HealthStore, storage) if capabilities(storage).webhook_health else None
        )
        self._registry = registry
        self._claims = claims
        # The health gate() last read, by webhook: where observe() starts.
        self._seen: dict[str, WebhookHealth | None] = {}
        # Healthy reads gate() may reuse for HEALTHY_TRUST, with when they were read.
        self._trusted: dict[str, tuple[WebhookHealth, datetime]] = {}
        self.policy = policy
        self._retry = retry
        self._clock = clock

    @property
    def active(self) -> bool:
        """
        Whether the store keeps health at all.
        """
        return self._store is not None

    def health(self, webhook_id: str) -> WebhookHealth | None:
        """
        The stored health of *webhook_id*, or ``None`` if the store keeps none.
        """
        if self._store is None:
            return None
        found = self._store.get_webhook_health(webhook_id)
        return WebhookHealth(webhook_id=webhook_id) if found is None else found

    # -- 1. gate ----------------------------------------------------------------------------

    def gate(
        self, webhook: Webhook, sendable: Sequence[Delivery]
    ) -> tuple[list[Delivery], list[DeliveryOutcome]]:
        """
        Which of *sendable* (claimed, of *webhook*) to send now, and the outcomes of those held.

        Outside an outage, all of them. During one, at most one (the probe, if its time
        has come and this worker took the probe lease); the rest are held.
        """
        store = self._store
        if store is None or not self.policy.enabled or not sendable:
            return list(sendable), []
        now = self._clock()
        current = self._read(store, webhook.id, now)
        # observe() starts from this read: one read less per delivery (its compare-and-set
        # catches a record that changed in between).
        self._seen[webhook.id] = current
        if current is None or current.outage_since is None:
            return list(sendable), []
        probe = self._probe_of(current, sendable, now)
        if probe is not None:
            taken = attrs.evolve(
                current,
                probe_owner=self._claims.owner,
                probe_until=now + self._claims.lease_duration,
            )
            if store.put_webhook_health(taken, expected_version=current.version):
                logger.info(
                    "webhook %s (%s) is in an outage: delivery %s is the probe",
                    webhook.id,
                    host_of(webhook.destination),
                    probe.id,
                )
                rest = [d for d in sendable if d is not probe]
                return [probe], self._hold(webhook, rest, current, now)
        return [], self._hold(webhook, sendable, current, now)

    def _read(self, store: HealthStore, webhook_id: str, now: datetime) -> WebhookHealth | None:
        """
        *webhook_id*'s health: a healthy read of less than :data:`HEALTHY_TRUST` ago, or the
        store's.
        """
        trusted = self._trusted.get(webhook_id)
        if trusted is not None and timedelta(0) <= now - trusted[1] < HEALTHY_TRUST:
            return trusted[0]
        current = store.get_webhook_health(webhook_id)
        if current is not None and _still_healthy(current, now):
            self._trusted[webhook_id] = (current, now)
        else:
            self._trusted.pop(webhook_id, None)
        return current

    def _probe_of(
        self, current: WebhookHealth, sendable: Sequence[Delivery], now: datetime
    ) -> Delivery | None:
        """
        Which of *sendable* may be the probe now, if any.

        Only once the probe is due and no live probe lease is held; the nominee if it is
        among them, or any of them when there is no nominee or it is overdue (it did not
        come within ``max_probe_interval`` of the probe time: cancelled, say).
        """
        if current.next_probe_at is not None and current.next_probe_at > now:
            return None
        if current.probe_until is not None and current.probe_until >= now:
            return None
        nominee = current.probe_delivery
        for delivery in sendable:
            if delivery.id == nominee:
                return delivery
        due = current.next_probe_at or now
        if nominee is None or now >= due + self.policy.max_probe_interval:
            return sendable[0]
        return None

    def _hold(
        self,
        webhook: Webhook,
        deliveries: Sequence[Delivery],
        current: WebhookHealth,
        now: datetime,
    ) -> list[DeliveryOutcome]:
        if not deliveries:
            return []
        store = cast(HealthStore, self._store)
        until = now + self.policy.hold
        probe = current.next_probe_at or now
        if current.probe_delivery is None and probe > now:
            # Nobody is named to probe (the backlog was empty when the last probe failed):
            # the first of these is, due at the probe time.
            first, deliveries = deliveries[0], deliveries[1:]
            store.hold_claims([first.id], owner=self._claims.owner, now=now, until=probe)
            named = attrs.evolve(current, probe_delivery=first.id)
            store.put_webhook_health(named, expected_version=current.version)
            held = released([first], f"held: the next probe, at {probe:%H:%M:%S} UTC")
            if not deliveries:
                return held
        else:
            held = []
        store.hold_claims(
            [d.id for d in deliveries], owner=self._claims.owner, now=now, until=until
        )
        # A recovery may have spread the backlog out while these were claimed: then they
        # missed it, and are spread out again with whatever is left (still paced).
        after = store.get_webhook_health(webhook.id)
        if after is None or after.outage_since is None:
            self._release_backlog(webhook.id)
        reason = f"held: webhook in an outage, next probe at {probe:%H:%M:%S} UTC"
        return [*held, *released(deliveries, reason)]

    # -- 2. observe -------------------------------------------------------------------------

    def observe(self, webhook: Webhook, sent: Exchange, now: datetime) -> Observed | None:
        """
        Write the health after *sent*; ``None`` if the store keeps none (or writes failed).
        """
        store = self._store
        if store is None:
            return None
        verdict = self._retry.classify(status=sent.status, error_kind=sent.error_kind)
        seen = self._seen.pop(webhook.id, _UNSEEN)
        for _ in range(_TRIES):
            found = store.get_webhook_health(webhook.id) if seen is _UNSEEN else seen
            seen = _UNSEEN
            current = found or WebhookHealth(webhook_id=webhook.id)
            if verdict is Verdict.DELIVERED and _still_healthy(current, now):
                # Nothing worth a write: healthy, and a success recorded within a minute.
                return Observed(health=current, change=None, hold_until=None)
            # Anything worth a write ends the trust in a healthy read: read it again next time.
            self._trusted.pop(webhook.id, None)
            health, change = next_health(
                current,
                verdict=verdict,
                started_at=sent.started_at,
                now=now,
                owner=self._claims.owner,
                policy=self.policy,
            )
            if store.put_webhook_health(health, expected_version=current.version):
                break
        else:
            logger.warning("webhook %s: health not updated (too many writers)", webhook.id)
            return None
        hold_until = None
        if health.outage_since is not None and self.policy.enabled:
            hold_until = now + self.policy.hold
        return Observed(health=health, change=change, hold_until=hold_until)

    @staticmethod
    def held(decision: Decision, observed: Observed | None) -> Decision:
        """
        *decision*, with a retry moved to the outage's hold time while an outage lasts.

        The attempt still counts; the delivery waits with the others for the probe (or
        the recovery), instead of coming back at its own retry time.
        """
        if (
            observed is None
            or observed.hold_until is None
            or decision.verdict is not Verdict.RETRY
        ):
            return decision
        assert decision.next_attempt_at is not None  # noqa: S101 - a retry has its time
        return attrs.evolve(
            decision,
            next_attempt_at=max(decision.next_attempt_at, observed.hold_until),
            reason=f"{decision.reason}; held: webhook in an outage",
        )

    # -- 3. follow up -----------------------------------------------------------------------

    def follow_up(self, webhook: Webhook, observed: Observed | None) -> None:
        """
        Act on what *observed* changed, once the exchange's outcomes are recorded; never raise.
        """
        if observed is None:
            return
        try:
            self._follow_up(webhook, observed)
        except PendoWebhooksError as exc:
            logger.warning("webhook %s: health follow-up failed: %s", webhook.id, exc)

    def _follow_up(self, webhook: Webhook, observed: Observed) -> None:
        health, change = observed.health, observed.change
        now = self._clock()
        if change is HealthChange.RECOVERED:
            moved = self._release_backlog(webhook.id)
            logger.info(
                "webhook %s (%s) answers again: %d held deliveries released, %g a second",
                webhook.id,
                host_of(webhook.destination),
                moved,
                self.policy.recovery_rate,
            )
            self.signal(webhook, WebhookState.RECOVERED, f"{host_of(webhook.destination)} answers")
        elif change in {HealthChange.OUTAGE, HealthChange.PROBE_FAILED} and health.next_probe_at:
            # The next probe: the pending delivery with the fewest attempts, so probing
            # rotates through the backlog and spends no single delivery's retries.
            self._nominate(webhook.id, health, now)
            if change is HealthChange.OUTAGE:
                self.signal(
                    webhook,
                    WebhookState.FAILING,
                    f"{health.streak} failed exchanges in a row: deliveries held, one probe "
                    "at a time",
                )
                logger.warning(
                    "webhook %s (%s) is failing hard (%d failures in a row): outage; "
                    "its deliveries wait for one probe at a time",
                    webhook.id,
                    host_of(webhook.destination),
                    health.streak,
                )
        self._maybe_disable(webhook, health, now)

    def _nominate(self, webhook_id: str, health: WebhookHealth, now: datetime) -> None:
        """
        Name the next probe: the pending delivery with the fewest attempts, due then.

        Never sooner than that delivery's own retry schedule allows after its last attempt
        (its base wait from now), so probing never spends a delivery's retries faster
        than plain retries would; the probe time moves to it. Unless the outage moved on
        meanwhile.
        """
        store = cast(HealthStore, self._store)
        at = cast(datetime, health.next_probe_at)
        nominated = store.respread_pending(
            webhook_id, start=at, spacing=timedelta(0), now=now, limit=1
        )
        delivery_id = nominated[0] if nominated else None
        if delivery_id is not None:
            found = self._storage.get_delivery(delivery_id)
            tried = found.attempts - found.attempt_base
            if 0 < tried <= self._retry.max_retries:
                own = now + self._retry.wait(tried, rng=_no_jitter)
                if own > at:
                    at = own
                    store.respread_pending(
                        webhook_id, start=at, spacing=timedelta(0), now=now, limit=1
                    )
        for _ in range(_TRIES):
            current = store.get_webhook_health(health.webhook_id)
            if current is None or current.next_probe_at != health.next_probe_at:
                return
            named = attrs.evolve(current, probe_delivery=delivery_id, next_probe_at=at)
            if store.put_webhook_health(named, expected_version=current.version):
                return

    def _release_backlog(self, webhook_id: str) -> int:
        now = self._clock()
        store = cast(HealthStore, self._store)
        moved = store.respread_pending(
            webhook_id, start=now, spacing=self.policy.recovery_spacing, now=now
        )
        return len(moved)

    def _maybe_disable(self, webhook: Webhook, health: WebhookHealth, now: datetime) -> None:
        span = self.policy.disable_after
        since = health.failing_since
        if span is None or since is None or health.last_failure_at is None:
            return
        if now - since < span:
            return
        reason = (
            f"every exchange with {host_of(webhook.destination)} failed for "
            f"{_days(now - since)} (since {since:%Y-%m-%d %H:%M} UTC)"
        )
        try:
            self._registry.disable_by_system(webhook.id, reason=reason)
        except PendoWebhooksError as exc:
            logger.warning(
                "webhook %s failed for too long but was not disabled: %s", webhook.id, exc
            )
            return
        logger.warning("webhook %s disabled by the system: %s", webhook.id, reason)

    # -- signals: the one place the engine says a webhook's health changed ------------------

    def signal(self, webhook: Webhook, state: WebhookState, reason: str) -> None:
        """
        Tell the instrumentation hooks that *webhook*'s destination started failing hard
        (:attr:`WebhookState.FAILING <pendo_webhooks.instrumentation.WebhookState.FAILING>`)
        or answers again (``RECOVERED``), by ``"system"``.

        The one place health signals are emitted; a system disable is announced by the
        registry itself (``disable_by_system``), as a 410's is.
        """
        hooks = self._registry.hooks
        if hooks:
            hooks.emit(
                WebhookChanged(
                    webhook_id=webhook.id,
                    state=state,
                    by=SYSTEM_ACTOR_ID,
                    reason=reason,
                    at=self._clock(),
                )
            )


def _still_healthy(health: WebhookHealth, now: datetime) -> bool:
    """
    Whether a success changes nothing worth writing: healthy, with one recorded lately.
    """
    last = health.last_success_at
    return (
        health.failing_since is None
        and health.outage_since is None
        and health.streak == 0
        and last is not None
        and timedelta(0) <= now - last < SUCCESS_PRECISION
    )


def _no_jitter(low: float, high: float) -> float:
    return (low + high) / 2


def _days(span: timedelta) -> str:
    if span >= timedelta(days=1):
        days = span.total_seconds() / 86400
        return f"{days:.1f} days"
    return f"{span.total_seconds() / 3600:.1f} hours"
