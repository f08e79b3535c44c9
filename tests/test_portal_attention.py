"""
The settings page's health and alerts (issue 17, on top of the operations issue).

The list's "Needs attention" section (webhooks the library disabled, failing and out
destinations, dead deliveries of the last 7 days), the deliveries status filter and
"Redeliver failed" on a webhook's page, operations webhooks from the create form, and a
reason for "Disable". Over the in-memory and the SQLite store, and an in-memory store
without the optional summary reads (the portal then reads as it did before them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pendo_webhooks.dispatcher import Dispatcher, WebhookHealth
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event

from .test_portal import (
    ADMIN,
    KEY,
    USER,
    Portal,
    Result,
    Site,
    _actor_of,
    _create_form,
    _labels,
    _ReadOnly,
    _text,
)


def _site(storage: Storage, statuses: list[int], **registry_args: Any) -> Site:
    # No retries: a retryable failure ends the delivery dead at once.
    clock = FrozenClock()
    registry = WebhookRegistry(storage, clock=clock, **registry_args)
    transport = RecordingTransport(statuses)
    dispatcher = Dispatcher(
        registry,
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        retry=RetryPolicy(max_retries=0),
    )
    return Site(
        registry, dispatcher, transport, clock, Portal(dispatcher, _actor_of, csrf_key=KEY)
    )


class _NoSummaryReads(InMemoryStorage):
    """An in-memory store without BulkHealthStore and CountingDeliveryLog, as a host's may be."""

    def __getattribute__(self, name: str) -> Any:
        if name in {"health_of", "count_by_webhook"}:
            raise AttributeError(name)
        return super().__getattribute__(name)


