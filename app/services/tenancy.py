"""Use cases for organizations and projects. Every method takes the caller and checks it:
another organization's object is reported exactly like a missing one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from uuid import UUID

from app.db import Database
from app.domain.auth import Permission, Principal
from app.domain.enums import Plan
from app.domain.errors import AccessDenied, Duplicate, ErrorCollector, NotFoundError, UserInputError
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.tenancy import (
    Organization,
    Project,
    TenancyErrorCode,
    check_alert_emails,
    check_credit_limit,
    check_max_concurrent_streams,
    check_name,
)
from app.domain.values import UNSET, Maybe, UnsetType, apply
from app.repositories.organizations import OrganizationRepository, ProjectRepository
from app.services.notifications import API_KEYS_TOPIC, TENANCY_TOPIC, Notifications
from app.services.permissions import require

_EXTERNAL_ID_MAX = 200


@dataclass(frozen=True, slots=True)
class OrganizationChanges:
    name: Maybe[str] = UNSET
    plan: Maybe[Plan] = UNSET
    monthly_credit_limit: Maybe[Decimal | None] = UNSET
    auto_migrate_end_of_life: Maybe[bool] = UNSET
    external_id: Maybe[str | None] = UNSET
    max_concurrent_streams: Maybe[int | None] = UNSET
    alert_emails: Maybe[tuple[str, ...]] = UNSET


class OrganizationService:
    def __init__(
        self, db: Database, organizations: OrganizationRepository, notifications: Notifications
    ) -> None:
        self.db = db
        self.organizations = organizations
        self.notifications = notifications

    async def referenced(self, organization_ids: list[UUID]) -> list[Organization]:
        """The organizations that objects the caller may see refer to (for DataLoaders, which only
        follow such references): not scoped again."""
        return await self.organizations.get_many(organization_ids)

    async def named(self, principal: Principal, name: str) -> Organization | None:
        """Platform admins: the organization called `name` (ignoring case), if there is one."""
        require(principal, Permission.PLATFORM_ADMIN)
        return await self.organizations.get_by_name(name)

    async def get(self, principal: Principal, organization_id: UUID) -> Organization | None:
        if not principal.can_access_organization(organization_id):
            return None
        return await self.organizations.get(organization_id)

    def alert_emails(self, principal: Principal, organization: Organization) -> tuple[str, ...]:
        """People's addresses: for the organization's admins (not project keys) and platform admins."""
        if not principal.can_access_organization(organization.id):
            raise AccessDenied("another organization's alert emails")
        _require_organization_admin(principal)
        return organization.alert_emails

    async def list(self, principal: Principal, page: PageRequest[CreatedKey]) -> Page[Organization]:
        require(principal, Permission.PLATFORM_ADMIN)
        return await self.organizations.list_page(page)

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        plan: Plan = Plan.FREE,
        monthly_credit_limit: Decimal | None = None,
        auto_migrate_end_of_life: bool = False,
        external_id: str | None = None,
    ) -> Organization:
        require(principal, Permission.PLATFORM_ADMIN)
        errors = ErrorCollector()
        check_name(errors, name, "input", "name")
        check_credit_limit(errors, monthly_credit_limit, "input", "monthlyCreditLimit")
        _check_external_id(errors, external_id)
        errors.raise_if_any()
        try:
            async with self.db.transaction():
                return await self.organizations.insert(
                    organization_id=uuid.uuid4(),
                    name=name.strip(),
                    plan=plan,
                    monthly_credit_limit=monthly_credit_limit,
                    auto_migrate_end_of_life=auto_migrate_end_of_life,
                    external_id=external_id or None,
                )
        except Duplicate as exc:
            raise _duplicate(exc) from exc

    async def update(
        self, principal: Principal, organization_id: UUID, changes: OrganizationChanges
    ) -> Organization:
        current = await self.get(principal, organization_id)
        if current is None:
            raise NotFoundError("organization", ["input", "id"])
        _require_organization_admin(principal)
        errors = ErrorCollector()
        if not principal.is_platform_admin:
            for value, field in (
                (changes.plan, "plan"),
                (changes.monthly_credit_limit, "monthlyCreditLimit"),
                (changes.external_id, "externalId"),
                (changes.max_concurrent_streams, "maxConcurrentStreams"),
            ):
                if not isinstance(value, UnsetType):
                    errors.add(
                        TenancyErrorCode.PERMISSION_DENIED,
                        "only platform admins may change this",
                        "input",
                        field,
                    )
        if not isinstance(changes.name, UnsetType):
            check_name(errors, changes.name, "input", "name")
        if not isinstance(changes.monthly_credit_limit, UnsetType):
            check_credit_limit(errors, changes.monthly_credit_limit, "input", "monthlyCreditLimit")
        if not isinstance(changes.external_id, UnsetType):
            _check_external_id(errors, changes.external_id)
        if not isinstance(changes.max_concurrent_streams, UnsetType):
            check_max_concurrent_streams(
                errors, changes.max_concurrent_streams, "input", "maxConcurrentStreams"
            )
        if not isinstance(changes.alert_emails, UnsetType):
            check_alert_emails(errors, changes.alert_emails, "input", "alertEmails")
        errors.raise_if_any()
        updated = replace(
            current,
            name=apply(changes.name, current.name).strip(),
            plan=apply(changes.plan, current.plan),
            monthly_credit_limit=apply(changes.monthly_credit_limit, current.monthly_credit_limit),
            auto_migrate_end_of_life=apply(
                changes.auto_migrate_end_of_life, current.auto_migrate_end_of_life
            ),
            external_id=apply(changes.external_id, current.external_id) or None,
            max_concurrent_streams=apply(changes.max_concurrent_streams, current.max_concurrent_streams),
            alert_emails=apply(changes.alert_emails, current.alert_emails),
        )
        try:
            async with self.db.transaction():
                saved = await self.organizations.update(updated)
        except Duplicate as exc:
            raise _duplicate(exc) from exc
        await self.notifications.publish(TENANCY_TOPIC, str(organization_id))
        return saved


class ProjectService:
    def __init__(
        self,
        db: Database,
        projects: ProjectRepository,
        organizations: OrganizationService,
        notifications: Notifications,
    ) -> None:
        self.db = db
        self.projects = projects
        self.organizations = organizations
        self.notifications = notifications

    async def referenced(self, project_ids: list[UUID]) -> list[Project]:
        """The projects that objects the caller may see refer to (for DataLoaders): not scoped again."""
        return await self.projects.get_many(project_ids)

    async def get(self, principal: Principal, project_id: UUID) -> Project | None:
        project = await self.projects.get(project_id)
        if project is None or not principal.can_access_project(project.organization_id, project.id):
            return None
        return project

    async def list_for_organization(
        self, principal: Principal, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Project]:
        if not principal.can_access_organization(organization_id):
            return Page([], False)
        return await self.projects.list_for_organization(organization_id, page, principal.project_id)

    async def create(self, principal: Principal, organization_id: UUID, name: str) -> Project:
        if await self.organizations.get(principal, organization_id) is None:
            raise NotFoundError("organization", ["input", "organizationId"])
        require(principal, Permission.ORGANIZATION_MANAGE)
        if principal.project_id is not None:
            raise AccessDenied("a project key cannot create projects")
        errors = ErrorCollector()
        check_name(errors, name, "input", "name")
        errors.raise_if_any()
        try:
            async with self.db.transaction():
                return await self.projects.insert(
                    project_id=uuid.uuid4(), organization_id=organization_id, name=name.strip()
                )
        except Duplicate as exc:
            raise _duplicate(exc) from exc

    async def rename(self, principal: Principal, project_id: UUID, name: str) -> Project:
        await self._manageable(principal, project_id)
        errors = ErrorCollector()
        check_name(errors, name, "input", "name")
        errors.raise_if_any()
        try:
            async with self.db.transaction():
                renamed = await self.projects.rename(project_id, name.strip())
        except Duplicate as exc:
            raise _duplicate(exc) from exc
        await self.notifications.publish(TENANCY_TOPIC, str(project_id))
        return renamed

    async def delete(self, principal: Principal, project_id: UUID) -> Project:
        project = await self._manageable(principal, project_id)
        async with self.db.transaction():
            await self.projects.delete(project_id)
        # The project's keys went with it: every instance drops its cached keys and projects.
        await self.notifications.publish(API_KEYS_TOPIC, None)
        await self.notifications.publish(TENANCY_TOPIC, str(project_id))
        return project

    async def _manageable(self, principal: Principal, project_id: UUID) -> Project:
        project = await self.get(principal, project_id)
        if project is None:
            raise NotFoundError("project", ["input", "id"])
        require(principal, Permission.ORGANIZATION_MANAGE)
        return project


def _require_organization_admin(principal: Principal) -> None:
    require(principal, Permission.ORGANIZATION_MANAGE)
    if principal.project_id is not None:
        raise AccessDenied("a project key cannot manage its organization")


def _check_external_id(errors: ErrorCollector, external_id: str | None) -> None:
    if external_id is not None and len(external_id) > _EXTERNAL_ID_MAX:
        errors.add(
            TenancyErrorCode.TOO_LONG, f"must be at most {_EXTERNAL_ID_MAX} characters", "input", "externalId"
        )


def _duplicate(exc: Duplicate) -> UserInputError:
    field = exc.field
    return UserInputError.single(
        TenancyErrorCode.DUPLICATE, f"this {field} is already taken", ["input", field]
    )
