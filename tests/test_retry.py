"""RetryPolicy: which outcomes retry, how long to wait, and how Retry-After bends the wait."""

from __future__ import annotations

import math
import pickle
import random
import statistics
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks.exceptions import ConfigurationError, ValidationError
from pendo_webhooks.retry import (
    NO_RETRIES,
    Decision,
    RetryPolicy,
    Verdict,
    parse_retry_after,
)


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
SCHEDULE = (
    timedelta(seconds=30),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=8),
)
CAP = timedelta(hours=1)


def no_jitter(low: float, high: float) -> float:
    """Return the midpoint of the jitter range: a factor of exactly 1."""
    return (low + high) / 2


def base(n: int, schedule: tuple[timedelta, ...] = SCHEDULE) -> timedelta:
    """The un-jittered wait before retry *n*, the last entry repeating."""
    return schedule[min(n, len(schedule)) - 1]


def delay_of(decision: Decision) -> timedelta:
    """How long after NOW the decision schedules the next attempt."""
    assert decision.next_attempt_at is not None
    return decision.next_attempt_at - NOW


# --- classification ----------------------------------------------------------------------------

STATUS_TABLE = [
    (200, Verdict.DELIVERED, False),
    (204, Verdict.DELIVERED, False),
    (299, Verdict.DELIVERED, False),
    (301, Verdict.FAILED, False),
    (302, Verdict.FAILED, False),
    (307, Verdict.FAILED, False),
    (308, Verdict.FAILED, False),
    (400, Verdict.FAILED, False),
    (401, Verdict.FAILED, False),
    (404, Verdict.FAILED, False),
    (408, Verdict.FAILED, False),
    (410, Verdict.FAILED, True),
    (422, Verdict.FAILED, False),
    (429, Verdict.RETRY, False),
    (500, Verdict.RETRY, False),
    (502, Verdict.RETRY, False),
    (503, Verdict.RETRY, False),
    (504, Verdict.RETRY, False),
    (599, Verdict.RETRY, False),
    (100, Verdict.FAILED, False),
    (199, Verdict.FAILED, False),
    (600, Verdict.FAILED, False),
    (0, Verdict.FAILED, False),
    (-1, Verdict.FAILED, False),
]

KIND_TABLE = [
    ("timeout", Verdict.RETRY),
    ("connect", Verdict.RETRY),
    ("dns", Verdict.RETRY),
    ("tls", Verdict.RETRY),
    ("error", Verdict.RETRY),
    ("blocked", Verdict.FAILED),
    ("too-large", Verdict.FAILED),
]


@pytest.mark.parametrize(("status", "verdict", "disable"), STATUS_TABLE)
def test_status_table(status: int, verdict: Verdict, disable: bool) -> None:
    """
    Each HTTP status gets WIRE.md's verdict, and only 410 disables the webhook.
    """
    policy = RetryPolicy()

    decision = policy.decide(attempt=1, status=status, now=NOW, rng=no_jitter)

    assert verdict is policy.classify(status=status, error_kind=None)
    assert verdict is decision.verdict
    assert disable is decision.disable_webhook
    assert (decision.next_attempt_at is not None) is (verdict is Verdict.RETRY)


@pytest.mark.parametrize(("kind", "verdict"), KIND_TABLE)
def test_error_kind_table(kind: str, verdict: Verdict) -> None:
    """
    Transient transport errors retry; a blocked destination or an oversized payload fail at once.
    """
    policy = RetryPolicy()

    decision = policy.decide(attempt=1, error_kind=kind, now=NOW, rng=no_jitter)

    assert verdict is policy.classify(status=None, error_kind=kind)
    assert verdict is decision.verdict
    assert decision.disable_webhook is False


def test_classify_never_dead() -> None:
    """
    classify() ignores the attempt count, so it never answers DEAD.
    """
    policy = RetryPolicy()
    verdicts = {policy.classify(status=s, error_kind=None) for s in range(-5, 1000)}
    verdicts |= {policy.classify(status=None, error_kind=k) for k, _ in KIND_TABLE}

    assert {Verdict.DELIVERED, Verdict.RETRY, Verdict.FAILED} == verdicts