class _Reads(InMemoryStorage):
    """An in-memory store that counts the reads the list page makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get_webhook_health(self, webhook_id: str) -> Any:
        self.calls.append("get_webhook_health")
        return super().get_webhook_health(webhook_id)

    def health_of(self, webhook_ids: Any) -> Any:
        self.calls.append("health_of")
        return super().health_of(webhook_ids)

    def count_by_webhook(self, **kwargs: Any) -> Any:
        self.calls.append("count_by_webhook")
        return super().count_by_webhook(**kwargs)

    def list_deliveries(self, **kwargs: Any) -> Any:
        self.calls.append("list_deliveries")
        return super().list_deliveries(**kwargs)


class _PlainReads(_Reads):
    """The same, without the summary reads."""

    def __getattribute__(self, name: str) -> Any:
        if name in {"health_of", "count_by_webhook"}:
            raise AttributeError(name)
        return super().__getattribute__(name)


@pytest.fixture(name="site", params=["memory", "sqlite", "plain"])
def _site_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    statuses = [503, 200, 503, 503, 200, 503, 503, 503]
    if request.param == "memory":
        yield _site(InMemoryStorage(), statuses)
    elif request.param == "plain":
        yield _site(_NoSummaryReads(), statuses)
    else:
        with SQLiteStorage(tmp_path / "attention.sqlite3") as storage:
            yield _site(storage, statuses)


def _enabled(site: Site, name: str, category: str) -> Any:
    hook = site.registry.create(
        ADMIN, name=name, url=f"https://hooks.example.com/{len(name)}", categories={category}
    )
    return site.registry.enable(ADMIN, hook.id)


def _send(site: Site, category: str, unique: str) -> str:
    result = site.dispatcher.dispatch(sample_event(category, unique_id=unique))
    (outcome,) = result.outcomes
    assert outcome.delivery_id is not None
    return outcome.delivery_id


def _section(page: Result) -> str:
    found = re.search(r'<section class="attention".*?</section>', page.text, re.S)
    assert found is not None, "no Needs attention section"
    return found.group(0)


def _items(section: str) -> list[str]:
    # The text of each webhook's entry, in order.
    entries = re.split(r'<li>\s*<a href="/webhooks/[^"?]+">', section)[1:]
    return [re.sub(r" ([:,])", r"\1", _text(entry)).strip() for entry in entries]


# -- the list: Needs attention ------------------------------------------------------------------


def test_needs_attention_names_what_needs_a_person_most_urgent_first(site: Site) -> None:
    """
    Disabled by the library (with its reason), outage, failing, then dead deliveries only;
    each entry links to the webhook, and its dead count to its dead deliveries.
    """
    old = _enabled(site, "Old failure", "trackEventReceived")
    _send(site, "trackEventReceived", "u-old")  # 503: dead, 8 days before the rest
    site.registry.disable(ADMIN, old.id)  # by an admin: its failing health is history
    site.clock.advance(timedelta(days=8))
    healthy = _enabled(site, "All good", "guideDisplayed")
    flaky = _enabled(site, "Flaky", "pollSubmitted")
    _send(site, "pollSubmitted", "u-flaky-1")  # 200
    _send(site, "pollSubmitted", "u-flaky-2")  # 503: dead; the health says failing
    failing = flaky
    dead_only = _enabled(site, "Was down <i>once</i>", "npsSubmitted")
    _send(site, "npsSubmitted", "u-down-1")  # 503: dead
    _send(site, "guideDisplayed", "u-good")  # 200 for "All good"
    _send(site, "npsSubmitted", "u-down-2")  # 503: dead
    gone = _enabled(site, "Gone <script>alert(1)</script>", "visitorCreated")
    site.registry.disable_by_system(gone.id, reason="HTTP 410 Gone <b>bye</b>")
    out = _enabled(site, "Down for hours", "accountCreated")
    now = site.clock()
    site.registry.storage.put_webhook_health(  # type: ignore[attr-defined]
        WebhookHealth(
            webhook_id=out.id,
            failing_since=now - timedelta(hours=3),
            outage_since=now - timedelta(hours=2),
            failures=12,
            streak=9,
        ),
        expected_version=0,
    )
    # "Was down once" answered again: healthy now, with its two dead deliveries left.
    site.registry.storage.put_webhook_health(  # type: ignore[attr-defined]
        WebhookHealth(webhook_id=dead_only.id, last_success_at=now),
        expected_version=site.dispatcher.webhook_health(ADMIN, dead_only.id).version,
    )
    page = site.client().get("/")
    assert page.status == 200
    section = _section(page)
    assert '<h2 id="attention-heading">Needs attention</h2>' in section
    assert 'aria-labelledby="attention-heading"' in section
    items = _items(section)
    assert len(items) == 4, items
    assert items[0].startswith("Gone <script>alert(1)</script> Disabled by the library: ")
    assert "HTTP 410 Gone <b>bye</b>" in items[0]
    assert "Gone &lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "HTTP 410 Gone &lt;b&gt;bye&lt;/b&gt;" in section
    assert "<script>" not in page.text
    assert items[1] == (
        "Down for hours Outage since 2026-01-08 22:00:00 UTC: failure streak 9, "
        "12 failed exchanges since the last success"
    )
    assert items[2].startswith(
        "Flaky Failing since 2026-01-09 00:00:00 UTC: failure streak 1, "
        "1 failed exchange since the last success"
    )
    assert items[2].endswith(" 1 delivery went dead in the last 7 days")
    assert items[3].startswith("Was down <i>once</i> 2 deliveries went dead in the last 7 days")
    assert "Failing" not in items[3]
    assert f'href="/webhooks/{failing.id}?status=dead"' in section
    assert f'href="/webhooks/{gone.id}"' in section
    assert healthy.name not in section
    assert old.name not in section  # disabled by an admin; its dead delivery is 8 days old
    assert "at least" not in section
    assert "there may be more" not in section
    # The list still shows every webhook, as before.
    assert "Gone <script>alert(1)</script> URL" in _text(page.text)


def test_no_section_while_all_is_well(site: Site) -> None:
    """
    Nothing to show: no section, no heading.
    """
    _enabled(site, "Quiet", "guideDisplayed")
    hook = site.registry.create(
        ADMIN, name="Paused", url="https://hooks.example.com/p", categories={"npsSubmitted"}
    )
    site.registry.disable(ADMIN, hook.id, reason="on holiday")  # not the library's doing
    page = site.client().get("/")
    assert "Needs attention" not in page.text
    assert 'class="attention"' not in page.text


def test_dead_counts_past_the_scan_say_at_least(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    From a store that cannot count, the list reads only the newest dead deliveries; beyond
    them the counts are lower bounds.
    """
    from pendo_webhooks.portal import _attention  # noqa: PLC0415

    monkeypatch.setattr(_attention, "DEAD_SCAN", 2)
    site = _site(_NoSummaryReads(), [503] * 3)
    _enabled(site, "Down", "npsSubmitted")
    for n in range(3):
        _send(site, "npsSubmitted", f"u-{n}")
    section = _section(site.client().get("/"))
    assert "at least 2 deliveries went dead in the last 7 days" in _text(section)
    assert "Dead deliveries are counted among the newest 2 only: there may be more." in (
        _text(section)
    )


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_store_that_counts_gives_exact_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store: str
) -> None:
    """
    A CountingDeliveryLog counts them all, however many: no scan, no "at least".
    """
    from pendo_webhooks.portal import _attention  # noqa: PLC0415

    monkeypatch.setattr(_attention, "DEAD_SCAN", 2)
    with SQLiteStorage(tmp_path / "counts.sqlite3") as sqlite:
        site = _site(InMemoryStorage() if store == "memory" else sqlite, [503] * 3)
        _enabled(site, "Down", "npsSubmitted")
        for n in range(3):
            _send(site, "npsSubmitted", f"u-{n}")
        section = _section(site.client().get("/"))
    (item,) = _items(section)
    assert item.endswith(" 3 deliveries went dead in the last 7 days")
    assert "at least" not in section
    assert "there may be more" not in section


