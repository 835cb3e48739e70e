"""Opaque global ids: base64url of "Type:uuid", the ids every client sees (in the API and in
messages that name an object). Clients must treat them as opaque."""

from __future__ import annotations

import base64
from uuid import UUID

from app.domain.models import ModelKind, ModelRecord


def encode_id(type_name: str, value: UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{value}".encode()).decode().rstrip("=")


def model_global_id(record: ModelRecord) -> str:
    return encode_id("SystemModel" if record.kind is ModelKind.SYSTEM else "UserModel", record.id)
