"""
The outbox part of :class:`~pendo_webhooks.storage.PostgresStorage`. Strictly private.

Every hot-path method is ONE statement, so it is atomic on its own and costs one
round trip (no ``BEGIN``/``COMMIT``): enqueueing is an ``INSERT ... SELECT`` over
``unnest`` arrays; a claim is an ``UPDATE`` over a ``SELECT ... FOR UPDATE SKIP
LOCKED`` of the partial index of pending deliveries, so any number of workers on
any number of machines claim disjoint rows without waiting on each other; an
outcome is an ``UPDATE`` fenced on the lease (owner, and expiry not passed) with
the attempt row inserted by the same statement, only if that update happened;
its transaction commits with ``synchronous_commit`` off (see ``RECORD``), every
other one at the server's level. While leased, a delivery's ``next_attempt_at``
is its lease expiry, so a lapsed lease makes it due again without any sweeper. No
transaction is ever open while a request is in flight: the dispatcher sends between
two statements.

Times come from the caller's clock (worker clocks must agree to well within the
lease; NTP suffices), so the store behaves identically under a test's frozen clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from ..model._delivery import Attempt, Delivery, DeliveryStatus
from ._outbox_common import (
    attempt_from_row,
    claims_exhausted,
    delivery_from_row,
    duplicate_delivery,
    load_rows,
    not_finished,
    purged_body,
    record_one_outcome,
    unknown_delivery,
)
from ._outbox_protocol import EnqueueSkip
from ._postgres_core import PostgresCore
from ._postgres_outbox_sql import (
    ATTEMPTS_OF_DELIVERY,
    ATTEMPTS_OF_EXCHANGE,
    CANCEL,
    CLAIM,
    CLAIM_FOR_WEBHOOK,
    CLAIM_IDS,
    ENQUEUE,
    LIST,
    PURGE,
    RECORD,
    REDELIVER,
    REDELIVER_FAILED,
    RELEASE,
)
from ._postgres_webhooks import as_utc


__all__ = ["PostgresOutbox", "enqueue_params", "enqueue_results"]

_T = TypeVar("_T")

_DELIVERY_COLUMNS = (
    "id",
    "webhook_id",
    "event_id",
    "category",
    "body",
    "status",
    "attempts",
    "attempt_base",
    "next_attempt_at",
    "created_at",
    "updated_at",
    "last_status",
    "last_error",
    "lease_owner",
    "lease_until",
    "finished_at",
    "redelivered_at",
    "purged",
)


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; an error text with one must not make an outcome
    # unrecordable (the delivery would be retried forever).
    return None if value is None else value.replace("\x00", "\ufffd")


def _optional(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def _delivery_from_row(row: Mapping[str, Any]) -> Delivery:
    return delivery_from_row(row, as_utc)


def _attempt_from_row(row: Mapping[str, Any]) -> Attempt:
    return attempt_from_row(row, as_utc)


def _outcome_columns(outcomes: Sequence[tuple[Delivery, Attempt | None]]) -> dict[str, list[Any]]:
    """
    The outcomes' new delivery states, their attempt rows and their exchanges' (once each).
    """
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "id", "status", "attempts", "next_attempt_at", "updated_at", "last_status",
            "last_error", "finished_at", "a_delivery_id", "a_number", "a_exchange_id",
            "a_verdict", "a_reason", "x_id", "x_webhook_id", "x_started_at", "x_duration",
            "x_status_code", "x_error_kind", "x_detail", "x_response_excerpt",
        )
    }  # fmt: skip
    exchanges: set[str] = set()
    for d, a in outcomes:
        columns["id"].append(d.id)
        columns["status"].append(d.status.value)
        columns["attempts"].append(d.attempts)
        columns["next_attempt_at"].append(d.next_attempt_at)
        columns["updated_at"].append(d.updated_at)
        columns["last_status"].append(d.last_status)
        columns["last_error"].append(_text(d.last_error))
        columns["finished_at"].append(d.finished_at)
        if a is None:
            continue
        columns["a_delivery_id"].append(a.delivery_id)
        columns["a_number"].append(a.number)
        columns["a_exchange_id"].append(a.exchange_id)
        columns["a_verdict"].append(a.verdict.value)
        columns["a_reason"].append(_text(a.reason))
        if a.exchange_id in exchanges:
            continue  # a Segment batch's attempts share one exchange
        exchanges.add(a.exchange_id)
        columns["x_id"].append(a.exchange_id)
        columns["x_webhook_id"].append(d.webhook_id)
        columns["x_started_at"].append(a.started_at)
        columns["x_duration"].append(a.duration)
        columns["x_status_code"].append(a.status_code)
        columns["x_error_kind"].append(_text(a.error_kind))
        columns["x_detail"].append(_text(a.detail))
        columns["x_response_excerpt"].append(a.response_excerpt)
    return columns


def _recording(
    outcomes: Sequence[tuple[Delivery, Attempt | None]], owner: str, now: datetime
) -> dict[str, Any]:
    # RECORD's parameters.
    params: dict[str, Any] = {"owner": owner, "now": now}
    params.update(_outcome_columns(outcomes))
    return params


def _claiming(
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    *,
    webhook_id: str | None = None,
    max_claims: int | None = None,
) -> dict[str, Any]:
    # CLAIM's (and CLAIM_FOR_WEBHOOK's) parameters.
    return {
        "owner": owner,
        "until": lease_until,
        "now": now,
        "limit": limit,
        "webhook_id": webhook_id,
        "max_claims": max_claims,
        "exhausted": None if max_claims is None else claims_exhausted(max_claims),
    }


def _columns(deliveries: Sequence[Delivery]) -> dict[str, list[Any]]:
    """
    The deliveries as one array per column, for ``unnest``.
    """
    columns: dict[str, list[Any]] = {name: [] for name in _DELIVERY_COLUMNS}
    for d in deliveries:
        columns["id"].append(d.id)
        columns["webhook_id"].append(d.webhook_id)
        columns["event_id"].append(d.event_id)
        columns["category"].append(d.category.value)
        columns["body"].append(d.body)
        columns["status"].append(d.status.value)
        columns["attempts"].append(d.attempts)
        columns["attempt_base"].append(d.attempt_base)
        columns["next_attempt_at"].append(d.next_attempt_at)
        columns["created_at"].append(d.created_at)
        columns["updated_at"].append(d.updated_at)
        columns["last_status"].append(d.last_status)
        columns["last_error"].append(_text(d.last_error))
        columns["lease_owner"].append(d.lease_owner)
        columns["lease_until"].append(d.lease_until)
        columns["finished_at"].append(d.finished_at)
        columns["redelivered_at"].append(d.redelivered_at)
        columns["purged"].append(d.purged)
    return columns


def enqueue_params(deliveries: Sequence[Delivery]) -> dict[str, list[Any]]:
    """
    ENQUEUE's parameters; ConflictError if two deliveries share an id.
    """
    seen: set[str] = set()
    for d in deliveries:
        if d.id in seen:
            raise duplicate_delivery(d.id)
        seen.add(d.id)
    return _columns(deliveries)


def enqueue_results(rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """
    What ENQUEUE's rows say: per delivery, ``None`` if stored, else why not.

    Raises:
        ConflictError: If a delivery id was taken (then nothing was stored).
    """
    if rows[0]["taken"] is not None:
        raise duplicate_delivery(rows[0]["taken"])
    results: list[str | None] = []
    for row in rows:
        if row["stored"]:
            results.append(None)
        elif row["live"]:
            results.append(EnqueueSkip.DUPLICATE)
        elif row["known"]:
            results.append(EnqueueSkip.DISABLED)
        else:
            results.append(EnqueueSkip.DELETED)
    return results


class PostgresOutbox(PostgresCore):
    """
    The ``deliveries``, ``delivery_attempts`` and ``delivery_exchanges`` tables. Strictly private.
    """

    #: Writes deliveries through the host's own psycopg connection when given one.
    accepts_host_connection: ClassVar[bool] = True

    def enqueue_deliveries(
        self, deliveries: Sequence[Delivery], *, connection: object | None = None
    ) -> list[str | None]:
        """
        Store new deliveries of enabled webhooks, skipping duplicates; see OutboxStore.

        With *connection* (the host's psycopg connection), they are written in the
        host's transaction and commit or roll back with it (the transactional outbox).

        Raises:
            ConflictError: If a delivery id is taken (nothing of the batch is stored).
            ConfigurationError: If *connection* is not a usable psycopg connection.
        """
        if not deliveries:
            return []
        rows, _ = self._execute(
            "storing deliveries", self._q(ENQUEUE), enqueue_params(deliveries), connection
        )
        return enqueue_results(rows)

    def claim_due(
        self,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        webhook_id: str | None = None,
        max_claims: int | None = None,
    ) -> list[Delivery]:
        """
        Lease up to *limit* due deliveries to *owner*; see OutboxStore.

        Rows other workers are claiming at this moment are skipped, not waited for.
        """
        params = _claiming(
            owner, now, lease_until, limit, webhook_id=webhook_id, max_claims=max_claims
        )
        query = CLAIM if webhook_id is None else CLAIM_FOR_WEBHOOK
        rows, _ = self._execute("claiming deliveries", self._q(query), params)
        # RETURNING gives rows in no particular order.
        rows.sort(key=lambda r: (r["created_at"], r["seq"]))
        return load_rows(rows, _delivery_from_row)

    def claim_deliveries(
        self,
        delivery_ids: Sequence[str],
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None = None,
    ) -> list[Delivery]:
        """
        Lease those of *delivery_ids* that are due to *owner*; see OutboxStore.

        Rows other workers are claiming at this moment are skipped, not waited for.
        """
        if not delivery_ids:
            return []
        params = _claiming(owner, now, lease_until, len(delivery_ids), max_claims=max_claims)
        params["ids"] = list(delivery_ids)
        rows, _ = self._execute("claiming deliveries", self._q(CLAIM_IDS), params)
        return load_rows(rows, _delivery_from_row)

    record_outcome = record_one_outcome

    def record_outcomes(
        self, outcomes: Sequence[tuple[Delivery, Attempt | None]], *, owner: str, now: datetime
    ) -> list[bool]:
        """
        Record several claimed deliveries' outcomes in one statement; see OutboxStore.

        Each is fenced on its own lease: one whose lease was lost is not written (nor
        its attempt row) and does not stop the others.
        """
        if not outcomes:
            return []
        params = _recording(outcomes, owner, now)
        rows, _ = self._execute("recording outcomes", self._q(RECORD), params)
        return [bool(row["written"]) for row in rows]

    def record_outcome_and_claim(
        self,
        delivery: Delivery,
        attempt: Attempt | None,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None = None,
    ) -> tuple[bool, list[Delivery]]:
        """
        Record one outcome as :meth:`record_outcome`, and claim the next due delivery.

        One transaction (one commit, not waiting for its WAL flush) instead of two, for
        a worker that attempts one delivery at a time; see
        ``SQLiteStorage.record_outcome_and_claim``.
        """
        record = _recording([(delivery, attempt)], owner, now)
        claim = _claiming(owner, now, lease_until, 1, max_claims=max_claims)

        def both(cur: Any) -> tuple[bool, list[Any]]:
            cur.execute(self._q(RECORD), record)
            written = bool(cur.fetchall()[0]["written"])
            cur.execute(self._q(CLAIM), claim)
            return written, cur.fetchall()

        written, rows = self._write("recording an outcome and claiming", both)
        return written, load_rows(rows, _delivery_from_row)

    def release_claims(self, delivery_ids: Sequence[str], *, owner: str, now: datetime) -> int:
        """
        Give back claims *owner* holds: due again at *now*; see OutboxStore.
        """
        if not delivery_ids:
            return 0
        params = {"ids": list(delivery_ids), "owner": owner, "now": now}
        return self._execute("releasing claims", self._q(RELEASE), params)[1]

    def cancel_deliveries(self, webhook_id: str, *, reason: str, now: datetime) -> int:
        """
        Cancel every pending delivery of a webhook; see OutboxStore.
        """
        params = {"webhook_id": webhook_id, "reason": _text(reason), "now": now}
        return self._execute("cancelling deliveries", self._q(CANCEL), params)[1]

    def get_delivery(self, delivery_id: str) -> Delivery:
        """
        Return one delivery, or raise UnknownDelivery.
        """
        rows = self._read(
            "reading a delivery",
            self._q("SELECT * FROM {schema}.deliveries WHERE id = %s"),
            (delivery_id,),
        )
        if not rows:
            raise unknown_delivery(delivery_id)
        return load_rows(rows, _delivery_from_row)[0]

    def list_deliveries(
        self,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """
        Return up to *limit* deliveries, most recently stored first; see OutboxStore.
        """
        params = {
            "webhook_id": webhook_id,
            "status": None if status is None else DeliveryStatus(status).value,
            "limit": limit,
        }
        query = LIST[webhook_id is not None, status is not None]
        rows = self._read("listing deliveries", self._q(query), params)
        return load_rows(rows, _delivery_from_row)

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        """
        Return a delivery's attempts, first first.
        """
        rows = self._read("listing attempts", self._q(ATTEMPTS_OF_DELIVERY), (delivery_id,))
        return load_rows(rows, _attempt_from_row)

    def list_exchange_attempts(self, exchange_id: str) -> list[Attempt]:
        """
        Return the attempts of one HTTP exchange, one per delivery, by delivery id.
        """
        rows = self._read("listing attempts", self._q(ATTEMPTS_OF_EXCHANGE), (exchange_id,))
        return load_rows(rows, _attempt_from_row)

    def redeliver(self, delivery_id: str, *, now: datetime) -> Delivery:
        """
        Make a finished delivery pending again with a fresh retry budget; see OutboxStore.
        """

        def reopen(cur: Any) -> list[Any]:
            cur.execute(
                self._q("SELECT status, purged FROM {schema}.deliveries WHERE id = %s FOR UPDATE"),
                (delivery_id,),
            )
            found = cur.fetchone()
            if found is None:
                raise unknown_delivery(delivery_id)
            if found["status"] == DeliveryStatus.PENDING.value:
                raise not_finished(delivery_id)
            if found["purged"]:
                raise purged_body(delivery_id)
            cur.execute(self._q(REDELIVER), {"id": delivery_id, "now": now})
            return cur.fetchall()  # type: ignore[no-any-return]

        return load_rows(self._write("redelivering", reopen), _delivery_from_row)[0]

    def redeliver_failed(
        self, webhook_id: str, *, since: datetime, until: datetime, now: datetime
    ) -> int:
        """
        Redeliver a webhook's failed and dead deliveries created in ``[since, until)``.
        """
        params = {"webhook_id": webhook_id, "since": since, "until": until, "now": now}
        return self._execute("redelivering", self._q(REDELIVER_FAILED), params)[1]

    def purge(self, older_than: datetime) -> int:
        """
        Empty bodies and response excerpts of deliveries finished before *older_than*.
        """
        rows, _ = self._execute("purging", self._q(PURGE), {"older_than": older_than})
        return int(rows[0]["purged"])

    def pending_summary(self) -> tuple[int, datetime | None]:
        """
        Return how many deliveries are pending and the earliest ``next_attempt_at``.
        """
        row = self._read(
            "counting pending deliveries",
            self._q(
                "SELECT count(*) AS n, min(next_attempt_at) AS earliest"
                " FROM {schema}.deliveries WHERE status = 'pending'"
            ),
        )[0]
        return int(row["n"]), _optional(row["earliest"])
