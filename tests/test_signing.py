"""Signing and verification: WIRE.md §3 known answers, interop, rotation, replay, fuzzing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import pickle
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks as reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_webhooks.exceptions import ConfigurationError, SignatureError, ValidationError
from pendo_webhooks.signing import (
    DEFAULT_SIGNATURE_HEADER,
    DEFAULT_TOLERANCE,
    CombinedSigner,
    PendoSigner,
    Secret,
    SignatureScheme,
    Signer,
    StandardSigner,
    UnsignedSigner,
    generate_secret,
    signer_for,
    validate_header_name,
    verify,
    verify_pendo,
    verify_standard,
)


# The Pendo guideDisplayed sample, serialized as WIRE.md §2 says: 917 bytes.
GUIDE_DISPLAYED = (
    b'{"app":{"id":-323232,"name":"test_application","platform":"web"},"accountId":"Webhoo'
    b'k Account","subscription":{"id":4802463602049999,"name":"test_application"},"userAge'
    b'nt":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like'
    b' Gecko) Chrome/91.0.4472.164 Safari/537.36","event":"guideDisplayed","properties":{"'
    b'guideId":"Kg92trd4yOzpDb2inI5eTOdcR0U","guideProperties":{"createdAt":1615411012615,'
    b'"createdByUser":{"username":"pendo-user@example.com"},"id":"Kg92trd4yOzpDb2inI5eTOdc'
    b'R0U","lastUpdatedAt":1618322253073,"lastUpdatedByUser":{"username":"pendo-user@examp'
    b'le.com"},"name":"Poll 1 - Test","steps":[{"id":"UgG7AtWEXNuvHBBcTqSQ8NxGvAU","lastUp'
    b'datedAt":1618322251476,"resetAt":1617633741117,"type":"building-block"}]},"guideStep'
    b'Id":"UgG7AtWEXNuvHBBcTqSQ8NxGvAU","language":"en-US"},"timestamp":1626803876,"visito'
    b'rId":"Webhook Visitor","uniqueId":"f9610795860d89fe29491846fe297bcc922e460b"}'
)
UNIQUE_ID = "f9610795860d89fe29491846fe297bcc922e460b"
KAT_TS = 1626803880
PENDO_SECRET = "s3cr3t-with-special-chars!&?<>"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KAT_PENDO = "fec6901b52720e8fa4977fc73b4c3b331dd5921572c913c1bd41fa9614acb282"
KAT_STANDARD = {
    PENDO_SECRET: "v1,EdToaLZ0I/yXF1GDZK0yTA3ERU+fz1i2HhtT98bmBwQ=",
    WHSEC: "v1,Zau5YYPzPJnKxMbog6dkNvwR4On4S9fSFzurxLEp+ak=",
}
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


def at(ts: float) -> Callable[[], datetime]:
    """A frozen clock at epoch second *ts*."""
    return lambda: datetime.fromtimestamp(ts, timezone.utc)


def standard_headers(
    secrets: list[Secret], body: bytes = b"{}", *, msg_id: str = "msg_1", ts: int = NOW
) -> dict[str, str]:
    return StandardSigner(secrets).sign(body, msg_id=msg_id, timestamp=ts)


def pendo_digest(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


@pytest.fixture(name="secret")
def _secret() -> Secret:
    return Secret(PENDO_SECRET)


# --------------------------------------------------------------------------- known answers


def test_known_answer_body_is_the_wire_md_body() -> None:
    """
    The stored guideDisplayed body is WIRE.md's: 917 bytes with the published SHA-256.
    """
    assert len(GUIDE_DISPLAYED) == 917
    assert (
        hashlib.sha256(GUIDE_DISPLAYED).hexdigest()
        == "7bdd459447ab0e01e83bed0056d94c6f95528a1b1fe1d218b6ffddb1bb9870ff"
    )
    shared = Path(__file__).parent / "data" / "guideDisplayed.json"
    if shared.exists():  # written by the events helper; must hold the same bytes
        assert shared.read_bytes() == GUIDE_DISPLAYED


def test_pendo_known_answer() -> None:
    """
    The Pendo signature of the 917-byte body is WIRE.md's, in X-Pendo-Signature.
    """
    headers = PendoSigner(Secret(PENDO_SECRET)).sign(
        GUIDE_DISPLAYED, msg_id=UNIQUE_ID, timestamp=KAT_TS
    )
    assert headers == {"X-Pendo-Signature": KAT_PENDO}


@pytest.mark.parametrize("text", [PENDO_SECRET, WHSEC])
def test_standard_known_answers(text: str) -> None:
    """
    Both Standard Webhooks signatures of the 917-byte body are WIRE.md's (plain and whsec_).
    """
    headers = StandardSigner([Secret(text)]).sign(
        GUIDE_DISPLAYED, msg_id=UNIQUE_ID, timestamp=KAT_TS
    )
    assert headers == {
        "webhook-id": UNIQUE_ID,
        "webhook-timestamp": str(KAT_TS),
        "webhook-signature": KAT_STANDARD[text],
    }


def test_spec_vector() -> None:
    """
    The Standard Webhooks spec's own test vector signs and verifies.
    """
    headers = StandardSigner([Secret(WHSEC)]).sign(SPEC_BODY, msg_id=SPEC_ID, timestamp=SPEC_TS)
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    verify_standard(SPEC_BODY, headers, WHSEC, clock=at(SPEC_TS))


def test_both_known_answers_in_one_signer() -> None:
    """
    signer_for(BOTH) emits the WIRE.md Pendo and Standard signatures together.
    """
    headers = signer_for(SignatureScheme.BOTH, [Secret(PENDO_SECRET)]).sign(
        GUIDE_DISPLAYED, msg_id=UNIQUE_ID, timestamp=KAT_TS
    )
    assert headers == {
        "webhook-id": UNIQUE_ID,
        "webhook-timestamp": str(KAT_TS),
        "webhook-signature": KAT_STANDARD[PENDO_SECRET],
        "X-Pendo-Signature": KAT_PENDO,
    }
    verify(GUIDE_DISPLAYED, headers, PENDO_SECRET, clock=at(KAT_TS))


# ------------------------------------------------------------------ reference interop


def _reference_clock(ts: int) -> type[datetime]:
    """A datetime class whose now() is *ts*, to stand in for the reference library's."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:  # type: ignore[override]
            return cls.fromtimestamp(ts, tz)

    return Frozen


