"""AgentVersion: parsing, semantic-versioning order, and the survey minimum."""

from __future__ import annotations

import itertools
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks.events import MIN_SURVEY_AGENT_VERSION, AgentVersion
from pendo_webhooks.exceptions import InvalidVersion, ValidationError


def v(text: str) -> AgentVersion:
    return AgentVersion.parse(text)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("2.33.0", (2, 33, 0, ())),
        ("2.100.1", (2, 100, 1, ())),
        ("0.0.0", (0, 0, 0, ())),
        ("2.33.0-beta.1", (2, 33, 0, ("beta", 1))),
        ("2.33.0-rc.0", (2, 33, 0, ("rc", 0))),
        ("2.33.0-0a.x-y", (2, 33, 0, ("0a", "x-y"))),
        ("2.227.0_prod", (2, 227, 0, ())),
        ("2.276.1_prod-io", (2, 276, 1, ())),
        ("1.0.0-alpha+001", (1, 0, 0, ("alpha",))),
    ],
)
def test_parse_reads_each_part(text: str, parts: tuple[object, ...]) -> None:
    """
    ``parse`` reads major, minor, patch and the pre-release identifiers, numbers as ints.
    """
    version = v(text)
    assert (version.major, version.minor, version.patch, version.prerelease) == parts


@pytest.mark.parametrize(
    "text", ["2.33.0", "2.33.0-beta.1", "2.227.0_prod", "1.0.0-alpha+001", "2.276.1_prod-io"]
)
def test_str_gives_back_the_text(text: str) -> None:
    """
    ``str`` of a parsed version is the text it was parsed from.
    """
    assert str(v(text)) == text


def test_numeric_parts_compare_as_numbers() -> None:
    """
    2.100.1 is newer than 2.33.0 and 2.9.0 (no string comparison).
    """
    assert v("2.100.1") > v("2.33.0") > v("2.9.0")
    assert v("10.0.0") > v("9.99.99")
    assert v("2.33.10") > v("2.33.9")


def test_semver_spec_precedence_example() -> None:
    """
    The precedence example from semver.org section 11 sorts in the order the spec gives.
    """
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1-0",
        "1.0.1",
    ]
    versions = [v(t) for t in ordered]
    assert sorted(versions[1::2] + versions[::2]) == versions
    for older, newer in itertools.pairwise(versions):
        assert older < newer
        assert not newer <= older


def test_prerelease_sorts_before_its_release() -> None:
    """
    A pre-release of 2.33.0 is older than 2.33.0 but newer than 2.32.x.
    """
    assert v("2.33.0-beta.1") < v("2.33.0")
    assert v("2.33.0-beta.1") > v("2.32.99")


def test_label_is_kept_but_ignored_when_comparing() -> None:
    """
    ``_prod`` and ``+build`` labels show in ``str`` but not in equality, order or hash.
    """
    assert v("2.227.0_prod") == v("2.227.0") == v("2.227.0+build.5")
    assert hash(v("2.227.0_prod")) == hash(v("2.227.0"))
    assert not v("2.227.0_prod") < v("2.227.0")
    assert v("2.227.0_prod").label == "_prod"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2",
        "2.33",
        "2.33.0.1",
        "v2.33.0",
        " 2.33.0",
        "2.33.0 ",
        "02.33.0",
        "2.033.0",
        "2.33.00",
        "2.33.0-",
        "2.33.0-beta..1",
        "2.33.0-beta.01",
        "2.33.0_",
        "2.33.0+",
        "2.33.0-béta",
        "2.33.x",
        "1" * 70 + ".0.0",
        "\uff12.33.0",  # a full-width digit two
        "2.33.0\n",
    ],
)
def test_garbage_raises_invalid_version(text: str) -> None:
    """
    Anything but MAJOR.MINOR.PATCH[-pre][label] raises InvalidVersion naming the field.
    """
    with pytest.raises(InvalidVersion) as info:
        AgentVersion.parse(text, field="agent_version")
    assert info.value.field == "agent_version"
    assert isinstance(info.value, ValidationError)


