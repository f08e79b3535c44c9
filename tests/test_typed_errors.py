"""
Every error a caller sees is ours: a public value built with a wrong-typed argument raises a
PendoWebhooksError naming the field, never a bare TypeError or AttributeError from inside.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from pendo_webhooks import Secret
from pendo_webhooks.events import AgentVersion, App, Subscription
from pendo_webhooks.exceptions import InvalidType, PendoWebhooksError
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.pipeline import Exclusion, ExclusionRule, Observation
from pendo_webhooks.registry import Actor, AuditEntry, RetiredSecret, Webhook
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.storage import AuditQuery
from pendo_webhooks.testing import Reply, sample_events
from pendo_webhooks.transports import OutgoingRequest, TransportResponse


T = datetime(2026, 1, 1, tzinfo=timezone.utc)


class _Wrong:
    """A value no field accepts: not text, a number, a mapping, an iterable or a datetime."""

    def __repr__(self) -> str:
        return "<wrong>"


WRONG = _Wrong()

#: (name, constructor, a valid set of keyword arguments naming every field worth checking).
VALUES: list[tuple[str, Callable[..., object], dict[str, Any]]] = [
    ("Actor", Actor, {"id": "u-1", "is_admin": True, "roles": {"webhooks:read"}}),
    (
        "Observation",
        Observation,
        {
            "visitor_id": "ann@acme.com",
            "account_id": "acme",
            "parent_account_id": "acme-group",
            "app": App(id=-323232, name="web", platform="web"),
            "subscription": Subscription(id=1, name="prod"),
            "user_agent": "Mozilla/5.0",
            "browser_name": "Chrome",
            "browser_version": "91.0",
            "sample_group": 7,
            "at": T,
            "source_ip": "203.0.113.7",
            "agent_version": "2.150.0",
        },
    ),
    ("ExclusionRule", ExclusionRule, {"kind": "visitor", "pattern": "*@acme.com"}),
    (
        "Exclusion",
        Exclusion,
        {
            "id": "exc_1",
            "rule": ExclusionRule("ip", "10.0.0.0/8"),
            "created_at": T,
            "created_by": "u-1",
        },
    ),
    (
        "RetryPolicy",
        RetryPolicy,
        {"max_retries": 2, "schedule": [10, 60], "jitter": 0.1, "max_retry_after": 30},
    ),
    (
        "DestinationPolicy",
        DestinationPolicy,
        {"allow_networks": ["10.0.0.0/8"], "allow_http": True, "allowed_ports": {443}},
    ),
    (
        "Webhook",
        Webhook,
        {
            "id": "wh_1",
            "name": "NPS",
            "kind": "url",
            "url": "https://hooks.example.com/in",
            "secret": "s3cret",
            "previous_secrets": (RetiredSecret(secret="old", expires_at=T),),
            "categories": {"npsSubmitted"},
            "enabled": False,
            "signature_scheme": "both",
            "signature_header": "X-Pendo-Signature",
            "headers": {"X-Team": "growth"},
            "created_at": T,
            "created_by": "u-1",
            "updated_at": T,
            "updated_by": "u-1",
            "disabled_reason": None,
            "disabled_by": None,
            "version": 1,
        },
    ),
    ("RetiredSecret", RetiredSecret, {"secret": "old", "expires_at": T}),
    (
        "AuditEntry",
        AuditEntry,
        {
            "id": "aud_1",
            "at": T,
            "actor_id": "u-1",
            "action": "update",
            "webhook_id": "wh_1",
            "changes": {"name": ("a", "b")},
        },
    ),
    (
        "AuditQuery",
        AuditQuery,
        {
            "webhook_id": "wh_1",
            "actor_id": "u-1",
            "action": "create",
            "since": T,
            "until": T + timedelta(days=1),
            "limit": 5,
        },
    ),
    ("AgentVersion", AgentVersion, {"major": 2, "minor": 150, "patch": 0}),
    ("Reply", Reply, {"status": 200, "headers": {"X-A": "1"}, "body": b"ok"}),
    (
        "OutgoingRequest",
        OutgoingRequest,
        {"method": "POST", "url": "https://e.example/", "headers": {"X-A": "1"}, "body": b"{}"},
    ),
    ("TransportResponse", TransportResponse, {"status": 200, "headers": {}, "body": b""}),
]
for _event in sample_events():
    _cls = type(_event)
    VALUES.append(
        (_cls.__name__, _cls, {a.name: getattr(_event, a.name) for a in attrs.fields(_cls)})
    )
# The values nested in events, taken from the samples so they stay valid.
_NESTED: dict[type, object] = {}
for _event in sample_events():
    for _a in attrs.fields(type(_event)):
        _value = getattr(_event, _a.name)
        if attrs.has(type(_value)):
            _NESTED.setdefault(type(_value), _value)
            for _b in attrs.fields(type(_value)):
                _inner = getattr(_value, _b.name)
                for _item in _inner if isinstance(_inner, tuple) else (_inner,):
                    if attrs.has(type(_item)):
                        _NESTED.setdefault(type(_item), _item)
for _cls, _value in _NESTED.items():
    VALUES.append(
        (_cls.__name__, _cls, {a.name: getattr(_value, a.name) for a in attrs.fields(_cls)})
    )

CASES = [
    pytest.param(make, kwargs, field, id=f"{name}.{field}")
    for name, make, kwargs in VALUES
    for field in kwargs
]


def test_the_list_covers_the_public_values() -> None:
    """
    Every event type and every value nested in one is in the list, so a new one is not missed.
    """
    names = {name for name, _, _ in VALUES}
    assert {type(e).__name__ for e in sample_events()} <= names
    assert {"App", "Subscription", "GuideProperties", "GuideStep", "GuideUser"} <= names
    assert {"NpsResponse", "PollResponse"} <= names


@pytest.mark.parametrize(("make", "kwargs"), [(m, k) for _, m, k in VALUES])
def test_the_valid_arguments_are_valid(
    make: Callable[..., object], kwargs: dict[str, Any]
) -> None:
    """
    The baseline builds, so each failure below is the wrong-typed field's doing.
    """
    make(**kwargs)


@pytest.mark.parametrize(("make", "kwargs", "field"), CASES)
def test_a_wrong_typed_field_is_our_error_naming_it(
    make: Callable[..., object], kwargs: dict[str, Any], field: str
) -> None:
    """
    A value of a type no field takes raises a PendoWebhooksError whose message names the field.
    """
    with pytest.raises(PendoWebhooksError) as info:
        make(**{**kwargs, field: WRONG})
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: Actor("u-1", is_admin=v), "is_admin"),
        (lambda v: Actor("u-1", roles=v), "roles"),
        (Actor, "actor.id"),
        (Secret, "secret"),
        (lambda v: Exclusion(id="e", rule=v, created_at=T, created_by="u"), "rule"),
        (lambda v: TransportResponse(status=200, headers=v), "headers"),
        (lambda v: AuditQuery(webhook_id=v), "webhook_id"),
        (lambda v: AuditEntry(id=v, at=T, actor_id="a", action="x", webhook_id="w"), "id"),
    ],
)
@pytest.mark.parametrize("value", [1, 2.5, b"x", WRONG], ids=["int", "float", "bytes", "object"])
def test_type_errors_stay_type_errors(
    make: Callable[[Any], object], field: str, value: Any
) -> None:
    """
    Where the old error was a TypeError, the new one is InvalidType: a ValidationError naming
    the field and also a TypeError, so ``except TypeError`` callers keep working.
    """
    with pytest.raises(InvalidType) as info:
        make(value)
    assert isinstance(info.value, TypeError)
    assert info.value.field == field


def test_actor_is_admin_from_the_issue() -> None:
    """
    The issue's example: Actor(id, is_admin="yes") is a PendoWebhooksError and a TypeError.
    """
    with pytest.raises(InvalidType) as info:
        Actor("u-1", is_admin="yes")  # type: ignore[arg-type]
    assert isinstance(info.value, PendoWebhooksError)
    assert isinstance(info.value, TypeError)
    assert str(info.value) == "is_admin: must be True or False, not str"


def test_allowed_ports_of_unhashable_items_are_a_configuration_error() -> None:
    """
    Ports given as lists (unhashable) are our error naming the argument, not a TypeError.
    """
    with pytest.raises(PendoWebhooksError, match="allowed_ports: must hold port numbers"):
        DestinationPolicy(allowed_ports=[[443]])  # type: ignore[list-item]


def test_roles_must_be_a_collection_of_names() -> None:
    """
    A single string is not a set of roles (it would become one role per letter).
    """
    with pytest.raises(InvalidType, match="roles: must be a collection of role names, not str"):
        Actor("u-1", roles="admin")  # type: ignore[arg-type]
    with pytest.raises(InvalidType, match="roles: role names must be text, not int"):
        Actor("u-1", roles={1})  # type: ignore[arg-type]
    assert Actor("u-1", roles=["a", "b"]).roles == frozenset({"a", "b"})
