"""campaigns.templates: placeholders, defaults, missing fields, and no evaluation."""

from __future__ import annotations

import pytest

from campaigns.templates import MissingField, compile_template, placeholders, render


def test_placeholders_are_replaced_from_the_fields() -> None:
    body = "Hi {first_name} {last_name}, code {custom_1}"
    fields = {"first_name": "Ann", "last_name": "Lee", "custom_1": 42}
    assert render(body, fields) == "Hi Ann Lee, code 42"


def test_a_missing_or_blank_field_takes_the_declared_default() -> None:
    defaults = {"first_name": "there"}
    assert render("Hi {first_name}", {}, defaults) == "Hi there"
    assert render("Hi {first_name}", {"first_name": ""}, defaults) == "Hi there"
    assert render("Hi {first_name}", {"first_name": "  "}, defaults) == "Hi there"
    assert render("Hi {first_name}", {"first_name": None}, defaults) == "Hi there"
    assert render("Hi{first_name}!", {}, {"first_name": ""}) == "Hi!"


def test_a_missing_field_without_default_raises_naming_it() -> None:
    with pytest.raises(MissingField) as caught:
        render("Hi {first_name}, {custom_2}", {"first_name": "Ann"})
    assert caught.value.field == "custom_2"
    assert str(caught.value) == "missing field custom_2"
    assert isinstance(caught.value, KeyError)


@pytest.mark.parametrize(
    "body",
    [
        "{0.__class__}",
        "{a[0]}",
        "{first_name.__class__}",
        "{first_name!r}",
        "{first_name:>20}",
        "{",
        "}",
        "{{",
        "}}",
        "{ first_name }",
        "{0}",
        "{}",
        "50% {off}}",
    ],
)
def test_anything_but_an_identifier_in_braces_is_literal_text(body: str) -> None:
    fields = {"first_name": "Ann", "a": "x", "off": "now"}
    expected = body.replace("{off}", "now")
    assert render(body, fields) == expected


def test_doubled_braces_around_a_placeholder_keep_the_outer_braces() -> None:
    assert render("{{first_name}}", {"first_name": "Ann"}) == "{Ann}"


def test_values_are_never_rendered_again() -> None:
    fields = {"first_name": "{custom_1}", "custom_1": "secret"}
    assert render("Hi {first_name}", fields) == "Hi {custom_1}"


def test_placeholders_lists_the_field_names() -> None:
    assert placeholders("Hi {first_name}, {x_1} {first_name} {0} {a.b}") == {"first_name", "x_1"}
    assert placeholders("no fields") == set()


def test_a_compiled_template_is_reused_and_renders_each_recipient() -> None:
    renderer = compile_template("Dear {first_name}")
    assert compile_template("Dear {first_name}") is renderer
    names = [renderer({"first_name": n}, {}) for n in ("A", "B")]
    assert names == ["Dear A", "Dear B"]
    assert renderer({}, {"first_name": "friend"}) == "Dear friend"
