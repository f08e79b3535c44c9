"""
WebhookRegistry: validation, permissions, every change audited, rotation, concurrency.

Tests taking ``storage`` run against every backend (see conftest).
"""

from __future__ import annotations

import base64
import pickle
import re
import subprocess
import sys
import threading
import unicodedata
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks.events import EventCategory
from pendo_webhooks.exceptions import (
    ConflictError,
    InvalidDestination,
    InvalidType,
    PendoWebhooksWarning,
    PermissionDenied,
    UnknownWebhook,
    UnsignedWebhookWarning,
    ValidationError,
)
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.model._audit import created, diff
from pendo_webhooks.model._webhook import FrozenMap
from pendo_webhooks.registry import (
    SEGMENT_EU_ENDPOINT,
    SEGMENT_US_ENDPOINT,
    UNSET,
    Actor,
    AdminOnly,
    AuditEntry,
    RetiredSecret,
    Webhook,
    WebhookKind,
    WebhookRegistry,
    new_id,
)
from pendo_webhooks.signing import Secret, SignatureScheme
from pendo_webhooks.storage import AuditQuery, InMemoryStorage, Storage

from .conftest import START, FrozenClock


ADMIN = Actor("admin-1", is_admin=True)
OTHER_ADMIN = Actor("admin-2", is_admin=True)
USER = Actor("user-1")
URL = "https://hooks.example.com/catch/123"
NPS = EventCategory.NPS_SUBMITTED


@pytest.fixture(name="registry")
def _registry(storage: Storage, clock: FrozenClock) -> WebhookRegistry:
    return WebhookRegistry(storage, clock=clock)


def create(registry: WebhookRegistry, **overrides: Any) -> Webhook:
    """
    Create a URL webhook as ADMIN; *overrides* replace the defaults.
    """
    kwargs: dict[str, Any] = {"name": "Hook", "url": URL, "categories": [NPS]}
    kwargs.update(overrides)
    return registry.create(ADMIN, **kwargs)


def actions(registry: WebhookRegistry, **filters: Any) -> list[str]:
    """
    The audited actions, newest first.
    """
    return [e.action for e in registry.audit(ADMIN, **filters)]


def snapshot(storage: Storage) -> tuple[list[Webhook], list[AuditEntry]]:
    """
    Everything a storage holds, for before/after comparisons.
    """
    return list(storage.list_webhooks()), list(storage.audit_entries(AuditQuery(limit=10_000)))


class TestCreate:
    def test_url_webhook_defaults(self, registry: WebhookRegistry, clock: FrozenClock) -> None:
        """
        A new URL webhook is disabled, signs with both schemes, and records who made it when.
        """
        hook = create(registry, secret="s3cret")
        assert re.fullmatch(r"wh_[A-Za-z0-9_-]{24}", hook.id)
        assert hook.kind is WebhookKind.URL
        assert hook.url == URL
        assert hook.enabled is False
        assert hook.signature_scheme is SignatureScheme.BOTH
        assert hook.signature_header == "X-Pendo-Signature"
        assert hook.headers == {}
        assert hook.categories == frozenset({NPS})
        assert (hook.created_at, hook.created_by) == (START, "admin-1")
        assert (hook.updated_at, hook.updated_by) == (START, "admin-1")
        assert hook.version == 1
        assert hook.disabled_reason is None
        assert hook.write_key is None
        assert hook.segment_endpoint is None
        assert registry.get(ADMIN, hook.id) == hook

    def test_every_option_is_stored(self, registry: WebhookRegistry) -> None:
        """
        Scheme, header, extra headers, categories as strings and a Secret object are all kept.
        """
        hook = create(
            registry,
            name="  Padded name  ",
            secret=Secret("given"),
            categories=["guideDisplayed", EventCategory.POLL_SUBMITTED],
            signature_scheme="standard",
            signature_header="X-Signature",
            headers={"X-Team": "growth", "x-api-key": "k"},
        )
        got = registry.get(ADMIN, hook.id)
        assert got.name == "Padded name"
        assert got.secret == Secret("given")
        assert got.categories == {EventCategory.GUIDE_DISPLAYED, EventCategory.POLL_SUBMITTED}
        assert got.signature_scheme is SignatureScheme.STANDARD
        assert got.signature_header == "X-Signature"
        assert dict(got.headers) == {"X-Team": "growth", "x-api-key": "k"}

    def test_url_is_normalized_by_the_destination_policy(self, registry: WebhookRegistry) -> None:
        """
        The stored URL is what the destination policy returns (host lowercased, query kept).
        """
        hook = create(registry, url="https://Hooks.EXAMPLE.com/Path?Token=AbC")
        assert hook.url == "https://hooks.example.com/Path?Token=AbC"

    def test_segment_webhook_defaults_to_the_us_endpoint(self, registry: WebhookRegistry) -> None:
        """
        A Segment webhook carries a write key and sends to Segment's US API unless told otherwise.
        """
        hook = registry.create(
            ADMIN, name="Seg", kind="segment", write_key="wk", categories=["trackEventReceived"]
        )
        assert hook.kind is WebhookKind.SEGMENT
        assert hook.segment_endpoint == SEGMENT_US_ENDPOINT == "https://api.segment.io"
        assert hook.write_key == Secret("wk")
        assert hook.url is None
        assert hook.secret is None
        assert hook.destination == SEGMENT_US_ENDPOINT
        eu = registry.create(
            ADMIN,
            name="Seg EU",
            kind=WebhookKind.SEGMENT,
            write_key=Secret("wk"),
            segment_endpoint=SEGMENT_EU_ENDPOINT,
            categories=["npsSubmitted"],
        )
        assert eu.segment_endpoint == "https://events.eu1.segmentapis.com"

    def test_create_is_audited_with_redacted_values(self, registry: WebhookRegistry) -> None:
        """
        The create entry names actor, time and webhook, and shows the fields, secrets redacted.
        """
        hook = create(registry, secret="s3cret", headers={"X-Api-Key": "k-1"})
        (e,) = registry.audit(ADMIN)
        assert (e.action, e.actor_id, e.webhook_id, e.at) == ("create", "admin-1", hook.id, START)
        assert e.changes["name"] == (None, "Hook")
        assert e.changes["url"] == (None, URL)
        assert e.changes["secret"] == (None, "<redacted>")
        assert "write_key" not in e.changes  # fields without a value are left out
        assert e.changes["headers"] == (None, {"X-Api-Key": "<redacted>"})
        assert e.changes["categories"] == (None, ("npsSubmitted",))
        assert e.changes["enabled"] == (None, False)
        assert e.id.startswith("aud_")

    def test_ids_come_from_the_injected_factory(self, storage: Storage) -> None:
        """
        Webhook and audit ids come from the id factory, with the prefixes "wh" and "aud".
        """
        counter = iter(range(100))
        registry = WebhookRegistry(storage, ids=lambda prefix: f"{prefix}_{next(counter)}")
        hook = create(registry)
        assert hook.id == "wh_0"
        assert registry.audit(ADMIN)[0].id == "aud_1"

    def test_new_id_is_random(self) -> None:
        """
        new_id gives the prefix plus 24 URL-safe characters, different every time.
        """
        ids = {new_id("wh") for _ in range(1000)}
        assert len(ids) == 1000
        assert all(re.fullmatch(r"wh_[A-Za-z0-9_-]{24}", i) for i in ids)


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "line\nbreak"}, "name"),
    ({"name": "nul\x00"}, "name"),
    ({"name": "line\u2028separator"}, "name"),
    ({"name": "lone \ud800"}, "name"),
    ({"name": 42}, "name"),
    ({"categories": []}, "categories"),
    ({"categories": ["pageViewed"]}, "categories"),
    ({"categories": [NPS, "nope"]}, "categories"),
    ({"categories": "npsSubmitted"}, "categories"),
    ({"categories": None}, "categories"),
    ({"url": None}, "url"),
    ({"write_key": "wk"}, "write_key"),
    ({"segment_endpoint": SEGMENT_US_ENDPOINT}, "segment_endpoint"),
    ({"secret": ""}, "secret"),
    ({"secret": "whsec_not base64!"}, "secret"),
    ({"secret": b"bytes"}, "secret"),
    ({"kind": "email"}, "kind"),
    ({"signature_scheme": "md5"}, "signature_scheme"),
    ({"signature_header": "Bad Header"}, "signature_header"),
    ({"signature_header": ""}, "signature_header"),
    ({"signature_header": "Content-Type"}, "signature_header"),
    ({"signature_header": "webhook-signature"}, "signature_header"),
    ({"headers": {f"X-H{i}": "v" for i in range(21)}}, "headers"),
    ({"headers": {"Bad Name": "v"}}, "headers"),
    ({"headers": {"X-A": "v", "x-a": "w"}}, "headers"),
    ({"headers": {"X-A": "one\r\nX-Injected: two"}}, "headers"),
    ({"headers": {"X-A": "nul\x00"}}, "headers"),
    ({"headers": {"X-A": 1}}, "headers"),
    ({"headers": {"X-A": "v" * 2001}}, "headers"),
    ({"headers": {"X-A": "lone \udfff"}}, "headers"),
    ({"headers": [("X-A", "v")]}, "headers"),
    ({"headers": {"x-pendo-signature": "v"}}, "headers"),
    ({"headers": {"X-Sig": "v"}, "signature_header": "x-sig"}, "headers"),
    *(
        ({"headers": {name: "v"}}, "headers")
        for name in (
            "Content-Type",
            "content-length",
            "Host",
            "Authorization",
            "User-Agent",
            "webhook-id",
            "Webhook-Timestamp",
            "webhook-signature",
        )
    ),
]

