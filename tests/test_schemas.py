"""
The generated JSON Schemas and OpenAPI document (``pendo_webhooks.schemas``, ``pendo-webhooks
schema``): every body the library sends validates, mutated bodies fail naming the field, and
the schemas name exactly the keys the serializer writes, so they cannot drift from it.
"""

from __future__ import annotations

import copy
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate as validate_openapi

from pendo_webhooks.cli import main
from pendo_webhooks.events import (
    EVENT_CLASSES,
    EventCategory,
    NpsSubmitted,
    parse_event,
    to_wire,
    to_wire_dict,
)
from pendo_webhooks.exceptions import InvalidEventPayload, UnknownEventType, ValidationError
from pendo_webhooks.formatters import SegmentFormatter
from pendo_webhooks.schemas import (
    JSON_SCHEMA_DIALECT,
    event_schema,
    events_schema,
    openapi_document,
    segment_schema,
)
from pendo_webhooks.testing import sample_event

from . import strategies as hs


DATA = Path(__file__).parent / "data"
CATEGORIES = [c.value for c in EventCategory]


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(schema: dict[str, Any] | jsonschema.Draft202012Validator, body: Any) -> list[str]:
    """
    Every error, as ``"<JSON path>: <message>"`` (the path names the field, or the message does).
    """
    checker = schema if isinstance(schema, jsonschema.Draft202012Validator) else validator(schema)
    return [f"{e.json_path}: {e.message}" for e in checker.iter_errors(body)]


