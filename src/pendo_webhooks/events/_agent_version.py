"""
:class:`AgentVersion`: the version of the Pendo agent (Web SDK) that reported an event.

Strictly private; import the names from :mod:`pendo_webhooks.events`.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from ..exceptions import InvalidVersion


__all__ = ["MIN_SURVEY_AGENT_VERSION", "AgentVersion"]

# MAJOR.MINOR.PATCH, an optional semver pre-release, then an optional label: semver build
# metadata ("+build.5") or the channel suffix Pendo's agent puts on ``pendo.VERSION``
# ("_prod", "_prod-io"). Numeric parts have no leading zeros, as semver says.
_NUM = r"0|[1-9][0-9]*"
_IDENT = r"[0-9A-Za-z-]+"
_VERSION_RE = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?P<label>[+_]{_IDENT}(?:\.{_IDENT})*)?",
    re.ASCII,
)
_IDENT_RE = re.compile(r"[0-9A-Za-z-]*[A-Za-z-][0-9A-Za-z-]*", re.ASCII)
_LABEL_RE = re.compile(rf"[+_]{_IDENT}(?:\.{_IDENT})*", re.ASCII)
_MAX_LENGTH = 64


def _prerelease_key(pre: tuple[int | str, ...]) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    # A release sorts after every pre-release of it; numeric identifiers compare as numbers
    # and before alphanumeric ones; a longer list wins when one is a prefix of the other.
    if not pre:
        return (1, ())
    return (0, tuple((0, p) if isinstance(p, int) else (1, p) for p in pre))


def _number(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not int or value < 0:
        raise InvalidVersion(attribute.name, "must be a non-negative integer")


def _identifiers(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(
        (type(p) is int and p >= 0) or (isinstance(p, str) and _IDENT_RE.fullmatch(p))
        for p in value
    ):
        raise InvalidVersion(
            attribute.name, "must be a tuple of non-negative ints and [0-9A-Za-z-] words"
        )


def _label(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or (value and _LABEL_RE.fullmatch(value) is None):
        raise InvalidVersion(attribute.name, "must be '' or start with '+' or '_'")


@attrs.frozen(kw_only=True, order=True)
class AgentVersion:
    """
    A Pendo agent version, ordered by semantic-versioning precedence.

    Numeric parts compare as numbers (``2.100.1 > 2.33.0``) and a pre-release sorts before
    its release (``2.33.0-beta.1 < 2.33.0``). A trailing label, semver build metadata
    (``+build.7``) or the channel suffix of Pendo's ``pendo.VERSION`` (``_prod``), is kept
    for display but ignored when comparing.

    Attributes:
        major: The first number.
        minor: The second number.
        patch: The third number.
        prerelease: The dot-separated pre-release identifiers; numeric ones as ``int``.
        label: The trailing ``+...`` or ``_...`` text, or ``""``.

    >>> AgentVersion.parse("2.100.1") > AgentVersion.parse("2.33.0")
    True
    >>> AgentVersion.parse("2.33.0-beta.1") < AgentVersion.parse("2.33.0")
    True
    >>> str(AgentVersion.parse("2.227.0_prod"))
    '2.227.0_prod'
    """

    major: int = attrs.field(validator=_number)
    minor: int = attrs.field(validator=_number)
    patch: int = attrs.field(validator=_number)
    prerelease: tuple[int | str, ...] = attrs.field(
        default=(), order=_prerelease_key, validator=_identifiers
    )
    label: str = attrs.field(default="", eq=False, order=False, validator=_label)

    @classmethod
    def parse(cls, text: str, *, field: str = "version") -> AgentVersion:
        """
        Parse a version such as ``"2.33.0"``, ``"2.33.0-beta.1"`` or ``"2.227.0_prod"``.

        Args:
            text: The version text.
            field: The field name to put in an error.

        Raises:
            InvalidVersion: If *text* is not a string or not such a version.

        >>> AgentVersion.parse("2.33.0-rc.2").prerelease
        ('rc', 2)
        >>> AgentVersion.parse("2.33")
        Traceback (most recent call last):
          ...
        pendo_webhooks.exceptions.InvalidVersion: version: must look like '2.33.0'
        """
        if not isinstance(text, str):
            raise InvalidVersion(field, f"must be a string, not {type(text).__name__}")
        match = _VERSION_RE.fullmatch(text) if len(text) <= _MAX_LENGTH else None
        if match is None:
            raise InvalidVersion(field, "must look like '2.33.0'")
        pre = match["pre"]
        prerelease: tuple[int | str, ...] = ()
        if pre is not None:
            parts = pre.split(".")
            for part in parts:
                if part.isdigit() and part != "0" and part.startswith("0"):
                    raise InvalidVersion(
                        field, "numeric pre-release identifiers must not have leading zeros"
                    )
            prerelease = tuple(int(p) if p.isdigit() else p for p in parts)
        return cls(
            major=int(match["major"]),
            minor=int(match["minor"]),
            patch=int(match["patch"]),
            prerelease=prerelease,
            label=match["label"] or "",
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        return text + self.label


#: The oldest agent that reports NPS and poll events; older ones are not delivered.
MIN_SURVEY_AGENT_VERSION = AgentVersion.parse("2.33.0")