@pytest.fixture(name="reference_at")
def _reference_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    return lambda ts: monkeypatch.setattr(reference, "datetime", _reference_clock(ts))


def _reference_for(secret: Secret) -> reference.Webhook:
    """The reference verifier as WIRE.md §3 builds it for this kind of secret."""
    text = secret.reveal()
    return reference.Webhook(text if text.startswith("whsec_") else text.encode())


@pytest.mark.parametrize("text", [PENDO_SECRET, WHSEC])
def test_reference_library_verifies_known_answers(
    text: str, reference_at: Callable[[int], None]
) -> None:
    """
    The reference standardwebhooks package accepts the WIRE.md headers for both secrets.
    """
    reference_at(KAT_TS)
    headers = StandardSigner([Secret(text)]).sign(
        GUIDE_DISPLAYED, msg_id=UNIQUE_ID, timestamp=KAT_TS
    )
    assert _reference_for(Secret(text)).verify(GUIDE_DISPLAYED, headers)["event"] == (
        "guideDisplayed"
    )


_ID_ALPHABET = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=".")
_ids = st.text(_ID_ALPHABET, min_size=1, max_size=64)
_timestamps = st.integers(min_value=0, max_value=2**33)
_utf8_bodies = st.text(max_size=2000).map(str.encode)
_secrets = st.one_of(
    st.binary(min_size=1, max_size=64).map(
        lambda raw: Secret("whsec_" + base64.b64encode(raw).decode())
    ),
    st.text(min_size=1, max_size=80)
    .filter(lambda t: not t.startswith("whsec_") and not t.isspace())
    .map(Secret),
)


@settings(max_examples=200)
@given(
    msg_id=_ids,
    ts=_timestamps,
    body=_utf8_bodies,
    secrets=st.lists(_secrets, min_size=1, max_size=3),
)
def test_reference_library_verifies_our_headers(
    msg_id: str, ts: int, body: bytes, secrets: list[Secret]
) -> None:
    """
    For any id without '.', timestamp, body and 1-3 secrets, the reference verifier holding
    any single one of the secrets accepts our headers, and so does ours.
    """
    headers = StandardSigner(secrets).sign(body, msg_id=msg_id, timestamp=ts)
    assert headers["webhook-signature"].count("v1,") == len(secrets)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reference, "datetime", _reference_clock(ts))
        for secret in secrets:
            _reference_for(secret).verify(body, headers, json_parse=False)
            verify_standard(body, headers, secret, clock=at(ts))


@given(body=st.binary(max_size=2000), secret=_secrets, header=st.sampled_from(["X-Sig", "x-a"]))
def test_pendo_scheme_round_trip(body: bytes, secret: Secret, header: str) -> None:
    """
    For any body and secret, the Pendo header is the hex HMAC of the text key and verifies.
    """
    headers = PendoSigner(secret, header=header).sign(body, msg_id="m", timestamp=0)
    assert headers == {header: pendo_digest(secret.reveal().encode(), body)}
    verify_pendo(body, headers, secret, header=header.upper())


# -------------------------------------------------------------------------- signers


def test_pendo_signs_the_body_only(secret: Secret) -> None:
    """
    The Pendo digest depends on the body alone: id and timestamp do not change it.
    """
    signer = PendoSigner(secret)
    first = signer.sign(b"{}", msg_id="a", timestamp=1)
    assert first == signer.sign(b"{}", msg_id="b", timestamp=2)
    assert first != signer.sign(b"{ }", msg_id="a", timestamp=1)


def test_standard_resigns_each_attempt(secret: Secret) -> None:
    """
    A later attempt keeps webhook-id, carries its own timestamp and a new signature.
    """
    signer = StandardSigner([secret])
    first = signer.sign(b"{}", msg_id="msg_1", timestamp=NOW)
    retry = signer.sign(b"{}", msg_id="msg_1", timestamp=NOW + 7200)
    assert retry["webhook-id"] == first["webhook-id"]
    assert retry["webhook-timestamp"] == str(NOW + 7200)
    assert retry["webhook-signature"] != first["webhook-signature"]
    verify_standard(b"{}", retry, secret, clock=at(NOW + 7200))


def test_signers_hand_out_fresh_dicts(secret: Secret) -> None:
    """
    Changing a returned header dict does not change what the next call returns.
    """
    signer = signer_for(SignatureScheme.BOTH, [secret])
    headers = signer.sign(b"{}", msg_id="msg_1", timestamp=NOW)
    headers["webhook-id"] = "tampered"
    assert signer.sign(b"{}", msg_id="msg_1", timestamp=NOW)["webhook-id"] == "msg_1"


def test_rotation_signs_with_every_secret_current_first() -> None:
    """
    With two secrets the header has two v1 entries, current first, each verifying alone.
    """
    new, old = Secret("new-secret-of-some-length"), Secret("old-secret-of-some-length")
    headers = standard_headers([new, old])
    entries = headers["webhook-signature"].split(" ")
    assert entries == [
        standard_headers([new])["webhook-signature"],
        standard_headers([old])["webhook-signature"],
    ]
    for secret in (new, old):
        verify_standard(b"{}", headers, secret, clock=at(NOW))
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_standard(b"{}", headers, "a-third-secret", clock=at(NOW))


def test_bytearray_body_signs_like_bytes(secret: Secret) -> None:
    """
    A bytearray body gives the same headers as the equal bytes.
    """
    signer = signer_for("both", [secret])
    assert signer.sign(bytearray(b"{}"), msg_id="m", timestamp=1) == signer.sign(
        b"{}", msg_id="m", timestamp=1
    )