BAD_SEGMENT_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"write_key": None}, "write_key"),
    ({"write_key": ""}, "write_key"),
    ({"secret": "s"}, "secret"),
    ({"url": URL}, "url"),
]

BAD_URLS = [
    "http://hooks.example.com/",
    "https://user:password@hooks.example.com/",
    "https://hooks.example.com/#fragment",
    "https://hooks.example.com:22/",
    "https://hooks.example.com:6379/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://127.0.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://[::1]/",
    "https://[fe80::1]/",
    "https://[fd00:ec2::254]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://localhost/",
    "file:///etc/passwd",
    "gopher://hooks.example.com/",
    "ftp://hooks.example.com/",
    "",
    "not a url",
]


def _unsigned_warning(record: pytest.WarningsRecorder) -> warnings.WarningMessage:
    (warning,) = record.list
    assert warning.category is UnsignedWebhookWarning
    return warning


class TestSignedUnlessToldOtherwise:
    def test_no_secret_gets_a_generated_one_returned_and_stored(
        self, registry: WebhookRegistry
    ) -> None:
        """
        A URL webhook created without a secret signs with a fresh whsec_ secret of 32 bytes,
        returned on the created webhook and stored; the audit shows one was set, not its value.
        """
        hook = create(registry)
        assert hook.secret is not None
        assert hook.secret.reveal().startswith("whsec_")
        assert len(hook.secret.standard_key) == 32
        assert registry.get(ADMIN, hook.id).secret == hook.secret
        assert create(registry).secret != hook.secret
        (entry,) = registry.audit(ADMIN, webhook_id=hook.id)
        assert entry.changes["secret"] == (None, "<redacted>")
        assert "unsigned" not in entry.changes

    def test_unsigned_is_an_explicit_opt_in_with_a_warning(
        self, registry: WebhookRegistry
    ) -> None:
        """
        unsigned=True makes a URL webhook without a secret, warns at the caller's line, and
        the audit entry records the choice.
        """
        with pytest.warns(UnsignedWebhookWarning) as record:
            hook = create(registry, unsigned=True)
        warning = _unsigned_warning(record)
        assert issubclass(warning.category, PendoWebhooksWarning)
        assert issubclass(warning.category, UserWarning)
        assert warning.filename == __file__  # create() above, not the registry's code
        assert hook.id in str(warning.message)
        assert hook.secret is None
        assert registry.get(ADMIN, hook.id).secret is None
        (entry,) = registry.audit(ADMIN, webhook_id=hook.id)
        assert entry.changes["unsigned"] == (None, True)
        assert "secret" not in entry.changes

    def test_unsigned_with_a_secret_is_refused(self, registry: WebhookRegistry) -> None:
        """
        unsigned=True and a secret contradict each other: a ValidationError, nothing stored.
        """
        with pytest.raises(ValidationError) as info:
            create(registry, secret="s3cret", unsigned=True)
        assert info.value.field == "unsigned"
        assert "s3cret" not in str(info.value)
        assert registry.list(ADMIN) == []

    def test_unsigned_must_be_a_bool(self, registry: WebhookRegistry) -> None:
        """
        A non-bool unsigned (say the string "false") is an InvalidType, also a TypeError.
        """
        with pytest.raises(InvalidType) as info:
            create(registry, unsigned="false")
        assert isinstance(info.value, TypeError)
        assert info.value.field == "unsigned"

    def test_segment_webhooks_refuse_unsigned(self, registry: WebhookRegistry) -> None:
        """
        A Segment webhook authenticates with its write key: unsigned=True is refused, and it
        gets no generated secret.
        """
        segment = {"kind": "segment", "url": None, "write_key": "wk"}
        with pytest.raises(ValidationError) as info:
            create(registry, unsigned=True, **segment)
        assert info.value.field == "unsigned"
        assert create(registry, **segment).secret is None

    def test_removing_the_secret_needs_unsigned(self, registry: WebhookRegistry) -> None:
        """
        update(secret=None) alone is refused with a message that says how to opt in; nothing
        is written.
        """
        hook = create(registry, secret="one")
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, secret=None)
        assert info.value.field == "secret"
        assert "unsigned=True" in str(info.value)
        assert registry.get(ADMIN, hook.id) == hook
        assert actions(registry) == ["create"]

    def test_unsigned_alone_removes_the_secret(self, registry: WebhookRegistry) -> None:
        """
        update(unsigned=True) removes the secret too, with the warning at the caller's line.
        """
        hook = create(registry)
        with pytest.warns(UnsignedWebhookWarning) as record:
            new = registry.update(ADMIN, hook.id, unsigned=True)
        assert _unsigned_warning(record).filename == __file__
        assert (new.secret, new.version) == (None, 2)

    def test_unsigned_update_of_an_unsigned_webhook_changes_nothing(
        self, registry: WebhookRegistry
    ) -> None:
        """
        An unsigned webhook stays as it is, without a second warning or audit entry; a new
        secret signs it again.
        """
        with pytest.warns(UnsignedWebhookWarning):
            hook = create(registry, unsigned=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert registry.update(ADMIN, hook.id, secret=None, unsigned=True) == hook
            assert registry.update(ADMIN, hook.id, secret=None) == hook
            signed = registry.update(ADMIN, hook.id, secret="now-signed")
        assert signed.secret == Secret("now-signed")
        assert actions(registry) == ["update", "create"]

    def test_update_refuses_unsigned_with_a_secret_and_on_segment(
        self, registry: WebhookRegistry
    ) -> None:
        """
        unsigned=True with a new secret, or on a Segment webhook, is a ValidationError.
        """
        hook = create(registry)
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, secret="two", unsigned=True)
        assert info.value.field == "unsigned"
        segment = create(registry, kind="segment", url=None, write_key="wk")
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, segment.id, unsigned=True)
        assert info.value.field == "unsigned"
        assert actions(registry) == ["create", "create"]

    @pytest.mark.parametrize("blank", [" ", "\t\n", "\u3000\u2003 "])
    def test_blank_secrets_are_refused_everywhere(
        self, registry: WebhookRegistry, blank: str
    ) -> None:
        """
        A whitespace-only secret is refused by create, update and rotate_secret, naming the
        argument; nothing is written.
        """
        with pytest.raises(ValidationError) as info:
            create(registry, secret=blank)
        assert (info.value.field, info.value.reason) == ("secret", "must not be only whitespace")
        hook = create(registry, secret="one")
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, secret=blank)
        assert info.value.field == "secret"
        with pytest.raises(ValidationError) as info:
            registry.rotate_secret(ADMIN, hook.id, blank)
        assert info.value.field == "new_secret"
        assert registry.get(ADMIN, hook.id) == hook

    def test_secrets_over_the_maximum_length_are_refused(self, registry: WebhookRegistry) -> None:
        """
        Secrets are at most 1,024 characters, everywhere; the message never holds the secret,
        and spaces around a real secret are kept.
        """
        long_secret = "Zq" * 512 + "!"
        for call in (
            lambda: create(registry, secret=long_secret),
            lambda: registry.rotate_secret(ADMIN, create(registry).id, long_secret),
        ):
            with pytest.raises(ValidationError) as info:
                call()
            assert "at most 1024 characters" in str(info.value)
            assert "ZqZq" not in str(info.value)
        assert create(registry, secret=" " + "a" * 1022 + " ").secret == Secret(
            " " + "a" * 1022 + " "
        )


