"""
The values nested in events (App, Subscription, guide details, survey answers), and the
validator that ties model checks to the wire parser.

Strictly private; import the names from :mod:`pendo_webhooks.events`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Literal

import attrs

from ..exceptions import ValidationError
from . import _checks as checks


__all__ = [
    "ID",
    "INT64",
    "TEXT",
    "UTC",
    "App",
    "FieldCheck",
    "GuideProperties",
    "GuideStep",
    "GuideUser",
    "NpsResponse",
    "PollResponse",
    "Subscription",
    "instance_of",
]


@attrs.frozen
class FieldCheck:
    """
    An attrs validator running one of the shared checks with the field's path.

    The path is the class's ``_PATH`` prefix plus the attribute name. The wire parser runs
    the same ``check`` on wire values, so both sides accept exactly the same values.
    """

    check: Callable[[Any, str], object]

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        # The path is only spelled for an error: every event and observation runs this
        # for each of its fields, and a check is pure, so it runs again to name the field.
        try:
            self.check(value, attribute.name)
        except ValidationError:
            self.check(value, getattr(instance, "_PATH", "") + attribute.name)
            raise


def instance_of(cls: type, article: str = "a") -> FieldCheck:
    def check(value: Any, field: str) -> object:
        if not isinstance(value, cls):
            raise ValidationError(
                field, f"must be {article} {cls.__name__}, not {type(value).__name__}"
            )
        return value

    return FieldCheck(check)


def _steps(value: Any, field: str) -> object:
    if not isinstance(value, tuple):
        raise ValidationError(field, f"must be a tuple of GuideStep, not {type(value).__name__}")
    for i, step in enumerate(value):
        if not isinstance(step, GuideStep):
            raise ValidationError(
                f"{field}[{i}]", f"must be a GuideStep, not {type(step).__name__}"
            )
    return value


TEXT = FieldCheck(checks.text)
ID = FieldCheck(checks.identifier)
INT64 = FieldCheck(checks.int64)
UTC = FieldCheck(checks.aware_utc)


# Nested values. Each one, checked on its own, names a field by the place it usually has in
# an event ("nps.rating"); GuideUser and GuideStep, which sit in several places or in a
# list, use their own name ("guide_user.username", "guide_step.reset_at").


@attrs.frozen(kw_only=True)
class App:
    """
    The Pendo application an event happened in.

    Attributes:
        id: Pendo's app id (web apps use ``-323232``); fits a signed 64-bit integer.
        name: The app's name.
        platform: ``"web"`` for Pendo web apps.

    >>> App(id=-323232, name="test_application", platform="web").platform
    'web'
    """

    _PATH: ClassVar[str] = "app."

    id: int = attrs.field(validator=INT64)
    name: str = attrs.field(validator=TEXT)
    platform: str = attrs.field(validator=TEXT)


@attrs.frozen(kw_only=True)
class Subscription:
    """
    The Pendo subscription (customer) the app belongs to.

    Attributes:
        id: A 64-bit integer id.
        name: The subscription's name.

    >>> Subscription(id=4802463602049999, name="test_application").id
    4802463602049999
    """

    _PATH: ClassVar[str] = "subscription."

    id: int = attrs.field(validator=INT64)
    name: str = attrs.field(validator=TEXT)


@attrs.frozen(kw_only=True)
class GuideUser:
    """
    The Pendo user who created or last changed a guide.

    >>> GuideUser(username="pendo-user@example.com").username
    'pendo-user@example.com'
    """

    _PATH: ClassVar[str] = "guide_user."

    username: str = attrs.field(validator=TEXT)


@attrs.frozen(kw_only=True)
class GuideStep:
    """
    One step of a guide.

    Attributes:
        id: The step id (non-empty).
        last_updated_at: When the step was last changed (millisecond precision).
        reset_at: When the step was last reset; Pendo sends the epoch for "never".
        type: The step type, such as ``"building-block"``; Pendo may send ``""``.

    >>> from datetime import datetime, timezone
    >>> step = GuideStep(
    ...     id="UgG7AtWEXNuvHBBcTqSQ8NxGvAU",
    ...     last_updated_at=datetime(2021, 4, 13, 13, 57, 31, 476999, tzinfo=timezone.utc),
    ...     reset_at=datetime(1970, 1, 1, tzinfo=timezone.utc),
    ...     type="",
    ... )
    >>> step.last_updated_at.microsecond  # truncated to the millisecond
    476000
    """

    _PATH: ClassVar[str] = "guide_step."

    id: str = attrs.field(validator=ID)
    last_updated_at: datetime = attrs.field(converter=checks.to_utc_millis, validator=UTC)
    reset_at: datetime = attrs.field(converter=checks.to_utc_millis, validator=UTC)
    type: str = attrs.field(validator=TEXT)


@attrs.frozen(kw_only=True)
class GuideProperties:
    """
    The guide behind a guide, NPS or poll event.

    Attributes:
        created_at: When the guide was created (millisecond precision).
        created_by_user: Who created it.
        id: The guide id (non-empty).
        last_updated_at: When it was last changed (millisecond precision).
        last_updated_by_user: Who last changed it.
        name: The guide's name.
        steps: Its steps, in order; a list is accepted and stored as a tuple.

    >>> from pendo_webhooks.testing import sample_event
    >>> sample_event("guideDisplayed").guide_properties.name
    'Poll 1 - Test'
    """

    _PATH: ClassVar[str] = "guide_properties."

    created_at: datetime = attrs.field(converter=checks.to_utc_millis, validator=UTC)
    created_by_user: GuideUser = attrs.field(validator=instance_of(GuideUser))
    id: str = attrs.field(validator=ID)
    last_updated_at: datetime = attrs.field(converter=checks.to_utc_millis, validator=UTC)
    last_updated_by_user: GuideUser = attrs.field(validator=instance_of(GuideUser))
    name: str = attrs.field(validator=TEXT)
    steps: tuple[GuideStep, ...] = attrs.field(
        converter=checks.tuple_from_list, validator=FieldCheck(_steps)
    )


@attrs.frozen(kw_only=True)
class NpsResponse:
    """
    A visitor's answer to an NPS survey.

    Attributes:
        rating: 0 to 10 (an ``int``; ``True`` is not accepted).
        reason: The free-text reason, possibly ``""``.
        source: ``"web"`` or ``"email"``.

    >>> NpsResponse(rating=11, reason="", source="web")
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: nps.rating: must be between 0 and 10
    """

    _PATH: ClassVar[str] = "nps."

    rating: int = attrs.field(validator=FieldCheck(checks.nps_rating))
    reason: str = attrs.field(validator=TEXT)
    source: Literal["web", "email"] = attrs.field(validator=FieldCheck(checks.nps_source))


@attrs.frozen(kw_only=True)
class PollResponse:
    """
    A visitor's answer to a poll.

    Attributes:
        id: The poll id (non-empty).
        question: The question asked.
        response: A string, a number, or a tuple of strings for a multiple choice (a list
            is accepted and stored as a tuple).

    >>> PollResponse(id="p1", question="Which?", response=["a", "b"]).response
    ('a', 'b')
    """

    _PATH: ClassVar[str] = "poll."

    id: str = attrs.field(validator=ID)
    question: str = attrs.field(validator=TEXT)
    response: str | int | float | tuple[str, ...] = attrs.field(
        converter=checks.tuple_from_list, validator=FieldCheck(checks.poll_response)
    )


for _cls in (App, Subscription, GuideUser, GuideStep, GuideProperties, NpsResponse, PollResponse):
    # Real types instead of the strings `from __future__ import annotations` leaves; the
    # wire parser picks each field's hook from them.
    attrs.resolve_types(_cls)