@pytest.mark.parametrize("msg_id", ["", "a.b", ".", "a b", "a\r\nX-Evil: 1", "é", "a\x00", 5])
@pytest.mark.parametrize("signer_kind", ["standard", "unsigned", "both"])
def test_bad_msg_id_is_a_validation_error(msg_id: Any, signer_kind: str, secret: Secret) -> None:
    """
    An empty id, one with '.', or with anything but visible ASCII is refused, naming msg_id.
    """
    signer: Signer = {
        "standard": StandardSigner([secret]),
        "unsigned": UnsignedSigner(),
        "both": signer_for("both", [secret]),
    }[signer_kind]
    with pytest.raises(ValidationError) as info:
        signer.sign(b"{}", msg_id=msg_id, timestamp=1)
    assert info.value.field == "msg_id"


@pytest.mark.parametrize("timestamp", [-1, True, 1.5, "1", None])
def test_bad_timestamp_is_a_validation_error(timestamp: Any, secret: Secret) -> None:
    """
    The timestamp must be a non-negative int (bool and float are refused).
    """
    with pytest.raises(ValidationError) as info:
        StandardSigner([secret]).sign(b"{}", msg_id="m", timestamp=timestamp)
    assert info.value.field == "timestamp"


@pytest.mark.parametrize("signer_kind", ["pendo", "standard", "unsigned"])
@pytest.mark.parametrize("body", ["{}", None, memoryview(b"{}")])
def test_non_bytes_body_is_a_validation_error(body: Any, signer_kind: str) -> None:
    """
    Signing anything but bytes is refused, naming the body.
    """
    secret = Secret("s")
    signer: Signer = {
        "pendo": PendoSigner(secret),
        "standard": StandardSigner([secret]),
        "unsigned": UnsignedSigner(),
    }[signer_kind]
    with pytest.raises(ValidationError) as info:
        signer.sign(body, msg_id="m", timestamp=1)
    assert info.value.field == "body"


@pytest.mark.parametrize(
    "secrets", [[], "text", Secret("s"), ["text"], [Secret("s"), b"bytes"], {Secret("s")}, None]
)
def test_standard_signer_needs_a_sequence_of_secrets(secrets: Any) -> None:
    """
    StandardSigner refuses no secrets, a bare str/Secret, and non-Secret items.
    """
    with pytest.raises(ConfigurationError, match="secrets"):
        StandardSigner(secrets)


@pytest.mark.parametrize("secret", ["text", b"bytes", None])
def test_pendo_signer_needs_a_secret(secret: Any) -> None:
    """
    PendoSigner refuses anything but a Secret.
    """
    with pytest.raises(ConfigurationError, match="secret"):
        PendoSigner(secret)


def test_pendo_signer_checks_its_header(secret: Secret) -> None:
    """
    PendoSigner refuses a reserved header name, reporting the field 'header'.
    """
    with pytest.raises(ValidationError) as info:
        PendoSigner(secret, header="webhook-signature")
    assert info.value.field == "header"


def test_unsigned_signer_sends_id_and_timestamp_only() -> None:
    """
    Without a secret only webhook-id and webhook-timestamp are sent.
    """
    assert UnsignedSigner().sign(b"{}", msg_id="m", timestamp=7) == {
        "webhook-id": "m",
        "webhook-timestamp": "7",
    }


def test_combined_signer_merges_in_order(secret: Secret) -> None:
    """
    CombinedSigner returns every signer's headers; a later signer wins a clash.
    """
    signer = CombinedSigner([UnsignedSigner(), PendoSigner(secret, header="X-A")])
    headers = signer.sign(b"{}", msg_id="m", timestamp=1)
    assert headers == {
        "webhook-id": "m",
        "webhook-timestamp": "1",
        "X-A": pendo_digest(secret.pendo_key, b"{}"),
    }
    clash = CombinedSigner(
        [PendoSigner(Secret("one"), header="X-A"), PendoSigner(secret, header="X-A")]
    )
    assert clash.sign(b"{}", msg_id="m", timestamp=1) == {"X-A": headers["X-A"]}


def test_combined_signer_needs_a_signer() -> None:
    """
    An empty CombinedSigner is a configuration error.
    """
    with pytest.raises(ConfigurationError, match="signers"):
        CombinedSigner([])


def test_signers_never_show_secrets(secret: Secret) -> None:
    """
    No signer's repr or str contains a secret's text or key bytes.
    """
    whsec = Secret(WHSEC)
    signers: list[object] = [
        PendoSigner(secret),
        StandardSigner([secret, whsec]),
        signer_for("both", [secret, whsec]),
        UnsignedSigner(),
    ]
    for signer in signers:
        for text in (repr(signer), str(signer)):
            assert PENDO_SECRET not in text
            assert WHSEC[6:] not in text
            assert repr(whsec.standard_key) not in text
    assert repr(signers[1]) == "<StandardSigner(num_secrets=2)>"


def test_signers_pickle_and_compare(secret: Secret) -> None:
    """
    Signers survive pickling (for worker processes), compare by value, and hash.
    """
    for signer in (
        PendoSigner(secret, header="X-A"),
        StandardSigner([secret]),
        UnsignedSigner(),
        signer_for("both", [secret, Secret(WHSEC)]),
    ):
        clone = pickle.loads(pickle.dumps(signer))
        assert clone == signer
        assert hash(clone) == hash(signer)
        assert clone.sign(b"{}", msg_id="m", timestamp=1) == signer.sign(
            b"{}", msg_id="m", timestamp=1
        )
    assert PendoSigner(secret) != PendoSigner(Secret("other"))


