"""Hostile values for every input field of the GraphQL schema, found by walking the schema itself.

`input_fields` lists every field of a mutation's input (recursively through input objects and
lists; a list item is the path element "0"); `battery` gives the hostile values for a field's type,
each with what the server must do with it; `placed` puts one value into an otherwise valid input;
`named_field` says whether a response names the field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLScalarType,
    get_nullable_type,
)

NUL = "\x00"


class Expect(Enum):
    REFUSED = "refused"  # an error that names the field; nothing stored
    ACCEPTED = "accepted"  # no error; strings read back exactly as sent
    EITHER = "either"  # either of the above (the field's own rules decide)


@dataclass(frozen=True)
class InputField:
    path: tuple[str, ...]  # below `input`; "0" is the first item of a list
    type: GraphQLInputType  # the field's own type (for a list item: the item's)
    kind: str  # a scalar or enum name, "object", or "list" (a list of input objects)


def input_fields(input_type: GraphQLInputObjectType, below: tuple[str, ...] = ()) -> Iterator[InputField]:
    for name, field in input_type.fields.items():
        path = (*below, name)
        inner = get_nullable_type(field.type)
        if isinstance(inner, GraphQLList):
            item = get_nullable_type(inner.of_type)
            if isinstance(item, GraphQLInputObjectType):
                yield InputField(path, field.type, "list")
                yield from input_fields(item, (*path, "0"))
            else:
                yield InputField((*path, "0"), inner.of_type, _kind(item))
        elif isinstance(inner, GraphQLInputObjectType):
            yield InputField(path, field.type, "object")
            yield from input_fields(inner, path)
        else:
            yield InputField(path, field.type, _kind(inner))


def _kind(named: Any) -> str:
    if isinstance(named, GraphQLEnumType):
        return "enum"
    assert isinstance(named, GraphQLScalarType), named
    return named.name


@dataclass(frozen=True)
class Hostile:
    label: str
    value: Any
    expect: Expect


# Valid text that is easy to mangle: it must be stored and read back exactly.
UNICODE_EDGES = {
    "right-to-left marks": "שלום\u200f עולם \u200e!",
    "right-to-left override first": "\u202eevil.exe",
    "combining characters": "Zoe\u0308 cafe\u0301 a\u0300\u0301\u0302\u0303",
    "emoji and ZWJ sequences": "👩\u200d💻 🇺🇳 🏳️\u200d🌈",
    "zero-width characters": "a\u200bb\u200cc\u200dd\ufeffe",
    "outside the BMP": "𠜎𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "other control characters": "tab\there\x01\x1f\x7f",
}
WRONG_TYPES = {"an object": {"a": 1}, "a list of objects": [{"a": 1}]}


def _wrong_types(*extra: tuple[str, Any]) -> list[Hostile]:
    return [Hostile(label, value, Expect.REFUSED) for label, value in [*WRONG_TYPES.items(), *extra]]


STRING_BATTERY = [
    Hostile("NUL inside", f"a{NUL}b", Expect.REFUSED),
    Hostile("NUL alone", NUL, Expect.REFUSED),
    Hostile("huge", "x" * 100_001, Expect.EITHER),
    Hostile("empty", "", Expect.EITHER),
    Hostile("white space", " \t\n ", Expect.EITHER),
    *_wrong_types(("a number", 5), ("a boolean", True)),
]
ID_BATTERY = [
    Hostile("NUL inside", f"U3lzdGVt{NUL}", Expect.REFUSED),
    Hostile("empty", "", Expect.REFUSED),
    Hostile("garbage", "not-an-id", Expect.REFUSED),
    Hostile("huge", "A" * 100_000, Expect.REFUSED),
    Hostile("unicode", "👩\u200d💻\u202e", Expect.REFUSED),
    Hostile("a number", 5, Expect.REFUSED),
    *_wrong_types(("a boolean", True)),
]
INT_BATTERY = [
    Hostile("negative", -1, Expect.EITHER),
    Hostile("zero", 0, Expect.EITHER),
    Hostile("largest Int", 2**31 - 1, Expect.EITHER),
    Hostile("smallest Int", -(2**31), Expect.EITHER),
    Hostile("beyond 32 bits", 2**31, Expect.REFUSED),
    Hostile("beyond 64 bits", 2**70, Expect.REFUSED),
    Hostile("a fraction", 1.5, Expect.REFUSED),
    *_wrong_types(("a numeric string", "5"), ("NaN as a string", "NaN")),
]
FLOAT_BATTERY = [
    Hostile("negative", -1.0, Expect.EITHER),
    Hostile("huge", 1.7e308, Expect.EITHER),
    Hostile("tiny", 5e-324, Expect.EITHER),
    *_wrong_types(("NaN as a string", "NaN"), ("Infinity as a string", "Infinity")),
]
BOOLEAN_BATTERY = _wrong_types(("a string", "true"), ("a number", 1))
ENUM_BATTERY = _wrong_types(("an unknown name", "NOT_A_VALUE"), ("a number", 5), ("lower case", "lower"))
DECIMAL_BATTERY = [
    *(Hostile(v, v, Expect.REFUSED) for v in ("NaN", "sNaN", "Infinity", "-Infinity", "-1")),
    *(Hostile(v, v, Expect.REFUSED) for v in ("1e-1000000", "1e-400", "0.0000001", "1e1000000")),
    Hostile("not a number", "abc", Expect.REFUSED),
    Hostile("empty", "", Expect.REFUSED),
    Hostile("a JSON number", 1.5, Expect.EITHER),
    Hostile("zero", "0", Expect.EITHER),
    *_wrong_types(("a boolean", True)),
]
DATETIME_BATTERY = [
    Hostile("without an offset", "2031-01-01T00:00:00", Expect.EITHER),
    Hostile("in the past", "2000-01-01T00:00:00Z", Expect.EITHER),
    Hostile("the last UTC second", "9999-12-31T23:59:59Z", Expect.EITHER),
    Hostile("past year 9999 in UTC", "9999-12-31T23:59:59-05:00", Expect.REFUSED),
    Hostile("before year 1 in UTC", "0001-01-01T00:00:00+05:00", Expect.REFUSED),
    Hostile("month 13", "2031-13-01T00:00:00Z", Expect.REFUSED),
    Hostile("not a date", "next tuesday", Expect.REFUSED),
    Hostile("NUL inside", f"2031-01-01T00:00:00{NUL}", Expect.REFUSED),
    Hostile("empty", "", Expect.REFUSED),
    *_wrong_types(("a number", 1_900_000_000)),
]


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(levels):
        value = {"k": value}
    return value


JSON_BATTERY = [
    Hostile("NUL in a value", {"k": f"a{NUL}"}, Expect.REFUSED),
    Hostile("NUL in a key", {f"k{NUL}": "v"}, Expect.REFUSED),
    Hostile("NUL in a nested list", {"k": ["ok", {"j": NUL}]}, Expect.REFUSED),
    Hostile("nested 100 levels", _deep(100), Expect.REFUSED),
    Hostile("a string", "text", Expect.EITHER),
    Hostile("a number", 5, Expect.EITHER),
    Hostile("a list", [1, "two"], Expect.EITHER),
    Hostile("unicode keys and values", {"\u202ekey": "👩\u200d💻"}, Expect.EITHER),
]
OBJECT_BATTERY = _wrong_types(("a string", "text"), ("an unknown field", {"notAField": 1}))
LIST_BATTERY = [
    Hostile("a null item", [None], Expect.REFUSED),
    Hostile("an item of the wrong type", ["text"], Expect.REFUSED),
    Hostile("empty", [], Expect.EITHER),
]

BATTERIES: Mapping[str, list[Hostile]] = {
    "String": STRING_BATTERY,
    "ID": ID_BATTERY,
    "Int": INT_BATTERY,
    "Float": FLOAT_BATTERY,
    "Boolean": BOOLEAN_BATTERY,
    "enum": ENUM_BATTERY,
    "Decimal": DECIMAL_BATTERY,
    "DateTime": DATETIME_BATTERY,
    "JSON": JSON_BATTERY,
    "object": OBJECT_BATTERY,
    "list": LIST_BATTERY,
}


def battery(field: InputField, *, free_text: bool) -> list[Hostile]:
    """The hostile values for `field`; free text must also take every Unicode edge case."""
    cases = list(BATTERIES[field.kind])
    if field.kind == "String":
        expect = Expect.ACCEPTED if free_text else Expect.EITHER
        cases += [Hostile(label, value, expect) for label, value in UNICODE_EDGES.items()]
    return cases


def placed(
    base: dict[str, Any],
    input_type: GraphQLInputObjectType,
    path: tuple[str, ...],
    value: Any,
    nested_base: Callable[[str], dict[str, Any]],
) -> dict[str, Any]:
    """A copy of `base` with `value` at `path`; missing input objects on the way are made from
    `nested_base(type name)`, missing lists hold one such object."""
    result = copy.deepcopy(base)
    holder: Any = result
    owner: Any = input_type
    for index, key in enumerate(path[:-1]):
        if key == "0":
            holder = holder[0]
            continue
        field_type = get_nullable_type(owner.fields[key].type)
        is_list = isinstance(field_type, GraphQLList)
        owner = get_nullable_type(field_type.of_type) if is_list else field_type
        if holder.get(key) in (None, []):
            if is_list and path[index + 1] == "0" and not isinstance(owner, GraphQLInputObjectType):
                holder[key] = [None]  # a list of scalars: the value goes in its first item
            else:
                item = nested_base(owner.name)
                holder[key] = [item] if is_list else item
        holder = holder[key]
    if path[-1] == "0":
        holder[0] = value
    else:
        holder[path[-1]] = value
    return result


_INVALID_VALUE_AT = re.compile(r"has invalid value at (\S+?):")


def graphql_path(path: tuple[str, ...]) -> str:
    """How graphql-core prints a path in a variable's coercion error: .fallbacks[0].modelId"""
    return "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)


def named_field(body: dict[str, Any], path: tuple[str, ...]) -> bool:
    """Whether an error of the response is about `path` (or a part of its value): a user error
    whose field starts with ["input", *path], or a top-level BAD_USER_INPUT about the variable's
    value at that path."""
    wanted = ["input", *path]
    at = graphql_path(path)
    for error in body.get("errors") or []:
        found = _INVALID_VALUE_AT.search(error["message"])
        if error["extensions"]["code"] == "BAD_USER_INPUT" and found:
            where = found.group(1)
            if where == at or where.startswith((f"{at}.", f"{at}[")):
                return True
    payload = next(iter((body.get("data") or {}).values()), None) or {}
    return any((e["field"] or [])[: len(wanted)] == wanted for e in payload.get("userErrors", []))