@pytest.mark.parametrize(
    ("status", "kind"), [(None, None), (500, "timeout")], ids=["neither", "both"]
)
def test_classify_needs_exactly_one_outcome(status: int | None, kind: str | None) -> None:
    """
    An outcome is either a status or a transport error kind, not neither nor both.
    """
    with pytest.raises(ValidationError) as ei:
        RetryPolicy().classify(status=status, error_kind=kind)

    assert ei.value.field == "status"


def test_classify_rejects_unknown_kind() -> None:
    """
    An error kind TransportError never uses is a bug in the caller, reported by field.
    """
    with pytest.raises(ValidationError) as ei:
        RetryPolicy().classify(status=None, error_kind="reset")

    assert ei.value.field == "error_kind"
    assert "'reset'" in str(ei.value)


@pytest.mark.parametrize("status", [True, "500", 500.0])
def test_classify_rejects_non_int_status(status: object) -> None:
    """
    A status that is not an int (a bool, a string, a float) is refused by field.
    """
    with pytest.raises(ValidationError) as ei:
        RetryPolicy().classify(status=status, error_kind=None)  # type: ignore[arg-type]

    assert ei.value.field == "status"


# --- attempts and dead letters -----------------------------------------------------------------


def test_six_500s_retry_five_times_then_dead() -> None:
    """
    Attempts 1..5 ending in 500 are retried after the scheduled waits; attempt 6 is dead.
    """
    policy = RetryPolicy()

    decisions = [policy.decide(attempt=n, status=500, now=NOW, rng=no_jitter) for n in range(1, 7)]

    assert [d.verdict for d in decisions] == [Verdict.RETRY] * 5 + [Verdict.DEAD]
    assert list(SCHEDULE) == [delay_of(d) for d in decisions[:5]]
    assert decisions[5].next_attempt_at is None
    assert decisions[5].reason == "HTTP 500, gave up after 6 attempts"


def test_no_retries_is_dead_at_once() -> None:
    """
    NO_RETRIES turns the first transient failure into a dead letter but still delivers 2xx.
    """
    assert NO_RETRIES.max_retries == 0
    assert Verdict.DEAD is NO_RETRIES.decide(attempt=1, error_kind="timeout", now=NOW).verdict
    assert Verdict.DELIVERED is NO_RETRIES.decide(attempt=1, status=200, now=NOW).verdict


def test_final_outcomes_stay_final_on_any_attempt() -> None:
    """
    A final outcome is FAILED, not DEAD, even after the retries are used up.
    """
    decision = RetryPolicy().decide(attempt=9, status=404, now=NOW)

    assert Verdict.FAILED is decision.verdict


def test_short_schedule_repeats_last_entry() -> None:
    """
    With more retries than schedule entries, the last entry repeats.
    """
    policy = RetryPolicy(max_retries=4, schedule=[1, 7], jitter=0)

    waits = [policy.wait(n) for n in range(1, 5)]
    decisions = [policy.decide(attempt=n, status=503, now=NOW) for n in range(1, 6)]

    assert [timedelta(seconds=s) for s in (1, 7, 7, 7)] == waits
    assert [d.verdict for d in decisions] == [Verdict.RETRY] * 4 + [Verdict.DEAD]


def test_long_schedule_is_cut_by_max_retries() -> None:
    """
    Entries past max_retries are never used: the retry after them is dead.
    """
    policy = RetryPolicy(max_retries=2)

    assert Verdict.RETRY is policy.decide(attempt=2, status=502, now=NOW).verdict
    assert Verdict.DEAD is policy.decide(attempt=3, status=502, now=NOW).verdict


# --- reasons -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"attempt": 1, "status": 200}, "HTTP 200"),
        ({"attempt": 1, "status": 404}, "HTTP 404, not retried"),
        ({"attempt": 1, "status": 410}, "HTTP 410 Gone, webhook disabled"),
        ({"attempt": 1, "error_kind": "blocked"}, "blocked, not retried"),
        ({"attempt": 1, "error_kind": "timeout"}, "timeout, retry 1 of 5 in 31s"),
        ({"attempt": 2, "status": 503}, "HTTP 503, retry 2 of 5 in 5m10s"),
        ({"attempt": 4, "status": 500}, "HTTP 500, retry 4 of 5 in 2h04m"),
        (
            {"attempt": 1, "status": 429, "retry_after": "7200"},
            "HTTP 429, retry 1 of 5 in 1h00m (Retry-After)",
        ),
        ({"attempt": 6, "error_kind": "dns"}, "dns, gave up after 6 attempts"),
    ],
)
def test_reasons(kwargs: dict[str, object], reason: str) -> None:
    """
    The reason is short text naming the outcome, the retry number and the wait.
    """
    decision = RetryPolicy().decide(**kwargs, now=NOW, rng=lambda low, high: 1 + 1 / 30)  # type: ignore[arg-type]

    assert reason == decision.reason