@pytest.mark.parametrize(
    ("store", "reads"),
    [
        (_Reads, ["health_of", "count_by_webhook"]),
        (_PlainReads, ["get_webhook_health"] * 5 + ["list_deliveries"]),
    ],
    ids=["summary-reads", "without"],
)
def test_the_list_reads_health_and_dead_counts_once_whatever_the_number_of_webhooks(
    store: type[_Reads], reads: list[str]
) -> None:
    """
    One bulk health read and one count (no delivery, nor its body, is read), however many
    webhooks; without them, one health read a webhook and one scan of the dead deliveries.
    """
    site = _site(store(), [503] * 5)
    storage = site.registry.storage
    assert isinstance(storage, _Reads)
    for n in range(5):
        _enabled(site, f"Hook {n}", "npsSubmitted")
    site.dispatcher.dispatch(sample_event("npsSubmitted", unique_id="u-1"))  # 5 dead
    storage.calls.clear()
    page = site.client().get("/")
    assert storage.calls == reads
    items = _items(_section(page))
    assert len(items) == 5
    assert all(item.endswith(" 1 delivery went dead in the last 7 days") for item in items)


def test_a_store_without_health_still_counts_dead_deliveries() -> None:
    """
    Without a health store, the section shows what it can: dead deliveries.
    """
    from .test_portal import _NoHealth  # noqa: PLC0415

    site = _site(_NoHealth(), [503])
    hook = _enabled(site, "Down", "npsSubmitted")
    _send(site, "npsSubmitted", "u-1")
    page = site.client().get("/")
    assert _items(_section(page)) == ["Down 1 delivery went dead in the last 7 days"]
    assert f'href="/webhooks/{hook.id}?status=dead"' in page.text


def test_operations_webhooks_are_marked_in_the_list(site: Site) -> None:
    """
    An operations webhook's type says so; a Pendo one's does not.
    """
    site.registry.create(
        ADMIN,
        name="Ops",
        url="https://ops.example.com/a",
        categories={"pendo_webhooks.webhook.disabled"},
    )
    _enabled(site, "Events", "npsSubmitted")
    text = _text(site.client().get("/").text)
    assert "Ops URL (operations alerts) https://ops.example.com/a Inactive" in text
    assert "Events URL https://hooks.example.com/6 Active" in text


# -- the webhook page: the status filter --------------------------------------------------------


def _two_outcomes(site: Site) -> tuple[Any, str, str]:
    hook = _enabled(site, "Mixed", "npsSubmitted")
    dead = _send(site, "npsSubmitted", "u-dead")  # 503
    delivered = _send(site, "npsSubmitted", "u-ok")  # 200
    return hook, dead, delivered


def test_the_deliveries_table_filters_by_status(site: Site) -> None:
    """
    A GET form, labelled, with All and each status; the table shows only the one chosen.
    """
    hook, dead, delivered = _two_outcomes(site)
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}")
    assert f'<form method="get" action="/webhooks/{hook.id}" class="filter">' in page.text
    assert _labels(page.text)["delivery-status"] == "Show deliveries"
    options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]+)</option>', page.text)
    assert options == [
        ("", " selected", "All"),
        ("pending", "", "Pending"),
        ("delivered", "", "Delivered"),
        ("failed", "", "Failed"),
        ("dead", "", "Dead"),
        ("cancelled", "", "Cancelled"),
    ]
    assert dead in page.text
    assert delivered in page.text
    page = client.get(f"/webhooks/{hook.id}", "status=dead")
    assert dead in page.text
    assert delivered not in page.text
    assert '<option value="dead" selected>Dead</option>' in page.text
    page = client.get(f"/webhooks/{hook.id}", "status=pending")
    assert dead not in page.text
    assert delivered not in page.text
    assert "No pending deliveries among the recent ones." in _text(page.text)


