"""Input helpers shared by the areas: partial updates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import strawberry

from app.domain.errors import CommonErrorCode, UserInputError
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
