"""Models: the stored record and its effective view.

A USER model with a parent stores only what it overrides; every inherited field resolves to the
parent's value (`EffectiveModel`). Lifecycle is derived, never stored: the worse of the model's own
state and its parent's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import unquote
from uuid import UUID

from app.domain.enums import ApiType, ModelGroup, Plan, Provider

BEDROCK_URL_SCHEME = "bedrock://"


def bedrock_model_id(provider: Provider | None, url: str | None) -> str | None:
    """The model a Bedrock model URL names: `bedrock://<model-id>`, where the id may be a model id,
    an inference-profile id or an ARN (percent-encoded). None for anything else."""
    if provider is not Provider.AWS_BEDROCK or not url or not url.startswith(BEDROCK_URL_SCHEME):
        return None
    return unquote(url[len(BEDROCK_URL_SCHEME) :].strip("/")) or None


class ModelKind(StrEnum):
    SYSTEM = "SYSTEM"
    USER = "USER"


class ModelScope(StrEnum):
    ORGANIZATION = "ORGANIZATION"
    PROJECT = "PROJECT"


class AccessTier(StrEnum):
    STANDARD = "STANDARD"
    PREMIUM = "PREMIUM"


class Capability(StrEnum):
    STREAMING = "STREAMING"
    TOOLS = "TOOLS"
    VISION = "VISION"
    REASONING = "REASONING"
    # Follows a JSON Schema for its answer (responseFormat JSON_SCHEMA), natively or by a forced tool.
    STRUCTURED_OUTPUT = "STRUCTURED_OUTPUT"


class LifecycleState(StrEnum):
    ACTIVE = "ACTIVE"
    DEPRECATED = "DEPRECATED"
    END_OF_LIFE = "END_OF_LIFE"
    DISABLED = "DISABLED"


PREMIUM_PLANS = frozenset({Plan.PRO, Plan.ENTERPRISE})


def lifecycle_state(enabled: bool, end_of_life_at: datetime | None, now: datetime) -> LifecycleState:
    if not enabled:
        return LifecycleState.DISABLED
    if end_of_life_at is not None and end_of_life_at <= now:
        return LifecycleState.END_OF_LIFE
    if end_of_life_at is not None:
        return LifecycleState.DEPRECATED
    return LifecycleState.ACTIVE


@dataclass(frozen=True, slots=True)
class Fallback:
    model_id: UUID
    enabled: bool = True
    failed_requests: int = 3
    duration_minutes: int = 5
    notify_emails: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One row of `models` as stored; inherited fields of a child are None. No secrets, only flags."""

    id: UUID
    kind: ModelKind
    organization_id: UUID | None
    scope: ModelScope | None
    project_id: UUID | None
    parent_id: UUID | None
    name: str
    description: str | None
    provider: Provider | None
    provider_model_id: str | None
    model_url: str | None
    model_group: ModelGroup
    api_type: ApiType
    context_window: int | None
    max_output_tokens: int | None
    capabilities: frozenset[Capability] | None
    credit_multiplier: Decimal | None
    access_tier: AccessTier | None
    is_visible: bool
    is_recommended: bool
    enabled: bool
    end_of_life_at: datetime | None
    deprecation_notice: str | None
    replacement_model_id: UUID | None
    system_prompt_id: UUID | None
    system_prompt_override: str | None
    provider_settings: dict[str, Any]
    has_token: bool
    has_client_key: bool
    connection_id: UUID | None
    is_default: bool
    created_at: datetime
    updated_at: datetime
    # Seconds one call may take in all, retries and fallbacks included; None: the server's default.
    call_deadline_seconds: int | None = None
    assigned_project_ids: tuple[UUID, ...] = ()
    fallbacks: tuple[Fallback, ...] = ()


@dataclass(frozen=True, slots=True)
class Lifecycle:
    state: LifecycleState
    end_of_life_at: datetime | None
    deprecation_notice: str | None
    replacement_model_id: UUID | None


@dataclass(frozen=True, slots=True)
class EffectiveModel:
    """A model with every inherited field resolved (its parent's value unless it overrides it)."""

    record: ModelRecord
    parent: ModelRecord | None = field(default=None)

    def _inherited(self, name: str) -> Any:
        own = getattr(self.record, name)
        if own is None and self.parent is not None:
            return getattr(self.parent, name)
        return own

    @property
    def id(self) -> UUID:
        return self.record.id

    @property
    def provider(self) -> Provider:
        provider: Provider = self._inherited("provider")
        return provider

    @property
    def provider_model_id(self) -> str:
        # A Bedrock model may be registered by its URL alone: `bedrock://<model-id>`.
        own = self._inherited("provider_model_id") or bedrock_model_id(self.provider, self.model_url)
        return str(own or "")

    @property
    def model_url(self) -> str | None:
        url: str | None = self._inherited("model_url")
        return url

    @property
    def api_type(self) -> ApiType:
        return self.parent.api_type if self.parent else self.record.api_type

    @property
    def context_window(self) -> int | None:
        value: int | None = self._inherited("context_window")
        return value

    @property
    def max_output_tokens(self) -> int | None:
        value: int | None = self._inherited("max_output_tokens")
        return value

    @property
    def call_deadline_seconds(self) -> int | None:
        value: int | None = self._inherited("call_deadline_seconds")
        return value

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._inherited("capabilities") or frozenset()

    @property
    def credit_multiplier(self) -> Decimal:
        value = self._inherited("credit_multiplier")
        return Decimal(0) if value is None else Decimal(value)

    @property
    def access_tier(self) -> AccessTier:
        return self._inherited("access_tier") or AccessTier.STANDARD

    @property
    def provider_settings(self) -> dict[str, Any]:
        inherited = self.parent.provider_settings if self.parent else {}
        return {**inherited, **self.record.provider_settings}

    def lifecycle(self, now: datetime) -> Lifecycle:
        """The worse of the model's own lifecycle and its parent's."""
        own = self.record
        parent = self.parent
        enabled = own.enabled and (parent.enabled if parent else True)
        source = own
        if (
            parent is not None
            and parent.end_of_life_at is not None
            and (own.end_of_life_at is None or parent.end_of_life_at < own.end_of_life_at)
        ):
            source = parent
        return Lifecycle(
            state=lifecycle_state(enabled, source.end_of_life_at, now),
            end_of_life_at=source.end_of_life_at,
            deprecation_notice=source.deprecation_notice,
            replacement_model_id=source.replacement_model_id,
        )

    def allowed_for(self, plan: Plan) -> bool:
        return self.access_tier is AccessTier.STANDARD or plan in PREMIUM_PLANS

    def usable_in_project(self, organization_id: UUID, project_id: UUID | None) -> bool:
        """Whether a caller of `organization_id` working in `project_id` may use this model at all
        (lifecycle and plan aside): visible system models, and the organization's models scoped to
        the organization (assigned to the project, or to no project) or to that very project."""
        record = self.record
        if record.kind is ModelKind.SYSTEM:
            return record.is_visible
        if record.organization_id != organization_id:
            return False
        if record.scope is ModelScope.PROJECT:
            return project_id is not None and record.project_id == project_id
        return not record.assigned_project_ids or project_id in record.assigned_project_ids