@pytest.mark.parametrize(
    "query", ["status=%3Cscript%3Ealert(1)%3C/script%3E", "status=", "status=DEAD"]
)
def test_an_unknown_status_shows_all_and_is_never_shown_back(site: Site, query: str) -> None:
    """
    Anything but a status's name is "All"; the query's text is not on the page.
    """
    hook, dead, delivered = _two_outcomes(site)
    page = site.client().get(f"/webhooks/{hook.id}", query)
    assert page.status == 200
    assert dead in page.text
    assert delivered in page.text
    assert '<option value="" selected>All</option>' in page.text
    assert "alert(1)" not in page.text
    assert "DEAD" not in page.text


# -- the webhook page: Redeliver failed ---------------------------------------------------------


def _status_after(client: Any, response: Result) -> str:
    assert response.status == 303
    location = response.headers["Location"]
    path, _, query = location.partition("?")
    return client.get(path, query).region("status")


def test_redeliver_failed_requeues_the_last_weeks_failed_and_dead(site: Site) -> None:
    """
    One POST: every failed and dead delivery of the last 7 days is pending again; the status
    message gives the count.
    """
    hook = _enabled(site, "Down", "npsSubmitted")
    older = _send(site, "npsSubmitted", "u-old")  # 503: dead
    site.clock.advance(timedelta(days=8))
    recent = [_send(site, "npsSubmitted", "u-1")]  # 200
    recent.append(_send(site, "npsSubmitted", "u-2"))  # 503: dead
    recent.append(_send(site, "npsSubmitted", "u-3"))  # 503: dead
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}")
    assert f'<form method="post" action="/webhooks/{hook.id}/redeliver-failed">' in page.text
    assert (
        '<button type="submit" aria-describedby="redeliver-failed-hint">Redeliver failed</button>'
        in page.text
    )
    assert "sends every failed and dead delivery created in the last 7 days again" in _text(
        page.text
    )
    response = client.post(f"/webhooks/{hook.id}/redeliver-failed")
    assert response.headers["Location"] == (f"/webhooks/{hook.id}?done=redelivered-failed&count=2")
    message = _status_after(client, response)
    assert message == (
        " 2 failed or dead deliveries queued for redelivery: a worker sends them again. "
    )
    statuses = {d.id: d.status.value for d in site.dispatcher.deliveries(ADMIN, limit=10)}
    assert statuses == {
        older: "dead",
        recent[0]: "delivered",
        recent[1]: "pending",
        recent[2]: "pending",
    }


def test_redeliver_failed_says_one_and_none(site: Site) -> None:
    """
    The message counts: one delivery, then nothing left to redeliver.
    """
    hook = _enabled(site, "Down", "npsSubmitted")
    _send(site, "npsSubmitted", "u-1")  # 503: dead
    client = site.client()
    first = client.post(f"/webhooks/{hook.id}/redeliver-failed")
    assert "1 failed or dead delivery queued for redelivery" in _status_after(client, first)
    again = client.post(f"/webhooks/{hook.id}/redeliver-failed")  # it is pending now
    assert again.headers["Location"].endswith("count=0")
    assert "Nothing to redeliver: no failed or dead deliveries created in the last 7 days." in (
        _status_after(client, again)
    )


@pytest.mark.parametrize(
    "query",
    [
        "done=redelivered-failed",
        "done=redelivered-failed&count=",
        "done=redelivered-failed&count=%3Cb%3E7%3C/b%3E",
        "done=redelivered-failed&count=-3",
        "done=redelivered-failed&count=1e3",
        "done=redelivered-failed&count=%D9%A3",  # an Arabic-Indic three
        "done=redelivered-failed&count=1234567890",
    ],
)
def test_the_count_in_the_query_is_digits_or_nothing(site: Site, query: str) -> None:
    """
    Only a plain number is shown; anything else, and no message at all.
    """
    hook = _enabled(site, "Down", "npsSubmitted")
    page = site.client().get(f"/webhooks/{hook.id}", query)
    assert page.status == 200
    assert page.region("status").strip() == ""
    assert "<b>7" not in page.text


