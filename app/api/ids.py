"""Opaque global IDs: base64url of "Type:uuid". Clients must treat them as opaque."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from app.api.errors import ApiError, ErrorCode
from app.domain.errors import NotFoundError
from app.domain.ids import decode_any, encode_id

__all__ = ["decode_any", "decode_argument", "decode_as", "decode_id", "decode_optional", "encode_id"]


def _names(type_names: str | Sequence[str]) -> tuple[str, ...]:
    return (type_names,) if isinstance(type_names, str) else tuple(type_names)


def decode_as(global_id: str, type_names: str | Sequence[str]) -> UUID | None:
    """The UUID inside `global_id` if it names one of `type_names`; None otherwise."""
    decoded = decode_any(global_id)
    return decoded[1] if decoded is not None and decoded[0] in _names(type_names) else None


def decode_id(global_id: str, type_names: str | Sequence[str], field: Sequence[str]) -> UUID:
    """The UUID inside `global_id` if it names one of `type_names`; otherwise the object reads as
    not found (a malformed id and another type's id look the same as a missing object)."""
    found = decode_as(global_id, type_names)
    if found is None:
        raise NotFoundError(_names(type_names)[0].lower(), field)
    return found


def decode_argument(global_id: str, type_names: str | Sequence[str], field: str) -> UUID:
    """For a filter argument, where a wrong id is the caller's mistake and is said to be one."""
    found = decode_as(global_id, type_names)
    if found is None:
        raise ApiError(ErrorCode.BAD_USER_INPUT, f"{field} is not a valid {_names(type_names)[0]} id")
    return found


def decode_optional(
    global_id: str | None, type_names: str | Sequence[str], field: Sequence[str]
) -> UUID | None:
    return None if global_id is None else decode_id(global_id, type_names, field)