def test_reason_never_echoes_retry_after() -> None:
    """
    The untrusted Retry-After text is never copied into the reason.
    """
    decision = RetryPolicy().decide(attempt=1, status=429, retry_after="secret-ish", now=NOW)

    assert "secret-ish" not in decision.reason


# --- backoff and jitter ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_jitter_bounds_and_mean(n: int) -> None:
    """
    10,000 seeded waits before retry n lie in [0.8 b_n, 1.2 b_n] and average b_n within 2 %.
    """
    policy = RetryPolicy()
    rng = random.Random(1234 + n)
    b = base(n)

    samples = [policy.wait(n, rng=rng.uniform) for _ in range(10_000)]

    assert all(b * 0.8 <= s <= b * 1.2 for s in samples)
    mean = statistics.fmean(s.total_seconds() for s in samples)
    assert abs(mean - b.total_seconds()) <= 0.02 * b.total_seconds()
    # Not degenerate: the samples really spread over the range.
    assert min(samples) < b * 0.85
    assert max(samples) > b * 1.15


def _schedule_with_seed(seed: int) -> list[datetime | None]:
    policy = RetryPolicy()
    rng = random.Random(seed)
    return [
        policy.decide(attempt=n, status=503, now=NOW, rng=rng.uniform).next_attempt_at
        for n in range(1, 6)
    ]


def test_seeds_are_deterministic_and_distinct() -> None:
    """
    The same seed gives the same schedule; two different seeds give different ones.
    """
    assert _schedule_with_seed(1) == _schedule_with_seed(1)
    assert _schedule_with_seed(1) != _schedule_with_seed(2)


@pytest.mark.parametrize("seed", range(20))
def test_whole_window_within_max_window(seed: int) -> None:
    """
    The waits of a full run of retries, even stretched by Retry-After, add up to <= max_window.
    """
    policy = RetryPolicy()
    rng = random.Random(seed)
    total = timedelta(0)
    attempt = 1
    while True:
        # Alternate stretched 429s and plain 500s.
        status, hint = (429, "999999") if attempt % 2 else (500, None)
        decision = policy.decide(
            attempt=attempt, status=status, retry_after=hint, now=NOW, rng=rng.uniform
        )
        if decision.verdict is Verdict.DEAD:
            break
        total += delay_of(decision)
        attempt += 1

    assert attempt == 6
    assert total <= policy.max_window


def test_max_window_values() -> None:
    """
    max_window is the sum over retries of the larger of the top jittered wait and the cap.
    """
    no_hints = RetryPolicy(max_retry_after=0)

    assert timedelta(hours=3 + 2.4 + 9.6) == RetryPolicy().max_window
    assert timedelta(seconds=36 + 360 + 2160 + 8640 + 34560) == no_hints.max_window
    assert sum((policy_wait * 1.2 for policy_wait in SCHEDULE), timedelta(0)) == (
        no_hints.max_window
    )
    assert timedelta(0) == NO_RETRIES.max_window


def test_max_window_bounds_plain_waits() -> None:
    """
    Without Retry-After, the top of every wait's jitter range adds up to at most max_window.
    """
    policy = RetryPolicy(max_retries=8, max_retry_after=0, jitter=0.5)

    top = sum((policy.wait(n, rng=lambda lo, hi: hi) for n in range(1, 9)), timedelta(0))

    assert top == policy.max_window


def test_wait_passes_jitter_range_to_rng() -> None:
    """
    The rng is asked for a factor in [1 - jitter, 1 + jitter].
    """
    calls: list[tuple[float, float]] = []

    def rng(low: float, high: float) -> float:
        calls.append((low, high))
        return low

    wait = RetryPolicy(jitter=0.25).wait(3, rng=rng)

    assert calls == [(0.75, 1.25)]
    assert timedelta(seconds=1350) == wait


