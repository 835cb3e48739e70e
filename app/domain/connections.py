"""Connections: named, organization-owned credential sets for one provider, reusable by many models.

Credentials are write-only: a `Connection` says only whether it has them. Changing them is explicit:
a new value replaces the stored one, a clear flag removes it, and leaving a field out keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from app.domain.destinations import Destination
from app.domain.enums import Provider
from app.domain.errors import ErrorCollector

DESCRIPTION_MAX_LENGTH = 2000
_MODELS_NAMED_AT_MOST = 10


class ConnectionErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    IN_USE = "IN_USE"
    UNSAFE_URL = "UNSAFE_URL"


@dataclass(frozen=True, slots=True)
class Connection:
    id: UUID
    organization_id: UUID
    name: str
    provider: Provider
    description: str | None
    has_token: bool
    has_client_key: bool
    created_at: datetime
    updated_at: datetime
    # Where its credentials go: None/empty means the provider's public API.
    model_url: str | None = None
    provider_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def destination(self) -> Destination:
        return Destination.of(self.provider, self.model_url, self.provider_settings)


def check_description(errors: ErrorCollector, description: str | None, *path: str) -> None:
    if description is not None and len(description) > DESCRIPTION_MAX_LENGTH:
        errors.add(
            ConnectionErrorCode.TOO_LONG, f"must be at most {DESCRIPTION_MAX_LENGTH} characters", *path
        )


def in_use_message(model_names: list[str]) -> str:
    """Why a connection cannot be deleted, naming (the first few of) the models that use it."""
    named = ", ".join(model_names[:_MODELS_NAMED_AT_MOST])
    more = len(model_names) - _MODELS_NAMED_AT_MOST
    suffix = f" and {more} more" if more > 0 else ""
    return f"the connection is used by {len(model_names)} model(s): {named}{suffix}"
