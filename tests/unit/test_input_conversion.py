"""The compiled input conversion (app/api/input_conversion.py) builds exactly what Strawberry's
`convert_argument` builds, for every input type of the schema: values walked from the schema
(every field set, only the required ones, the optional ones null; lists of two; each field of a
@oneOf input alone), coerced by graphql-core as a request's variables are, converted both ways."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    coerce_input_value,
)
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.maybe import Maybe
from strawberry.types.unset import UNSET

from app.api import input_conversion
from app.api.llm.inputs import ChatInput, GenerateInput
from app.api.schema import build_schema
from app.config import Settings

SCHEMA = build_schema(Settings())
GRAPHQL = SCHEMA._schema
REGISTRY = SCHEMA.schema_converter.scalar_registry
# A valid raw value per scalar (a new scalar fails `test_every_scalar_has_a_sample`).
SCALARS: dict[str, Any] = {
    "String": "text",
    "ID": "an-id",
    "Int": 7,
    "Float": 1.5,
    "Boolean": True,
    "JSON": {"a": [1, "b", None]},
    "DateTime": "2026-01-02T03:04:05+00:00",
    "Date": "2026-01-02",
    "Decimal": "1.25",
    "BigInt": "12345678901234",
    "UUID": "0b0d5c52-3f3e-4b0e-9a4c-2f1f0d6f1a11",
}
INPUT_TYPES = sorted(
    (t for t in GRAPHQL.type_map.values() if isinstance(t, GraphQLInputObjectType)), key=lambda t: t.name
)
VARIANTS = ("all", "required", "nulls")


def _raw(graphql_type: GraphQLInputType, variant: str, depth: int = 0) -> Any:
    if isinstance(graphql_type, GraphQLNonNull):
        return _raw(graphql_type.of_type, variant, depth)
    if isinstance(graphql_type, GraphQLList):
        return [_raw(graphql_type.of_type, variant, depth) for _ in range(2)]
    if isinstance(graphql_type, GraphQLEnumType):
        return next(iter(graphql_type.values))
    if isinstance(graphql_type, GraphQLScalarType):
        return SCALARS[graphql_type.name]
    assert isinstance(graphql_type, GraphQLInputObjectType)
    return _object(graphql_type, variant, depth)


def _object(graphql_type: GraphQLInputObjectType, variant: str, depth: int) -> dict[str, Any]:
    if graphql_type.is_one_of:
        name = next(iter(graphql_type.fields))
        return {name: _raw(graphql_type.fields[name].type, variant, depth + 1)}
    value: dict[str, Any] = {}
    for name, field in graphql_type.fields.items():
        required = isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        if required or (variant == "all" and depth < 3):
            value[name] = _raw(field.type, variant, depth + 1)
        elif variant == "nulls" and not isinstance(field.type, GraphQLNonNull):
            value[name] = None
    return value


def _samples(graphql_type: GraphQLInputObjectType) -> Iterator[dict[str, Any]]:
    for variant in VARIANTS:
        yield _object(graphql_type, variant, 0)
    if graphql_type.is_one_of:
        for name, field in graphql_type.fields.items():
            yield {name: _raw(field.type, "all", 1)}


def _class(graphql_type: GraphQLInputObjectType) -> type:
    definition = graphql_type.extensions["strawberry-definition"]
    assert isinstance(definition, StrawberryObjectDefinition)
    return definition.origin


@contextmanager
def _strawberry_only() -> Iterator[None]:
    """Strawberry's own conversion: the hook taken off every input type while inside."""
    hooked = [
        definition
        for t in INPUT_TYPES
        if (definition := t.extensions["strawberry-definition"]).from_input is not None
    ]
    for definition in hooked:
        definition.from_input = None
    try:
        yield
    finally:
        for definition in hooked:
            definition.from_input = input_conversion._from_input