def test_each_says_which_time_it_goes_by(site: Site) -> None:
    """
    Needs attention counts a delivery by when it went dead, Redeliver failed by when it was
    created, and each says so: one made 8 days ago that went dead 6 days ago is counted by
    the one and not sent by the other, and neither page claims otherwise.
    """
    hook = _enabled(site, "Slow death", "npsSubmitted")
    site.dispatcher.enqueue(sample_event("npsSubmitted", unique_id="u-1"))
    site.clock.advance(timedelta(days=2))
    site.dispatcher.drain(timeout=5)  # 503: dead, two days after it was made
    site.clock.advance(timedelta(days=6))
    (dead,) = site.dispatcher.deliveries(ADMIN, status="dead", limit=10)
    now = site.clock()
    assert dead.created_at == now - timedelta(days=8)
    assert dead.finished_at == now - timedelta(days=6)
    client = site.client()
    (item,) = _items(_section(client.get("/")))
    assert item.endswith(" 1 delivery went dead in the last 7 days")
    page = client.get(f"/webhooks/{hook.id}")
    assert "every failed and dead delivery created in the last 7 days" in _text(page.text)
    response = client.post(f"/webhooks/{hook.id}/redeliver-failed")
    assert response.headers["Location"].endswith("count=0")
    assert "no failed or dead deliveries created in the last 7 days" in (
        _status_after(client, response)
    )
    assert site.dispatcher.deliveries(ADMIN, limit=10)[0].status.value == "dead"


def test_redeliver_failed_on_a_disabled_webhook_is_refused(site: Site) -> None:
    """
    A worker cancels a disabled webhook's deliveries: 409 with the reason in an alert, and
    nothing is queued; the hint says so beforehand. Enabled again, it redelivers.
    """
    hook = _enabled(site, "Down", "npsSubmitted")
    dead = _send(site, "npsSubmitted", "u-1")  # 503: dead
    site.registry.disable(ADMIN, hook.id)
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}")
    assert "once the webhook is enabled: a disabled webhook's deliveries are cancelled" in (
        _text(page.text)
    )
    page = client.post(f"/webhooks/{hook.id}/redeliver-failed")
    assert page.status == 409
    assert page.region("alert").strip() == (
        "Nothing redelivered: this webhook is disabled, and a disabled webhook's deliveries "
        "are cancelled. Enable it first, then redeliver."
    )
    assert page.text.count('role="alert"') == 1
    assert site.dispatcher.deliveries(ADMIN, limit=10)[0].status.value == "dead"
    site.registry.enable(ADMIN, hook.id)
    assert "once the webhook is enabled" not in client.get(f"/webhooks/{hook.id}").text
    response = client.post(f"/webhooks/{hook.id}/redeliver-failed")
    assert "1 failed or dead delivery queued" in _status_after(client, response)
    assert site.dispatcher.deliveries(ADMIN, limit=10)[0].id == dead
    assert site.dispatcher.deliveries(ADMIN, limit=10)[0].status.value == "pending"


def test_redeliver_failed_of_an_unknown_webhook_is_404(site: Site) -> None:
    """
    No such webhook: 404, nothing redelivered.
    """
    page = site.client().post("/webhooks/wh_unknown/redeliver-failed")
    assert page.status == 404


# -- the webhook page: a reason for Disable -----------------------------------------------------


def test_disable_takes_an_optional_reason_shown_as_text(site: Site) -> None:
    """
    A labelled text input next to Disable; its text (trimmed) becomes the disabled reason.
    """
    hook = _enabled(site, "Receiver", "npsSubmitted")
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}")
    assert _labels(page.text)["disable-reason"] == "Reason (optional)"
    assert re.search(
        r'<form method="post" action="/webhooks/[^"]+/disable" class="disable">'
        r'<input type="hidden" name="csrf_token" value="[^"]+">'
        r'<label for="disable-reason">Reason \(optional\)</label> '
        r'<input type="text" id="disable-reason" name="reason" maxlength="500" '
        r'autocomplete="off"> '
        r'<button type="submit">Disable</button></form>',
        page.text,
    )
    response = client.post(f"/webhooks/{hook.id}/disable", {"reason": "  Moved <b>away</b> "})
    assert "Disabled." in _status_after(client, response)
    changed = site.registry.get(ADMIN, hook.id)
    assert not changed.enabled
    assert changed.disabled_reason == "Moved <b>away</b>"
    assert changed.disabled_by == ADMIN.id
    page = client.get(f"/webhooks/{hook.id}")
    assert "Disabled reason Moved <b>away</b> (by admin-1)" in _text(page.text)
    assert "Moved &lt;b&gt;away&lt;/b&gt;" in page.text
    assert "Needs attention" not in client.get("/").text  # an admin's own doing


