"""Opaque global ids: base64url of "Type:uuid", the ids every client sees (in the API and in
messages that name an object). Clients must treat them as opaque."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from uuid import UUID

from app.domain.errors import NotFoundError
from app.domain.models import ModelKind, ModelRecord

# The global id types of models (the Model interface's two implementations).
MODEL_TYPES = ("SystemModel", "UserModel")


def encode_id(type_name: str, value: UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{value}".encode()).decode().rstrip("=")


def decode_any(global_id: str) -> tuple[str, UUID] | None:
    """The type name and UUID inside a global id; None when it is not one."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return type_name, UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def model_global_id(record: ModelRecord) -> str:
    return encode_id("SystemModel" if record.kind is ModelKind.SYSTEM else "UserModel", record.id)


def type_names_of(type_names: str | Sequence[str]) -> tuple[str, ...]:
    return (type_names,) if isinstance(type_names, str) else tuple(type_names)


def decode_as(global_id: str, type_names: str | Sequence[str]) -> UUID | None:
    """The UUID inside `global_id` if it names one of `type_names`; None otherwise."""
    decoded = decode_any(global_id)
    return decoded[1] if decoded is not None and decoded[0] in type_names_of(type_names) else None


def decode_id(global_id: str, type_names: str | Sequence[str], field: Sequence[str]) -> UUID:
    """The UUID inside `global_id` if it names one of `type_names`; otherwise the object reads as
    not found (a malformed id and another type's id look the same as a missing object)."""
    found = decode_as(global_id, type_names)
    if found is None:
        raise NotFoundError(type_names_of(type_names)[0].lower(), field)
    return found


def decode_optional(
    global_id: str | None, type_names: str | Sequence[str], field: Sequence[str]
) -> UUID | None:
    return None if global_id is None else decode_id(global_id, type_names, field)
