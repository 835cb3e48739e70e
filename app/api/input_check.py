"""Every value of a GraphQL input, checked for what PostgreSQL can store before any of it is used.

Strings (at any depth: input objects, lists, JSON scalars, JSON keys) must not hold NUL; JSON
numbers must fit our jsonb encoder; floats must be finite. Each problem is reported on its field
path, e.g. ["input", "particles", "0", "text"]. Decimals and datetimes are checked where they
become values: their column's rule (app/domain/storable.py) and the DateTime scalar.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import StrawberryObjectDefinition, get_object_definition

from app.domain.errors import CommonErrorCode, FieldError, UserInputError
from app.domain.storable import json_problems

# The schema's own converter (StrawberryConfig's default): python_name -> camelCase.
_NAMES = NameConverter()


def _input_definition(value: object) -> StrawberryObjectDefinition | None:
    definition = get_object_definition(type(value))
    return definition if definition is not None and definition.is_input else None


def _is_input(value: object) -> bool:
    return _input_definition(value) is not None


def _problems(value: object, path: tuple[str, ...]) -> Iterator[FieldError]:
    if definition := _input_definition(value):
        for field in definition.fields:
            yield from _problems(getattr(value, field.python_name), (*path, _NAMES.get_graphql_name(field)))
    elif isinstance(value, list) and any(_is_input(item) for item in value):
        for index, item in enumerate(value):
            yield from _problems(item, (*path, str(index)))
    else:
        # Strings, lists of scalars and JSON values; enums, decimals, datetimes and UNSET pass.
        for below, message in json_problems(value):
            yield FieldError(CommonErrorCode.INVALID, message, (*path, *below))


def refuse_unstorable(input: object, path: Sequence[str] = ("input",)) -> None:
    """A mutation's input: every problem at once, as user errors on their fields."""
    if errors := list(_problems(input, tuple(path))):
        raise UserInputError(errors)


def refuse_unstorable_named(value: object, name: str) -> None:
    """For errors that carry no field path (a query's top-level BAD_USER_INPUT, a stream's error
    event): each message names its field, e.g. "filter.search must not contain …"."""
    if errors := list(_problems(value, (name,))):
        named = [FieldError(e.code, f"{'.'.join(e.field or ())} {e.message}", e.field) for e in errors]
        raise UserInputError(named)
