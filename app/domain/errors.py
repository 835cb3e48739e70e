"""Expected failures, as plain values the GraphQL and REST layers turn into user errors.

Each area has its own code enum (tenancy, keys, catalog, gateway, prompts) so that codes can grow
without touching other areas; a `FieldError` carries one code, a message safe to show the caller,
and the path of the input field it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class CommonErrorCode(StrEnum):
    """Codes every area uses; area enums repeat them by value so GraphQL shows one enum per area."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PERMISSION_DENIED = "PERMISSION_DENIED"


@dataclass(frozen=True, slots=True)
class FieldError:
    code: StrEnum
    message: str
    field: tuple[str, ...] | None = None


class UserInputError(Exception):
    """One or more expected failures; nothing was written."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)

    @classmethod
    def single(cls, code: StrEnum, message: str, field: Sequence[str] | None = None) -> UserInputError:
        return cls([FieldError(code, message, tuple(field) if field else None)])


class NotFoundError(UserInputError):
    """The object does not exist in the caller's scope (another organization's reads the same)."""

    def __init__(self, what: str, field: Sequence[str] | None = None) -> None:
        path = tuple(field) if field else None
        super().__init__([FieldError(CommonErrorCode.NOT_FOUND, f"{what} not found", path)])


class Duplicate(Exception):
    """A value that must be unique (a name, an external id) belongs to another stored row already;
    `field` is the input field that holds it."""

    def __init__(self, field: str = "name") -> None:
        super().__init__(f"duplicate {field}")
        self.field = field


class StillReferenced(Exception):
    """The row to delete is still referred to by others (which appeared meanwhile)."""


class ReferenceGone(Exception):
    """A row this write refers to was deleted meanwhile."""


class AccessDenied(Exception):
    """The caller lacks a permission: a top-level FORBIDDEN, not a user error."""


class Unauthenticated(Exception):
    """No valid credentials: a top-level UNAUTHENTICATED. The message never says why."""

    def __init__(self) -> None:
        super().__init__("authentication required")


class ErrorCollector:
    """Gathers field errors during validation so the caller gets all of them at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, code: StrEnum, message: str, *field: str) -> None:
        self.errors.append(FieldError(code, message, tuple(field) or None))

    def raise_if_any(self) -> None:
        if self.errors:
            raise UserInputError(self.errors)