@pytest.mark.parametrize("fields", [{}, {"reason": ""}, {"reason": "   "}])
def test_disable_without_a_reason_keeps_none(site: Site, fields: dict[str, str]) -> None:
    """
    No reason, or a blank one: disabled, without a reason.
    """
    hook = _enabled(site, "Receiver", "npsSubmitted")
    assert site.client().post(f"/webhooks/{hook.id}/disable", fields).status == 303
    changed = site.registry.get(ADMIN, hook.id)
    assert not changed.enabled
    assert changed.disabled_reason is None


@pytest.mark.parametrize(
    ("reason", "says"),
    [("x" * 501, "at most 500"), ("abc\u202edef", "U+202E")],
    ids=["too-long", "invisible"],
)
def test_a_refused_reason_says_why_and_changes_nothing(site: Site, reason: str, says: str) -> None:
    """
    The registry's refusal, in an alert, with a 400; the webhook stays enabled.
    """
    hook = _enabled(site, "Receiver", "npsSubmitted")
    page = site.client().post(f"/webhooks/{hook.id}/disable", {"reason": reason})
    assert page.status == 400
    alert = page.region("alert")
    assert alert.strip().startswith("Not disabled: the reason")
    assert says in alert
    assert site.registry.get(ADMIN, hook.id).enabled


# -- who may, and CSRF --------------------------------------------------------------------------


@pytest.mark.parametrize("who", [None, USER], ids=["nobody", "not-an-admin"])
def test_the_new_actions_are_403_for_anyone_but_an_admin(site: Site, who: Actor | None) -> None:
    """
    Redeliver failed and Disable with a reason: 403, nothing changed, nothing shown.
    """
    hook = _enabled(site, "Secret project", "npsSubmitted")
    dead = _send(site, "npsSubmitted", "u-1")
    client = site.client(who)
    token = site.portal._tokens.issue(who.id) if who else None
    for path, fields in (
        (f"/webhooks/{hook.id}/redeliver-failed", {}),
        (f"/webhooks/{hook.id}/disable", {"reason": "because"}),
    ):
        page = client.post(path, fields, token=token)
        assert page.status == 403
        assert "Secret project" not in page.text
    page = client.get(f"/webhooks/{hook.id}", "status=dead")
    assert page.status == 403
    assert dead not in page.text
    assert site.registry.get(ADMIN, hook.id).enabled
    assert site.dispatcher.deliveries(ADMIN, status="dead", limit=10)[0].id == dead


def test_a_reader_sees_the_section_but_may_not_redeliver_or_disable() -> None:
    """
    The registry's policy decides, as for the single Redeliver: read and update.
    """
    site = _site(InMemoryStorage(), [503], policy=_ReadOnly())
    hook = _enabled(site, "Down", "npsSubmitted")
    dead = _send(site, "npsSubmitted", "u-1")
    reader = site.client(Actor("reader", roles={"webhooks:read"}))
    assert "1 delivery went dead in the last 7 days" in _text(_section(reader.get("/")))
    assert reader.get(f"/webhooks/{hook.id}", "status=dead").status == 200
    assert reader.post(f"/webhooks/{hook.id}/redeliver-failed").status == 403
    assert reader.post(f"/webhooks/{hook.id}/disable", {"reason": "x"}).status == 403
    assert site.dispatcher.deliveries(ADMIN, status="dead", limit=10)[0].id == dead
    assert site.registry.get(ADMIN, hook.id).enabled


