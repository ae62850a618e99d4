"""campaigns.definition: loading, validation errors with field paths, round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from campaigns.definition import (
    CampaignDefinition,
    DefinitionError,
    definition_to_json,
    load_definition,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples"

SPRING_SALE = """\
name: spring-sale
channel: sms
audience:
  lists: [customers]
message:
  body: "Hi {first_name}, 20% off this week. Reply STOP to opt out"
  from: Clarion
"""


def base(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "channel": "sms",
        "audience": {"lists": ["customers"]},
        "message": {"body": "Hi {first_name}"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def errors_of(source: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(source)
    assert isinstance(caught.value, ValueError)
    return caught.value.errors


def test_spring_sale_example_is_exactly_the_documented_one() -> None:
    assert (EXAMPLES / "spring-sale.yaml").read_text() == SPRING_SALE
    defn = load_definition(EXAMPLES / "spring-sale.yaml")
    assert (defn.name, defn.channel, defn.provider) == ("spring-sale", "sms", None)
    assert defn.audience.lists == ["customers"]
    assert defn.message.body == "Hi {first_name}, 20% off this week. Reply STOP to opt out"
    assert defn.message.from_ == "Clarion"
    assert defn.message.defaults == {}
    assert defn.schedule is None


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates_and_round_trips(path: Path) -> None:
    defn = load_definition(path)
    stored = definition_to_json(defn)
    assert json.loads(json.dumps(stored)) == stored
    assert load_definition(stored) == defn
    assert load_definition(json.dumps(stored)) == defn


def test_sources_text_path_string_and_mapping_agree(tmp_path: Path) -> None:
    file = tmp_path / "d.yaml"
    file.write_text(SPRING_SALE)
    from_text = load_definition(SPRING_SALE)
    assert load_definition(file) == from_text
    assert load_definition(str(file)) == from_text
    assert load_definition(definition_to_json(from_text)) == from_text
    assert isinstance(from_text, CampaignDefinition)


def test_unknown_and_missing_keys_name_their_path() -> None:
    data = base(message={"bdy": "x"})
    del data["audience"]["lists"]
    assert errors_of(data) == ["audience.lists: field required", "message.bdy: unknown key"]
    assert errors_of(base(colour="red")) == ["colour: unknown key"]


def test_all_field_errors_are_reported_together() -> None:
    errors = errors_of(base(channel="fax", name="", audience={"lists": ["a", 5]}))
    assert errors == [
        "name: must not be empty",
        "channel: input should be 'sms', 'mms' or 'voice' (got 'fax')",
        "audience.lists[1]: input should be a valid string (got 5)",
    ]


def test_body_or_template_id_exactly_one() -> None:
    assert errors_of(base(message={"body": None})) == [
        "message.body: give exactly one of body and template_id"
    ]
    assert errors_of(base(message={"template_id": 7})) == [
        "message.body: give exactly one of body and template_id"
    ]
    assert errors_of(base(message={"body": "  "})) == ["message.body: must not be empty"]


def test_template_ids_clicksend_numbers_skillboss_text() -> None:
    defn = load_definition(base(message={"body": None, "template_id": "632497"}))
    assert defn.message.template_id == defn.message.clicksend_template_id() == 632497
    assert errors_of(base(message={"body": None, "template_id": "welcome"})) == [
        "message.template_id: a ClickSend template id is a number "
        "(a text id needs provider skillboss)"
    ]
    hub = load_definition(
        base(
            provider="skillboss",
            message={"body": None, "template_id": "welcome", "variables": {"name": "{first_name}"}},
        )
    )
    assert (hub.message.template_id, hub.message.variables) == ("welcome", {"name": "{first_name}"})
    with pytest.raises(ValueError, match="'welcome' is not a ClickSend id"):
        hub.message.clicksend_template_id()
    assert errors_of(base(message={"variables": {"a": "b"}})) == [
        "message.variables: only with provider skillboss"
    ]
    assert errors_of(base(message={"template_id": True, "body": None})) == [
        "message.template_id: not a template id: True"
    ]


def test_sender_ids() -> None:
    assert load_definition(base(message={"from": "+61411111111"})).message.from_ == "+61411111111"
    assert errors_of(base(message={"from": "ClarionStores"})) == [
        "message.from: an alphanumeric sender ID has at most 11 characters"
    ]
    assert errors_of(base(message={"from": "Clar!on"})) == [
        "message.from: an alphanumeric sender ID has only letters, digits and spaces"
    ]


def test_defaults_must_name_placeholders_of_the_body() -> None:
    ok = load_definition(base(message={"defaults": {"first_name": "there"}}))
    assert ok.message.defaults == {"first_name": "there"}
    assert errors_of(base(message={"defaults": {"frist_name": "there"}})) == [
        "message.defaults.frist_name: the message has no {frist_name} placeholder"
    ]
    assert errors_of(base(message={"defaults": {"first name": "x"}})) == [
        "message.defaults.first name: 'first name' is not a field name "
        "(letters, digits, underscore)"
    ]


def test_channel_options() -> None:
    assert errors_of(base(message={"subject": "Hi", "voice": "male"})) == [
        "message.subject: only for channel mms",
        "message.voice: only for channel voice",
    ]
    assert errors_of(base(channel="mms", message={"subject": "x" * 21})) == [
        "message.media_file: field required for channel mms",
        "message.subject: longer than 20 characters",
    ]
    mms = load_definition(
        base(channel="mms", message={"media_file": "https://example.com/a.jpg", "subject": "Sale"})
    )
    assert mms.message.media_file == "https://example.com/a.jpg"
    assert errors_of(base(channel="voice", message={"voice": "robot", "lang": "English"})) == [
        "message.voice: input should be 'female' or 'male' (got 'robot')"
    ]
    assert errors_of(base(channel="voice", message={"lang": "English"})) == [
        "message.lang: not a language code: 'English' (e.g. en-us)"
    ]
    assert errors_of(base(channel="voice", message={"body": "x" * 1201})) == [
        "message.body: longer than 1200 characters"
    ]


def test_audience_lists() -> None:
    assert errors_of(base(audience={"lists": []})) == [
        "audience.lists: name at least one contact list"
    ]
    assert errors_of(base(audience={"lists": ["a", "a"]})) == [
        "audience.lists[1]: 'a' is listed twice"
    ]
    defn = load_definition(base(audience={"lists": ["a"], "clicksend_lists": [3555278]}))
    assert defn.audience.clicksend_lists == [3555278]
    assert errors_of(base(audience={"lists": ["a"], "clicksend_lists": [0]})) == [
        "audience.clicksend_lists[0]: input should be greater than 0 (got 0)"
    ]


def test_yaml_reads_times_and_words_as_text() -> None:
    text = SPRING_SALE.replace("[customers]", "[no, on, 08]") + (
        "schedule:\n  window: {start: 09:00, end: 20:00}\n"
    )
    defn = load_definition(text)
    assert defn.audience.lists == ["no", "on", "08"]
    assert defn.schedule is not None and defn.schedule.window is not None
    assert (str(defn.schedule.window.start), str(defn.schedule.window.end)) == (
        "09:00:00",
        "20:00:00",
    )


def test_unreadable_sources_are_definition_errors(tmp_path: Path) -> None:
    assert errors_of("name: a\nname: b\n") == [
        "definition: invalid YAML at line 2: key 'name' given twice"
    ]
    assert errors_of("name: [unclosed")[0].startswith("definition: invalid YAML at line")
    assert errors_of('{"name": 1,}')[0].startswith("definition: invalid JSON at line 1")
    assert errors_of("missing.yaml") == ["(top level): a mapping of keys expected (no such file)"]
    assert errors_of("- a\n- b\n") == ["(top level): a mapping of keys expected"]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    assert errors_of(bad)[0].startswith(f"{bad}: cannot read")


def test_definition_error_message_lists_the_errors() -> None:
    with pytest.raises(DefinitionError, match="invalid campaign definition: colour: unknown key"):
        load_definition(base(colour="red"))