# ------------------------------------------------------------------------- signer_for


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        (SignatureScheme.BOTH, {"webhook-id", "webhook-timestamp", "webhook-signature", "X-S"}),
        ("both", {"webhook-id", "webhook-timestamp", "webhook-signature", "X-S"}),
        (SignatureScheme.PENDO, {"X-S"}),
        ("standard", {"webhook-id", "webhook-timestamp", "webhook-signature"}),
    ],
)
def test_signer_for_picks_the_scheme_headers(
    scheme: SignatureScheme | str, expected: set[str], secret: Secret
) -> None:
    """
    Each scheme sends its header set, and only it.
    """
    signer = signer_for(scheme, [secret], header="X-S")
    assert set(signer.sign(b"{}", msg_id="m", timestamp=1)) == expected


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_signer_for_without_secrets_sends_id_and_timestamp(scheme: SignatureScheme) -> None:
    """
    With no secret, whatever the scheme: no signature, but webhook-id and webhook-timestamp.
    """
    assert signer_for(scheme, []).sign(b"{}", msg_id="m", timestamp=1) == {
        "webhook-id": "m",
        "webhook-timestamp": "1",
    }


def test_signer_for_rotation_pendo_uses_the_current_secret() -> None:
    """
    During a rotation Pendo's header comes from the first (current) secret only.
    """
    current, old = Secret("current-secret"), Secret("previous-secret")
    headers = signer_for("both", [current, old]).sign(b"{}", msg_id="m", timestamp=NOW)
    assert headers["X-Pendo-Signature"] == pendo_digest(current.pendo_key, b"{}")
    assert headers["webhook-signature"].count("v1,") == 2
    assert signer_for("pendo", [current, old]).sign(b"{}", msg_id="m", timestamp=1) == {
        "X-Pendo-Signature": headers["X-Pendo-Signature"]
    }


def test_signer_for_rejects_bad_scheme_header_and_secrets(secret: Secret) -> None:
    """
    An unknown scheme or a bad header name is a ValidationError naming it; a bare secret is
    a ConfigurationError.
    """
    with pytest.raises(ValidationError) as info:
        signer_for("hex", [secret])
    assert info.value.field == "scheme"
    with pytest.raises(ValidationError) as info:
        signer_for("standard", [secret], header="Content-Type")
    assert info.value.field == "header"
    with pytest.raises(ConfigurationError):
        signer_for("both", secret)  # type: ignore[arg-type]


def test_generate_secret_is_whsec_32_bytes() -> None:
    """
    generate_secret gives distinct whsec_ secrets of 32 random bytes.
    """
    first, second = generate_secret(), generate_secret()
    assert first.reveal().startswith("whsec_")
    assert len(first.standard_key) == 32
    assert first != second


# ------------------------------------------------------------------ header names


@pytest.mark.parametrize(
    "name", ["X-Pendo-Signature", "x-hub-signature-256", "Sig", "a!#$%&'*+-.^_`|~9", "X" * 128]
)
def test_valid_header_names_pass_unchanged(name: str) -> None:
    """
    HTTP tokens that are not reserved are returned as given, case kept.
    """
    assert validate_header_name(name, "signature_header") == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "X Sig",
        "X:Sig",
        "Sig\n",
        "Sïg",
        "X" * 129,
        "(sig)",
        None,
        b"X-Sig",
        "webhook-signature",
        "Webhook-Id",
        "WEBHOOK-TIMESTAMP",
        "webhook-anything",
        "Content-Type",
        "authorization",
        "HOST",
        "User-Agent",
        "content-length",
    ],
)
def test_invalid_header_names_name_the_field(name: Any) -> None:
    """
    Non-tokens, over-long names, webhook-* and HTTP-owned names are refused with the field.
    """
    with pytest.raises(ValidationError) as info:
        validate_header_name(name, "signature_header")
    assert info.value.field == "signature_header"


# ------------------------------------------------------------- verify_standard


def test_verify_standard_accepts_any_header_case(secret: Secret) -> None:
    """
    Header names match whatever their case.
    """
    headers = {k.upper(): v for k, v in standard_headers([secret]).items()}
    verify_standard(b"{}", headers, secret, clock=at(NOW))


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_replay_window_accepts_inside(offset: int, secret: Secret) -> None:
    """
    Timestamps within 300 s of now, either way, are accepted (the bound included).
    """
    headers = standard_headers([secret], ts=NOW + offset)
    verify_standard(b"{}", headers, secret, clock=at(NOW))


@pytest.mark.parametrize(("offset", "reason"), [(-301, "too old"), (301, "too new")])
def test_replay_window_rejects_outside(offset: int, reason: str, secret: Secret) -> None:
    """
    now-301 is too old and now+301 too new, although the signature itself is valid.
    """
    headers = standard_headers([secret], ts=NOW + offset)
    with pytest.raises(SignatureError, match=reason):
        verify_standard(b"{}", headers, secret, clock=at(NOW))


def test_replay_window_is_configurable(secret: Secret) -> None:
    """
    A custom tolerance moves the bound: 10 s accepts 10 s old, rejects 11 s.
    """
    verify_standard(
        b"{}", standard_headers([secret], ts=NOW - 10), secret, tolerance=10, clock=at(NOW)
    )
    with pytest.raises(SignatureError, match="too old"):
        verify_standard(
            b"{}", standard_headers([secret], ts=NOW - 11), secret, tolerance=10, clock=at(NOW)
        )


def test_default_tolerance_and_clock(secret: Secret) -> None:
    """
    The default window is 300 s against the real clock: a fresh signature passes, an hour-old
    one fails.
    """
    assert DEFAULT_TOLERANCE == 300
    now = int(datetime.now(timezone.utc).timestamp())
    verify_standard(b"{}", standard_headers([secret], ts=now), secret)
    with pytest.raises(SignatureError, match="too old"):
        verify_standard(b"{}", standard_headers([secret], ts=now - 3600), secret)


@pytest.mark.parametrize("tolerance", [0, -1, True, 1.5, "300", None])
def test_tolerance_must_be_positive_int(tolerance: Any, secret: Secret) -> None:
    """
    tolerance <= 0 (or not an int) raises ConfigurationError instead of disabling the check.
    """
    with pytest.raises(ConfigurationError, match="tolerance"):
        verify_standard(b"{}", standard_headers([secret]), secret, tolerance=tolerance)