@pytest.mark.parametrize("token", [None, "", "garbage"])
def test_the_new_forms_need_their_csrf_token(site: Site, token: str | None) -> None:
    """
    Without a valid token: 403, and the deliveries and the webhook stay as they were.
    """
    hook = _enabled(site, "Down", "npsSubmitted")
    dead = _send(site, "npsSubmitted", "u-1")
    client = site.client()
    for path, fields in (
        (f"/webhooks/{hook.id}/redeliver-failed", {}),
        (f"/webhooks/{hook.id}/disable", {"reason": "because"}),
    ):
        page = client.post(path, fields, token=token)
        assert page.status == 403
        assert "CSRF token missing or invalid" in page.text
    assert site.dispatcher.deliveries(ADMIN, status="dead", limit=10)[0].id == dead
    assert site.registry.get(ADMIN, hook.id).enabled


# -- operations webhooks from the create form ---------------------------------------------------


def test_the_create_form_offers_operations_alerts_in_their_own_fieldset(site: Site) -> None:
    """
    A fieldset "Operations alerts" after Events, one labelled box per operations event.
    """
    page = site.client().get("/new")
    labels = _labels(page.text)
    assert labels["ops-delivery-exhausted"] == "A delivery went dead"
    assert labels["ops-webhook-disabled"] == "A webhook was disabled"
    assert labels["ops-webhook-recovered"] == "A webhook recovered"
    assert "<legend>Operations alerts</legend>" in page.text
    assert page.text.index("<legend>Events</legend>") < page.text.index(
        "<legend>Operations alerts</legend>"
    )
    assert '<fieldset id="operations" aria-describedby="operations-hint">' in page.text
    assert "For URL webhooks only" in _text(page.text)
    values = re.findall(r'id="ops-[^"]+" name="categories" value="([^"]+)"', page.text)
    assert values == [
        "pendo_webhooks.delivery.exhausted",
        "pendo_webhooks.webhook.disabled",
        "pendo_webhooks.webhook.recovered",
    ]
    edit = site.client().get(
        f"/webhooks/{_enabled(site, 'Events', 'npsSubmitted').id}/edit"
    )  # editing cannot turn one kind into the other
    assert "Operations alerts" not in edit.text


def test_creating_an_operations_webhook(site: Site) -> None:
    """
    Ticking only operations alerts makes an operations webhook, its secret shown once.
    """
    form = _create_form(
        name="Pager <b>duty</b>",
        categories=["pendo_webhooks.delivery.exhausted", "pendo_webhooks.webhook.disabled"],
    )
    page = site.client().post("/new", form)
    assert page.status == 200
    assert "<h1>Webhook created</h1>" in page.text
    (hook,) = site.registry.list(ADMIN)
    assert hook.is_operations
    assert {str(c) for c in hook.categories} == set(form["categories"])
    assert hook.secret is not None
    assert hook.secret.reveal() in page.text
    assert "Pager &lt;b&gt;duty&lt;/b&gt;" in page.text
    assert "(operations alerts)" in site.client().get("/").text


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            {"categories": ["npsSubmitted", "pendo_webhooks.webhook.recovered"]},
            "Operations alerts: cannot mix Pendo events and operations events",
        ),
        (
            {
                "kind": "segment",
                "url": "",
                "write_key": "wk-123",
                "categories": ["pendo_webhooks.webhook.recovered"],
            },
            "Operations alerts: operations events go to URL webhooks only, not to Segment",
        ),
    ],
    ids=["mixed", "segment"],
)
def test_the_registry_refuses_what_an_operations_webhook_cannot_be(
    site: Site, overrides: dict[str, Any], says: str
) -> None:
    """
    Its error in an alert, attached to the Operations alerts fieldset; the boxes stay ticked.
    """
    page = site.client().post("/new", _create_form(**overrides))
    assert page.status == 400
    assert page.region("alert").strip().startswith(says)
    assert (
        '<fieldset id="operations" aria-describedby="operations-hint form-error" '
        'aria-invalid="true">'
    ) in page.text
    assert re.search(
        r'id="ops-webhook-recovered" name="categories" '
        r'value="pendo_webhooks.webhook.recovered" checked>',
        page.text,
    )
    assert site.registry.list(ADMIN) == []


def test_an_events_error_still_names_the_events(site: Site) -> None:
    """
    Without operations boxes ticked, an error on the categories is the Events fieldset's.
    """
    page = site.client().post("/new", _create_form(categories=[]))
    assert page.status == 400
    assert page.region("alert").strip().startswith("Events:")
    assert '<fieldset id="events" aria-describedby="form-error" aria-invalid="true">' in (
        page.text
    )
