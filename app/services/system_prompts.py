"""Use cases for system prompt compositions. Every method but `text_for` takes the caller and checks it.

Permissions: compositions configure models, so they use the models permissions rather than one of
their own: `models:read` to read, `models:update` to create, change or delete an organization's
compositions (a deletion only detaches the models using it, so it is a change, not a model
deletion). Platform-wide compositions are readable by everyone and changed by platform admins only;
an organization member trying to is a PERMISSION_DENIED user error, as it can see them. Another
organization's composition reads as missing. Project-bound keys may read but not change: a
composition is shared by the whole organization.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from app.db import Database
from app.domain.auth import Permission, Principal
from app.domain.errors import AccessDenied, Duplicate, ErrorCollector, NotFoundError, UserInputError
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.system_prompts import Particle, SystemPrompt, SystemPromptErrorCode, check_composition
from app.domain.values import UNSET, Maybe, UnsetType, apply
from app.repositories.organizations import OrganizationRepository
from app.repositories.system_prompts import SystemPromptRepository
from app.services.notifications import CATALOG_TOPIC, Notifications
from app.services.permissions import require


@dataclass(frozen=True, slots=True)
class SystemPromptChanges:
    name: Maybe[str] = UNSET
    description: Maybe[str | None] = UNSET
    particles: Maybe[Sequence[Particle]] = UNSET  # the whole new set, in order
    # The updatedAt the client last saw; when given and stale, the update is a CONFLICT.
    expected_updated_at: datetime | None = None


class SystemPromptService:
    def __init__(
        self,
        db: Database,
        prompts: SystemPromptRepository,
        organizations: OrganizationRepository,
        notifications: Notifications,
    ) -> None:
        self.db = db
        self.prompts = prompts
        self.organizations = organizations
        self.notifications = notifications

    async def get(self, principal: Principal, system_prompt_id: UUID) -> SystemPrompt | None:
        """A composition the caller may read; None for a missing one and for one it may not see."""
        if not principal.has(Permission.MODELS_READ):
            return None
        prompt = await self.prompts.get(system_prompt_id)
        if prompt is None or not _readable(principal, prompt):
            return None
        return prompt

    async def list(
        self, principal: Principal, organization_id: UUID | None, page: PageRequest[CreatedKey]
    ) -> Page[SystemPrompt]:
        """Without `organization_id`: the platform-wide compositions and the caller's organization's;
        with it: that organization's only."""
        require(principal, Permission.MODELS_READ)
        if organization_id is None:
            return await self.prompts.list_page(principal.organization_id, True, page)
        if not principal.can_access_organization(organization_id):
            return Page([], False)
        return await self.prompts.list_page(organization_id, False, page)

    async def text_for(self, system_prompt_id: UUID) -> str | None:
        """The composed text, for services that already checked the reference (the gateway)."""
        prompt = await self.prompts.get(system_prompt_id)
        return prompt.text if prompt else None

    async def create(
        self,
        principal: Principal,
        *,
        organization_id: UUID | None,
        name: str,
        description: str | None,
        particles: Sequence[Particle],
    ) -> SystemPrompt:
        if organization_id is None:
            if not principal.is_platform_admin:
                raise UserInputError.single(
                    SystemPromptErrorCode.PERMISSION_DENIED,
                    "only platform admins may create platform-wide compositions; give organizationId",
                    ["input", "organizationId"],
                )
        elif (
            not principal.can_access_organization(organization_id)
            or await self.organizations.get(organization_id) is None
        ):
            raise NotFoundError("organization", ["input", "organizationId"])
        _require_change(principal)
        errors = ErrorCollector()
        check_composition(errors, name=name, description=description, particles=particles)
        errors.raise_if_any()
        try:
            async with self.db.transaction():
                created = await self.prompts.insert(
                    system_prompt_id=uuid.uuid4(),
                    organization_id=organization_id,
                    name=name.strip(),
                    description=description,
                    particles=particles,
                )
        except Duplicate as exc:
            raise _duplicate() from exc
        await self.notifications.publish(CATALOG_TOPIC, None)
        return created

    async def update(
        self, principal: Principal, system_prompt_id: UUID, changes: SystemPromptChanges
    ) -> SystemPrompt:
        current = await self._changeable(principal, system_prompt_id)
        errors = ErrorCollector()
        check_composition(
            errors,
            name=None if isinstance(changes.name, UnsetType) else changes.name,
            description=None if isinstance(changes.description, UnsetType) else changes.description,
            particles=None if isinstance(changes.particles, UnsetType) else changes.particles,
        )
        errors.raise_if_any()
        wanted = replace(
            current,
            name=apply(changes.name, current.name).strip(),
            description=apply(changes.description, current.description),
            particles=tuple(apply(changes.particles, current.particles)),
        )
        try:
            async with self.db.transaction():
                updated = await self.prompts.update(wanted, changes.expected_updated_at)
        except Duplicate as exc:
            raise _duplicate() from exc
        if updated is None:
            raise UserInputError.single(
                SystemPromptErrorCode.CONFLICT,
                "the composition changed since you read it: read it again and reapply your change",
                ["input", "expectedUpdatedAt"],
            )
        await self.notifications.publish(CATALOG_TOPIC, None)
        return updated

    async def delete(self, principal: Principal, system_prompt_id: UUID) -> SystemPrompt:
        """Deletes a composition; models that used it keep working without it."""
        prompt = await self._changeable(principal, system_prompt_id)
        async with self.db.transaction():
            deleted = await self.prompts.delete(system_prompt_id)
        if not deleted:
            raise NotFoundError("system prompt", ["input", "id"])
        await self.notifications.publish(CATALOG_TOPIC, None)
        return prompt

    async def _changeable(self, principal: Principal, system_prompt_id: UUID) -> SystemPrompt:
        prompt = await self.get(principal, system_prompt_id)
        if prompt is None:
            raise NotFoundError("system prompt", ["input", "id"])
        if prompt.is_platform and not principal.is_platform_admin:
            raise UserInputError.single(
                SystemPromptErrorCode.PERMISSION_DENIED,
                "only platform admins may change platform-wide compositions",
                ["input", "id"],
            )
        _require_change(principal)
        return prompt


def _readable(principal: Principal, prompt: SystemPrompt) -> bool:
    return prompt.organization_id is None or principal.can_access_organization(prompt.organization_id)


def _require_change(principal: Principal) -> None:
    require(principal, Permission.MODELS_UPDATE)
    if principal.project_id is not None:
        raise AccessDenied("a project key cannot change compositions shared by the organization")


def _duplicate() -> UserInputError:
    return UserInputError.single(
        SystemPromptErrorCode.DUPLICATE, "this name is already taken", ["input", "name"]
    )