def _shape(value: Any) -> Any:
    """A value down to its types: equal shapes, equal values of the same classes."""
    if value is UNSET:
        return "UNSET"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _shape(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (type(value), fields)
    if isinstance(value, list | tuple):
        return (type(value), [_shape(item) for item in value])
    if isinstance(value, dict):
        return (dict, {key: _shape(item) for key, item in value.items()})
    if isinstance(value, enum.Enum):
        return (type(value), value)
    return (type(value), value)


def _both(value: Any, cls: Any, config: StrawberryConfig | None = None) -> tuple[Any, Any]:
    config = config or SCHEMA.config
    compiled = convert_argument(value, cls, REGISTRY, config, None, path=("input",))
    with _strawberry_only():
        reference = convert_argument(value, cls, REGISTRY, config, None, path=("input",))
    return compiled, reference


def test_every_input_type_is_compiled() -> None:
    assert INPUT_TYPES
    for graphql_type in INPUT_TYPES:
        assert graphql_type.extensions["strawberry-definition"].from_input is input_conversion._from_input


def test_every_scalar_has_a_sample() -> None:
    used = {t.name for t in GRAPHQL.type_map.values() if isinstance(t, GraphQLScalarType)}
    used -= {name for name in used if name.startswith("__")}
    assert used <= set(SCALARS), f"add a raw sample of {sorted(used - set(SCALARS))}"


@pytest.mark.parametrize("graphql_type", INPUT_TYPES, ids=lambda t: t.name)
def test_compiled_conversion_equals_strawberrys(graphql_type: GraphQLInputObjectType) -> None:
    cls = _class(graphql_type)
    for raw in _samples(graphql_type):
        value = coerce_input_value(raw, graphql_type)  # as graphql-core hands variables over
        compiled, reference = _both(value, cls)
        assert _shape(compiled) == _shape(reference), raw
        # A schema whose conversion is not kept (another config): Strawberry's way, the same result.
        other, _ = _both(value, cls, StrawberryConfig())
        assert _shape(other) == _shape(reference), raw


HOT: list[tuple[type, dict[str, Any]]] = [
    (GenerateInput, {"prompt": "Hi"}),
    (GenerateInput, {"prompt": "Hi", "model": None, "temperature": UNSET, "maxTokens": 5}),
    (
        GenerateInput,
        {"prompt": "Hi", "model": "m", "projectId": "p", "systemPrompt": "s", "temperature": 0.5},
    ),
    (ChatInput, {"messages": []}),
    (
        ChatInput,
        {
            "messages": [
                {"role": "USER", "content": "Hi", "parts": None},
                {"role": "USER", "parts": [{"text": "What?"}, {"image": {"url": "https://x/c.png"}}]},
                {"role": "ASSISTANT", "toolCalls": [{"id": "c1", "name": "f", "arguments": "{}"}]},
                {"role": "TOOL", "toolCallId": "c1", "content": UNSET},
            ],
            "tools": [{"name": "f", "parameters": {"type": "object"}}],
            "toolChoice": None,
            "parallelToolCalls": UNSET,
        },
    ),
]


@pytest.mark.parametrize(("cls", "value"), HOT)
def test_hot_inputs_with_nulls_and_unset(cls: type, value: dict[str, Any]) -> None:
    compiled, reference = _both(value, cls)
    assert _shape(compiled) == _shape(reference)
    assert isinstance(compiled, cls)


def test_lists_are_copied() -> None:
    """graphql-core hands the same default list to every request leaving the field out."""
    value: dict[str, Any] = {"messages": [{"role": "USER", "parts": [{"text": "a"}]}], "tools": None}
    first, _ = _both(value, ChatInput)
    second, _ = _both(value, ChatInput)
    assert first.messages is not second.messages
    assert first.messages[0].parts is not value["messages"][0]["parts"]


def test_two_schemas_each_convert_with_their_own() -> None:
    other = build_schema(Settings(field_suggestions=False))
    value = {"prompt": "Hi", "maxTokens": 3}
    for built in (SCHEMA, other):
        converted = convert_argument(
            value, GenerateInput, built.schema_converter.scalar_registry, built.config, None, path=("input",)
        )
        assert converted == GenerateInput(prompt="Hi", max_tokens=3)


# Shapes the schema does not have (yet): a nullable field without a default, Maybe, GlobalID,
# lists of lists, a recursive input, a list of optional inputs, an enum.
@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


@strawberry.input
class Leaf:
    name: str
    note: str | None
    colour: Colour | None = None


@strawberry.input
class Tree:
    leaf: Leaf | None
    children: list[Tree] | None = None
    grid: list[list[Leaf | None]] | None = None
    numbers: list[list[int]] | None = None
    owner: relay.GlobalID | None = None
    rename: Maybe[str] = None


@strawberry.type
class Probe:
    @strawberry.field
    def tree(self, tree: Tree) -> str:
        return ""


PROBE = strawberry.Schema(query=Probe)
PROBE_CONVERSION = input_conversion.install(
    PROBE._schema, PROBE.config, PROBE.schema_converter.scalar_registry
)
OWNER = relay.GlobalID("Org", "1")
TREES: list[dict[str, Any]] = [
    {"leaf": None},
    {"leaf": {"name": "a"}},
    {"leaf": {"name": "a", "note": None, "colour": Colour.RED}, "rename": UNSET},
    {
        "leaf": {"name": "a", "note": "n"},
        "children": [{"leaf": None, "children": [{"leaf": {"name": "b"}, "rename": "r"}]}, {"leaf": UNSET}],
        "grid": [[None, {"name": "c"}], []],
        "numbers": [[1, 2], [3]],
        "owner": str(OWNER),
        "rename": "r",
    },
]


@pytest.mark.parametrize("value", TREES)
def test_shapes_beyond_the_schema(value: dict[str, Any]) -> None:
    registry = PROBE.schema_converter.scalar_registry
    compiled = convert_argument(value, Tree, registry, PROBE.config, None, path=("tree",))
    hooked = [Leaf.__strawberry_definition__]  # type: ignore[attr-defined]
    for definition in hooked:
        definition.from_input = None
    try:
        reference = convert_argument(value, Tree, registry, PROBE.config, None, path=("tree",))
    finally:
        for definition in hooked:
            definition.from_input = input_conversion._from_input
    assert _shape(compiled) == _shape(reference)


def test_a_type_with_a_maybe_field_keeps_strawberrys_null_check() -> None:
    assert Tree.__strawberry_definition__.from_input is None  # type: ignore[attr-defined]
    assert Leaf.__strawberry_definition__.from_input is input_conversion._from_input  # type: ignore[attr-defined]
    result = PROBE.execute_sync("{ tree(tree: {leaf: null, rename: null}) }")
    assert result.errors
    assert "cannot be explicitly set to null" in result.errors[0].message