class TestValidation:
    @pytest.mark.parametrize(("overrides", "field"), BAD_CREATES)
    def test_bad_url_webhook_fields(
        self, registry: WebhookRegistry, storage: Storage, overrides: dict[str, Any], field: str
    ) -> None:
        """
        Each bad value raises ValidationError naming its field, and nothing is stored or audited.
        """
        with pytest.raises(ValidationError) as info:
            create(registry, **overrides)
        assert info.value.field == field
        assert snapshot(storage) == ([], [])

    @pytest.mark.parametrize(("overrides", "field"), BAD_SEGMENT_CREATES)
    def test_bad_segment_webhook_fields(
        self, registry: WebhookRegistry, storage: Storage, overrides: dict[str, Any], field: str
    ) -> None:
        """
        A Segment webhook needs a write key and takes neither a secret nor a URL.
        """
        kwargs: dict[str, Any] = {
            "name": "Seg",
            "kind": "segment",
            "write_key": "wk",
            "categories": [NPS],
        }
        kwargs.update(overrides)
        with pytest.raises(ValidationError) as info:
            registry.create(ADMIN, **kwargs)
        assert info.value.field == field
        assert snapshot(storage) == ([], [])

    @pytest.mark.parametrize("url", BAD_URLS)
    def test_refused_urls(self, registry: WebhookRegistry, storage: Storage, url: str) -> None:
        """
        Non-https, credentials, fragments, odd ports and inward hosts (any spelling) are refused.
        """
        with pytest.raises(InvalidDestination) as info:
            create(registry, url=url)
        assert info.value.field == "url"
        assert snapshot(storage) == ([], [])

    def test_refused_segment_endpoint(self, registry: WebhookRegistry) -> None:
        """
        The Segment endpoint goes through the same destination policy, under its own field name.
        """
        with pytest.raises(InvalidDestination) as info:
            registry.create(
                ADMIN,
                name="Seg",
                kind="segment",
                write_key="wk",
                segment_endpoint="https://10.1.2.3",
                categories=[NPS],
            )
        assert info.value.field == "segment_endpoint"

    def test_allow_list_and_http_opt_in(self, storage: Storage) -> None:
        """
        An explicit allow-list lets private networks through; plain http needs allow_http.
        """
        policy = DestinationPolicy(allow_networks=["10.0.0.0/8"], allow_http=True)
        registry = WebhookRegistry(storage, destinations=policy)
        assert create(registry, url="https://10.1.2.3/hook").url == "https://10.1.2.3/hook"
        assert create(registry, url="http://hooks.example.com/").url == "http://hooks.example.com/"
        with pytest.raises(InvalidDestination):
            create(registry, url="https://192.168.0.1/")
        local = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
        assert create(local, url="http://127.0.0.1:8123/hook").url == "http://127.0.0.1:8123/hook"

    def test_validation_errors_do_not_touch_storage(self, storage: Storage) -> None:
        """
        Input errors are raised before any storage call.
        """
        recording = RecordingStorage(storage)
        registry = WebhookRegistry(recording)
        with pytest.raises(ValidationError):
            create(registry, name="")
        with pytest.raises(InvalidDestination):
            create(registry, url="https://10.0.0.1/")
        assert recording.calls == []

    @pytest.mark.parametrize(
        "char",
        [
            *(chr(c) for c in range(0x202A, 0x202F)),  # bidi embeddings and overrides
            *(chr(c) for c in range(0x2066, 0x206A)),  # bidi isolates
            "\u200e",  # left-to-right mark
            "\u200f",  # right-to-left mark
            "\u061c",  # Arabic letter mark
            "\u200b",  # zero-width space
            "\u2060",  # word joiner
            "\ufeff",  # byte order mark
            "\U000e0041",  # tag latin capital letter A (hides text from readers)
            "\x00",
            "\x1b",
            "\x7f",
            "\x85",
        ],
    )
    def test_spoofing_characters_in_names_are_refused(
        self, registry: WebhookRegistry, storage: Storage, char: str
    ) -> None:
        """
        A name with a bidi control, another invisible format character or a control character
        is refused on create and on update, naming the field and the code point.
        """
        name = f"Invoices{char}gnp.exe"
        code_point = f"U+{ord(char):04X}"
        with pytest.raises(ValidationError) as info:
            create(registry, name=name)
        assert info.value.field == "name"
        assert code_point in str(info.value)
        assert char not in str(info.value)
        assert snapshot(storage) == ([], [])
        hook = create(registry, name="Invoices")
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, name=name)
        assert (info.value.field, code_point in str(info.value)) == ("name", True)
        with pytest.raises(ValidationError) as info:
            registry.disable(ADMIN, hook.id, reason=f"sp{char}am")
        assert (info.value.field, code_point in str(info.value)) == ("reason", True)
        assert registry.get(ADMIN, hook.id) == hook

    def test_visible_unicode_names_are_fine(self, registry: WebhookRegistry) -> None:
        """
        Letters, marks and symbols of any script pass; only invisible and control ones do not.
        """
        for name in (
            "Réponses NPS",
            "ملاحظات",
            "日本語の通知",
            "Zapier ✓ 🚀",
            "e\u0301",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: needs ZWNJ
            "\U0001f469\u200d\U0001f4bb on call",  # an emoji sequence joined by ZWJ
        ):
            assert create(registry, name=name).name == name

    @given(name=st.text(min_size=1, max_size=300))
    def test_name_rule_property(self, name: str) -> None:
        """
        A name is accepted exactly when, stripped, it is 1-200 characters without control
        or invisible format characters.
        """
        stripped = name.strip()
        ok = 0 < len(stripped) <= 200 and not any(
            unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"}
            and c not in {"\u200c", "\u200d"}
            for c in stripped
        )
        registry = WebhookRegistry(InMemoryStorage())
        if ok:
            assert create(registry, name=name).name == stripped
        else:
            with pytest.raises(ValidationError) as info:
                create(registry, name=name)
            assert info.value.field == "name"