@pytest.mark.parametrize("value", [None, 2, 2.33, b"2.33.0"])
def test_non_text_raises_invalid_version(value: object) -> None:
    """
    A value that is not a string raises InvalidVersion, not TypeError.
    """
    with pytest.raises(InvalidVersion, match="must be a string"):
        AgentVersion.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"major": -1, "minor": 0, "patch": 0}, "major"),
        ({"major": True, "minor": 0, "patch": 0}, "major"),
        ({"major": 1, "minor": "2", "patch": 0}, "minor"),
        ({"major": 1, "minor": 2, "patch": 1.0}, "patch"),
        ({"major": 1, "minor": 2, "patch": 3, "prerelease": ["a"]}, "prerelease"),
        ({"major": 1, "minor": 2, "patch": 3, "prerelease": ("a.b",)}, "prerelease"),
        ({"major": 1, "minor": 2, "patch": 3, "prerelease": ("12",)}, "prerelease"),
        ({"major": 1, "minor": 2, "patch": 3, "prerelease": (-1,)}, "prerelease"),
        ({"major": 1, "minor": 2, "patch": 3, "label": "prod"}, "label"),
        ({"major": 1, "minor": 2, "patch": 3, "label": None}, "label"),
    ],
)
def test_constructor_checks_its_fields(kwargs: dict[str, object], field: str) -> None:
    """
    Building an AgentVersion directly checks each part like ``parse`` does.
    """
    with pytest.raises(InvalidVersion) as info:
        AgentVersion(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_constructor_accepts_good_parts() -> None:
    """
    Direct construction with valid parts equals the parsed version.
    """
    built = AgentVersion(major=2, minor=33, patch=0, prerelease=("beta", 1), label="+b")
    assert built == v("2.33.0-beta.1")
    assert str(built) == "2.33.0-beta.1+b"


def test_minimum_survey_version() -> None:
    """
    NPS and poll events need agent 2.33.0 or later; its pre-releases are older.
    """
    assert v("2.33.0") == MIN_SURVEY_AGENT_VERSION
    assert v("2.33.1") >= MIN_SURVEY_AGENT_VERSION
    assert v("2.32.9") < MIN_SURVEY_AGENT_VERSION
    assert v("2.33.0-rc.1") < MIN_SURVEY_AGENT_VERSION


def test_pickles() -> None:
    """
    A version survives pickling, label included.
    """
    version = v("2.33.0-beta.1_prod")
    clone = pickle.loads(pickle.dumps(version))
    assert clone == version
    assert str(clone) == "2.33.0-beta.1_prod"


_NUMBERS = st.integers(0, 10**6)
_PRE = st.lists(
    st.one_of(
        _NUMBERS, st.from_regex(r"[0-9A-Za-z-]{0,3}[A-Za-z-][0-9A-Za-z-]{0,3}", fullmatch=True)
    ),
    max_size=3,
).map(tuple)


@given(_NUMBERS, _NUMBERS, _NUMBERS, _PRE)
def test_str_then_parse_is_identity(major: int, minor: int, patch: int, pre: tuple) -> None:  # type: ignore[type-arg]
    """
    For any valid parts, ``parse(str(version))`` gives the same version back.
    """
    version = AgentVersion(major=major, minor=minor, patch=patch, prerelease=pre)
    assert AgentVersion.parse(str(version)) == version


@given(st.tuples(_NUMBERS, _NUMBERS, _NUMBERS), st.tuples(_NUMBERS, _NUMBERS, _NUMBERS))
def test_release_order_is_numeric_tuple_order(
    a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    """
    Releases compare exactly like their (major, minor, patch) tuples.
    """
    va = v("{}.{}.{}".format(*a))
    vb = v("{}.{}.{}".format(*b))
    assert (va < vb) == (a < b)
    assert (va == vb) == (a == b)
