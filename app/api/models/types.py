"""GraphQL types of models: the `Model` interface, `SystemModel` and `UserModel`.

Every inherited field resolves to its effective value (the parent's unless the variant overrides
it); `UserModel.overrides` shows what the variant itself sets."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

from app.api.connections.types import Connection, Provider
from app.api.context import GraphQLInfo, authenticated, services
from app.api.errors import UserError
from app.api.models.health import ModelHealth
from app.api.node import Node
from app.api.orgs.types import Organization, Project
from app.api.system_prompts.types import SystemPrompt
from app.domain import model_rules, models
from app.domain.enums import ApiType as DomainApiType
from app.domain.enums import ModelGroup as DomainModelGroup
from app.domain.ids import model_global_id

ModelKind = strawberry.enum(models.ModelKind)
ModelScope = strawberry.enum(
    models.ModelScope, description="ORGANIZATION (optionally some projects) or one PROJECT."
)
ModelGroup = strawberry.enum(DomainModelGroup)
ApiType = strawberry.enum(DomainApiType, description="Which OpenAI-style API a model is called through.")
AccessTier = strawberry.enum(models.AccessTier, description="PREMIUM models need a PRO or ENTERPRISE plan.")
LifecycleState = strawberry.enum(models.LifecycleState, description="Derived from enabled and endOfLifeAt.")
Capability = strawberry.enum(models.Capability)
ModelErrorCode = strawberry.enum(model_rules.ModelErrorCode, name="ModelErrorCode")


@strawberry.type
class ModelCapabilities:
    streaming: bool
    tools: bool
    vision: bool
    reasoning: bool
    structured_output: bool = strawberry.field(description="Answers in JSON following a JSON Schema.")

    @classmethod
    def of(cls, capabilities: frozenset[models.Capability]) -> ModelCapabilities:
        return cls(
            streaming=models.Capability.STREAMING in capabilities,
            tools=models.Capability.TOOLS in capabilities,
            vision=models.Capability.VISION in capabilities,
            reasoning=models.Capability.REASONING in capabilities,
            structured_output=models.Capability.STRUCTURED_OUTPUT in capabilities,
        )


@strawberry.interface(
    description="A model callable through the gateway. Inherited fields show effective values."
)
class Model(Node):
    model: strawberry.Private[models.EffectiveModel]

    @strawberry.field
    def name(self) -> str:
        return self.model.record.name

    @strawberry.field
    def description(self) -> str | None:
        return self.model.record.description

    @strawberry.field
    def kind(self) -> ModelKind:  # type: ignore[valid-type]
        return self.model.record.kind

    @strawberry.field
    def provider(self) -> Provider:  # type: ignore[valid-type]
        return self.model.provider

    @strawberry.field
    def provider_model_id(self) -> str:
        return self.model.provider_model_id

    @strawberry.field(description="The provider's API base; null: the provider's public default.")
    def model_url(self) -> str | None:
        return self.model.model_url

    @strawberry.field
    def model_group(self) -> ModelGroup:  # type: ignore[valid-type]
        return self.model.record.model_group

    @strawberry.field
    def api_type(self) -> ApiType:  # type: ignore[valid-type]
        return self.model.api_type

    @strawberry.field
    def context_window(self) -> int | None:
        return self.model.context_window

    @strawberry.field
    def max_output_tokens(self) -> int | None:
        return self.model.max_output_tokens

    @strawberry.field(description="Seconds one call may take in all; null: the server's default.")
    def call_deadline_seconds(self) -> int | None:
        return self.model.call_deadline_seconds

    @strawberry.field
    def capabilities(self) -> ModelCapabilities:
        return ModelCapabilities.of(self.model.capabilities)

    @strawberry.field(description="Credits per 1,000 tokens.")
    def credit_multiplier(self) -> Decimal:
        return self.model.credit_multiplier

    @strawberry.field
    def access_tier(self) -> AccessTier:  # type: ignore[valid-type]
        return self.model.access_tier

    @strawberry.field(description="Shown in model pickers.")
    def is_visible(self) -> bool:
        return self.model.record.is_visible

    @strawberry.field
    def is_recommended(self) -> bool:
        return self.model.record.is_recommended

    @strawberry.field(description="The model's own switch; see lifecycleState for the effective state.")
    def enabled(self) -> bool:
        return self.model.record.enabled

    @strawberry.field(description="The worse of the model's own state and its parent's.")
    def lifecycle_state(self) -> LifecycleState:  # type: ignore[valid-type]
        return self.model.lifecycle(datetime.now(UTC)).state

    @strawberry.field
    def end_of_life_at(self) -> datetime | None:
        return self.model.lifecycle(datetime.now(UTC)).end_of_life_at

    @strawberry.field
    def deprecation_notice(self) -> str | None:
        return self.model.lifecycle(datetime.now(UTC)).deprecation_notice

    @strawberry.field(description="What to use instead once this model reaches its end of life.")
    async def replacement(self, info: GraphQLInfo) -> Model | None:
        replacement_id = self.model.lifecycle(datetime.now(UTC)).replacement_model_id
        if replacement_id is None:
            return None
        found = await services(info).models.get(authenticated(info), replacement_id)
        return model_type(found) if found else None

    @strawberry.field(description="Provider-specific settings (no secrets), merged over the parent's.")
    def provider_settings(self) -> JSON:
        return JSON(self.model.provider_settings)

    @strawberry.field
    async def system_prompt(self, info: GraphQLInfo) -> SystemPrompt | None:
        prompt_id = self.model.record.system_prompt_id
        if prompt_id is None:
            return None
        found = await services(info).system_prompts.get(authenticated(info), prompt_id)
        return SystemPrompt.of(found) if found else None

    @strawberry.field
    def system_prompt_override(self) -> str | None:
        return self.model.record.system_prompt_override

    @strawberry.field(
        description="What calls get first: the override, else the composition, else the parent's."
    )
    async def effective_system_prompt(self, info: GraphQLInfo) -> str | None:
        return await services(info).system_prompt_texts.for_model(self.model)

    @strawberry.field(description="Whether calls reach this model or skip it for its fallbacks.")
    async def health(self, info: GraphQLInfo) -> ModelHealth:
        return ModelHealth.of(await services(info).health.health(self.model.id))

    @strawberry.field(description="Whether the model has its own token (write-only).")
    def has_token(self) -> bool:
        return self.model.record.has_token

    @strawberry.field(description="Whether the model has its own clientKey and secretKey (write-only).")
    def has_client_key(self) -> bool:
        return self.model.record.has_client_key

    @strawberry.field
    def created_at(self) -> datetime:
        return self.model.record.created_at

    @strawberry.field(description="Send it back as expectedUpdatedAt to update without overwriting others.")
    def updated_at(self) -> datetime:
        return self.model.record.updated_at


@strawberry.type(description="A platform-wide model, managed by platform admins.")
class SystemModel(Model):
    pass


@strawberry.type
class ModelFallback:
    enabled: bool
    failed_requests: int = strawberry.field(description="Consecutive failures that trip the primary.")
    duration_minutes: int = strawberry.field(description="How long a tripped primary is skipped.")
    notify_emails: list[str]
    fallback: strawberry.Private[models.Fallback]

    @strawberry.field
    async def model(self, info: GraphQLInfo) -> Model | None:
        found = await services(info).models.get(authenticated(info), self.fallback.model_id)
        return model_type(found) if found else None


@strawberry.type(description="What a variant sets itself, rather than inheriting.")
class UserModelOverrides:
    context_window: int | None
    max_output_tokens: int | None
    call_deadline_seconds: int | None
    enabled: bool
    end_of_life_at: datetime | None
    deprecation_notice: str | None
    system_prompt_override: str | None
    provider_settings: JSON


@strawberry.type(description="An organization's model: a variant of a system model, or its own endpoint.")
class UserModel(Model):
    @strawberry.field
    def scope(self) -> ModelScope:  # type: ignore[valid-type]
        assert self.model.record.scope is not None
        return self.model.record.scope

    @strawberry.field
    async def organization(self, info: GraphQLInfo) -> Organization:
        assert self.model.record.organization_id is not None
        found = await info.context.loaders.organization.load(self.model.record.organization_id)
        assert found is not None
        return Organization.of(found)

    @strawberry.field(description="The project of a PROJECT-scoped model.")
    async def project(self, info: GraphQLInfo) -> Project | None:
        project_id = self.model.record.project_id
        found = await info.context.loaders.project.load(project_id) if project_id else None
        return Project.of(found) if found else None

    @strawberry.field(description="The projects an ORGANIZATION-scoped model is limited to; empty: all.")
    async def assigned_projects(self, info: GraphQLInfo) -> list[Project]:
        found = await info.context.loaders.project.load_many(list(self.model.record.assigned_project_ids))
        return [Project.of(p) for p in found if p is not None]

    @strawberry.field(description="The system model this one is a variant of.")
    def parent(self) -> SystemModel | None:
        parent = self.model.parent
        return (
            SystemModel(id=strawberry.ID(model_global_id(parent)), model=models.EffectiveModel(parent))
            if parent
            else None
        )

    @strawberry.field
    def overrides(self) -> UserModelOverrides:
        record = self.model.record
        return UserModelOverrides(
            context_window=record.context_window,
            max_output_tokens=record.max_output_tokens,
            call_deadline_seconds=record.call_deadline_seconds,
            enabled=record.enabled,
            end_of_life_at=record.end_of_life_at,
            deprecation_notice=record.deprecation_notice,
            system_prompt_override=record.system_prompt_override,
            provider_settings=JSON(record.provider_settings),
        )

    @strawberry.field
    async def connection(self, info: GraphQLInfo) -> Connection | None:
        connection_id = self.model.record.connection_id
        if connection_id is None:
            return None
        found = await services(info).connections.get(authenticated(info), connection_id)
        return Connection.of(found) if found else None

    @strawberry.field(description="Whether this is its project's default model (at most one per project).")
    def is_default(self) -> bool:
        return self.model.record.is_default

    @strawberry.field(description="Tried in order when this model fails with a retryable error.")
    def fallbacks(self) -> list[ModelFallback]:
        return [
            ModelFallback(
                enabled=f.enabled,
                failed_requests=f.failed_requests,
                duration_minutes=f.duration_minutes,
                notify_emails=list(f.notify_emails),
                fallback=f,
            )
            for f in self.model.record.fallbacks
        ]


def model_type(model: models.EffectiveModel) -> SystemModel | UserModel:
    cls = SystemModel if model.record.kind is models.ModelKind.SYSTEM else UserModel
    return cls(id=strawberry.ID(model_global_id(model.record)), model=model)


@strawberry.type
class ModelUserError(UserError):
    code: ModelErrorCode  # type: ignore[valid-type]


def model_error(code: str, field: list[str] | None, message: str) -> ModelUserError:
    return ModelUserError(code=model_rules.ModelErrorCode(code), field=field, message=message)
