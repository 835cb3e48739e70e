"""Use cases for prompts: read, list, create, update, delete. Every method takes the caller.

Permissions: `models:read` to read, `prompts:manage` to change; running is `llm:invoke`
(app/services/prompt_runs.py). A prompt belongs to one project: another organization's prompt reads
as missing, and so does another project's for a key bound to a project.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

from app.domain.auth import Permission, Principal
from app.domain.errors import Duplicate, ErrorCollector, NotFoundError, ReferenceGone, UserInputError
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.prompts import Prompt, PromptErrorCode, check_prompt
from app.domain.values import UNSET, Maybe, UnsetType, apply
from app.repositories.models import ModelRepository
from app.repositories.organizations import OrganizationRepository, ProjectRepository
from app.repositories.prompts import PromptRepository
from app.services.permissions import require
from app.services.prompt_models import check_prompt_model


@dataclass(frozen=True, slots=True)
class PromptChanges:
    """A create (name and template set) or an update (what is set changes; UNSET: unchanged)."""

    name: Maybe[str] = UNSET
    template: Maybe[str] = UNSET
    model_id: Maybe[UUID | None] = UNSET  # None: the project's default model at run time
    system_prompt: Maybe[str | None] = UNSET
    temperature: Maybe[float | None] = UNSET
    max_tokens: Maybe[int | None] = UNSET
    # The updatedAt the client last saw; when given and stale, the update is a CONFLICT.
    expected_updated_at: datetime | None = None


class PromptService:
    def __init__(
        self,
        prompts: PromptRepository,
        projects: ProjectRepository,
        organizations: OrganizationRepository,
        models: ModelRepository,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.prompts = prompts
        self.projects = projects
        self.organizations = organizations
        self.models = models
        self.clock = clock

    @staticmethod
    def visible(principal: Principal, prompt: Prompt) -> bool:
        return principal.can_access_project(prompt.organization_id, prompt.project_id)

    async def find(self, principal: Principal, prompt_id: UUID) -> Prompt | None:
        """The prompt if it is in the caller's scope, whatever the caller may do with it."""
        prompt = await self.prompts.get(prompt_id)
        return prompt if prompt is not None and self.visible(principal, prompt) else None

    async def get(self, principal: Principal, prompt_id: UUID) -> Prompt | None:
        """A prompt the caller may read; None for a missing one and for one it may not see."""
        if not principal.has(Permission.MODELS_READ):
            return None
        return await self.find(principal, prompt_id)

    async def list(
        self, principal: Principal, project_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Prompt]:
        """A project's prompts, oldest first; none for a project the caller may not see."""
        require(principal, Permission.MODELS_READ)
        project = await self.projects.get(project_id)
        if project is None or not principal.can_access_project(project.organization_id, project.id):
            return Page([], False)
        return await self.prompts.list_page(project.id, page)

    async def create(self, principal: Principal, project_id: UUID, changes: PromptChanges) -> Prompt:
        project = await self.projects.get(project_id)
        if project is None or not principal.can_access_project(project.organization_id, project.id):
            raise NotFoundError("project", ["input", "projectId"])
        require(principal, Permission.PROMPTS_MANAGE)
        blank = Prompt(
            id=uuid.uuid4(),
            organization_id=project.organization_id,
            project_id=project.id,
            name="",
            template="",
            model_id=None,
            system_prompt=None,
            temperature=None,
            max_tokens=None,
            created_at=self.clock(),
            updated_at=self.clock(),
        )
        return await self._save(blank, changes, created=True)

    async def update(self, principal: Principal, prompt_id: UUID, changes: PromptChanges) -> Prompt:
        current = await self._changeable(principal, prompt_id)
        return await self._save(current, changes, created=False)

    async def delete(self, principal: Principal, prompt_id: UUID) -> Prompt:
        """Deletes the prompt and its runs."""
        prompt = await self._changeable(principal, prompt_id)
        if not await self.prompts.delete(prompt.id):
            raise NotFoundError("prompt", ["input", "id"])
        return prompt

    async def _changeable(self, principal: Principal, prompt_id: UUID) -> Prompt:
        prompt = await self.find(principal, prompt_id)
        if prompt is None:
            raise NotFoundError("prompt", ["input", "id"])
        require(principal, Permission.PROMPTS_MANAGE)
        return prompt

    async def _save(self, current: Prompt, changes: PromptChanges, *, created: bool) -> Prompt:
        wanted = replace(
            current,
            name=apply(changes.name, current.name).strip(),
            template=apply(changes.template, current.template),
            model_id=apply(changes.model_id, current.model_id),
            system_prompt=apply(changes.system_prompt, current.system_prompt),
            temperature=apply(changes.temperature, current.temperature),
            max_tokens=apply(changes.max_tokens, current.max_tokens),
        )
        errors = ErrorCollector()
        check_prompt(
            errors,
            name=wanted.name,
            template=wanted.template,
            system_prompt=wanted.system_prompt,
            temperature=wanted.temperature,
            max_tokens=wanted.max_tokens,
        )
        # The model is checked when it is chosen; what happens to it later is reported by runs.
        if wanted.model_id is not None and not isinstance(changes.model_id, UnsetType):
            organization = await self.organizations.get(wanted.organization_id)
            assert organization is not None  # a prompt cannot outlive its organization
            check_prompt_model(
                errors,
                await self.models.get_effective(wanted.model_id),
                organization,
                wanted.project_id,
                wanted.max_tokens,
                self.clock(),
            )
        errors.raise_if_any()
        try:
            if created:
                return await self.prompts.insert(wanted)
            updated = await self.prompts.update(wanted, changes.expected_updated_at)
        except Duplicate as exc:
            raise UserInputError.single(
                PromptErrorCode.DUPLICATE, "the project has a prompt with this name", ["input", "name"]
            ) from exc
        except ReferenceGone as exc:  # the model was deleted meanwhile
            raise NotFoundError("model", ["input", "modelId"]) from exc
        if updated is None:
            raise UserInputError.single(
                PromptErrorCode.CONFLICT,
                "the prompt changed since you read it: read it again and reapply your change",
                ["input", "expectedUpdatedAt"],
            )
        return updated
