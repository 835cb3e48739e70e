"""Prompt templates: parsing `{{dotted.path}}` placeholders, escapes, positions of syntax errors,
and rendering (non-string values as JSON, missing variables named, variables must be an object)."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import templates
from app.domain.errors import ErrorCollector, UserInputError
from app.domain.gateway import GatewayErrorCode
from app.domain.prompts import PromptErrorCode, check_template, render_prompt, run_field
from app.domain.templates import MissingVariables, TemplateSyntaxError, VariablesNotObject


def problems(text: str) -> list[tuple[int, int, int]]:
    """(offset, line, column) of every problem of a template that must not parse."""
    with pytest.raises(TemplateSyntaxError) as raised:
        templates.parse(text)
    return [(p.offset, p.line, p.column) for p in raised.value.problems]


# ---- parsing and rendering -------------------------------------------------------------------------


def test_the_design_example_renders() -> None:
    template = "Generate a tweet about: {{message.content}}"
    assert templates.variables(template) == ["message.content"]
    rendered = templates.render(template, {"message": {"content": "spring in Paris", "role": "user"}})
    assert rendered == "Generate a tweet about: spring in Paris"


@pytest.mark.parametrize(
    "placeholder", ["{{name}}", "{{ name }}", "{{\tname\n}}", "{{   name}}", "{{name   }}"]
)
def test_white_space_inside_the_braces_is_ignored(placeholder: str) -> None:
    assert templates.variables(f"Hi {placeholder}!") == ["name"]
    assert templates.render(f"Hi {placeholder}!", {"name": "Ada"}) == "Hi Ada!"


def test_nested_paths_and_list_indexes() -> None:
    template = "{{ order.customer.name }} bought {{order.items.0.title}} and {{ order.items.1.title }}"
    values = {"order": {"customer": {"name": "Ada"}, "items": [{"title": "a lamp"}, {"title": "a desk"}]}}
    assert templates.render(template, values) == "Ada bought a lamp and a desk"
    # On an object, a number segment is a key of that name (JSON keys are strings).
    assert templates.render("{{ scores.2024 }}", {"scores": {"2024": 7}}) == "7"
    # Names may hold digits and underscores after the first character.
    assert templates.render("{{ _v2.item_3 }}", {"_v2": {"item_3": "x"}}) == "x"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (-2.5, "-2.5"),
        (True, "true"),
        (False, "false"),
        ({"a": 1, "b": [1, 2]}, '{"a":1,"b":[1,2]}'),
        ([1, "two", None, {"x": "é"}], '[1,"two",null,{"x":"é"}]'),
        ({}, "{}"),
        ([], "[]"),
        ("", ""),
        ("  keeps  its  spaces ", "  keeps  its  spaces "),
        ('He said "{{x}}"', 'He said "{{x}}"'),  # a value is inserted as it is, never parsed
    ],
)
def test_values_are_inserted_as_text_or_compact_json(value: Any, text: str) -> None:
    assert templates.render("<{{v}}>", {"v": value}) == f"<{text}>"


def test_escapes() -> None:
    assert templates.variables(r"\{{not_a_variable}} {{real}}") == ["real"]
    assert templates.render(r"Write \{{name}} for {{ name }}", {"name": "Ada"}) == "Write {{name}} for Ada"
    # \\{{ is a literal backslash, then a placeholder.
    assert templates.render(r"C:\\{{dir}}", {"dir": "temp"}) == "C:\\temp"
    # Other backslashes and stray closing braces are plain text.
    assert templates.render(r"a\b {{x}} }} \n {", {"x": 1}) == r"a\b 1 }} \n {"
    assert templates.render("{{x}}}", {"x": 1}) == "1}"
    assert templates.render("no placeholders at all", {}) == "no placeholders at all"


def test_variables_are_listed_once_in_order_of_first_use() -> None:
    template = "{{ b }} {{a.x}} {{b}} {{ a.x }} {{ a }} {{c.0}}"
    assert templates.variables(template) == ["b", "a.x", "a", "c.0"]
    assert templates.variables("nothing to fill") == []


def test_rendering_a_long_template_is_linear_enough() -> None:
    template = "{{ word }} " * 20_000  # 220,000 characters
    assert templates.render(template, {"word": "w"}) == "w " * 20_000


# ---- syntax errors with their positions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{name", [(6, 1, 7)]),  # unclosed
        ("{{", [(0, 1, 1)]),
        ("line one\n  {{ a {{ b }}", [(11, 2, 3)]),  # closed only after another {{ opens
        ("{{}}", [(0, 1, 1)]),  # empty
        ("x {{   }}", [(2, 1, 3)]),  # blank
        ("{{ a..b }}", [(4, 1, 5)]),  # empty segment
        ("{{.a}}", [(2, 1, 3)]),  # leading dot
        ("one\ntwo\n  {{ a. }}", [(14, 3, 7)]),  # trailing dot
        ("{{1st}}", [(2, 1, 3)]),  # starts with a number
        ("{{ items.01 }}", [(10, 1, 11)]),  # leading zero
        ("{{ first name }}", [(8, 1, 9)]),  # space inside a path
        ("{{ first-name }}", [(8, 1, 9)]),  # not a name character
        ("{{ prénom }}", [(5, 1, 6)]),  # names are ASCII
        ("{{{a}}}", [(2, 1, 3)]),  # triple braces
        ("{{a-b}} {{ ok }} {{", [(3, 1, 4), (17, 1, 18)]),  # every problem, in order
    ],
)
def test_syntax_errors_name_their_position(template: str, expected: list[tuple[int, int, int]]) -> None:
    assert problems(template) == expected


def test_a_syntax_error_message_says_where_and_what() -> None:
    with pytest.raises(TemplateSyntaxError) as raised:
        templates.parse("ok {{ a }}\nthen {{ b")
    (problem,) = raised.value.problems
    assert str(problem) == "line 2, column 6: `{{` is not closed by `}}`"
    with pytest.raises(TemplateSyntaxError, match=r"line 1, column 5: a path cannot end with '\.'"):
        templates.parse("{{ a. }}")


def test_an_escaped_opening_needs_no_closing() -> None:
    assert templates.render(r"\{{ \{{", {}) == "{{ {{"


# ---- rendering errors ------------------------------------------------------------------------------


def test_missing_variables_are_all_named_in_order_of_first_use() -> None:
    template = "{{a}} {{ b.c }} {{a}} {{d.0}} {{e}} {{f.g}} {{ok}} {{h.x}}"
    values = {"b": "a string has no fields", "d": [], "e": None, "f": {"g": None}, "ok": 1, "h": [1]}
    with pytest.raises(MissingVariables) as raised:
        templates.render(template, values)
    assert [".".join(p) for p in raised.value.paths] == ["a", "b.c", "d.0", "e", "f.g", "h.x"]


def test_a_parent_that_is_missing_makes_each_child_path_missing() -> None:
    with pytest.raises(MissingVariables) as raised:
        templates.render("{{ message.role }}: {{ message.content }}", {})
    assert raised.value.paths == [("message", "role"), ("message", "content")]


@pytest.mark.parametrize("values", [None, [], ["a"], "text", 3, True])
def test_variables_must_be_an_object(values: object) -> None:
    with pytest.raises(VariablesNotObject):
        templates.render("{{a}}", values)
    with pytest.raises(VariablesNotObject):
        templates.render("no placeholders", values)


# ---- the prompt rules built on templates ------------------------------------------------------------


def test_a_template_is_checked_with_each_problem_at_its_position() -> None:
    errors = ErrorCollector()
    check_template(errors, "{{ a }} {{ b")
    assert [(e.code, e.field, e.message) for e in errors.errors] == [
        (
            PromptErrorCode.INVALID_TEMPLATE,
            ("input", "template"),
            "line 1, column 9: `{{` is not closed by `}}`",
        )
    ]
    for text, code in (("  \n", PromptErrorCode.REQUIRED), ("x" * 100_001, PromptErrorCode.TOO_LONG)):
        errors = ErrorCollector()
        check_template(errors, text)
        assert [e.code for e in errors.errors] == [code]
    errors = ErrorCollector()
    check_template(errors, "x" * 99_990 + "{{ a.b }}")  # 99,999 characters
    assert errors.errors == []


def test_render_prompt_reports_each_missing_path_at_its_field() -> None:
    with pytest.raises(UserInputError) as raised:
        render_prompt("{{ message.content }} {{ tone }}", {"message": {}})
    assert [(e.code, e.field) for e in raised.value.errors] == [
        (PromptErrorCode.MISSING_VARIABLE, ("input", "variables", "message", "content")),
        (PromptErrorCode.MISSING_VARIABLE, ("input", "variables", "tone")),
    ]
    assert raised.value.errors[0].message == "no value for {{message.content}}"


@pytest.mark.parametrize(
    ("variables", "code"),
    [([1], PromptErrorCode.INVALID), ({"x": "   "}, PromptErrorCode.REQUIRED)],
)
def test_render_prompt_refuses_what_cannot_be_sent(variables: object, code: PromptErrorCode) -> None:
    with pytest.raises(UserInputError) as raised:
        render_prompt("{{x}}", variables)
    assert [(e.code, e.field) for e in raised.value.errors] == [(code, ("input", "variables"))]


def test_every_gateway_code_is_a_prompt_error_code() -> None:
    assert {c.value for c in GatewayErrorCode} <= {c.value for c in PromptErrorCode}


def test_gateway_fields_are_named_in_prompt_run_terms() -> None:
    assert run_field(("input", "prompt")) == ("input", "variables")
    assert run_field(("input", "model")) == ("input", "promptId")
    assert run_field(("input", "maxTokens")) == ("input", "promptId")
    assert run_field(None) is None
