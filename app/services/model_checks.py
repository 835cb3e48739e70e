"""Rules about a candidate model that need other rows: parent, replacement, fallbacks, connection,
system prompt, projects and outbound URLs. They add to the same collector as the field rules."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from app.domain.enums import Provider
from app.domain.errors import ErrorCollector
from app.domain.model_rules import ModelErrorCode
from app.domain.models import EffectiveModel, ModelKind, ModelRecord, ModelScope
from app.repositories.connections import ConnectionRepository
from app.repositories.models import ModelRepository
from app.repositories.organizations import ProjectRepository
from app.repositories.system_prompts import SystemPromptRepository
from app.services.destination_checks import check_destination_urls


@dataclass(frozen=True, slots=True)
class ReferenceChecker:
    models: ModelRepository
    projects: ProjectRepository
    connections: ConnectionRepository
    system_prompts: SystemPromptRepository
    allow_private_upstreams: bool

    async def check(self, errors: ErrorCollector, model: ModelRecord, parent: ModelRecord | None) -> None:
        self._urls(errors, model)
        await self._replacement(errors, model)
        await self._fallbacks(errors, model)
        await self._connection(errors, model, parent)
        await self._system_prompt(errors, model)
        await self._projects(errors, model)

    def _urls(self, errors: ErrorCollector, model: ModelRecord) -> None:
        check_destination_urls(
            errors,
            model.model_url,
            model.provider_settings,
            allow_private=self.allow_private_upstreams,
            code=ModelErrorCode.UNSAFE_URL,
        )

    @staticmethod
    def _usable_by(model: ModelRecord, other: EffectiveModel) -> bool:
        """Whether `model` may refer to `other`: `other` is usable wherever `model` is. Anything else
        reads exactly like a missing model, so a reference is no way to learn what exists elsewhere."""
        if model.kind is ModelKind.SYSTEM:
            return other.record.kind is ModelKind.SYSTEM
        organization_id = model.organization_id
        if organization_id is None:
            return False
        if model.scope is ModelScope.PROJECT:
            return other.usable_in_project(organization_id, model.project_id)
        # An organization model serves its assigned projects, or (none assigned) every project.
        projects = model.assigned_project_ids or (None,)
        return all(other.usable_in_project(organization_id, p) for p in projects)

    async def _replacement(self, errors: ErrorCollector, model: ModelRecord) -> None:
        if model.replacement_model_id is None:
            return
        at = ("input", "replacementModelId")
        replacement = await self.models.get(model.replacement_model_id)
        if replacement is None or not self._usable_by(model, EffectiveModel(replacement)):
            errors.add(ModelErrorCode.NOT_FOUND, "model not found", *at)
        elif replacement.id == model.id:
            errors.add(ModelErrorCode.REPLACEMENT_CYCLE, "a model cannot replace itself", *at)
        elif replacement.model_group is not model.model_group:
            errors.add(ModelErrorCode.GROUP_MISMATCH, "the replacement must be of the same model group", *at)
        elif model.id in await self.models.replacement_chain(replacement.id):
            errors.add(
                ModelErrorCode.REPLACEMENT_CYCLE, "the replacement chain would loop back to this model", *at
            )

    async def _fallbacks(self, errors: ErrorCollector, model: ModelRecord) -> None:
        if not model.fallbacks:
            return
        targets = {r.id: r for r in await self.models.get_many([f.model_id for f in model.fallbacks])}
        seen: set[UUID] = set()
        for index, fallback in enumerate(model.fallbacks):
            at = ("input", "fallbacks", str(index), "modelId")
            target = targets.get(fallback.model_id)
            if fallback.model_id == model.id:
                continue  # reported by the field rules
            if target is None or not self._usable_by(model, EffectiveModel(target)):
                errors.add(ModelErrorCode.NOT_FOUND, "model not found", *at)
            elif fallback.model_id in seen:
                errors.add(ModelErrorCode.INVALID, "this model is already a fallback", *at)
            elif target.model_group is not model.model_group:
                errors.add(ModelErrorCode.GROUP_MISMATCH, "a fallback must be of the same model group", *at)
            seen.add(fallback.model_id)

    async def _connection(
        self, errors: ErrorCollector, model: ModelRecord, parent: ModelRecord | None
    ) -> None:
        if model.connection_id is None:
            return
        at = ("input", "connectionId")
        connection = await self.connections.get(model.connection_id)
        if connection is None or connection.organization_id != model.organization_id:
            errors.add(ModelErrorCode.NOT_FOUND, "connection not found", *at)
            return
        provider = model.provider or (parent.provider if parent else None)
        if connection.provider != provider:
            errors.add(ModelErrorCode.INVALID, f"this connection is for {connection.provider.value}", *at)
        elif provider is Provider.OPENAI_COMPATIBLE and not (
            connection.model_url or connection.provider_settings.get("baseCustomUrl")
        ):
            errors.add(
                ModelErrorCode.REQUIRED,
                "the connection has no URL, and an OpenAI-compatible model needs its server's URL",
                *at,
            )

    async def _system_prompt(self, errors: ErrorCollector, model: ModelRecord) -> None:
        if model.system_prompt_id is None:
            return
        prompt = await self.system_prompts.get(model.system_prompt_id)
        if prompt is None or prompt.organization_id not in (None, model.organization_id):
            errors.add(ModelErrorCode.NOT_FOUND, "system prompt not found", "input", "systemPromptId")

    async def _projects(self, errors: ErrorCollector, model: ModelRecord) -> None:
        wanted = list(model.assigned_project_ids)
        if model.scope is ModelScope.PROJECT and model.project_id is not None:
            wanted.append(model.project_id)
        if not wanted:
            return
        found = {
            p.id for p in await self.projects.get_many(wanted) if p.organization_id == model.organization_id
        }
        for index, project_id in enumerate(model.assigned_project_ids):
            if project_id not in found:
                errors.add(
                    ModelErrorCode.NOT_FOUND, "project not found", "input", "assignedProjectIds", str(index)
                )
        if model.scope is ModelScope.PROJECT and model.project_id not in found:
            errors.add(ModelErrorCode.NOT_FOUND, "project not found", "input", "projectId")