def test_naive_clock_is_a_configuration_error(secret: Secret) -> None:
    """
    A clock returning a naive datetime is refused rather than read as local time.
    """
    with pytest.raises(ConfigurationError, match="clock"):
        verify_standard(b"{}", standard_headers([secret]), secret, clock=datetime.now)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_standard_header(missing: str, secret: Secret) -> None:
    """
    Each of the three headers is required, and the error names it.
    """
    headers = standard_headers([secret])
    del headers[missing]
    with pytest.raises(SignatureError, match=f"{missing}: missing"):
        verify_standard(b"{}", headers, secret, clock=at(NOW))


def test_empty_id_is_missing(secret: Secret) -> None:
    """
    An empty webhook-id counts as missing.
    """
    headers = {**standard_headers([secret]), "webhook-id": ""}
    with pytest.raises(SignatureError, match="webhook-id: missing"):
        verify_standard(b"{}", headers, secret, clock=at(NOW))


def test_any_id_text_is_accepted_when_verifying(secret: Secret) -> None:
    """
    The verifier accepts ids the sender would refuse ('.' and non-ASCII), if signed.
    """
    msg_id = "evt.é"
    signed = f"{msg_id}.{NOW}.".encode() + b"{}"
    digest = base64.b64encode(hmac.digest(secret.standard_key, signed, "sha256")).decode()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + digest,
    }
    verify_standard(b"{}", headers, secret, clock=at(NOW))


@pytest.mark.parametrize(
    "ts",
    [
        "",
        " 1767225600",
        "+1767225600",
        "1767225600.0",
        "1_767_225_600",
        "0x10",
        "-1",
        "١٧٦٧٢٢٥٦٠٠",
        "1" * 16,
        "9" * 5000,
        "1767225600 ",
    ],
)
def test_malformed_timestamp(ts: str, secret: Secret) -> None:
    """
    Only ASCII digits (at most 15) make a timestamp; anything else is a SignatureError.
    """
    headers = {**standard_headers([secret]), "webhook-timestamp": ts}
    with pytest.raises(SignatureError, match="webhook-timestamp"):
        verify_standard(b"{}", headers, secret, clock=at(NOW))


def test_timestamp_is_signed_as_sent(secret: Secret) -> None:
    """
    The signed content uses the header's text: a leading zero changes nothing in time but
    breaks the signature.
    """
    headers = standard_headers([secret])
    headers["webhook-timestamp"] = "0" + headers["webhook-timestamp"]
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_standard(b"{}", headers, secret, clock=at(NOW))


def _valid_signature(secret: Secret) -> str:
    return standard_headers([secret])["webhook-signature"]


def _with_signature(secret: Secret, value: str) -> dict[str, str]:
    return {**standard_headers([secret]), "webhook-signature": value}


def test_every_truncation_fails(secret: Secret) -> None:
    """
    Every prefix of a valid v1 signature (0..46 characters) fails: length is checked.
    """
    valid = _valid_signature(secret)
    verify_standard(b"{}", _with_signature(secret, valid), secret, clock=at(NOW))
    for k in range(len(valid)):
        with pytest.raises(SignatureError):
            verify_standard(b"{}", _with_signature(secret, valid[:k]), secret, clock=at(NOW))


def test_every_bit_flip_of_the_digest_fails(secret: Secret) -> None:
    """
    Flipping any one of the 256 bits of the signed digest makes it fail.
    """
    raw = base64.b64decode(_valid_signature(secret)[3:])
    for bit in range(256):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        value = "v1," + base64.b64encode(bytes(flipped)).decode()
        with pytest.raises(SignatureError, match="no signature matches"):
            verify_standard(b"{}", _with_signature(secret, value), secret, clock=at(NOW))


def test_every_bit_flip_of_the_text_fails(secret: Secret) -> None:
    """
    Flipping any bit of any character of the header text fails.
    """
    valid = _valid_signature(secret)
    for index in range(len(valid)):
        for bit in range(8):
            value = valid[:index] + chr(ord(valid[index]) ^ (1 << bit)) + valid[index + 1 :]
            with pytest.raises(SignatureError):
                verify_standard(b"{}", _with_signature(secret, value), secret, clock=at(NOW))


@pytest.mark.parametrize(
    "value",
    [
        "v1",
        "v1,",
        "v1,====",
        "",
        " ",
        "v1 ,x",
        "v2,{sig}",
        "v1a,{sig}",
        "V1,{sig}",
        "v1,{sig}=",
        "v1,{sig}\t",
        "v1,{nopad}",
        "v1;{sig}",
        "{sig}",
        ",{sig}",
        "v1,{sig33}",
        "v1,{sig31}",
    ],
)
def test_malformed_signatures_fail_cleanly(value: str, secret: Secret) -> None:
    """
    Malformed entries, other versions and base64 of 31 or 33 bytes are not signatures: they
    raise SignatureError ("no well-formed v1 signature"), never ValueError.
    """
    sig = _valid_signature(secret)[3:]
    value = value.format(
        sig=sig, nopad=sig.rstrip("="), sig33=sig[:-1] + "A", sig31=sig[:-2] + "=="
    )
    with pytest.raises(SignatureError, match="no well-formed v1 signature") as info:
        verify_standard(b"{}", _with_signature(secret, value), secret, clock=at(NOW))
    assert type(info.value) is SignatureError


def test_non_canonical_base64_fails(secret: Secret) -> None:
    """
    The same 32 bytes spelt with non-zero spare bits in the last base64 character (which a
    lenient decoder maps to the valid digest) are refused.
    """
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    valid = _valid_signature(secret)
    last = alphabet.index(valid[-2])
    for spare in (1, 2, 3):
        value = valid[:-2] + alphabet[last + spare] + "="
        assert base64.b64decode(value[3:]) == base64.b64decode(valid[3:])
        with pytest.raises(SignatureError, match="no well-formed v1 signature"):
            verify_standard(b"{}", _with_signature(secret, value), secret, clock=at(NOW))


