"""Rules about a candidate model that need other rows: parent, replacement, fallbacks, connection,
system prompt, projects and outbound URLs. They add to the same collector as the field rules."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from app.domain.errors import ErrorCollector
from app.domain.model_rules import ModelErrorCode, url_settings
from app.domain.models import EffectiveModel, ModelKind, ModelRecord, ModelScope
from app.providers.outbound import UnsafeUpstreamError, check_url
from app.repositories.connections import ConnectionRepository
from app.repositories.models import ModelRepository
from app.repositories.organizations import ProjectRepository
from app.repositories.system_prompts import SystemPromptRepository


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
        await self._fallbacks(errors, model, parent)
        await self._connection(errors, model, parent)
        await self._system_prompt(errors, model)
        await self._projects(errors, model)

    def _urls(self, errors: ErrorCollector, model: ModelRecord) -> None:
        urls = [("modelUrl", model.model_url)] if model.model_url else []
        urls += [(f"providerSettings.{key}", value) for key, value in url_settings(model.provider_settings)]
        for field, url in urls:
            if url.startswith("bedrock://"):
                continue  # an AWS model id, reached through the AWS SDK's own endpoint
            try:
                check_url(url, allow_private=self.allow_private_upstreams)
            except UnsafeUpstreamError as exc:
                errors.add(ModelErrorCode.UNSAFE_URL, str(exc), "input", *field.split("."))

    def _owner_sees(self, model: ModelRecord, other: ModelRecord) -> bool:
        """Whether `model`'s owner may refer to `other`: visible system models, or its own."""
        if other.kind is ModelKind.SYSTEM:
            return model.kind is ModelKind.SYSTEM or other.is_visible
        return model.organization_id is not None and other.organization_id == model.organization_id

    async def _replacement(self, errors: ErrorCollector, model: ModelRecord) -> None:
        if model.replacement_model_id is None:
            return
        at = ("input", "replacementModelId")
        replacement = await self.models.get(model.replacement_model_id)
        if replacement is None or not self._owner_sees(model, replacement):
            errors.add(ModelErrorCode.NOT_FOUND, "model not found", *at)
        elif replacement.id == model.id:
            errors.add(ModelErrorCode.REPLACEMENT_CYCLE, "a model cannot replace itself", *at)
        elif replacement.model_group is not model.model_group:
            errors.add(ModelErrorCode.GROUP_MISMATCH, "the replacement must be of the same model group", *at)
        elif model.id in await self.models.replacement_chain(replacement.id):
            errors.add(
                ModelErrorCode.REPLACEMENT_CYCLE, "the replacement chain would loop back to this model", *at
            )

    async def _fallbacks(
        self, errors: ErrorCollector, model: ModelRecord, parent: ModelRecord | None
    ) -> None:
        if not model.fallbacks:
            return
        targets = {r.id: r for r in await self.models.get_many([f.model_id for f in model.fallbacks])}
        parents = {
            r.id: r
            for r in await self.models.get_many([r.parent_id for r in targets.values() if r.parent_id])
        }
        seen: set[UUID] = set()
        for index, fallback in enumerate(model.fallbacks):
            at = ("input", "fallbacks", str(index), "modelId")
            target = targets.get(fallback.model_id)
            if fallback.model_id == model.id:
                continue  # reported by the field rules
            if fallback.model_id in seen:
                errors.add(ModelErrorCode.INVALID, "this model is already a fallback", *at)
            seen.add(fallback.model_id)
            usable = (
                target is not None
                and model.organization_id is not None
                and EffectiveModel(target, parents.get(target.parent_id or model.id)).usable_in_project(
                    model.organization_id, model.project_id
                )
            )
            if target is None or not usable:
                errors.add(ModelErrorCode.NOT_FOUND, "no such model usable in this project", *at)
            elif target.model_group is not model.model_group:
                errors.add(ModelErrorCode.GROUP_MISMATCH, "a fallback must be of the same model group", *at)

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
