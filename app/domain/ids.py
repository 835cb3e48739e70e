"""Opaque global ids: base64url of "Type:uuid", the ids every client sees (in the API and in
messages that name an object). Clients must treat them as opaque."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from app.domain.models import ModelKind, ModelRecord


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