def wire(event: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(to_wire(event))
    return loaded


# -- every body the library sends validates -----------------------------------------------------


@pytest.mark.parametrize("name", CATEGORIES)
def test_every_sample_event_validates_against_its_schema_and_the_union(name: str) -> None:
    body = wire(sample_event(name))
    assert problems(event_schema(name), body) == []
    assert problems(events_schema(), body) == []
    assert event_schema(name) == event_schema(EVENT_CLASSES[EventCategory(name)])
    assert event_schema(name)["$schema"] == JSON_SCHEMA_DIALECT


def known_answers() -> list[Path]:
    return sorted(DATA.glob("*.json"))


@pytest.mark.parametrize("path", known_answers(), ids=lambda p: p.name)
def test_every_known_answer_body_validates(path: Path) -> None:
    body = json.loads(path.read_bytes())
    assert problems(event_schema(body["event"]), body) == []
    assert problems(events_schema(), body) == []


@pytest.mark.parametrize("path", sorted((DATA / "segment").glob("*.json")), ids=lambda p: p.name)
def test_every_known_answer_segment_message_validates(path: Path) -> None:
    assert problems(segment_schema(), json.loads(path.read_bytes())) == []


def test_the_known_answers_cover_every_segment_event_type() -> None:
    names = {json.loads(p.read_bytes())["event"] for p in (DATA / "segment").glob("*.json")}
    assert names == set(CATEGORIES)


def test_a_segment_message_names_exactly_one_visitor_key() -> None:
    """
    ``userId`` for an identified visitor, ``anonymousId`` for a ``_PENDO_T_`` one: never
    both, never neither, never an anonymous id as ``userId``.
    """
    anonymous = json.loads((DATA / "segment" / "guideDisplayed.anonymous.json").read_bytes())
    assert problems(segment_schema(), anonymous) == []
    assert_same_keys(segment_schema(), anonymous)
    identified = json.loads((DATA / "segment" / "guideDisplayed.json").read_bytes())
    both = {**identified, "anonymousId": anonymous["anonymousId"]}
    neither = {k: v for k, v in identified.items() if k != "userId"}
    disguised = {**identified, "userId": anonymous["anonymousId"]}
    for wrong in (both, neither, disguised):
        assert problems(segment_schema(), wrong) != []


@pytest.mark.parametrize("name", CATEGORIES)
def test_every_formatted_segment_message_validates(name: str) -> None:
    message = json.loads(SegmentFormatter().format(sample_event(name)))
    assert problems(segment_schema(), message) == []
    assert_same_keys(segment_schema(), message)


# -- the schemas name exactly the keys to_wire writes -------------------------------------------


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        *_, kind, name = schema["$ref"].split("/")
        schema = root["$defs" if kind == "$defs" else kind][name]
    return schema


def assert_same_keys(
    schema: dict[str, Any], value: Any, root: dict[str, Any] | None = None
) -> None:
    """
    Every object in *value* has exactly the keys its schema names (free-form objects aside).
    """
    root = schema if root is None else root
    schema = resolve(schema, root)
    if "allOf" in schema:  # a union: the branch of the value's event type
        (branch,) = [
            b for b in schema["allOf"] if b["if"]["properties"]["event"]["const"] == value["event"]
        ]
        assert_same_keys(branch["then"], value, root)
        return
    if isinstance(value, dict) and "properties" in schema:
        # A oneOf of required keys (a Segment message's userId or anonymousId): exactly one.
        choices = [key for branch in schema.get("oneOf", []) for key in branch["required"]]
        assert sum(key in value for key in choices) == (1 if choices else 0)
        named = [k for k in schema["properties"] if k not in choices or k in value]
        assert (
            list(value)
            == named
            == sorted([*schema["required"], *(set(choices) & set(value))], key=named.index)
        )
        for key, item in value.items():
            assert_same_keys(schema["properties"][key], item, root)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            assert_same_keys(schema["items"], item, root)


@pytest.mark.parametrize("name", CATEGORIES)
def test_the_schema_names_the_serializers_keys_in_its_order(name: str) -> None:
    event = sample_event(name)
    schema = event_schema(name)
    assert list(schema["properties"]) == list(to_wire_dict(event))
    assert_same_keys(schema, wire(event))
    assert_same_keys(events_schema(), wire(event))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(hs.events())
def test_whatever_to_wire_produces_validates(event: Any) -> None:
    """
    The property: every event the models can hold serializes to a body its schema accepts,
    and the schema names every key of it.
    """
    body = wire(event)
    assert problems(VALIDATORS[event.category.value], body) == []
    assert_same_keys(SCHEMAS[event.category.value], body)
    message = json.loads(SegmentFormatter().format(event))
    assert problems(SEGMENT_VALIDATOR, message) == []


SCHEMAS = {name: event_schema(name) for name in CATEGORIES}
VALIDATORS = {name: validator(schema) for name, schema in SCHEMAS.items()}
SEGMENT = segment_schema()
SEGMENT_VALIDATOR = validator(SEGMENT)


# -- mutated bodies fail, naming the field -------------------------------------------------------


def mutated(body: dict[str, Any], path: str, value: Any = KeyError) -> dict[str, Any]:
    """
    A deep copy of *body* with the dotted *path* set to *value*, or removed (``KeyError``).
    """
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = out
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return out


MUTATIONS = [
    # (event, path, new value or KeyError for "missing", what the message must name)
    ("npsSubmitted", "visitorId", KeyError, "'visitorId' is a required property"),
    ("npsSubmitted", "properties.nps.rating", KeyError, "$.properties.nps: 'rating' is a"),
    ("npsSubmitted", "properties.nps.rating", 11, "$.properties.nps.rating: 11 is greater"),
    ("npsSubmitted", "properties.nps.rating", "9", "$.properties.nps.rating: '9' is not of"),
    ("npsSubmitted", "properties.nps.source", "sms", "$.properties.nps.source: 'sms' is not"),
    ("guideDisplayed", "timestamp", "1626803876", "$.timestamp: '1626803876' is not of type"),
    ("guideDisplayed", "properties.guideProperties.steps.0.resetAt", KeyError, "'resetAt'"),
    ("guideDisplayed", "properties.guideProperties.steps", {}, "$.properties.guidePropert"),
    ("guideDisplayed", "app.id", 2**63, "$.app.id: 9223372036854775808 is greater"),
    ("visitorCreated", "properties.sampleGroup", 1.5, "$.properties.sampleGroup: 1.5 is not"),
    ("visitorCreated", "properties", KeyError, "'properties' is a required property"),
    ("trackEventReceived", "properties.eventProperties", [], "$.properties.eventProperties"),
    ("pollSubmitted", "properties.poll.response", {"a": 1}, "$.properties.poll.response"),
    ("accountCreated", "uniqueId", "has space", "$.uniqueId: 'has space' does not match"),
    ("accountCreated", "accountId", "", "$.accountId: '' should be non-empty"),
    ("parentChildAccountCreated", "properties.childAccountId", 7, "childAccountId: 7 is not"),
]


@pytest.mark.parametrize(("name", "path", "value", "expected"), MUTATIONS)
def test_a_mutated_body_fails_naming_the_field(
    name: str, path: str, value: Any, expected: str
) -> None:
    body = mutated(wire(sample_event(name)), path, value)
    for schema in (event_schema(name), events_schema()):
        found = problems(schema, body)
        assert any(expected in p for p in found), found
    with pytest.raises(InvalidEventPayload):  # the parser refuses it as well
        parse_event(body)


@pytest.mark.parametrize("name", ["pageViewed", "NPSSUBMITTED", 5, None])
def test_an_unknown_event_name_fails_on_event(name: Any) -> None:
    body = mutated(wire(sample_event("npsSubmitted")), "event", name)
    assert any(p.startswith("$.event: ") for p in problems(events_schema(), body))
    assert any(p.startswith("$.event: ") for p in problems(event_schema("npsSubmitted"), body))
    with pytest.raises((UnknownEventType, InvalidEventPayload)):
        parse_event(body)


def test_a_body_of_another_type_fails_the_schema_of_the_one_expected() -> None:
    body = wire(sample_event("guideDisplayed"))
    assert "$.event: 'npsSubmitted' was expected" in problems(event_schema(NpsSubmitted), body)


def test_unknown_keys_are_allowed_as_the_parser_ignores_them() -> None:
    body = mutated(wire(sample_event("npsSubmitted")), "properties.newKey", {"x": 1})
    body["anotherNewKey"] = True
    assert problems(events_schema(), body) == []
    assert parse_event(body) == sample_event("npsSubmitted")


def test_a_mutated_segment_message_fails_naming_the_field() -> None:
    message = json.loads(SegmentFormatter().format(sample_event("npsSubmitted")))
    found = problems(SEGMENT, mutated(message, "context.pendo.app.id", "x"))
    assert any(p.startswith("$.context.pendo.app.id: 'x' is not of type") for p in found), found
    found = problems(SEGMENT, mutated(message, "timestamp", "2021-07-20T17:57:56Z"))
    assert any(p.startswith("$.timestamp: ") for p in found), found
    found = problems(SEGMENT, mutated(message, "event", "pageViewed"))
    assert any(p.startswith("$.event: ") for p in found), found


# -- what Pendo does not publish is said -------------------------------------------------------


def test_the_schemas_say_what_pendo_does_not_publish() -> None:
    assert "Pendo does not publish this body" in event_schema("pollSubmitted")["description"]
    pair = event_schema("parentChildAccountCreated")
    assert "Pendo does not publish it" in pair["description"]
    assert "::" in pair["properties"]["accountId"]["description"]
    for name in ("guideDisplayed", "npsSubmitted", "accountCreated"):
        assert "does not publish" not in event_schema(name)["description"]


def test_a_schema_is_a_new_dict_every_time() -> None:
    first = event_schema("npsSubmitted")
    first["properties"].clear()
    first["$defs"]["App"]["properties"].clear()
    assert event_schema("npsSubmitted")["properties"]
    assert event_schema("npsSubmitted")["$defs"]["App"]["properties"]


@pytest.mark.parametrize("event", ["pageViewed", 3, None])
def test_an_unknown_event_type_has_no_schema(event: Any) -> None:
    with pytest.raises(UnknownEventType):
        event_schema(event)


# -- the OpenAPI document -------------------------------------------------------------------------


def body_schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    """
    The webhook's body schema, with the document's components for its references.
    """
    ref = document["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "components": document["components"],
        **ref["schema"],
    }


def test_the_openapi_document_is_valid_and_lists_every_event_type() -> None:
    document = openapi_document()
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"
    assert list(document["webhooks"]) == CATEGORIES
    for name in CATEGORIES:
        post = document["webhooks"][name]["post"]
        body = wire(sample_event(name))
        assert problems(body_schema(document, name), body) == []
        broken = mutated(body, "visitorId")
        assert problems(body_schema(document, name), broken) == [
            "$: 'visitorId' is a required property"
        ]
        assert set(post["responses"]) == {"2XX", "410", "429", "5XX", "default"}
    assert "Pendo does not publish" in document["webhooks"]["pollSubmitted"]["post"]["description"]


def test_the_openapi_document_has_the_signature_headers_and_retry_behaviour() -> None:
    document = openapi_document(signature_header="X-Acme-Signature")
    validate_openapi(document)
    parameters = document["components"]["parameters"]
    names = {p["name"]: p["required"] for p in parameters.values() if p["in"] == "header"}
    assert names == {
        "webhook-id": True,
        "webhook-timestamp": True,
        "webhook-signature": False,
        "X-Acme-Signature": False,
    }
    responses = document["webhooks"]["guideDisplayed"]["post"]["responses"]
    assert "retried at most 5 times (6 attempts in all)" in responses["429"]["description"]
    assert "retried at most 5 times" in responses["5XX"]["description"]
    assert "webhook is disabled" in responses["410"]["description"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "not retried" in responses["default"]["description"]


def test_a_host_adds_its_own_info_and_servers() -> None:
    document = openapi_document(
        info={"title": "Acme webhooks", "version": "2", "contact": {"email": "dev@acme.example"}},
        servers=["https://acme.example", {"url": "https://eu.acme.example", "description": "EU"}],
    )
    validate_openapi(document)
    assert document["info"]["title"] == "Acme webhooks"
    assert document["info"]["version"] == "2"
    assert document["info"]["contact"] == {"email": "dev@acme.example"}
    assert "description" in document["info"]  # the default one is kept
    assert document["servers"] == [
        {"url": "https://acme.example"},
        {"url": "https://eu.acme.example", "description": "EU"},
    ]
    assert "servers" not in openapi_document()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"info": "Acme"}, "info"),
        ({"info": {"title": ""}}, "info.title"),
        ({"info": {"version": 2}}, "info.version"),
        ({"servers": "https://acme.example"}, "servers"),
        ({"servers": [{"description": "no url"}]}, "servers[0].url"),
        ({"signature_header": "Content-Type"}, "signature_header"),
    ],
)
def test_bad_info_or_servers_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        openapi_document(**kwargs)
    assert caught.value.field == field


