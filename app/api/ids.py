"""Global ids where GraphQL needs more than the domain's reading of them (app/domain/ids.py): a
filter argument with a wrong id is the caller's mistake, said as one."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from app.api.errors import ApiError, ErrorCode
from app.domain.ids import decode_as, type_names_of


def decode_argument(global_id: str, type_names: str | Sequence[str], field: str) -> UUID:
    """For a filter argument, where a wrong id is the caller's mistake and is said to be one."""
    found = decode_as(global_id, type_names)
    if found is None:
        raise ApiError(ErrorCode.BAD_USER_INPUT, f"{field} is not a valid {type_names_of(type_names)[0]} id")
    return found