@pytest.mark.parametrize(
    "template",
    [
        "v1,{garbage} {valid}",
        "v1 {valid}",
        "{valid} v1,{garbage}",
        "v2,{garbage}  {valid}",
        "v1,==== {valid} v1",
    ],
)
def test_garbage_entries_are_skipped(template: str, secret: Secret) -> None:
    """
    "v1,<garbage> v1,<valid>" passes: a bad entry does not hide a good one.
    """
    value = template.format(garbage="not+base64!!", valid=_valid_signature(secret))
    verify_standard(b"{}", _with_signature(secret, value), secret, clock=at(NOW))


def test_wrong_body_or_secret_fails(secret: Secret) -> None:
    """
    A changed body, or the wrong secret, fails with "no signature matches".
    """
    headers = standard_headers([secret])
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_standard(b"{ }", headers, secret, clock=at(NOW))
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_standard(b"{}", headers, Secret(WHSEC), clock=at(NOW))


def test_errors_never_leak_secret_or_expected_signature(secret: Secret) -> None:
    """
    Failure messages hold neither the secret, nor the expected signature, nor the values.
    """
    good = standard_headers([secret], body=b"real")
    expected_pendo = pendo_digest(secret.pendo_key, b"real")
    bad = {
        **good,
        "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "X-Pendo-Signature": "0" * 64,
    }
    for call in (
        lambda: verify_standard(b"real", bad, secret, clock=at(NOW)),
        lambda: verify_pendo(b"real", bad, secret),
        lambda: verify(b"real", {}, secret),
    ):
        with pytest.raises(SignatureError) as info:
            call()
        message = str(info.value) + repr(info.value)
        for leak in (PENDO_SECRET, good["webhook-signature"][3:], expected_pendo, "AAAA"):
            assert leak not in message


def test_secrets_may_be_text_secret_or_mixed_sequence(secret: Secret) -> None:
    """
    Secrets are accepted as one Secret, one str, or a sequence mixing both.
    """
    headers = standard_headers([secret])
    for secrets in (secret, PENDO_SECRET, [WHSEC, PENDO_SECRET], (Secret(WHSEC), secret)):
        verify_standard(b"{}", headers, secrets, clock=at(NOW))


@pytest.mark.parametrize("secrets", [[], (), None, b"bytes", 5, [5], {PENDO_SECRET}])
def test_unusable_secrets_are_configuration_errors(secrets: Any) -> None:
    """
    No secrets, or secrets of the wrong type, raise ConfigurationError in both verifiers.
    """
    for verifier in (verify_standard, verify_pendo):
        with pytest.raises(ConfigurationError, match="secrets"):
            verifier(b"{}", {}, secrets)


@pytest.mark.parametrize("secrets", ["", ["ok", ""], "whsec_not base64"])
def test_invalid_secret_text_is_a_validation_error(secrets: Any) -> None:
    """
    Secret text that Secret refuses raises its ValidationError, naming 'secret'.
    """
    with pytest.raises(ValidationError) as info:
        verify_standard(b"{}", {}, secrets)
    assert info.value.field == "secret"


def test_str_body_is_utf8(secret: Secret) -> None:
    """
    A str body verifies as its UTF-8 bytes; a bytearray as its bytes.
    """
    body = '{"name":"Zoë ✓"}'
    headers = standard_headers([secret], body=body.encode())
    verify_standard(body, headers, secret, clock=at(NOW))
    verify_standard(bytearray(body.encode()), headers, secret, clock=at(NOW))


@pytest.mark.parametrize("body", ["\ud800", None, 5, memoryview(b"{}"), ["{}"]])
def test_unusable_body_is_a_signature_error(body: Any, secret: Secret) -> None:
    """
    A str with a lone surrogate, or a body of the wrong type, raises SignatureError.
    """
    for verifier in (verify_standard, verify_pendo):
        with pytest.raises(SignatureError, match="body"):
            verifier(body, standard_headers([secret]), secret)


class _Pairs:
    """A header object whose items() is whatever it was given."""

    def __init__(self, items: Any) -> None:
        self._items = items

    def items(self) -> Any:
        return self._items


@pytest.mark.parametrize(
    "headers",
    [
        None,
        5,
        "webhook-id",
        [("webhook-id", "m")],
        _Pairs([("a", "b", "c")]),
        _Pairs(5),
        _Pairs(["xy", "z"]),
        type("NotCallable", (), {"items": 5})(),
    ],
)
def test_unusable_headers_are_signature_errors(headers: Any, secret: Secret) -> None:
    """
    Headers that are not a mapping of names to values raise SignatureError.
    """
    for verifier in (verify_standard, verify_pendo):
        with pytest.raises(SignatureError, match="headers"):
            verifier(b"{}", headers, secret)


def test_headers_with_an_items_method_are_accepted(secret: Secret) -> None:
    """
    Any object with items() yielding pairs works (framework header classes).
    """
    headers = standard_headers([secret])
    verify_standard(b"{}", _Pairs(list(headers.items())), secret, clock=at(NOW))


def test_duplicate_header_in_two_cases_is_refused(secret: Secret) -> None:
    """
    A header given twice under different cases is ambiguous and refused, even if equal.
    """
    headers: dict[str, str] = standard_headers([secret])
    headers["Webhook-Signature"] = headers["webhook-signature"]
    with pytest.raises(SignatureError, match="more than once"):
        verify_standard(b"{}", headers, secret, clock=at(NOW))
    pendo = {"x-pendo-signature": "0" * 64, "X-Pendo-Signature": "0" * 64}
    with pytest.raises(SignatureError, match="more than once"):
        verify_pendo(b"{}", pendo, secret)