class RecordingStorage:
    """
    Wraps a Storage and records the name of every method called on it.
    """

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


MUTATIONS: dict[str, Callable[[WebhookRegistry, Actor, str], object]] = {
    "create": lambda r, a, _: r.create(a, name="X", url=URL, categories=[NPS]),
    "update": lambda r, a, i: r.update(a, i, name="Changed"),
    "enable": lambda r, a, i: r.enable(a, i),
    "disable": lambda r, a, i: r.disable(a, i, reason="why"),
    "delete": lambda r, a, i: r.delete(a, i),
    "rotate_secret": lambda r, a, i: r.rotate_secret(a, i),
}
READS: dict[str, Callable[[WebhookRegistry, Actor, str], object]] = {
    "get": lambda r, a, i: r.get(a, i),
    "list": lambda r, a, _: r.list(a),
    "audit": lambda r, a, i: r.audit(a, webhook_id=i),
}


class TestPermissions:
    @pytest.mark.parametrize("call", sorted(MUTATIONS.items()), ids=lambda c: c[0])
    def test_non_admin_cannot_change_anything(
        self, storage: Storage, call: tuple[str, Callable[..., object]]
    ) -> None:
        """
        Each mutating call by a non-admin raises PermissionDenied before storage is touched.
        """
        hook = create(WebhookRegistry(storage), secret="s")
        before = snapshot(storage)
        recording = RecordingStorage(storage)
        with pytest.raises(PermissionDenied, match="user-1") as info:
            call[1](WebhookRegistry(recording), USER, hook.id)
        assert isinstance(info.value, PermissionError)
        assert recording.calls == []
        assert snapshot(storage) == before

    @pytest.mark.parametrize("call", sorted(READS.items()), ids=lambda c: c[0])
    def test_non_admin_cannot_read(
        self, storage: Storage, call: tuple[str, Callable[..., object]]
    ) -> None:
        """
        Reads go through the policy too: admins only by default.
        """
        hook = create(WebhookRegistry(storage))
        recording = RecordingStorage(storage)
        with pytest.raises(PermissionDenied):
            call[1](WebhookRegistry(recording), USER, hook.id)
        assert recording.calls == []

    def test_a_custom_policy_sees_actor_action_and_webhook(self, storage: Storage) -> None:
        """
        A host policy is asked about every call with the actor, the action and the webhook id.
        """
        asked: list[tuple[str, str, str | None]] = []

        class Roles:
            def check(self, actor: Actor, action: str, webhook_id: str | None) -> None:
                asked.append((actor.id, action, webhook_id))
                if action != "read" and "webhooks:write" not in actor.roles:
                    raise PermissionDenied(f"{actor.id} may not {action}")

        registry = WebhookRegistry(storage, policy=Roles())
        writer = Actor("writer", roles={"webhooks:write"})
        reader = Actor("reader", roles={"webhooks:read"})
        hook = registry.create(writer, name="X", url=URL, categories=[NPS])
        assert registry.get(reader, hook.id) == hook
        with pytest.raises(PermissionDenied):
            registry.enable(reader, hook.id)
        for name in ("update", "enable", "disable", "rotate_secret", "delete"):
            MUTATIONS[name](registry, writer, hook.id)
        assert asked == [
            ("writer", "create", None),
            ("reader", "read", hook.id),
            ("reader", "enable", hook.id),
            ("writer", "update", hook.id),
            ("writer", "enable", hook.id),
            ("writer", "disable", hook.id),
            ("writer", "rotate_secret", hook.id),
            ("writer", "delete", hook.id),
        ]

    def test_actor_rules(self) -> None:
        """
        Actors need a printable non-empty id other than "system"; roles become a frozenset.
        """
        assert Actor("u", roles=["a", "a"]).roles == frozenset({"a"})
        for bad in ("", "  ", " padded ", "system", "tab\there", "x" * 201, 7):
            with pytest.raises(ValidationError) as info:
                Actor(bad)  # type: ignore[arg-type]
            assert info.value.field == "actor.id"
        with pytest.raises(TypeError):
            Actor("u", is_admin="yes")  # type: ignore[arg-type]

    def test_admin_only_message(self) -> None:
        """
        AdminOnly names the actor and the action, and lets admins through for any webhook.
        """
        AdminOnly().check(ADMIN, "delete", "wh_1")
        with pytest.raises(PermissionDenied, match="'user-1' may not delete webhooks"):
            AdminOnly().check(USER, "delete", "wh_1")


