"""What a model create or update asks for, and the candidate record it produces.

Creates and updates share one path: start from defaults (create) or the stored record (update),
apply what the caller sent, then check the whole candidate. Fields left out (UNSET) keep their value.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from app.domain.credentials import CredentialChanges
from app.domain.enums import ApiType, ModelGroup, Provider
from app.domain.errors import ErrorCollector
from app.domain.model_rules import ModelErrorCode
from app.domain.models import AccessTier, Capability, Fallback, ModelKind, ModelRecord, ModelScope
from app.domain.values import UNSET, Maybe, UnsetType


@dataclass(frozen=True, slots=True)
class ModelInput:
    name: Maybe[str] = UNSET
    description: Maybe[str | None] = UNSET
    provider: Maybe[Provider | None] = UNSET
    provider_model_id: Maybe[str | None] = UNSET
    model_url: Maybe[str | None] = UNSET
    model_group: Maybe[ModelGroup] = UNSET
    api_type: Maybe[ApiType] = UNSET
    context_window: Maybe[int | None] = UNSET
    max_output_tokens: Maybe[int | None] = UNSET
    call_deadline_seconds: Maybe[int | None] = UNSET
    capabilities: Maybe[frozenset[Capability] | None] = UNSET
    credit_multiplier: Maybe[Decimal | None] = UNSET
    access_tier: Maybe[AccessTier | None] = UNSET
    is_visible: Maybe[bool] = UNSET
    is_recommended: Maybe[bool] = UNSET
    enabled: Maybe[bool] = UNSET
    end_of_life_at: Maybe[datetime | None] = UNSET
    deprecation_notice: Maybe[str | None] = UNSET
    replacement_model_id: Maybe[UUID | None] = UNSET
    system_prompt_id: Maybe[UUID | None] = UNSET
    system_prompt_override: Maybe[str | None] = UNSET
    provider_settings: Maybe[dict[str, Any]] = UNSET
    connection_id: Maybe[UUID | None] = UNSET
    is_default: Maybe[bool] = UNSET
    fallbacks: Maybe[tuple[Fallback, ...]] = UNSET
    assigned_project_ids: Maybe[tuple[UUID, ...]] = UNSET
    credentials: CredentialChanges = field(default_factory=CredentialChanges)

    def sent(self) -> dict[str, Any]:
        """The record fields the caller sent (credentials aside)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "credentials" and not isinstance(getattr(self, f.name), UnsetType)
        }


# What a variant (a user model with a parent) takes from its parent and may not set itself.
INHERITED_ONLY = {
    "provider": "provider",
    "provider_model_id": "providerModelId",
    "model_url": "modelUrl",
    "api_type": "apiType",
    "capabilities": "capabilities",
    "credit_multiplier": "creditMultiplier",
    "access_tier": "accessTier",
}
# What only platform admins decide, on system models.
SYSTEM_ONLY = {"credit_multiplier": "creditMultiplier", "access_tier": "accessTier"}


def blank_record(
    *,
    kind: ModelKind,
    organization_id: UUID | None,
    scope: ModelScope | None,
    project_id: UUID | None,
    parent: ModelRecord | None,
) -> ModelRecord:
    now = datetime.now(UTC)
    return ModelRecord(
        id=uuid.uuid4(),
        kind=kind,
        organization_id=organization_id,
        scope=scope,
        project_id=project_id,
        parent_id=parent.id if parent else None,
        name="",
        description=None,
        provider=None,
        provider_model_id=None,
        model_url=None,
        model_group=parent.model_group if parent else ModelGroup.CHAT,
        api_type=ApiType.CHAT_COMPLETION,
        context_window=None,
        max_output_tokens=None,
        capabilities=None,
        # A standalone user model is bring-your-own-key: the platform does not charge credits for it.
        credit_multiplier=Decimal(0) if kind is ModelKind.USER and parent is None else None,
        access_tier=AccessTier.STANDARD if parent is None else None,
        is_visible=True,
        is_recommended=False,
        enabled=True,
        end_of_life_at=None,
        deprecation_notice=None,
        replacement_model_id=None,
        system_prompt_id=None,
        system_prompt_override=None,
        provider_settings={},
        has_token=False,
        has_client_key=False,
        connection_id=None,
        is_default=False,
        created_at=now,
        updated_at=now,
    )


def apply_input(
    errors: ErrorCollector, record: ModelRecord, changes: ModelInput, *, is_variant: bool
) -> ModelRecord:
    """The candidate record; fields a model of this kind may not set become user errors."""
    sent = changes.sent()
    forbidden = dict(INHERITED_ONLY) if is_variant else {}
    if record.kind is ModelKind.USER:
        forbidden.update(SYSTEM_ONLY)
    for name, input_field in forbidden.items():
        if name in sent and sent[name] is not None:
            reason = (
                "is inherited from the parent model"
                if name in INHERITED_ONLY and is_variant
                else ("is set by the platform for system models only")
            )
            errors.add(ModelErrorCode.INVALID, reason, "input", input_field)
            del sent[name]
    if record.kind is ModelKind.SYSTEM and "connection_id" in sent and sent["connection_id"] is not None:
        errors.add(
            ModelErrorCode.INVALID,
            "connections belong to organizations, not system models",
            "input",
            "connectionId",
        )
        del sent["connection_id"]
    if isinstance(sent.get("name"), str):
        sent["name"] = sent["name"].strip()
    return with_credential_flags(record, replace(record, **sent), changes.credentials)


def with_credential_flags(
    stored: ModelRecord, candidate: ModelRecord, credentials: CredentialChanges
) -> ModelRecord:
    """The candidate's has-credential flags once `credentials` are applied to what is stored."""
    has_token = (stored.has_token or credentials.token is not None) and not credentials.clear_token
    has_client_key = (
        stored.has_client_key or credentials.client_key is not None
    ) and not credentials.clear_client_keys
    return replace(candidate, has_token=has_token, has_client_key=has_client_key)
