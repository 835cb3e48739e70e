"""Use cases for API keys: create (secret shown once), revoke, list."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from app.db import Database
from app.domain.alert_events import api_key_revoked
from app.domain.auth import ROLE_PERMISSIONS, ApiKey, Permission, Principal, Role, generate_api_key
from app.domain.errors import AccessDenied, ErrorCollector, NotFoundError
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.tenancy import check_name
from app.repositories.api_keys import ApiKeyRepository
from app.repositories.organizations import OrganizationRepository, ProjectRepository
from app.repositories.outbox import OutboxRepository
from app.services.notifications import API_KEYS_TOPIC, Notifications
from app.services.permissions import require

# The highest rate limit (requests per minute) a key may be given.
MAX_RATE_LIMIT_PER_MINUTE = 100_000


class ApiKeyErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    NOT_FOUND = "NOT_FOUND"
    PERMISSION_DENIED = "PERMISSION_DENIED"


class ApiKeyService:
    def __init__(
        self,
        db: Database,
        keys: ApiKeyRepository,
        organizations: OrganizationRepository,
        projects: ProjectRepository,
        notifications: Notifications,
        outbox: OutboxRepository,
        *,
        default_rate_limit_per_minute: int,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.keys = keys
        self.organizations = organizations
        self.projects = projects
        self.notifications = notifications
        self.default_rate_limit_per_minute = default_rate_limit_per_minute

    async def list_for_organization(
        self, principal: Principal, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[ApiKey]:
        if not principal.can_access_organization(organization_id):
            return Page([], False)
        require(principal, Permission.KEYS_MANAGE)
        # A project key sees only its project's keys, as it may revoke only those.
        return await self.keys.list_for_organization(organization_id, page, principal.project_id)

    async def get(self, principal: Principal, key_id: UUID) -> ApiKey | None:
        """A key the caller may manage; None for a missing one and for one the caller may not see."""
        key = await self._visible(principal, key_id)
        return key if key is not None and principal.has(Permission.KEYS_MANAGE) else None

    async def _visible(self, principal: Principal, key_id: UUID) -> ApiKey | None:
        """A key in the caller's scope: its organization, and for a project key, its project."""
        key = await self.keys.get(key_id)
        if key is None or key.organization_id is None:
            return None
        if not principal.can_access_organization(key.organization_id):
            return None
        if principal.project_id is not None and key.project_id != principal.project_id:
            return None
        return key

    async def create(
        self,
        principal: Principal,
        *,
        organization_id: UUID,
        project_id: UUID | None,
        name: str,
        role: Role,
        permissions: Iterable[str] | None,
        expires_at: datetime | None,
        rate_limit_per_minute: int | None = None,
    ) -> tuple[ApiKey, str]:
        if (
            not principal.can_access_organization(organization_id)
            or await self.organizations.get(organization_id) is None
        ):
            raise NotFoundError("organization", ["input", "organizationId"])
        require(principal, Permission.KEYS_MANAGE)
        errors = ErrorCollector()
        check_name(errors, name, "input", "name")
        if principal.project_id is not None and project_id != principal.project_id:
            raise AccessDenied("a project key can only create keys for its own project")
        if project_id is not None:
            project = await self.projects.get(project_id)
            if project is None or project.organization_id != organization_id:
                errors.add(ApiKeyErrorCode.NOT_FOUND, "project not found", "input", "projectId")
        granted = self._granted(errors, principal, role, permissions)
        if expires_at is not None and expires_at <= datetime.now(UTC):
            errors.add(ApiKeyErrorCode.INVALID, "must be in the future", "input", "expiresAt")
        self._check_rate_limit(errors, principal, rate_limit_per_minute)
        errors.raise_if_any()
        return await self._insert(
            organization_id=organization_id,
            project_id=project_id,
            name=name.strip(),
            role=role,
            permissions=granted,
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit_per_minute,
        )

    def _check_rate_limit(self, errors: ErrorCollector, principal: Principal, limit: int | None) -> None:
        if limit is None:
            return
        if not 1 <= limit <= MAX_RATE_LIMIT_PER_MINUTE:
            errors.add(
                ApiKeyErrorCode.OUT_OF_RANGE,
                f"must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE:,}",
                "input",
                "rateLimitPerMinute",
            )
        elif limit > self.default_rate_limit_per_minute and not principal.is_platform_admin:
            # The server default protects the platform: organizations may tighten it, not lift it.
            default = self.default_rate_limit_per_minute
            errors.add(
                ApiKeyErrorCode.PERMISSION_DENIED,
                f"only platform admins may set more than the default of {default:,}",
                "input",
                "rateLimitPerMinute",
            )

    def _granted(
        self, errors: ErrorCollector, principal: Principal, role: Role, permissions: Iterable[str] | None
    ) -> frozenset[Permission]:
        if permissions is None:
            granted = ROLE_PERMISSIONS[role]
        else:
            granted_list = []
            for index, value in enumerate(permissions):
                if value not in Permission._value2member_map_:
                    errors.add(
                        ApiKeyErrorCode.INVALID,
                        f"unknown permission {value!r}",
                        "input",
                        "permissions",
                        str(index),
                    )
                else:
                    granted_list.append(Permission(value))
            granted = frozenset(granted_list)
        if Permission.PLATFORM_ADMIN in granted:
            errors.add(
                ApiKeyErrorCode.PERMISSION_DENIED,
                "platform:admin cannot be granted here",
                "input",
                "permissions",
            )
        elif not principal.is_platform_admin and not granted <= principal.permissions:
            missing = ", ".join(sorted(p.value for p in granted - principal.permissions))
            errors.add(
                ApiKeyErrorCode.PERMISSION_DENIED,
                f"you cannot grant what you do not have: {missing}",
                "input",
                # The role's permissions are what was asked for when no explicit list was sent.
                "role" if permissions is None else "permissions",
            )
        return granted

    async def create_unchecked(
        self,
        *,
        name: str,
        organization_id: UUID | None,
        project_id: UUID | None = None,
        role: Role | None = None,
        platform_admin: bool = False,
    ) -> tuple[ApiKey, str]:
        """For the operator's CLI and the demo seed, which run with the database's authority."""
        return await self._insert(
            organization_id=None if platform_admin else organization_id,
            project_id=project_id,
            name=name,
            role=role,
            permissions=frozenset({Permission.PLATFORM_ADMIN})
            if platform_admin
            else ROLE_PERMISSIONS[role or Role.VIEWER],
            expires_at=None,
            platform_admin=platform_admin,
        )

    async def _insert(
        self,
        *,
        organization_id: UUID | None,
        project_id: UUID | None,
        name: str,
        role: Role | None,
        permissions: frozenset[Permission],
        expires_at: datetime | None,
        platform_admin: bool = False,
        rate_limit_per_minute: int | None = None,
    ) -> tuple[ApiKey, str]:
        new_key = generate_api_key()
        key = await self.keys.insert(
            key_id=uuid.uuid4(),
            organization_id=organization_id,
            project_id=project_id,
            name=name,
            prefix=new_key.prefix,
            secret_hash=new_key.secret_hash,
            role=role,
            permissions=permissions,
            is_platform_admin=platform_admin,
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        return key, new_key.plaintext

    async def revoke(self, principal: Principal, key_id: UUID) -> ApiKey:
        key = await self._visible(principal, key_id)
        if key is None:
            raise NotFoundError("API key", ["input", "id"])
        require(principal, Permission.KEYS_MANAGE)
        async with self.db.transaction():
            revoked = await self.keys.revoke(key_id)
            if revoked is None:
                raise NotFoundError("API key", ["input", "id"])
            if revoked.organization_id is not None and revoked.revoked_at is not None:
                await self.outbox.insert(
                    api_key_revoked(
                        organization_id=revoked.organization_id,
                        key_id=revoked.id,
                        key_name=revoked.name,
                        prefix=revoked.prefix,
                        revoked_at=revoked.revoked_at,
                    )
                )
        await self.notifications.publish(API_KEYS_TOPIC, key.prefix)
        return revoked