def test_non_text_values_and_keys(secret: Secret) -> None:
    """
    A non-str value for a header we read is refused; non-str keys are ignored.
    """
    headers: dict[Any, Any] = {**standard_headers([secret]), 5: "x", b"webhook-id": "y"}
    verify_standard(b"{}", headers, secret, clock=at(NOW))
    headers["webhook-timestamp"] = NOW
    with pytest.raises(SignatureError, match="webhook-timestamp: must be text"):
        verify_standard(b"{}", headers, secret, clock=at(NOW))


def test_id_with_lone_surrogate(secret: Secret) -> None:
    """
    A webhook-id that is not encodable text fails as SignatureError, not UnicodeEncodeError.
    """
    headers = {**standard_headers([secret]), "webhook-id": "\udcff"}
    with pytest.raises(SignatureError, match="webhook-id"):
        verify_standard(b"{}", headers, secret, clock=at(NOW))


# ------------------------------------------------------------------ verify_pendo


def test_verify_pendo_accepts_current_or_previous(secret: Secret) -> None:
    """
    Pendo receivers accept either of several secrets (their side of a rotation).
    """
    headers = PendoSigner(secret).sign(b"{}", msg_id="m", timestamp=0)
    verify_pendo(b"{}", headers, ["new-secret", secret])
    verify_pendo(b"{}", {k.lower(): v for k, v in headers.items()}, secret)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_pendo(b"{}", headers, "new-secret")


def test_verify_pendo_custom_header(secret: Secret) -> None:
    """
    A custom header name is looked up case-insensitively; the default one is then ignored.
    """
    digest = pendo_digest(secret.pendo_key, b"{}")
    verify_pendo(b"{}", {"x-my-sig": digest}, secret, header="X-My-Sig")
    with pytest.raises(SignatureError, match="X-My-Sig: missing"):
        verify_pendo(b"{}", {DEFAULT_SIGNATURE_HEADER: digest}, secret, header="X-My-Sig")
    with pytest.raises(ValidationError):
        verify_pendo(b"{}", {}, secret, header="bad header")


@pytest.mark.parametrize("mangle", ["upper", "short", "long", "space", "prefix", "nonascii"])
def test_verify_pendo_is_strict(mangle: str, secret: Secret) -> None:
    """
    Only exactly 64 lowercase hex digits are considered; anything else is malformed.
    """
    digest = pendo_digest(secret.pendo_key, b"{}")
    value = {
        "upper": digest.upper(),
        "short": digest[:-1],
        "long": digest + "0",
        "space": digest[:32] + " " + digest[33:],
        "prefix": "sha256=" + digest[7:],
        "nonascii": digest[:-1] + "\u0660",  # ARABIC-INDIC DIGIT ZERO
    }[mangle]
    with pytest.raises(SignatureError, match="not 64 lowercase hex digits"):
        verify_pendo(b"{}", {DEFAULT_SIGNATURE_HEADER: value}, secret)


def test_verify_pendo_truncations_and_bit_flips_fail(secret: Secret) -> None:
    """
    Every prefix and every one-bit flip of the 32-byte digest fails.
    """
    digest = pendo_digest(secret.pendo_key, b"{}")
    for k in range(len(digest)):
        with pytest.raises(SignatureError):
            verify_pendo(b"{}", {DEFAULT_SIGNATURE_HEADER: digest[:k]}, secret)
    raw = bytes.fromhex(digest)
    for bit in range(256):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SignatureError, match="no signature matches"):
            verify_pendo(b"{}", {DEFAULT_SIGNATURE_HEADER: flipped.hex()}, secret)


# ------------------------------------------------------------------------- verify


@pytest.fixture(name="both_headers")
def _both_headers(secret: Secret) -> dict[str, str]:
    return signer_for("both", [secret]).sign(b"{}", msg_id="m", timestamp=NOW)


def test_verify_both_requires_both(secret: Secret, both_headers: dict[str, str]) -> None:
    """
    scheme=BOTH (the default) passes with both schemes valid, fails if either is missing.
    """
    verify(b"{}", both_headers, secret, clock=at(NOW))
    no_pendo = {k: v for k, v in both_headers.items() if k != "X-Pendo-Signature"}
    with pytest.raises(SignatureError, match="X-Pendo-Signature: missing"):
        verify(b"{}", no_pendo, secret, clock=at(NOW))
    no_standard = {k: v for k, v in both_headers.items() if k != "webhook-signature"}
    with pytest.raises(SignatureError, match="webhook-signature: missing"):
        verify(b"{}", no_standard, secret, clock=at(NOW))


def test_verify_single_scheme_ignores_the_other(
    secret: Secret, both_headers: dict[str, str]
) -> None:
    """
    scheme=PENDO needs only the Pendo header (no replay window); STANDARD only the others.
    """
    pendo_only = {"X-Pendo-Signature": both_headers["X-Pendo-Signature"]}
    verify(b"{}", pendo_only, secret, scheme="pendo", clock=at(NOW + 10**6))
    standard_only = {k: v for k, v in both_headers.items() if k != "X-Pendo-Signature"}
    verify(b"{}", standard_only, secret, scheme=SignatureScheme.STANDARD, clock=at(NOW))
    with pytest.raises(SignatureError):
        verify(b"{}", standard_only, secret, scheme="pendo")


def test_verify_passes_header_and_tolerance_through(secret: Secret) -> None:
    """
    verify() forwards the Pendo header name and the tolerance; a bad scheme names 'scheme'.
    """
    headers = signer_for("both", [secret], header="X-Sig").sign(
        b"{}", msg_id="m", timestamp=NOW - 20
    )
    verify(b"{}", headers, secret, header="x-sig", tolerance=30, clock=at(NOW))
    with pytest.raises(SignatureError, match="too old"):
        verify(b"{}", headers, secret, header="x-sig", tolerance=10, clock=at(NOW))
    with pytest.raises(ValidationError) as info:
        verify(b"{}", headers, secret, scheme="all")
    assert info.value.field == "scheme"


# ------------------------------------------------------------------------- fuzzing