class TestUpdate:
    def test_update_returns_the_new_version_and_audits_the_diff(
        self, registry: WebhookRegistry, clock: FrozenClock
    ) -> None:
        """
        An update bumps the version, records who and when, and audits only the changed fields.
        """
        hook = create(registry)
        clock.advance(minutes=5)
        new = registry.update(
            OTHER_ADMIN, hook.id, name="Renamed", categories=[NPS, "pollSubmitted"]
        )
        assert new.version == 2
        assert new.name == "Renamed"
        assert (new.updated_at, new.updated_by) == (clock(), "admin-2")
        assert (new.created_at, new.created_by) == (START, "admin-1")
        assert registry.get(ADMIN, hook.id) == new
        latest = registry.audit(ADMIN)[0]
        assert latest.action == "update"
        assert latest.actor_id == "admin-2"
        assert latest.at == clock()
        assert dict(latest.changes) == {
            "name": ("Hook", "Renamed"),
            "categories": (("npsSubmitted",), ("npsSubmitted", "pollSubmitted")),
        }

    def test_every_field_can_change(self, registry: WebhookRegistry) -> None:
        """
        URL, secret, scheme, header name and extra headers all change through update.
        """
        hook = create(registry, secret="old")
        new = registry.update(
            ADMIN,
            hook.id,
            url="https://other.example.com/x",
            secret="new",
            signature_scheme="pendo",
            signature_header="X-Sig",
            headers={"X-A": "1"},
        )
        assert new.url == "https://other.example.com/x"
        assert new.secret == Secret("new")
        assert new.signature_scheme is SignatureScheme.PENDO
        assert new.signature_header == "X-Sig"
        assert new.headers == {"X-A": "1"}
        changes = registry.audit(ADMIN)[0].changes
        assert changes["secret"] == ("<redacted>", "<redacted>")
        assert changes["url"] == (URL, "https://other.example.com/x")
        assert changes["headers"] == ({}, {"X-A": "<redacted>"})

    def test_nothing_changed_writes_nothing(self, registry: WebhookRegistry) -> None:
        """
        An update that changes no field returns the same version and is not audited.
        """
        hook = create(registry)
        assert registry.update(ADMIN, hook.id) == hook
        assert registry.update(ADMIN, hook.id, name="Hook", kind="url", categories=[NPS]) == hook
        assert actions(registry) == ["create"]

    def test_stale_expected_version_conflicts(self, registry: WebhookRegistry) -> None:
        """
        An edit based on a version someone changed since raises ConflictError, overwriting nothing.
        """
        hook = create(registry)
        registry.update(OTHER_ADMIN, hook.id, expected_version=1, name="Theirs")
        with pytest.raises(ConflictError, match="version 1, but version 2"):
            registry.update(ADMIN, hook.id, expected_version=1, name="Mine")
        assert registry.get(ADMIN, hook.id).name == "Theirs"
        assert actions(registry) == ["update", "create"]

    def test_kind_cannot_change(self, registry: WebhookRegistry) -> None:
        """
        Changing the kind is refused with ValidationError("kind").
        """
        hook = create(registry)
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, kind="segment")
        assert info.value.field == "kind"
        with pytest.raises(ValidationError):
            registry.update(ADMIN, hook.id, kind="sms")

    def test_secret_none_removes_it_and_retired_ones(
        self, registry: WebhookRegistry, clock: FrozenClock
    ) -> None:
        """
        secret=None with unsigned=True removes the secret at once, retired ones too; the audit
        shows it was removed, on purpose.
        """
        hook = create(registry, secret="one")
        registry.rotate_secret(ADMIN, hook.id, "two")
        with pytest.warns(UnsignedWebhookWarning):
            new = registry.update(ADMIN, hook.id, secret=None, unsigned=True)
        assert new.secret is None
        assert new.previous_secrets == ()
        assert new.signing_secrets(clock()) == ()
        changes = registry.audit(ADMIN)[0].changes
        assert changes["secret"] == ("<redacted>", None)
        assert changes["unsigned"] == (False, True)

    def test_a_new_secret_replaces_at_once(self, registry: WebhookRegistry) -> None:
        """
        A secret set through update drops the retired ones (no grace: that is rotate_secret).
        """
        hook = create(registry, secret="one")
        registry.rotate_secret(ADMIN, hook.id, "two")
        new = registry.update(ADMIN, hook.id, secret="three")
        assert new.previous_secrets == ()

    def test_the_same_secret_again_changes_nothing(self, registry: WebhookRegistry) -> None:
        """
        Setting the current secret again (as text) is no change: retired secrets stay.
        """
        hook = create(registry, secret="one")
        rotated = registry.rotate_secret(ADMIN, hook.id, "two")
        assert registry.update(ADMIN, hook.id, secret="two") == rotated

    def test_headers_none_clears_them(self, registry: WebhookRegistry) -> None:
        """
        headers=None removes all extra headers.
        """
        hook = create(registry, headers={"X-A": "1"})
        assert registry.update(ADMIN, hook.id, headers=None).headers == {}

    def test_segment_fields(self, registry: WebhookRegistry) -> None:
        """
        A Segment webhook's write key and endpoint change; endpoint None means the US default.
        """
        hook = registry.create(ADMIN, name="S", kind="segment", write_key="wk1", categories=[NPS])
        eu = registry.update(ADMIN, hook.id, segment_endpoint=SEGMENT_EU_ENDPOINT, write_key="wk2")
        assert eu.segment_endpoint == SEGMENT_EU_ENDPOINT
        assert eu.write_key == Secret("wk2")
        assert registry.audit(ADMIN)[0].changes["write_key"] == ("<redacted>", "<redacted>")
        assert registry.update(ADMIN, hook.id, segment_endpoint=None).segment_endpoint == (
            SEGMENT_US_ENDPOINT
        )
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, url=URL)
        assert info.value.field == "url"
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, write_key="")
        assert info.value.field == "write_key"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"name": ""}, "name"),
            ({"url": None}, "url"),
            ({"url": "https://10.0.0.1/"}, "url"),
            ({"write_key": "wk"}, "write_key"),
            ({"segment_endpoint": SEGMENT_US_ENDPOINT}, "segment_endpoint"),
            ({"categories": []}, "categories"),
            ({"signature_scheme": "x"}, "signature_scheme"),
            ({"signature_header": "Host"}, "signature_header"),
            ({"headers": {"Host": "x"}}, "headers"),
            ({"secret": ""}, "secret"),
        ],
    )
    def test_bad_updates_name_the_field_and_change_nothing(
        self, registry: WebhookRegistry, storage: Storage, changes: dict[str, Any], field: str
    ) -> None:
        """
        An update with a bad value raises ValidationError naming the field; nothing is written.
        """
        hook = create(registry)
        before = snapshot(storage)
        with pytest.raises(ValidationError) as info:
            registry.update(ADMIN, hook.id, **changes)
        assert info.value.field == field
        assert snapshot(storage) == before

    def test_unknown_webhook(self, registry: WebhookRegistry) -> None:
        """
        Every call on an id nobody has raises UnknownWebhook.
        """
        for call in (*MUTATIONS.values(), READS["get"]):
            if call is MUTATIONS["create"]:
                continue
            with pytest.raises(UnknownWebhook):
                call(registry, ADMIN, "wh_missing")
        with pytest.raises(UnknownWebhook):
            registry.disable_by_system("wh_missing", reason="410")

    def test_unset_is_a_readable_sentinel(self) -> None:
        """
        UNSET shows as UNSET in signatures and docs.
        """
        assert repr(UNSET) == "UNSET"


class TestEnableDisable:
    def test_enable_then_disable(self, registry: WebhookRegistry, clock: FrozenClock) -> None:
        """
        Enabling starts sending; disabling records who and why; both are audited.
        """
        hook = create(registry)
        on = registry.enable(ADMIN, hook.id)
        assert (on.enabled, on.version) == (True, 2)
        clock.advance(hours=1)
        off = registry.disable(OTHER_ADMIN, hook.id, reason="  Receiver is down  ")
        assert (off.enabled, off.disabled_reason, off.disabled_by) == (
            False,
            "Receiver is down",
            "admin-2",
        )
        assert off.version == 3
        assert actions(registry) == ["disable", "enable", "create"]
        assert dict(registry.audit(ADMIN)[0].changes) == {
            "enabled": (True, False),
            "disabled_reason": (None, "Receiver is down"),
            "disabled_by": (None, "admin-2"),
        }
        again = registry.enable(ADMIN, hook.id)
        assert (again.disabled_reason, again.disabled_by) == (None, None)

    def test_repeating_is_a_no_op(self, registry: WebhookRegistry) -> None:
        """
        Enabling an enabled webhook or disabling a disabled one writes and audits nothing.
        """
        hook = create(registry)
        assert registry.disable(ADMIN, hook.id) == hook
        on = registry.enable(ADMIN, hook.id)
        assert registry.enable(ADMIN, hook.id) == on
        assert actions(registry) == ["enable", "create"]

    def test_disable_without_reason(self, registry: WebhookRegistry) -> None:
        """
        A reason is optional.
        """
        hook = create(registry)
        registry.enable(ADMIN, hook.id)
        off = registry.disable(ADMIN, hook.id)
        assert (off.disabled_reason, off.disabled_by) == (None, "admin-1")

    @pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "multi\nline"])
    def test_bad_reason(self, registry: WebhookRegistry, reason: str) -> None:
        """
        A reason must be 1-500 printable characters.
        """
        hook = create(registry)
        with pytest.raises(ValidationError) as info:
            registry.disable(ADMIN, hook.id, reason=reason)
        assert info.value.field == "reason"
        with pytest.raises(ValidationError):
            registry.disable_by_system(hook.id, reason=reason)

    def test_disable_by_system_is_audited_as_system(self, registry: WebhookRegistry) -> None:
        """
        The dispatcher's disable (after a 410) is recorded with actor "system".
        """
        hook = create(registry)
        registry.enable(ADMIN, hook.id)
        off = registry.disable_by_system(hook.id, reason="410 Gone from receiver")
        assert (off.enabled, off.disabled_by) == (False, "system")
        assert off.updated_by == "system"
        (latest,) = registry.audit(ADMIN, actor_id="system")
        assert latest.action == "disable"
        assert latest.changes["disabled_reason"] == (None, "410 Gone from receiver")
        assert registry.disable_by_system(hook.id, reason="again") == off

    def test_enable_rechecks_the_destination(self, storage: Storage) -> None:
        """
        A webhook registered under a looser policy cannot be enabled under a stricter one.
        """
        loose = WebhookRegistry(
            storage, destinations=DestinationPolicy(allow_networks="10.0.0.0/8")
        )
        hook = create(loose, url="https://10.0.0.5/hook")
        strict = WebhookRegistry(storage)
        with pytest.raises(InvalidDestination) as info:
            strict.enable(ADMIN, hook.id)
        assert info.value.field == "url"
        assert strict.get(ADMIN, hook.id).enabled is False
        assert loose.enable(ADMIN, hook.id).enabled is True

    def test_enable_rechecks_a_segment_endpoint(self, storage: Storage) -> None:
        """
        For a Segment webhook the re-check names segment_endpoint.
        """
        loose = WebhookRegistry(
            storage, destinations=DestinationPolicy(allow_networks="10.0.0.0/8")
        )
        hook = loose.create(
            ADMIN,
            name="S",
            kind="segment",
            write_key="wk",
            segment_endpoint="https://10.0.0.9",
            categories=[NPS],
        )
        with pytest.raises(InvalidDestination) as info:
            WebhookRegistry(storage).enable(ADMIN, hook.id)
        assert info.value.field == "segment_endpoint"