# -- pendo-webhooks schema -----------------------------------------------------------------------


@pytest.fixture
def invoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    def run(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return run


@pytest.fixture
def info_file(tmp_path: Path) -> Path:
    path = tmp_path / "info.json"
    path.write_text(json.dumps({"title": "From a file", "version": "7"}), encoding="utf-8")
    return path


def test_cli_prints_each_schema(invoke: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = invoke("schema", "npsSubmitted")
    assert (code, err) == (0, "")
    assert json.loads(out) == event_schema("npsSubmitted")
    assert out == json.dumps(event_schema("npsSubmitted"), indent=2, ensure_ascii=False) + "\n"
    assert json.loads(invoke("schema")[1]) == events_schema()
    assert json.loads(invoke("schema", "--segment")[1]) == segment_schema()


def test_cli_prints_the_openapi_document_with_the_hosts_info(
    invoke: Callable[..., tuple[int, str, str]], info_file: Path
) -> None:
    code, out, _ = invoke(
        "schema",
        "--openapi",
        "--info",
        str(info_file),
        "--description",
        "Acme's",
        "--server",
        "https://a.example",
        "--server",
        "https://b.example",
        "--signature-header",
        "X-Acme-Signature",
    )
    assert code == 0
    document = json.loads(out)
    validate_openapi(document)
    assert document["info"] == {"title": "From a file", "version": "7", "description": "Acme's"}
    assert [s["url"] for s in document["servers"]] == ["https://a.example", "https://b.example"]
    assert document == openapi_document(
        info={"title": "From a file", "version": "7", "description": "Acme's"},
        servers=["https://a.example", "https://b.example"],
        signature_header="X-Acme-Signature",
    )
    code, out, _ = invoke("schema", "--openapi", "--title", "T", "--version", "1", "--info", "-",
                          stdin=b'{"summary": "s"}')  # fmt: skip
    assert code == 0
    assert json.loads(out)["info"] == {
        **openapi_document()["info"],
        "title": "T",
        "version": "1",
        "summary": "s",
    }


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["schema", "pageViewed"], 3, "unknown event type: 'pageViewed'"),
        (["schema", "--title", "T"], 2, "go with --openapi"),
        (["schema", "npsSubmitted", "--openapi"], 2, "EVENT cannot go with"),
        (["schema", "--segment", "--openapi"], 2, "not allowed with argument"),
        (["schema", "--openapi", "--info", "-"], 3, "--info: is not JSON"),
        (["schema", "--openapi", "--info", "/nonexistent/info.json"], 3, "--info: cannot read"),
        (["schema", "--openapi", "--signature-header", "Host"], 3, "signature_header: is res"),
    ],
)
def test_cli_schema_errors(
    invoke: Callable[..., tuple[int, str, str]], argv: list[str], code: int, message: str
) -> None:
    got, out, err = invoke(*argv)
    assert (got, out) == (code, "")
    assert message in err


def test_cli_info_must_be_an_object(invoke: Callable[..., tuple[int, str, str]]) -> None:
    got, _, err = invoke("schema", "--openapi", "--info", "-", stdin=b"[1]")
    assert got == 3
    assert "--info: must hold a JSON object" in err


def test_cli_schema_help(invoke: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = invoke("schema", "--help")
    assert code == 0
    assert "--openapi" in out
    assert "exit codes:" in out