@pytest.mark.parametrize(
    ("factor", "expected"), [(5.0, 6.0), (-3.0, 4.0), (math.nan, 4.0), (1.1, 5.5)]
)
def test_wait_clamps_rng_output(factor: float, expected: float) -> None:
    """
    A misbehaving rng cannot push a wait outside the jitter range.
    """
    policy = RetryPolicy(schedule=[5])

    assert timedelta(seconds=expected) == policy.wait(1, rng=lambda low, high: factor)


def test_zero_jitter_is_exact() -> None:
    """
    With jitter 0 the default random source still gives the exact schedule.
    """
    policy = RetryPolicy(jitter=0)

    assert list(SCHEDULE) == [policy.wait(n) for n in range(1, 6)]


@pytest.mark.parametrize("n", [0, -1, True, 1.0])
def test_wait_rejects_bad_retry_number(n: object) -> None:
    """
    Retry numbers are ints from 1.
    """
    with pytest.raises(ValidationError) as ei:
        RetryPolicy().wait(n)  # type: ignore[arg-type]

    assert ei.value.field == "retry_number"


# --- Retry-After -------------------------------------------------------------------------------

PAST_DATE = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
AHEAD_30_MIN = format_datetime(NOW + timedelta(minutes=30), usegmt=True)

# header value -> the wait it leads to on a 429/503 at attempt 1 (scheduled 30 s, cap 1 h)
RETRY_AFTER_TABLE = [
    ("120", timedelta(seconds=120)),
    ("0", timedelta(seconds=30)),
    ("-5", timedelta(seconds=30)),
    ("abc", timedelta(seconds=30)),
    ("1e309", timedelta(seconds=30)),
    ("", timedelta(seconds=30)),
    (PAST_DATE, timedelta(seconds=30)),
    (AHEAD_30_MIN, timedelta(minutes=30)),
    ("999999999", CAP),
    ("999999999999999999999", timedelta(seconds=30)),
    ("1.5", timedelta(seconds=30)),
    ("12.5", timedelta(seconds=30)),
    ("NaN", timedelta(seconds=30)),
    ("inf", timedelta(seconds=30)),
]


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER_TABLE)
def test_retry_after_honoured(status: int, value: str, expected: timedelta) -> None:
    """
    On 429/503 the next attempt is >= the schedule, <= the cap, and the hint when in between.
    """
    decision = RetryPolicy().decide(
        attempt=1, status=status, retry_after=value, now=NOW, rng=no_jitter
    )

    delay = delay_of(decision)
    assert delay >= SCHEDULE[0]
    assert delay <= CAP
    assert expected == delay


@pytest.mark.parametrize(("value", "_expected"), RETRY_AFTER_TABLE)
def test_retry_after_ignored_on_500(value: str, _expected: timedelta) -> None:
    """
    On a 500 the Retry-After header has no effect.
    """
    decision = RetryPolicy().decide(
        attempt=1, status=500, retry_after=value, now=NOW, rng=no_jitter
    )

    assert SCHEDULE[0] == delay_of(decision)


def test_retry_after_ignored_on_transport_error() -> None:
    """
    With no response there is no header to honour, whatever the caller passes.
    """
    decision = RetryPolicy().decide(
        attempt=1, error_kind="timeout", retry_after="600", now=NOW, rng=no_jitter
    )

    assert SCHEDULE[0] == delay_of(decision)


def test_retry_after_never_shortens_schedule() -> None:
    """
    A hint shorter than the scheduled wait leaves the scheduled wait.
    """
    decision = RetryPolicy().decide(
        attempt=5, status=429, retry_after="60", now=NOW, rng=no_jitter
    )

    assert timedelta(hours=8) == delay_of(decision)
    assert not decision.reason.endswith("(Retry-After)")


def test_schedule_longer_than_cap_wins() -> None:
    """
    When the schedule itself is longer than the cap, a hint can't push past the schedule.
    """
    policy = RetryPolicy(max_retry_after=timedelta(minutes=10))

    decision = policy.decide(attempt=5, status=503, retry_after="7200", now=NOW, rng=no_jitter)

    assert timedelta(hours=8) == delay_of(decision)