class TestDelete:
    def test_delete_is_permanent_and_keeps_history(self, registry: WebhookRegistry) -> None:
        """
        A deleted webhook is gone from get, list and subscribed; its audit history stays.
        """
        hook = create(registry, secret="s")
        registry.enable(ADMIN, hook.id)
        assert registry.delete(ADMIN, hook.id) is None
        with pytest.raises(UnknownWebhook):
            registry.get(ADMIN, hook.id)
        assert registry.list(ADMIN) == []
        assert registry.subscribed(NPS) == []
        assert actions(registry, webhook_id=hook.id) == ["delete", "enable", "create"]
        changes = registry.audit(ADMIN, action="delete")[0].changes
        assert changes["name"] == ("Hook", None)
        assert changes["secret"] == ("<redacted>", None)
        with pytest.raises(UnknownWebhook):
            registry.delete(ADMIN, hook.id)


class TestRotation:
    def test_rotation_keeps_the_old_secret_for_the_grace_period(
        self, registry: WebhookRegistry, clock: FrozenClock
    ) -> None:
        """
        After a rotation at T both secrets sign until T+24h; from T+24h only the new one does.
        """
        hook = create(registry, secret="old-secret")
        rotated = registry.rotate_secret(ADMIN, hook.id, "new-secret")
        assert rotated.previous_secrets == (
            RetiredSecret(secret="old-secret", expires_at=START + timedelta(hours=24)),
        )
        at = START + timedelta(hours=1)
        assert [s.reveal() for s in rotated.signing_secrets(at)] == ["new-secret", "old-secret"]
        later = START + timedelta(hours=24, seconds=1)
        assert [s.reveal() for s in rotated.signing_secrets(later)] == ["new-secret"]
        assert [s.reveal() for s in rotated.signing_secrets(START + timedelta(hours=24))] == [
            "new-secret"
        ]
        latest = registry.audit(ADMIN)[0]
        assert latest.action == "rotate_secret"
        assert dict(latest.changes) == {
            "secret": ("<redacted>", "<redacted>"),
            "previous_secrets": ((), ((START + timedelta(hours=24)).isoformat(),)),
        }

    def test_generated_secret(self, registry: WebhookRegistry) -> None:
        """
        Without a new secret a random whsec_ secret of 32 bytes is generated.
        """
        with pytest.warns(UnsignedWebhookWarning):
            hook = create(registry, unsigned=True)
        rotated = registry.rotate_secret(ADMIN, hook.id)
        assert rotated.secret is not None
        assert rotated.secret.reveal().startswith("whsec_")
        assert len(rotated.secret.standard_key) == 32
        assert rotated.previous_secrets == ()  # there was no secret to retire

    def test_at_most_three_retired_secrets_newest_first(
        self, registry: WebhookRegistry, clock: FrozenClock
    ) -> None:
        """
        Rotating five times within the grace period keeps the three most recent old secrets.
        """
        hook = create(registry, secret="s0")
        for i in range(1, 6):
            clock.advance(minutes=1)
            hook = registry.rotate_secret(ADMIN, hook.id, f"s{i}")
        assert [r.secret.reveal() for r in hook.previous_secrets] == ["s4", "s3", "s2"]
        assert [s.reveal() for s in hook.signing_secrets(clock())] == ["s5", "s4", "s3", "s2"]

    def test_expired_secrets_are_pruned(
        self, registry: WebhookRegistry, clock: FrozenClock
    ) -> None:
        """
        A rotation drops retired secrets that have expired.
        """
        hook = create(registry, secret="s0")
        registry.rotate_secret(ADMIN, hook.id, "s1", grace=timedelta(hours=1))
        clock.advance(hours=2)
        hook = registry.rotate_secret(ADMIN, hook.id, "s2")
        assert [r.secret.reveal() for r in hook.previous_secrets] == ["s1"]

    def test_zero_grace_revokes_at_once(self, registry: WebhookRegistry) -> None:
        """
        A grace of zero keeps no old secret (for a leaked one).
        """
        hook = create(registry, secret="leaked")
        assert registry.rotate_secret(ADMIN, hook.id, grace=timedelta(0)).previous_secrets == ()

    def test_rotating_back_to_a_retired_secret(self, registry: WebhookRegistry) -> None:
        """
        A retired secret made current again is not also kept as retired.
        """
        hook = create(registry, secret="a")
        registry.rotate_secret(ADMIN, hook.id, "b")
        hook = registry.rotate_secret(ADMIN, hook.id, Secret("a"))
        assert [r.secret.reveal() for r in hook.previous_secrets] == ["b"]

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"new_secret": "same"}, "new_secret"),
            ({"new_secret": ""}, "new_secret"),
            ({"grace": timedelta(seconds=-1)}, "grace"),
            ({"grace": timedelta(days=31)}, "grace"),
            ({"grace": 3600}, "grace"),
        ],
    )
    def test_bad_rotations(
        self, registry: WebhookRegistry, storage: Storage, kwargs: dict[str, Any], field: str
    ) -> None:
        """
        The same secret again, an empty one, or a grace outside 0-30 days is refused.
        """
        hook = create(registry, secret="same")
        before = snapshot(storage)
        with pytest.raises(ValidationError) as info:
            registry.rotate_secret(ADMIN, hook.id, **kwargs)
        assert info.value.field == field
        assert snapshot(storage) == before

    def test_segment_webhooks_have_no_secret(self, registry: WebhookRegistry) -> None:
        """
        Rotating a Segment webhook's secret is refused: it has a write key instead.
        """
        hook = registry.create(ADMIN, name="S", kind="segment", write_key="wk", categories=[NPS])
        with pytest.raises(ValidationError) as info:
            registry.rotate_secret(ADMIN, hook.id)
        assert info.value.field == "secret"