_NAMES = [
    "webhook-id",
    "Webhook-Id",
    "WEBHOOK-ID",
    "webhook-timestamp",
    "Webhook-Timestamp",
    "webhook-signature",
    "Webhook-Signature",
    "x-pendo-signature",
    "X-Pendo-Signature",
    "content-type",
]
_any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)


def _huge(pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda piece, n: piece * n, pieces, st.integers(1_000, 40_000))


_header_values = st.one_of(
    _any_text,
    st.from_regex(r"v1,[A-Za-z0-9+/=]{0,48}( v1,[A-Za-z0-9+/=]{0,48}){0,3}", fullmatch=True),
    st.from_regex(r"[0-9]{0,20}", fullmatch=True),
    st.from_regex(r"[0-9a-fA-F]{60,68}", fullmatch=True),
    _huge(st.sampled_from(["9", "v1,", "v1,AAAA ", "a", "\ud800", " "])),
    st.integers(),
    st.binary(max_size=10),
    st.none(),
)
_header_dicts = st.dictionaries(
    st.one_of(st.sampled_from(_NAMES), st.text(max_size=20), st.integers()),
    _header_values,
    max_size=10,
)
_bodies = st.one_of(st.binary(max_size=500), _any_text, st.none(), st.integers())


def _only_signature_errors(call: Callable[[], None]) -> None:
    # Anything but SignatureError propagates and fails the test.
    with contextlib.suppress(SignatureError):
        call()


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies, headers=_header_dicts, scheme=st.sampled_from(list(SignatureScheme)))
def test_fuzz_random_input_only_raises_signature_error(
    body: Any, headers: dict[Any, Any], scheme: SignatureScheme
) -> None:
    """
    For random bodies and header dicts (missing, duplicated-case, random text, huge and
    non-text values), verification passes or raises SignatureError, nothing else.
    """
    secret = Secret(PENDO_SECRET)
    _only_signature_errors(lambda: verify(body, headers, secret, scheme=scheme, clock=at(NOW)))
    _only_signature_errors(lambda: verify_standard(body, headers, secret, clock=at(NOW)))
    _only_signature_errors(lambda: verify_pendo(body, headers, secret))


def _mutations() -> st.SearchStrategy[Callable[[dict[str, Any]], None]]:
    def set_value(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda h: h.__setitem__(name, value)

    def drop(name: str) -> Callable[[dict[str, Any]], None]:
        return lambda h: h.pop(name, None)

    def recase(name: str) -> Callable[[dict[str, Any]], None]:
        return lambda h: h.__setitem__(name.upper(), h.get(name, ""))

    def cut(name: str, k: int) -> Callable[[dict[str, Any]], None]:
        return lambda h: h.__setitem__(name, str(h.get(name, ""))[:k])

    names = st.sampled_from(
        ["webhook-id", "webhook-timestamp", "webhook-signature", "X-Pendo-Signature"]
    )
    return st.one_of(
        st.builds(set_value, names, _header_values),
        st.builds(drop, names),
        st.builds(recase, names),
        st.builds(cut, names, st.integers(0, 70)),
    )


@settings(deadline=None, max_examples=300)
@given(body=_utf8_bodies, mutations=st.lists(_mutations(), max_size=3), tamper=st.booleans())
def test_fuzz_mutated_valid_headers(
    body: bytes, mutations: list[Callable[[dict[str, Any]], None]], tamper: bool
) -> None:
    """
    Starting from valid headers, random edits either still verify or raise SignatureError;
    untouched headers always verify.
    """
    secret = Secret(PENDO_SECRET)
    headers: dict[str, Any] = signer_for("both", [secret]).sign(body, msg_id="m", timestamp=NOW)
    if not mutations:
        verify(body, headers, secret, clock=at(NOW))
    for mutate in mutations:
        mutate(headers)
    sent = body + b"!" if tamper else body
    _only_signature_errors(lambda: verify(sent, headers, secret, clock=at(NOW)))
    if tamper:
        with pytest.raises(SignatureError):
            verify(sent, headers, secret, clock=at(NOW))


@given(
    secret=_secrets,
    body=_utf8_bodies,
    msg_id=_ids,
    garbage=_any_text.filter(lambda t: " " not in t),
)
def test_garbage_before_a_valid_entry_passes(
    secret: Secret, body: bytes, msg_id: str, garbage: str
) -> None:
    """
    For any secret, body and id, any single garbage entry before a valid v1 entry is skipped.
    """
    headers = StandardSigner([secret]).sign(body, msg_id=msg_id, timestamp=NOW)
    headers["webhook-signature"] = f"v1,{garbage} {headers['webhook-signature']}"
    verify_standard(body, headers, secret, clock=at(NOW))


def test_scheme_str_is_its_value() -> None:
    """
    A SignatureScheme prints as its wire value, for forms and logs.
    """
    assert [str(s) for s in SignatureScheme] == ["both", "pendo", "standard"]
    assert f"{SignatureScheme.PENDO}" == "pendo"


def test_signer_protocol_is_satisfied_structurally() -> None:
    """
    Every signer class offers sign(body, *, msg_id, timestamp) returning a str dict.
    """
    signers: Iterator[Signer] = iter(
        [
            PendoSigner(Secret("s")),
            StandardSigner([Secret("s")]),
            UnsignedSigner(),
            CombinedSigner([UnsignedSigner()]),
        ]
    )
    for signer in signers:
        headers: Mapping[str, str] = signer.sign(b"", msg_id="m", timestamp=0)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())


def test_clock_is_read_once_per_verification(secret: Secret) -> None:
    """
    The injected clock decides the window (a clock far in the future rejects everything).
    """
    calls: list[int] = []

    def clock() -> datetime:
        calls.append(1)
        return datetime.fromtimestamp(NOW, timezone.utc) + timedelta(days=1)

    with pytest.raises(SignatureError, match="too old"):
        verify_standard(b"{}", standard_headers([secret]), secret, clock=clock)
    assert calls == [1]