def test_zero_cap_disables_retry_after() -> None:
    """
    max_retry_after=0 makes every hint fall back to the schedule.
    """
    policy = RetryPolicy(max_retry_after=0)

    decision = policy.decide(attempt=1, status=429, retry_after="120", now=NOW, rng=no_jitter)

    assert SCHEDULE[0] == delay_of(decision)


_HTTP_DATES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
).map(lambda d: format_datetime(d, usegmt=True))
_SECONDS = st.integers(min_value=0, max_value=10**25).map(str)


@given(
    value=st.one_of(st.text(), _HTTP_DATES, _SECONDS),
    attempt=st.integers(min_value=1, max_value=5),
    status=st.sampled_from([429, 503, 500]),
    position=st.floats(min_value=0, max_value=1),
)
def test_retry_after_delay_bounds_property(
    value: str, attempt: int, status: int, position: float
) -> None:
    """
    For any header text and attempt, the delay stays within [b_n(1-j), max(cap, b_n(1+j))].
    """
    policy = RetryPolicy()
    b = base(attempt)

    def rng(low: float, high: float) -> float:
        return low + (high - low) * position

    decision = policy.decide(attempt=attempt, status=status, retry_after=value, now=NOW, rng=rng)

    delay = delay_of(decision)
    assert b * 0.8 <= delay <= max(CAP, b * 1.2)
    assert delay >= policy.wait(attempt, rng=rng)


@given(
    max_retries=st.integers(min_value=0, max_value=20),
    schedule=st.lists(
        st.floats(min_value=0.001, max_value=86400 * 30, allow_nan=False), min_size=1, max_size=8
    ),
    jitter=st.floats(min_value=0, max_value=0.99),
    n=st.integers(min_value=1, max_value=30),
    position=st.floats(min_value=0, max_value=1),
)
def test_wait_within_jitter_range_property(
    max_retries: int, schedule: list[float], jitter: float, n: int, position: float
) -> None:
    """
    For any valid policy and retry number, the wait lies in [b_n(1-j), b_n(1+j)].
    """
    policy = RetryPolicy(max_retries=max_retries, schedule=schedule, jitter=jitter)
    b = base(n, policy.schedule)

    wait = policy.wait(n, rng=lambda low, high: low + (high - low) * position)

    assert b * (1 - jitter) <= wait <= b * (1 + jitter)


# --- parse_retry_after -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 120 ", timedelta(seconds=120)),
        ("0", timedelta(0)),
        ("1.5", timedelta(seconds=1.5)),
        ("007", timedelta(seconds=7)),
        ("Wed, 01 Jan 2026 12:30:00 GMT", timedelta(minutes=30)),
        ("Wednesday, 01-Jan-26 12:30:00 GMT", timedelta(minutes=30)),
        ("Wed Jan  1 12:30:00 2026", timedelta(minutes=30)),
        ("Wed, 01 Jan 2026 12:30:00 -0000", timedelta(minutes=30)),
        ("Wed, 01 Jan 2026 13:30:00 +0100", timedelta(minutes=30)),
        ("Wed, 01 Jan 2026 12:00:00 GMT", timedelta(0)),
    ],
)
def test_parse_retry_after_valid(value: str, expected: timedelta) -> None:
    """
    delay-seconds (with a tolerated fraction) and the three HTTP-date forms parse.
    """
    assert expected == parse_retry_after(value, now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "-5",
        "+5",
        "-0",
        "1e3",
        "1e309",
        "inf",
        "nan",
        "1_000",
        "0x10",
        "\u0661\u0662\u0660",  # Arabic-Indic digits: float() would take them
        "12.",
        ".5",
        "12 seconds",
        "999999999999999999999",
        "9" * 400,
        "abc",
        "Wed, 01 Jan 2026 11:59:59 GMT",
        "Wed, 32 Jan 2026 12:00:00 GMT",
        "Wed, 01 Jan 99999 12:00:00 GMT",
        "Wed, 01 Jan 2026 12:00:00 +9999",
    ],
)
def test_parse_retry_after_ignored(value: str) -> None:
    """
    Negative, non-ASCII, non-finite, overflowing, malformed and past values give None.
    """
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_measures_from_any_timezone() -> None:
    """
    An aware *now* in another timezone is the same instant as in UTC.
    """
    local_now = NOW.astimezone(timezone(timedelta(hours=-5)))

    assert timedelta(minutes=30) == parse_retry_after(AHEAD_30_MIN, now=local_now)