class TestReads:
    def test_list_filters(self, registry: WebhookRegistry, clock: FrozenClock) -> None:
        """
        list returns enabled and disabled webhooks, oldest first, narrowed by each filter given.
        """
        a = create(registry, name="A")
        clock.advance(seconds=1)
        b = registry.enable(ADMIN, create(registry, name="B", categories=["pollSubmitted"]).id)
        clock.advance(seconds=1)
        c = registry.create(ADMIN, name="C", kind="segment", write_key="wk", categories=[NPS])
        assert registry.list(ADMIN) == [a, b, c]
        assert registry.list(ADMIN, enabled=True) == [b]
        assert registry.list(ADMIN, enabled=False) == [a, c]
        assert registry.list(ADMIN, kind="segment") == [c]
        assert registry.list(ADMIN, category=NPS) == [a, c]
        assert registry.list(ADMIN, category="npsSubmitted", kind=WebhookKind.URL) == [a]
        with pytest.raises(ValidationError):
            registry.list(ADMIN, category="pageViewed")
        with pytest.raises(ValidationError):
            registry.list(ADMIN, kind="fax")

    def test_subscribed_is_enabled_and_subscribed_only(
        self, registry: WebhookRegistry, clock: FrozenClock
    ) -> None:
        """
        subscribed gives the dispatcher the enabled webhooks for a category, Segment ones too.
        """
        on = registry.enable(ADMIN, create(registry, name="On").id)
        create(registry, name="Off")
        clock.advance(seconds=1)
        seg = registry.enable(
            ADMIN,
            registry.create(
                ADMIN,
                name="Seg",
                kind="segment",
                write_key="wk",
                categories=[NPS, "pollSubmitted"],
            ).id,
        )
        assert registry.subscribed(NPS) == [on, seg]
        assert registry.subscribed("pollSubmitted") == [seg]
        assert registry.subscribed(EventCategory.ACCOUNT_CREATED) == []
        with pytest.raises(ValidationError) as info:
            registry.subscribed("pageViewed")
        assert info.value.field == "category"

    def test_audit_filters(self, registry: WebhookRegistry, clock: FrozenClock) -> None:
        """
        The audit log filters by webhook, actor, action and time, newest first, up to a limit.
        """
        a = create(registry, name="A")
        clock.advance(hours=1)
        b = registry.create(OTHER_ADMIN, name="B", url=URL, categories=[NPS])
        clock.advance(hours=1)
        registry.enable(ADMIN, a.id)
        assert actions(registry, webhook_id=a.id) == ["enable", "create"]
        assert [e.webhook_id for e in registry.audit(ADMIN, actor_id="admin-2")] == [b.id]
        assert actions(registry, action="create") == ["create", "create"]
        assert len(registry.audit(ADMIN, since=START + timedelta(hours=1))) == 2
        assert len(registry.audit(ADMIN, until=START + timedelta(hours=1))) == 1
        assert len(registry.audit(ADMIN, limit=1)) == 1
        with pytest.raises(ValidationError) as info:
            registry.audit(ADMIN, limit=0)
        assert info.value.field == "limit"
        with pytest.raises(ValidationError) as info:
            registry.audit(ADMIN, since=datetime(2026, 1, 1))
        assert info.value.field == "since"


class TestNoSecretLeaks:
    SECRET = "SECRET-MARKER-!&?<>\"'\\-ü"
    WRITE_KEY = "WRITEKEY-MARKER-ß"
    HEADER_VALUE = "HEADER-MARKER-token"
    QUERY = "QUERY-MARKER"

    def markers(self) -> list[str]:
        """
        The values that must never show, and their base64 forms (raw and as Basic-auth user).
        """
        values = [self.SECRET, self.WRITE_KEY, self.HEADER_VALUE, self.QUERY]
        encoded = [base64.b64encode(v.encode()).decode() for v in values]
        basic = base64.b64encode((self.WRITE_KEY + ":").encode()).decode()
        return [*values, *encoded, basic]

    def test_repr_str_exceptions_and_audit_never_show_secrets(self, storage: Storage) -> None:
        """
        No repr, str, exception or audit entry contains a secret, write key, header value or query.
        """
        registry = WebhookRegistry(storage)
        texts: list[str] = []
        hook = registry.create(
            ADMIN,
            name="Leaky?",
            url=f"https://hooks.example.com/x?token={self.QUERY}",
            secret=self.SECRET,
            headers={"X-Api-Key": self.HEADER_VALUE},
            categories=[NPS],
        )
        seg = registry.create(
            ADMIN, name="Seg", kind="segment", write_key=self.WRITE_KEY, categories=[NPS]
        )
        registry.rotate_secret(ADMIN, hook.id, self.SECRET + "-2")
        registry.update(ADMIN, hook.id, headers={"X-Api-Key": self.HEADER_VALUE + "-2"})
        registry.update(ADMIN, seg.id, write_key=self.WRITE_KEY + "-2")
        for failing in (
            lambda: registry.create(ADMIN, name="", url=URL, secret=self.SECRET, categories=[NPS]),
            lambda: registry.create(
                ADMIN, name="x", url=URL, secret="whsec_" + self.SECRET, categories=[NPS]
            ),
            lambda: registry.create(
                ADMIN, name="x", url=URL, write_key=self.WRITE_KEY, categories=[NPS]
            ),
            lambda: registry.create(
                ADMIN,
                name="x",
                url=URL,
                headers={"X-A": self.HEADER_VALUE + "\r\n"},
                categories=[NPS],
            ),
            lambda: registry.create(
                ADMIN,
                name="x",
                url=f"http://u:{self.SECRET}@h.example/?{self.QUERY}",
                categories=[NPS],
            ),
            lambda: registry.rotate_secret(ADMIN, hook.id, self.SECRET + "-2"),
            lambda: registry.update(ADMIN, hook.id, expected_version=1, name="stale"),
            lambda: registry.rotate_secret(USER, hook.id, self.SECRET),
        ):
            with pytest.raises(Exception) as info:
                failing()
            texts += [str(info.value), repr(info.value), repr(info.value.args)]
        for w in (*registry.list(ADMIN), hook, seg):
            texts += [repr(w), str(w), repr(w.previous_secrets), repr(w.secret), repr(w.write_key)]
            texts += [repr(attrs.asdict(w, recurse=False)["secret"])]
        for e in registry.audit(ADMIN):
            texts += [repr(e), str(e), repr(dict(e.changes))]
        texts += [repr(registry), repr(storage), str(pickle.dumps(registry.audit(ADMIN)))]
        blob = "\n".join(texts)
        assert "<redacted>" in blob
        for marker in self.markers():
            assert marker not in blob, marker

    def test_webhook_repr_shows_only_safe_fields(self, registry: WebhookRegistry) -> None:
        """
        The repr shows id, name, kind, enabled, categories and the host, not the path.
        """
        hook = create(registry, url="https://hooks.example.com/catch/secret-path?q=1")
        assert repr(hook) == (
            f"<Webhook(id={hook.id!r}, name='Hook', kind='url', enabled=False, "
            "categories=['npsSubmitted'], host='hooks.example.com')>"
        )
        assert "secret-path" not in repr(hook)


class TestConcurrency:
    def test_fifty_concurrent_updates_lose_nothing(self, registry: WebhookRegistry) -> None:
        """
        Fifty threads increment a counter, retrying on conflict: all fifty land, each audited.
        """
        hook = create(registry, name="count 0")
        barrier = threading.Barrier(50)

        def increment(_: int) -> None:
            barrier.wait()
            while True:
                current = registry.get(ADMIN, hook.id)
                n = int(current.name.split()[1])
                try:
                    registry.update(
                        ADMIN, hook.id, expected_version=current.version, name=f"count {n + 1}"
                    )
                except ConflictError:
                    continue
                return

        with ThreadPoolExecutor(max_workers=50) as pool:
            list(pool.map(increment, range(50)))
        final = registry.get(ADMIN, hook.id)
        assert final.name == "count 50"
        assert final.version == 51
        updates = registry.audit(ADMIN, action="update", limit=1000)
        assert len(updates) == 50
        assert sorted(e.changes["name"] for e in updates) == sorted(
            (f"count {i}", f"count {i + 1}") for i in range(50)
        )

    def test_unpinned_changes_retry_on_conflict(self, clock: FrozenClock) -> None:
        """
        Without expected_version a change that loses a race is re-read and re-applied.
        """
        storage = ConflictingStorage(InMemoryStorage(), conflicts=3)
        registry = WebhookRegistry(storage, clock=clock)
        hook = create(registry)
        assert registry.enable(ADMIN, hook.id).enabled
        assert storage.conflicts == 0
        storage.conflicts = 3
        registry.delete(ADMIN, hook.id)
        assert registry.list(ADMIN) == []

    def test_unpinned_changes_give_up_after_many_conflicts(self, clock: FrozenClock) -> None:
        """
        A change that keeps losing races raises ConflictError in the end.
        """
        storage = ConflictingStorage(InMemoryStorage(), conflicts=1000)
        registry = WebhookRegistry(storage, clock=clock)
        hook = create(registry)
        with pytest.raises(ConflictError):
            registry.enable(ADMIN, hook.id)
        assert storage.conflicts == 1000 - 10

    def test_pinned_changes_do_not_retry(self, clock: FrozenClock) -> None:
        """
        With expected_version a lost race is the caller's conflict: one try only.
        """
        storage = ConflictingStorage(InMemoryStorage(), conflicts=1)
        registry = WebhookRegistry(storage, clock=clock)
        hook = create(registry)
        with pytest.raises(ConflictError):
            registry.update(ADMIN, hook.id, expected_version=1, name="x")
        assert storage.conflicts == 0


