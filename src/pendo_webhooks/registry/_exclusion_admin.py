"""
The registry's exclusion-list calls: permission-checked, and audited like webhook changes.

The audit entries use actions ``"exclusion_add"`` and ``"exclusion_remove"``; their
``webhook_id`` holds the exclusion's id (``"exc_..."``) and their changes are the rule's
``kind`` and ``pattern``.

Strictly private; the public methods are on :class:`~pendo_webhooks.registry.WebhookRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._clock import Clock
from ..exceptions import ConflictError
from ..model._audit import AuditEntry, AuditValue
from ..model._exclusions import Exclusion, ExclusionKind, ExclusionRule
from ..storage import Storage
from ._policy import Actor, PermissionPolicy


__all__ = ["ADD_ACTION", "REMOVE_ACTION", "add_exclusion", "list_exclusions", "remove_exclusion"]

#: The permission action and audit action of adding an exclusion.
ADD_ACTION = "exclusion_add"
#: The permission action and audit action of removing an exclusion.
REMOVE_ACTION = "exclusion_remove"


class _Registry(Protocol):
    # The parts of WebhookRegistry these calls use (read-only attributes).
    @property
    def storage(self) -> Storage: ...
    @property
    def policy(self) -> PermissionPolicy: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def ids(self) -> Callable[[str], str]: ...


def _entry(
    registry: _Registry, actor: Actor, action: str, exclusion: Exclusion, *, added: bool
) -> AuditEntry:
    values: dict[str, AuditValue] = {
        "kind": exclusion.rule.kind.value,
        "pattern": exclusion.rule.pattern,
    }
    return AuditEntry(
        id=registry.ids("aud"),
        at=registry.clock(),
        actor_id=actor.id,
        action=action,
        webhook_id=exclusion.id,
        changes={k: (None, v) if added else (v, None) for k, v in values.items()},
    )


def _find(registry: _Registry, rule: ExclusionRule) -> Exclusion | None:
    for existing in registry.storage.list_exclusions():
        if existing.rule == rule:
            return existing
    return None


def add_exclusion(
    registry: _Registry, actor: Actor, kind: ExclusionKind | str, pattern: str
) -> Exclusion:
    """
    Add a rule to the exclusion list and return it; a rule already there is returned as is.
    """
    registry.policy.check(actor, ADD_ACTION, None)
    rule = ExclusionRule(kind, pattern)
    existing = _find(registry, rule)
    if existing is not None:
        return existing
    exclusion = Exclusion(
        id=registry.ids("exc"), rule=rule, created_at=registry.clock(), created_by=actor.id
    )
    entry = _entry(registry, actor, ADD_ACTION, exclusion, added=True)
    try:
        registry.storage.insert_exclusion(exclusion, audit=entry)
    except ConflictError:
        # Another admin added the same rule in between: theirs is the one on the list.
        existing = _find(registry, rule)
        if existing is None:
            raise
        return existing
    return exclusion


def remove_exclusion(registry: _Registry, actor: Actor, exclusion_id: str) -> None:
    """
    Remove a rule from the exclusion list.
    """
    registry.policy.check(actor, REMOVE_ACTION, exclusion_id)
    exclusion = registry.storage.get_exclusion(exclusion_id)
    entry = _entry(registry, actor, REMOVE_ACTION, exclusion, added=False)
    registry.storage.delete_exclusion(exclusion_id, audit=entry)


def list_exclusions(registry: _Registry, actor: Actor) -> list[Exclusion]:
    """
    Return the exclusion list, oldest first.
    """
    registry.policy.check(actor, "read", None)
    return list(registry.storage.list_exclusions())