def test_parse_retry_after_rejects_non_str() -> None:
    """
    Passing bytes (or anything but str) is a caller bug, reported by field.
    """
    with pytest.raises(ValidationError) as ei:
        parse_retry_after(b"120", now=NOW)  # type: ignore[arg-type]

    assert ei.value.field == "retry_after"


def test_parse_retry_after_rejects_naive_now() -> None:
    """
    A naive *now* can't be compared to an HTTP-date.
    """
    with pytest.raises(ValidationError) as ei:
        parse_retry_after("120", now=NOW.replace(tzinfo=None))

    assert ei.value.field == "now"


# --- decide() argument checks ------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, -1, True, "1"])
def test_decide_rejects_bad_attempt(attempt: object) -> None:
    """
    Attempts are ints from 1.
    """
    with pytest.raises(ValidationError) as ei:
        RetryPolicy().decide(attempt=attempt, status=500, now=NOW)  # type: ignore[arg-type]

    assert ei.value.field == "attempt"


@pytest.mark.parametrize("now", [NOW.replace(tzinfo=None), "2026-01-01T12:00:00Z"])
def test_decide_rejects_naive_or_non_datetime_now(now: object) -> None:
    """
    *now* must be an aware datetime, even when no retry is scheduled.
    """
    with pytest.raises(ValidationError) as ei:
        RetryPolicy().decide(attempt=1, status=200, now=now)  # type: ignore[arg-type]

    assert ei.value.field == "now"


def test_decide_returns_utc() -> None:
    """
    next_attempt_at is in UTC whatever timezone *now* was given in.
    """
    local_now = NOW.astimezone(timezone(timedelta(hours=9)))

    decision = RetryPolicy().decide(attempt=1, status=500, now=local_now, rng=no_jitter)

    assert decision.next_attempt_at == NOW + SCHEDULE[0]
    assert decision.next_attempt_at is not None
    assert timezone.utc is decision.next_attempt_at.tzinfo


def test_decide_at_end_of_time() -> None:
    """
    A retry that would land past datetime.max is reported instead of overflowing.
    """
    end = datetime.max.replace(tzinfo=timezone.utc) - timedelta(seconds=1)

    with pytest.raises(ValidationError) as ei:
        RetryPolicy().decide(attempt=1, status=500, now=end)

    assert ei.value.field == "now"


# --- construction ------------------------------------------------------------------------------


def test_defaults() -> None:
    """
    The defaults are WIRE.md's: 5 retries, 5 s..30 min, +-20 %, Retry-After capped at 1 h.
    """
    policy = RetryPolicy()

    assert policy.max_retries == 5
    assert policy.schedule == SCHEDULE
    assert policy.jitter == 0.2
    assert policy.max_retry_after == CAP


def test_numbers_become_timedeltas() -> None:
    """
    Seconds as ints or floats are accepted wherever a duration is.
    """
    policy = RetryPolicy(schedule=(1, 2.5, timedelta(minutes=1)), max_retry_after=90)

    assert (
        timedelta(seconds=1),
        timedelta(seconds=2.5),
        timedelta(minutes=1),
    ) == policy.schedule
    assert timedelta(seconds=90) == policy.max_retry_after


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 21}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"max_retries": 2.0}, "max_retries"),
        ({"max_retries": "5"}, "max_retries"),
        ({"schedule": ()}, "schedule"),
        ({"schedule": [0]}, "schedule"),
        ({"schedule": [5, -1]}, "schedule"),
        ({"schedule": [timedelta(0)]}, "schedule"),
        ({"schedule": [math.nan]}, "schedule"),
        ({"schedule": [math.inf]}, "schedule"),
        ({"schedule": [1e30]}, "schedule"),
        ({"schedule": [timedelta(days=366)]}, "schedule"),
        ({"schedule": [True]}, "schedule"),
        ({"schedule": ["5"]}, "schedule"),
        ({"schedule": "5"}, "schedule"),
        ({"schedule": 5}, "schedule"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 1}, "jitter"),
        ({"jitter": math.nan}, "jitter"),
        ({"jitter": True}, "jitter"),
        ({"jitter": "0.2"}, "jitter"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"max_retry_after": timedelta(seconds=-1)}, "max_retry_after"),
        ({"max_retry_after": math.inf}, "max_retry_after"),
        ({"max_retry_after": timedelta(days=400)}, "max_retry_after"),
        ({"max_retry_after": None}, "max_retry_after"),
    ],
)
def test_bad_configuration(kwargs: dict[str, object], field: str) -> None:
    """
    Out-of-range or mistyped fields raise ConfigurationError naming the field.
    """
    with pytest.raises(ConfigurationError) as ei:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]

    assert str(ei.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": 0},
        {"max_retries": 20},
        {"jitter": 0},
        {"jitter": 0.999},
        {"max_retry_after": 0},
        {"schedule": [timedelta(days=365)], "max_retry_after": timedelta(days=365)},
        {"schedule": [0.000001]},
    ],
)
def test_edge_configuration_accepted(kwargs: dict[str, object]) -> None:
    """
    The ends of every range are accepted.
    """
    policy = RetryPolicy(**kwargs)  # type: ignore[arg-type]

    assert policy.max_window >= timedelta(0)


