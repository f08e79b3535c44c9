"""The Secret type: redacted reprs, whsec_ decoding, validation, generation, pickling."""

from __future__ import annotations

import base64
import copy
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pendo_webhooks.signing._secret as secret_module
from pendo_webhooks import Secret as PackageSecret
from pendo_webhooks.exceptions import InvalidType, ValidationError
from pendo_webhooks.signing import Secret


REDACTED = "Secret('<redacted>')"
TEXT = "s3cr3t-with-special-chars!&?<>"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# Any text that is not blank, up to the maximum length.
_any_texts = st.text(min_size=1, max_size=secret_module.MAX_SECRET_LENGTH).filter(
    lambda t: not t.isspace()
)
_texts = _any_texts.filter(lambda t: not t.startswith("whsec_"))


def test_one_secret_type_everywhere() -> None:
    """
    pendo_webhooks.Secret and pendo_webhooks.signing.Secret are the same class.
    """
    assert PackageSecret is Secret


@given(text=_any_texts)
def test_repr_and_str_never_show_the_value(text: str) -> None:
    """
    For any secret text, repr, str and format give the same fixed placeholder.
    """
    secret = Secret(text)
    assert repr(secret) == REDACTED
    assert str(secret) == REDACTED
    assert f"{secret}" == REDACTED
    assert f"{secret!r}" == REDACTED


def test_value_does_not_leak_through_containers() -> None:
    """
    A secret inside a list or dict is still redacted in that container's repr.
    """
    secret = Secret(TEXT)
    assert TEXT not in repr([secret])
    assert TEXT not in repr({"secret": secret})
    assert secret.reveal() == TEXT


@given(text=_texts)
def test_plain_text_keys_are_its_utf8(text: str) -> None:
    """
    A secret without the whsec_ prefix uses its UTF-8 bytes as both HMAC keys.
    """
    secret = Secret(text)
    assert secret.pendo_key == text.encode("utf-8")
    assert secret.standard_key == text.encode("utf-8")


@given(raw=st.binary(min_size=1, max_size=64))
def test_whsec_secret_decodes_for_standard_webhooks(raw: bytes) -> None:
    """
    whsec_<base64> uses the decoded bytes for Standard Webhooks and the whole text for Pendo.
    """
    text = "whsec_" + base64.b64encode(raw).decode("ascii")
    secret = Secret(text)
    assert secret.standard_key == raw
    assert secret.pendo_key == text.encode("ascii")


def test_spec_secret_decodes_to_24_bytes() -> None:
    """
    The spec's example secret decodes to its 24 bytes.
    """
    assert Secret(WHSEC).standard_key == base64.b64decode(WHSEC[6:])
    assert len(Secret(WHSEC).standard_key) == 24


def test_prefix_is_case_sensitive() -> None:
    """
    WHSEC_ (upper case) is not the prefix: such a secret is plain text.
    """
    secret = Secret("WHSEC_not base64 at all")
    assert secret.standard_key == b"WHSEC_not base64 at all"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "whsec_",
        "whsec_@@@@",
        "whsec_Y",
        "whsec_YW Jj",
        "whsec_YWJj\n",
        "whsec_====",
        "\ud800",
        "ok\udfffok",
        " ",
        "\t \n\u3000\u2003",
        "x" * 1025,
        "é" * 1025,
        b"bytes",
        None,
        5,
    ],
)
def test_invalid_secrets_are_refused(value: Any) -> None:
    """
    Empty, non-text, lone-surrogate and badly encoded whsec_ secrets raise ValidationError
    naming 'secret', without echoing the value.
    """
    with pytest.raises(ValidationError) as info:
        Secret(value)
    assert info.value.field == "secret"
    if isinstance(value, str) and len(value) > 6:
        assert value[6:] not in str(info.value)


@pytest.mark.parametrize("value", [b"bytes", None, 5])
def test_a_secret_of_the_wrong_type_is_also_a_type_error(value: Any) -> None:
    """
    A non-text secret raises InvalidType: a ValidationError that is also a TypeError.
    """
    with pytest.raises(InvalidType) as info:
        Secret(value)
    assert isinstance(info.value, TypeError)
    assert info.value.field == "secret"


@given(blank=st.text(alphabet=st.sampled_from(" \t\r\n\x0b\x0c\u00a0\u2003\u3000"), min_size=1))
def test_whitespace_only_secrets_are_refused(blank: str) -> None:
    """
    Text made only of whitespace is refused, and the message does not contain it.
    """
    with pytest.raises(ValidationError) as info:
        Secret(blank)
    assert info.value.field == "secret"
    assert info.value.reason == "must not be only whitespace"


