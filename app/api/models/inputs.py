"""GraphQL inputs of the models area and their translation into the service's ModelInput."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.api.connections.types import Provider
from app.api.models.types import (
    AccessTier,
    ApiType,
    Capability,
    LifecycleState,
    ModelGroup,
    ModelKind,
    ModelScope,
)
from app.domain import models
from app.domain.credentials import CredentialChanges
from app.domain.errors import CommonErrorCode, UserInputError
from app.domain.ids import MODEL_TYPES, decode_id
from app.services.model_input import ModelInput


@strawberry.input
class ModelCapabilitiesInput:
    streaming: bool = False
    tools: bool = False
    vision: bool = False
    reasoning: bool = False
    structured_output: bool = False


@strawberry.input
class FallbackInput:
    model_id: strawberry.ID
    enabled: bool = True
    failed_requests: int = strawberry.field(
        default=3, description="Consecutive failures that trip the primary."
    )
    duration_minutes: int = strawberry.field(default=5, description="How long the primary stays tripped.")
    notify_emails: list[str] = strawberry.field(default_factory=list)


@strawberry.input(description="Filters apply to effective (inherited) values.")
class ModelFilter:
    organization_id: strawberry.ID | None = None
    project_id: strawberry.ID | None = strawberry.field(
        default=None, description="Models usable in this project."
    )
    kinds: list[ModelKind] | None = None  # type: ignore[valid-type]
    scopes: list[ModelScope] | None = None  # type: ignore[valid-type]
    include_system: bool = strawberry.field(default=False, description="Add the visible system models.")
    providers: list[Provider] | None = None  # type: ignore[valid-type]
    model_groups: list[ModelGroup] | None = None  # type: ignore[valid-type]
    lifecycle_states: list[LifecycleState] | None = None  # type: ignore[valid-type]
    capabilities: list[Capability] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Models having all of these."
    )
    search: str | None = strawberry.field(default=None, description="In name, description, providerModelId.")


@strawberry.input(description="What every model has; on updates, fields left out are not changed.")
class ModelFieldsInput:
    description: str | None = strawberry.UNSET
    provider: Provider | None = strawberry.UNSET  # type: ignore[valid-type]
    provider_model_id: str | None = strawberry.UNSET
    model_url: str | None = strawberry.UNSET
    model_group: ModelGroup | None = strawberry.UNSET  # type: ignore[valid-type]
    api_type: ApiType | None = strawberry.UNSET  # type: ignore[valid-type]
    context_window: int | None = strawberry.UNSET
    max_output_tokens: int | None = strawberry.UNSET
    call_deadline_seconds: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Seconds one call may take in all, retries and fallbacks included (1 to 3600). Null: the "
        "server's default (MODELGATE_CALL_DEADLINE for generate/chat/embed, MODELGATE_STREAM_DEADLINE for "
        "chatStream). A variant may shorten its parent's.",
    )
    capabilities: ModelCapabilitiesInput | None = strawberry.UNSET
    is_visible: bool | None = strawberry.UNSET
    is_recommended: bool | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    end_of_life_at: datetime | None = strawberry.UNSET
    deprecation_notice: str | None = strawberry.UNSET
    replacement_model_id: strawberry.ID | None = strawberry.UNSET
    system_prompt_id: strawberry.ID | None = strawberry.UNSET
    system_prompt_override: str | None = strawberry.UNSET
    provider_settings: JSON | None = strawberry.UNSET
    token: str | None = strawberry.field(default=strawberry.UNSET, description="Write-only.")
    client_key: str | None = strawberry.field(
        default=strawberry.UNSET, description="Write-only; with secretKey."
    )
    secret_key: str | None = strawberry.field(
        default=strawberry.UNSET, description="Write-only; with clientKey."
    )


@strawberry.input
class SystemModelFieldsInput(ModelFieldsInput):
    credit_multiplier: Decimal | None = strawberry.UNSET
    access_tier: AccessTier | None = strawberry.UNSET  # type: ignore[valid-type]


@strawberry.input
class UserModelFieldsInput(ModelFieldsInput):
    connection_id: strawberry.ID | None = strawberry.UNSET
    is_default: bool | None = strawberry.field(default=strawberry.UNSET, description="PROJECT scope only.")
    fallbacks: list[FallbackInput] | None = strawberry.field(
        default=strawberry.UNSET, description="PROJECT scope only."
    )
    assigned_project_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description="ORGANIZATION scope: limit to these projects; empty: all."
    )


# Fields that may not be null when sent (null would mean "clear", which they cannot be).
_NOT_NULL = (
    "name",
    "model_group",
    "api_type",
    "is_visible",
    "is_recommended",
    "enabled",
    "provider_settings",
    "is_default",
    "fallbacks",
    "assigned_project_ids",
)
_MODEL_INPUT_FIELDS = tuple(f.name for f in dataclasses.fields(ModelInput) if f.name != "credentials")


def _sent(value: Any) -> bool:
    return value is not strawberry.UNSET


def to_model_input(
    fields: Any,
    *,
    clear_token: bool = False,
    clear_client_keys: bool = False,
) -> ModelInput:
    """ModelInput from a GraphQL input object (any of the create/update inputs)."""
    values: dict[str, Any] = {}
    for name in _MODEL_INPUT_FIELDS:
        value = getattr(fields, name, strawberry.UNSET)
        if not _sent(value):
            continue
        if value is None and name in _NOT_NULL:
            raise UserInputError.single(CommonErrorCode.REQUIRED, "must not be null", ["input", _camel(name)])
        values[name] = _convert(name, value)
    credentials = CredentialChanges(
        token=_credential(fields.token),
        client_key=_credential(fields.client_key),
        secret_key=_credential(fields.secret_key),
        clear_token=clear_token,
        clear_client_keys=clear_client_keys,
    )
    return ModelInput(**values, credentials=credentials)


def _credential(value: Any) -> str | None:
    return value if _sent(value) else None


def _convert(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "capabilities":
        return frozenset(
            models.Capability[c.upper()]
            for c in ("streaming", "tools", "vision", "reasoning", "structured_output")
            if getattr(value, c)
        )
    if name == "replacement_model_id":
        return decode_id(value, MODEL_TYPES, ["input", "replacementModelId"])
    if name == "connection_id":
        return decode_id(value, "Connection", ["input", "connectionId"])
    if name == "fallbacks":
        return fallbacks_of(value)
    if name == "assigned_project_ids":
        return tuple(
            decode_id(p, "Project", ["input", "assignedProjectIds", str(i)]) for i, p in enumerate(value)
        )
    if name == "system_prompt_id":
        return decode_id(value, "SystemPrompt", ["input", "systemPromptId"])
    if name == "provider_settings" and not isinstance(value, dict):
        raise UserInputError.single(
            CommonErrorCode.INVALID, "must be a JSON object", ["input", "providerSettings"]
        )
    return value


def fallbacks_of(items: list[FallbackInput]) -> tuple[models.Fallback, ...]:
    return tuple(
        models.Fallback(
            model_id=decode_id(f.model_id, MODEL_TYPES, ["input", "fallbacks", str(i), "modelId"]),
            enabled=f.enabled,
            failed_requests=f.failed_requests,
            duration_minutes=f.duration_minutes,
            notify_emails=tuple(f.notify_emails),
        )
        for i, f in enumerate(items)
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
