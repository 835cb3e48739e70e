"""Every value of a GraphQL input, checked for what PostgreSQL can store before any of it is used.

Strings (at any depth: input objects, lists, JSON scalars, JSON keys) must not hold NUL; JSON
numbers must fit our jsonb encoder; floats must be finite. Each problem is reported on its field
path, e.g. ["input", "particles", "0", "text"]. Decimals and datetimes are checked where they
become values: their column's rule (app/domain/storable.py) and the DateTime scalar.
"""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition

from app.domain.errors import CommonErrorCode, FieldError, UserInputError
from app.domain.storable import json_problems, text_problem

# The schema's own converter (StrawberryConfig's default): python_name -> camelCase.
_NAMES = NameConverter()
# (python name, GraphQL name) of the fields of each input class; None for every other class. Known
# from the class: asked for every value of every mutation, not worth deriving each time.
_FIELDS: dict[type, tuple[tuple[str, str], ...] | None] = {}


def _input_fields(value: object) -> tuple[tuple[str, str], ...] | None:
    cls = type(value)
    try:
        return _FIELDS[cls]
    except KeyError:
        definition = get_object_definition(cls)
        fields = None
        if definition is not None and definition.is_input:
            fields = tuple((f.python_name, _NAMES.get_graphql_name(f)) for f in definition.fields)
        _FIELDS[cls] = fields
        return fields


def _problems(value: object, path: tuple[str, ...], found: list[FieldError]) -> list[FieldError]:
    """Adds the problems of `value` (at `path`) to `found` (a list, not generators: this runs for
    every field of every mutation)."""
    if isinstance(value, str):  # most values: the check `json_problems` makes of a string
        if (problem := text_problem(value)) is not None:
            found.append(FieldError(CommonErrorCode.INVALID, problem, path))
    elif (fields := _input_fields(value)) is not None:
        for python_name, name in fields:
            _problems(getattr(value, python_name), (*path, name), found)
    elif isinstance(value, list) and any(_input_fields(item) is not None for item in value):
        for index, item in enumerate(value):
            _problems(item, (*path, str(index)), found)
    else:
        # Lists of scalars and JSON values; enums, decimals, datetimes and UNSET pass.
        for below, message in json_problems(value):
            found.append(FieldError(CommonErrorCode.INVALID, message, (*path, *below)))
    return found


def refuse_unstorable(input: object, path: Sequence[str] = ("input",)) -> None:
    """A mutation's input: every problem at once, as user errors on their fields."""
    if errors := _problems(input, tuple(path), []):
        raise UserInputError(errors)


def refuse_unstorable_named(value: object, name: str) -> None:
    """For errors that carry no field path (a query's top-level BAD_USER_INPUT, a stream's error
    event): each message names its field, e.g. "filter.search must not contain …"."""
    if errors := _problems(value, (name,), []):
        named = [FieldError(e.code, f"{'.'.join(e.field or ())} {e.message}", e.field) for e in errors]
        raise UserInputError(named)