class ConflictingStorage(RecordingStorage):
    """
    A Storage whose next *conflicts* replace/delete calls fail as if someone got there first.
    """

    def __init__(self, inner: Storage, conflicts: int) -> None:
        super().__init__(inner)
        self.conflicts = conflicts

    def _maybe_conflict(self) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise ConflictError("someone else got there first")

    def replace_webhook(self, webhook: Webhook, **kwargs: Any) -> None:
        self._maybe_conflict()
        self.inner.replace_webhook(webhook, **kwargs)

    def delete_webhook(self, webhook_id: str, **kwargs: Any) -> None:
        self._maybe_conflict()
        self.inner.delete_webhook(webhook_id, **kwargs)


class TestWebhookValue:
    def test_webhook_rules_hold_without_the_registry(self) -> None:
        """
        A Webhook built directly enforces the same field rules (naive times, versions, kinds).
        """
        base: dict[str, Any] = {
            "id": "wh_1",
            "name": "n",
            "url": URL,
            "categories": [NPS],
            "created_at": START,
            "created_by": "u",
            "updated_at": START,
            "updated_by": "u",
        }
        for overrides, field in [
            ({"created_at": datetime(2026, 1, 1)}, "created_at"),
            ({"updated_at": "now"}, "updated_at"),
            ({"version": 0}, "version"),
            ({"version": True}, "version"),
            ({"created_by": " padded "}, "created_by"),
            ({"id": ""}, "id"),
            ({"enabled": True, "disabled_reason": "x"}, "disabled_reason"),
            ({"previous_secrets": ["not retired"]}, "previous_secrets"),
            ({"previous_secrets": "abc"}, "previous_secrets"),
            (
                {
                    "previous_secrets": [
                        RetiredSecret(secret=f"s{i}", expires_at=START) for i in range(4)
                    ]
                },
                "previous_secrets",
            ),
            (
                {"kind": "segment", "url": None, "write_key": "wk", "segment_endpoint": ""},
                "segment_endpoint",
            ),
            (
                {
                    "kind": "segment",
                    "url": None,
                    "write_key": "wk",
                    "previous_secrets": [RetiredSecret(secret="s", expires_at=START)],
                },
                "secret",
            ),
        ]:
            with pytest.raises(ValidationError) as info:
                Webhook(**{**base, **overrides})
            assert info.value.field == field, overrides

    def test_times_are_normalized_to_utc(self) -> None:
        """
        Aware datetimes in another zone become the same instant in UTC.
        """
        east = datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9)))
        retired = RetiredSecret(secret="s", expires_at=east)
        assert retired.expires_at == START
        assert retired.expires_at.tzinfo == timezone.utc

    def test_repr_survives_an_unparseable_url(self) -> None:
        """
        A URL urllib cannot split shows no host rather than failing the repr.
        """
        hook = Webhook(
            id="wh_1",
            name="n",
            url="https://[broken/",
            categories=[NPS],
            created_at=START,
            created_by="u",
            updated_at=START,
            updated_by="u",
        )
        assert repr(hook).endswith("host=None)>")

    def test_webhooks_pickle_and_hash(self, registry: WebhookRegistry) -> None:
        """
        Webhooks survive pickling and can be set members.
        """
        hook = registry.rotate_secret(ADMIN, create(registry, headers={"X-A": "1"}, secret="s").id)
        assert pickle.loads(pickle.dumps(hook)) == hook
        assert len({hook, hook}) == 1


class TestAuditValues:
    def test_urls_in_the_audit_log_lose_credentials_query_and_fragment(self) -> None:
        """
        The audit log shows URLs without userinfo, query or fragment values.
        """
        hook = Webhook(
            id="wh_1",
            name="n",
            url="https://user:pw@h.example/p?token=t#frag",
            categories=[NPS],
            created_at=START,
            created_by="u",
            updated_at=START,
            updated_by="u",
        )
        assert created(hook)["url"] == (
            None,
            "https://<redacted>@h.example/p?<redacted>#<redacted>",
        )
        broken = attrs.evolve(hook, url="https://[broken/")
        assert diff(hook, broken)["url"][1] == "<redacted>"

    def test_entries_accept_only_pairs_of_plain_values(self) -> None:
        """
        Changes must be (old, new) pairs of JSON-like values; anything else names "changes".
        """
        base: dict[str, Any] = {
            "id": "aud_1",
            "at": START,
            "actor_id": "u",
            "action": "update",
            "webhook_id": "wh_1",
        }
        for changes in ({"x": (1, 2, 3)}, {"x": "ab"}, {"x": (object(), None)}):
            with pytest.raises(ValidationError) as info:
                AuditEntry(**base, changes=changes)
            assert info.value.field == "changes"
        entry = AuditEntry(**base, changes={"x": [["a"], {"k": "v"}]})
        assert entry.changes["x"] == (("a",), {"k": "v"})


class TestFrozenMap:
    def test_immutable_hashable_and_picklable(self) -> None:
        """
        A FrozenMap refuses changes, hashes by content, compares with mappings and pickles.
        """
        m = FrozenMap({"a": "1"})
        with pytest.raises(AttributeError):
            m._data = {}  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del m._data
        with pytest.raises(TypeError):
            m["b"] = "2"  # type: ignore[index]
        assert hash(m) == hash(FrozenMap([("a", "1")]))
        assert m == {"a": "1"}
        assert m != [("a", "1")]
        assert repr(m) == "FrozenMap({'a': '1'})"
        assert pickle.loads(pickle.dumps(m)) == m
        assert str(WebhookKind.SEGMENT) == "segment"


def test_registry_repr_hides_clock_and_ids(registry: WebhookRegistry) -> None:
    """
    The registry's repr shows its storage and policies, nothing secret.
    """
    text = repr(registry)
    assert text.startswith("WebhookRegistry(storage=")
    assert "policy=AdminOnly()" in text
    assert "clock=" not in text
    assert "ids=" not in text


@pytest.mark.slow
def test_the_example_script_runs(tmp_path: Path) -> None:
    """
    examples/manage_webhooks.py runs end to end on a SQLite file and reports each step.
    """
    script = Path(__file__).resolve().parents[1] / "examples" / "manage_webhooks.py"
    db = tmp_path / "example.sqlite3"
    for _ in range(2):  # a second run on the same file works too
        done = subprocess.run(
            [sys.executable, str(script), "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        for step in ("created", "enabled", "rotated", "disabled", "deleted", "audit"):
            assert step in done.stdout.lower()
    assert db.exists()