def test_spaces_around_a_real_secret_are_part_of_it() -> None:
    """
    Any text is a secret: leading and trailing spaces around other characters are kept.
    """
    assert Secret("  s3cr3t ").reveal() == "  s3cr3t "
    assert Secret("  s3cr3t ") != Secret("s3cr3t")


def test_the_maximum_length_is_inclusive_and_in_characters() -> None:
    """
    1,024 characters are allowed, even when UTF-8 needs more bytes; 1,025 are not, and the
    message gives the limit, never the text.
    """
    limit = secret_module.MAX_SECRET_LENGTH
    assert limit == 1024
    assert len(Secret("ü" * limit).pendo_key) == 2 * limit
    with pytest.raises(ValidationError) as info:
        Secret("k" * (limit + 1))
    assert str(info.value) == "secret: must be at most 1024 characters, not 1025"


def test_error_does_not_echo_a_bad_whsec_secret() -> None:
    """
    The message for a malformed whsec_ secret does not contain its text.
    """
    with pytest.raises(ValidationError) as info:
        Secret("whsec_topsecret-value!")
    assert "topsecret" not in str(info.value)
    assert "topsecret" not in repr(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_generate_10000_distinct_32_byte_keys() -> None:
    """
    10,000 generated secrets are all distinct whsec_ secrets of exactly 32 decoded bytes.
    """
    drawn = [Secret.generate() for _ in range(10_000)]
    assert len({s.standard_key for s in drawn}) == 10_000
    for secret in drawn:
        assert secret.reveal().startswith("whsec_")
        assert len(secret.standard_key) == 32
        assert Secret(secret.reveal()) == secret


@pytest.mark.parametrize("nbytes", [24, 32, 64])
def test_generate_sizes_within_the_spec(nbytes: int) -> None:
    """
    generate() accepts 24 to 64 bytes, the spec's range.
    """
    assert len(Secret.generate(nbytes).standard_key) == nbytes


@pytest.mark.parametrize("nbytes", [0, 23, 65])
def test_generate_sizes_outside_the_spec(nbytes: int) -> None:
    """
    generate() refuses fewer than 24 or more than 64 bytes, naming nbytes.
    """
    with pytest.raises(ValidationError) as info:
        Secret.generate(nbytes)
    assert info.value.field == "nbytes"


def test_generate_draws_from_the_secrets_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    The random bytes come from secrets.token_bytes (the OS CSPRNG), not from random.
    """
    monkeypatch.setattr(secret_module._secrets, "token_bytes", lambda n: b"\x01" * n)
    assert Secret.generate().standard_key == b"\x01" * 32


@pytest.mark.parametrize("text", [TEXT, WHSEC, "é ✓ 🙂"])
def test_pickle_and_copy_round_trip(text: str) -> None:
    """
    A secret survives pickling, copy and deepcopy with the same text and keys.
    """
    secret = Secret(text)
    for clone in (pickle.loads(pickle.dumps(secret)), copy.copy(secret), copy.deepcopy(secret)):
        assert type(clone) is Secret
        assert clone == secret
        assert clone.reveal() == text
        assert clone.pendo_key == secret.pendo_key
        assert clone.standard_key == secret.standard_key


def test_equality_and_hash() -> None:
    """
    Secrets are equal when their text is; they hash alike and never equal a plain str.
    """
    assert Secret(TEXT) == Secret(TEXT)
    assert hash(Secret(TEXT)) == hash(Secret(TEXT))
    assert Secret(TEXT) != Secret(TEXT + "x")
    assert Secret(TEXT) != TEXT
    assert Secret(TEXT).__eq__(TEXT) is NotImplemented
    assert len({Secret(TEXT), Secret(TEXT), Secret(WHSEC)}) == 2


def test_secret_has_no_instance_dict() -> None:
    """
    Secret uses __slots__: no stray attributes can be attached (and logged) on it.
    """
    secret = Secret(TEXT)
    with pytest.raises(AttributeError):
        secret.label = "x"  # type: ignore[attr-defined]
    assert not hasattr(secret, "__dict__")


def test_unpadded_whsec_secret_decodes_like_the_padded_one() -> None:
    """
    A ``whsec_`` secret written without base64 padding gives the same key as the padded spelling.
    """
    assert Secret("whsec_YWJ").standard_key == Secret("whsec_YWJ=").standard_key == b"ab"
