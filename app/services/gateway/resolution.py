"""Resolving a call to the models that will serve it, and every policy checked before a provider
is called: scope, lifecycle (with migration to replacements), plan, model group, the capabilities
a call needs, output limit and context window. Everything here reads from memory (model and
tenancy caches) on the hot path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from app.domain.auth import Permission, Principal
from app.domain.enums import ModelGroup
from app.domain.gateway import (
    CallOperation,
    CallWarning,
    GatewayError,
    GatewayErrorCode,
    ModelRef,
    TripPolicy,
    WarningCode,
)
from app.domain.ids import model_global_id
from app.domain.models import LifecycleState
from app.domain.tenancy import Organization
from app.domain.values import with_article
from app.services.gateway.capabilities import Needs, has_all, require_all
from app.services.gateway.route import Requested, Route
from app.services.model_cache import ModelCache, ResolvedModel
from app.services.permissions import require
from app.services.tenancy_cache import TenancyCache

_ACCEPTED_GROUPS = {
    CallOperation.GENERATE: (ModelGroup.CHAT, ModelGroup.COMPLETION),
    CallOperation.CHAT: (ModelGroup.CHAT,),
    CallOperation.CHAT_STREAM: (ModelGroup.CHAT,),
    CallOperation.EMBED: (ModelGroup.EMBEDDING,),
}
_MAX_MIGRATION_HOPS = 5
# The operation as a caller names it (chatStream is the GraphQL subscription).
_OPERATION_NAMES = {
    CallOperation.GENERATE: "generate",
    CallOperation.CHAT: "chat",
    CallOperation.CHAT_STREAM: "chatStream",
    CallOperation.EMBED: "embed",
}


def _group_mismatch(name: str, group: ModelGroup, operation: CallOperation) -> str:
    """E.g. "Demo echo is a chat model; embed needs an embedding model"."""
    wanted = " or ".join(g.value.lower() for g in _ACCEPTED_GROUPS[operation])
    return (
        f"{name} is {with_article(group.value.lower())} model; "
        f"{_OPERATION_NAMES[operation]} needs {with_article(wanted)} model"
    )


class Resolver:
    def __init__(self, models: ModelCache, tenancy: TenancyCache, clock: Callable[[], datetime]) -> None:
        self.models = models
        self.tenancy = tenancy
        self.clock = clock

    async def requested(self, principal: Principal, model: ModelRef, project_id: UUID | None) -> Requested:
        """Which model the call asks for (by id, by name, or the project default), if the caller may
        use it at all."""
        require(principal, Permission.LLM_INVOKE)
        if principal.organization_id is None:
            raise GatewayError(
                GatewayErrorCode.INVALID, "platform keys cannot call models; use an organization key"
            )
        organization = await self.tenancy.organization(principal.organization_id)
        if organization is None:
            raise GatewayError(GatewayErrorCode.NOT_FOUND, "organization not found")
        project_id = await self._project(principal, organization, project_id)
        return Requested(organization, project_id, await self._requested(organization, project_id, model))

    async def route(
        self, requested: Requested, operation: CallOperation, needs: Needs | None = None
    ) -> Route:
        """Who serves it, after the model group, lifecycle (with migration), plan and capability
        checks; fallbacks lacking a capability the call `needs` are left out."""
        organization, project_id, model = requested.organization, requested.project_id, requested.model
        if model.model.record.model_group not in _ACCEPTED_GROUPS[operation]:
            raise GatewayError(
                GatewayErrorCode.MODEL_GROUP_MISMATCH,
                _group_mismatch(model.model.record.name, model.model.record.model_group, operation),
                field=("input", "model"),
            )
        warnings: list[CallWarning] = []
        primary = await self._through_lifecycle(organization, project_id, model, warnings)
        self._check_plan(organization, primary)
        needs = needs or {}
        require_all(primary.model, needs)
        fallbacks, policy = await self._fallbacks(organization, project_id, primary, model)
        fallbacks = tuple(f for f in fallbacks if has_all(f.model, needs))
        return Route(organization, project_id, model, primary, fallbacks, policy, tuple(warnings))

    async def _project(
        self, principal: Principal, organization: Organization, project_id: UUID | None
    ) -> UUID | None:
        if principal.project_id is not None:
            if project_id not in (None, principal.project_id):
                raise GatewayError(
                    GatewayErrorCode.NOT_FOUND, "project not found", field=("input", "projectId")
                )
            return principal.project_id
        if project_id is None:
            return None
        project = await self.tenancy.project(project_id)
        if project is None or project.organization_id != organization.id:
            raise GatewayError(GatewayErrorCode.NOT_FOUND, "project not found", field=("input", "projectId"))
        return project_id

    async def _requested(
        self, organization: Organization, project_id: UUID | None, model: ModelRef
    ) -> ResolvedModel:
        if model.name is not None:
            return await self._named(organization, project_id, model.name)
        model_id = model.id
        if model_id is None:
            model_id = await self.models.default_for_project(project_id) if project_id else None
            if model_id is None:
                raise GatewayError(
                    GatewayErrorCode.NO_DEFAULT_MODEL,
                    "give a model, or call in a project that has a default model",
                    field=("input", "model"),
                )
        resolved = await self._usable(organization, project_id, model_id)
        if resolved is None:
            raise GatewayError(GatewayErrorCode.NOT_FOUND, "model not found", field=("input", "model"))
        return resolved

    async def _named(self, organization: Organization, project_id: UUID | None, name: str) -> ResolvedModel:
        """The one model called `name` that the caller may use in this project."""
        found = [
            usable
            for model_id in await self.models.ids_named(organization.id, name)
            if (usable := await self._usable(organization, project_id, model_id)) is not None
        ]
        if len(found) == 1:
            return found[0]
        message = (
            f"{len(found)} of your models are named {name!r}; name it by its id"
            if found
            else f"The model {name!r} does not exist or you do not have access to it"
        )
        raise GatewayError(GatewayErrorCode.NOT_FOUND, message, field=("input", "model"))

    async def _usable(
        self, organization: Organization, project_id: UUID | None, model_id: UUID
    ) -> ResolvedModel | None:
        """The model if this organization may call it in this project at all, else None."""
        resolved = await self.models.get(model_id)
        if resolved is None or not resolved.model.record.is_visible:
            return None
        return resolved if resolved.model.usable_in_project(organization.id, project_id) else None

    async def _through_lifecycle(
        self,
        organization: Organization,
        project_id: UUID | None,
        requested: ResolvedModel,
        warnings: list[CallWarning],
    ) -> ResolvedModel:
        current = requested
        now = self.clock()
        for _ in range(_MAX_MIGRATION_HOPS):
            lifecycle = current.model.lifecycle(now)
            name = current.model.record.name
            if lifecycle.state is LifecycleState.DISABLED:
                raise GatewayError(
                    GatewayErrorCode.MODEL_DISABLED, f"{name} is disabled", field=("input", "model")
                )
            if lifecycle.state is LifecycleState.ACTIVE:
                return current
            replacement = (
                await self._usable(organization, project_id, lifecycle.replacement_model_id)
                if lifecycle.replacement_model_id
                else None
            )
            if lifecycle.state is LifecycleState.DEPRECATED:
                warnings.append(
                    CallWarning(
                        WarningCode.MODEL_DEPRECATED,
                        _deprecation_message(
                            name, lifecycle.end_of_life_at, lifecycle.deprecation_notice, replacement
                        ),
                        end_of_life_at=lifecycle.end_of_life_at,
                        replacement=replacement.model if replacement else None,
                        deprecated_since=now,
                    )
                )
                return current
            if replacement is None or not organization.auto_migrate_end_of_life:
                use = (
                    f"; use {replacement.model.record.name} (id {model_global_id(replacement.model.record)})"
                    if replacement
                    else ""
                )
                raise GatewayError(
                    GatewayErrorCode.MODEL_END_OF_LIFE,
                    f"{name} reached its end of life{use}",
                    field=("input", "model"),
                )
            warnings.append(
                CallWarning(
                    WarningCode.MODEL_MIGRATED,
                    f"{name} reached its end of life; served by its replacement "
                    f"{replacement.model.record.name}",
                    end_of_life_at=lifecycle.end_of_life_at,
                    replacement=replacement.model,
                    deprecated_since=lifecycle.end_of_life_at,
                )
            )
            current = replacement
        raise GatewayError(
            GatewayErrorCode.MODEL_END_OF_LIFE, "the replacement chain is too long", field=("input", "model")
        )

    @staticmethod
    def _check_plan(organization: Organization, model: ResolvedModel) -> None:
        if not model.model.allowed_for(organization.plan):
            raise GatewayError(
                GatewayErrorCode.PLAN_UPGRADE_REQUIRED,
                f"{model.model.record.name} is a premium model: it needs a PRO or ENTERPRISE plan",
                field=("input", "model"),
            )

    async def _fallbacks(
        self,
        organization: Organization,
        project_id: UUID | None,
        primary: ResolvedModel,
        requested: ResolvedModel,
    ) -> tuple[tuple[ResolvedModel, ...], TripPolicy | None]:
        """The enabled fallbacks that are callable now, in order, and the primary's trip policy
        (from its first enabled fallback entry)."""
        entries = [
            f for f in (primary.model.record.fallbacks or requested.model.record.fallbacks) if f.enabled
        ]
        if not entries:
            return (), None
        first = entries[0]
        policy = TripPolicy(first.failed_requests, first.duration_minutes, first.notify_emails)
        usable = []
        for entry in entries:
            candidate = await self._usable(organization, project_id, entry.model_id)
            if candidate is None or candidate.model.id == primary.model.id:
                continue
            state = candidate.model.lifecycle(self.clock()).state
            if state in (LifecycleState.ACTIVE, LifecycleState.DEPRECATED) and candidate.model.allowed_for(
                organization.plan
            ):
                usable.append(candidate)
        return tuple(usable), policy


def _deprecation_message(
    name: str, end_of_life_at: datetime | None, notice: str | None, replacement: ResolvedModel | None
) -> str:
    parts = [f"{name} is deprecated"]
    if end_of_life_at is not None:
        parts.append(f"and reaches its end of life on {end_of_life_at.date().isoformat()}")
    message = " ".join(parts)
    if replacement is not None:
        message += f"; use {replacement.model.record.name} instead"
    if notice:
        message += f". {notice}"
    return message
