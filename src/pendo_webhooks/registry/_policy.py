"""
Who may do what to webhooks: :class:`Actor`, :class:`PermissionPolicy`, :class:`AdminOnly`.

Strictly private; import these names from :mod:`pendo_webhooks.registry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import attrs

from ..exceptions import InvalidType, PermissionDenied, ValidationError
from ..model._webhook import check_trimmed_text, refuse_invisible


__all__ = ["ACTIONS", "SYSTEM_ACTOR_ID", "Actor", "AdminOnly", "PermissionPolicy"]

#: The actor id the audit log shows for changes the library makes on its own (a 410 disabling a
#: webhook). No :class:`Actor` may use it, so the audit trail cannot be forged.
SYSTEM_ACTOR_ID = "system"

#: Every action a :class:`PermissionPolicy` is asked about ("test" is the dispatcher's test send).
ACTIONS = frozenset(
    {
        "create",
        "update",
        "enable",
        "disable",
        "delete",
        "rotate_secret",
        "read",
        "test",
        "exclusion_add",
        "exclusion_remove",
    },
)

_MAX_ID_LENGTH = 200


def _check_actor_id(_: object, __: attrs.Attribute[str], value: str) -> None:
    refuse_invisible("actor.id", check_trimmed_text("actor.id", value, max_length=_MAX_ID_LENGTH))
    if value == SYSTEM_ACTOR_ID:
        msg = f"{SYSTEM_ACTOR_ID!r} is reserved for changes the library makes itself"
        raise ValidationError("actor.id", msg)


def _check_is_admin(_: object, __: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        msg = f"must be True or False, not {type(value).__name__}"
        raise InvalidType("is_admin", msg)


def _to_roles(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"must be a collection of role names, not {type(value).__name__}"
        raise InvalidType("roles", msg)
    roles = frozenset(value)
    for role in roles:
        if not isinstance(role, str):
            msg = f"role names must be text, not {type(role).__name__}"
            raise InvalidType("roles", msg)
    return roles


@attrs.frozen
class Actor:
    """
    The person (or service account) on whose behalf a registry call is made.

    The host application builds one per request from its own session; the
    registry records :attr:`id` in the audit log and asks its
    :class:`PermissionPolicy` whether the actor may act.

    Attributes:
        id: The host's stable user id: 1 to 200 characters without control
            characters or surrounding whitespace, and not ``"system"``
            (reserved for the library).
        is_admin: Whether the host considers this user an administrator.
        roles: Free-form role names (text) for custom policies; the default
            policy ignores them.

    Raises:
        ValidationError: Naming the field, for a bad :attr:`id`.
        InvalidType: Naming the field, for a value of the wrong type (it is
            also a ``TypeError``).

    >>> Actor("u-1", is_admin=True)
    Actor(id='u-1', is_admin=True, roles=frozenset())
    >>> Actor("u-2", roles={"webhooks:read"}).roles
    frozenset({'webhooks:read'})
    """

    id: str = attrs.field(validator=_check_actor_id)
    is_admin: bool = attrs.field(default=False, validator=_check_is_admin)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_to_roles)


class PermissionPolicy(Protocol):
    """
    **Protocol**: Decides whether an :class:`Actor` may perform an action.

    The registry calls :meth:`check` first thing in every admin call, before it
    reads or writes storage. *action* is one of :data:`ACTIONS`; *webhook_id*
    is the webhook acted on, or ``None`` for ``create``, ``list`` and an
    unfiltered ``audit``.

    A host with its own roles plugs in a policy like this one:

    >>> from pendo_webhooks.exceptions import PermissionDenied
    >>> class RolePolicy:
    ...     def check(self, actor, action, webhook_id):
    ...         needed = "webhooks:read" if action == "read" else "webhooks:write"
    ...         if needed not in actor.roles:
    ...             raise PermissionDenied(f"{actor.id} lacks {needed}")
    >>> RolePolicy().check(Actor("u-3", roles={"webhooks:read"}), "read", None)
    >>> RolePolicy().check(Actor("u-3", roles={"webhooks:read"}), "delete", "wh_1")
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.PermissionDenied: u-3 lacks webhooks:write
    """

    def check(self, actor: Actor, action: str, webhook_id: str | None) -> None:
        """
        Return if *actor* may perform *action*; raise :class:`PermissionDenied` otherwise.
        """


@attrs.frozen
class AdminOnly:
    """
    The default policy: administrators may do everything, everyone else nothing.

    >>> AdminOnly().check(Actor("u-1", is_admin=True), "create", None)
    >>> AdminOnly().check(Actor("u-2"), "read", None)
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.PermissionDenied: actor 'u-2' may not read webhooks: admins only
    """

    def check(self, actor: Actor, action: str, webhook_id: str | None) -> None:  # noqa: ARG002
        """
        Raise :class:`PermissionDenied` unless *actor* is an administrator (whatever the webhook).
        """
        if not actor.is_admin:
            msg = f"actor {actor.id!r} may not {action} webhooks: admins only"
            raise PermissionDenied(msg)