def test_policy_is_an_immutable_value() -> None:
    """
    Policies are frozen, compare and hash by value, pickle, and re-validate on evolve.
    """
    policy = RetryPolicy(schedule=[1, 2])

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_retries = 3  # type: ignore[misc]
    assert policy == RetryPolicy(schedule=(timedelta(seconds=1), timedelta(seconds=2)))
    assert hash(policy) == hash(RetryPolicy(schedule=[1, 2]))
    assert policy == pickle.loads(pickle.dumps(policy))
    assert attrs.evolve(policy, max_retries=2).max_retries == 2
    with pytest.raises(ConfigurationError):
        attrs.evolve(policy, jitter=2)


def test_repr_is_useful() -> None:
    """
    The repr shows every setting, for tracebacks and logs.
    """
    text = repr(RetryPolicy(max_retries=1, schedule=[3]))

    assert text.startswith("RetryPolicy(max_retries=1, schedule=(datetime.timedelta(seconds=3),)")
    assert "jitter=0.2" in text


# --- Decision and Verdict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"verdict": Verdict.RETRY, "next_attempt_at": None}, "next_attempt_at"),
        ({"verdict": Verdict.FAILED, "next_attempt_at": NOW}, "next_attempt_at"),
        ({"verdict": Verdict.DEAD, "next_attempt_at": NOW}, "next_attempt_at"),
        (
            {"verdict": Verdict.DELIVERED, "next_attempt_at": None, "disable_webhook": True},
            "disable_webhook",
        ),
        ({"verdict": "retry", "next_attempt_at": NOW}, "verdict"),
    ],
)
def test_decision_invariants(kwargs: dict[str, object], field: str) -> None:
    """
    A Decision can't carry a next attempt without a retry, or disable without a failure.
    """
    with pytest.raises(ConfigurationError) as ei:
        Decision(**kwargs, reason="x")  # type: ignore[arg-type]

    assert str(ei.value).startswith(f"{field}: ")


def test_decision_is_frozen_and_comparable() -> None:
    """
    Decisions are values: equal by content and immutable.
    """
    a = RetryPolicy().decide(attempt=1, status=503, now=NOW, rng=no_jitter)
    b = RetryPolicy().decide(attempt=1, status=503, now=NOW, rng=no_jitter)

    assert a == b
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.reason = "y"  # type: ignore[misc]


def test_verdict_values() -> None:
    """
    Verdicts are strings with stable values, usable as storage states.
    """
    assert [str(v) for v in Verdict] == ["delivered", "retry", "failed", "dead"]
    assert isinstance(Verdict.DEAD, str)
    assert Verdict("dead") is Verdict.DEAD


def test_short_waits_are_described_to_a_tenth_of_a_second() -> None:
    """
    A sub-10-second wait reads "in 0.3s", not "in 0s".
    """
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    policy = RetryPolicy(schedule=[0.3], jitter=0)
    assert policy.decide(attempt=1, status=503, now=now).reason == "HTTP 503, retry 1 of 5 in 0.3s"
