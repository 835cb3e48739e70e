"""Input helpers shared by the areas: partial updates, and the DateTime scalar's one rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.schema.types.base_scalars import DateTimeDefinition

from app.domain.errors import CommonErrorCode, UserInputError
from app.domain.storable import InstantOutOfRange, utc_instant
from app.domain.values import UNSET, Maybe

T = TypeVar("T")


def maybe(value: T | None) -> Maybe[T | None]:
    """A nullable update field: left out -> UNSET (no change); null -> clear it."""
    return UNSET if value is strawberry.UNSET else value


def maybe_set(value: T | None, path: Sequence[str]) -> Maybe[T]:
    """A non-nullable update field: left out -> UNSET; an explicit null is a user error."""
    if value is strawberry.UNSET:
        return UNSET
    if value is None:
        raise UserInputError.single(CommonErrorCode.REQUIRED, "must not be null", path)
    return value


def _parse_datetime(value: object) -> datetime:
    """Strawberry's own ISO 8601 parser, then in UTC: every datetime input is an instant."""
    iso_parse = DateTimeDefinition.parse_value
    assert iso_parse is not None
    parsed = iso_parse(value)
    assert isinstance(parsed, datetime)
    try:
        return utc_instant(parsed)
    except InstantOutOfRange as exc:
        raise GraphQLError(f"Value cannot represent a DateTime: {exc}.") from exc


# Registered for `datetime` in the schema's scalar_map (app/api/schema.py).
DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="An ISO 8601 date and time; one without a UTC offset is read as UTC.",
    serialize=datetime.isoformat,
    parse_value=_parse_datetime,
)
