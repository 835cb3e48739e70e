"""Tenancy mutations: organizations, projects and API keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from app.api.context import GraphQLInfo, services
from app.api.errors import MutationFrame
from app.api.orgs.types import (
    ApiKey,
    ApiKeyUserError,
    Organization,
    OrganizationUserError,
    Plan,
    Project,
    Role,
    api_key_error,
    organization_error,
)
from app.api.scalars import maybe, maybe_set
from app.domain import auth, tenancy
from app.domain.auth import Principal
from app.domain.enums import Plan as DomainPlan
from app.domain.ids import decode_id, decode_optional
from app.domain.values import UNSET, UnsetType
from app.services.tenancy import OrganizationChanges


@strawberry.input
class OrganizationCreateInput:
    name: str
    plan: Plan = DomainPlan.FREE  # type: ignore[valid-type]
    monthly_credit_limit: Decimal | None = None
    auto_migrate_end_of_life: bool = False
    external_id: str | None = None


@strawberry.input(
    description="Fields left out are not changed; plan, limits and externalId: platform admins. "
    "Organization admins (not project keys) change the rest."
)
class OrganizationUpdateInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    plan: Plan | None = strawberry.UNSET  # type: ignore[valid-type]
    monthly_credit_limit: Decimal | None = strawberry.UNSET
    auto_migrate_end_of_life: bool | None = strawberry.UNSET
    external_id: str | None = strawberry.UNSET
    max_concurrent_streams: int | None = strawberry.field(
        default=strawberry.UNSET, description="1-10,000; null: back to the server's default."
    )
    alert_emails: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Who is emailed the organization's alerts: at most 20 addresses, each once "
        "(ignoring case); [] for nobody. Replaces the whole list.",
    )


@strawberry.type
class OrganizationCreatePayload:
    organization: Organization | None
    user_errors: list[OrganizationUserError]


@strawberry.type
class OrganizationUpdatePayload:
    organization: Organization | None
    user_errors: list[OrganizationUserError]


@strawberry.input
class ProjectCreateInput:
    organization_id: strawberry.ID
    name: str


@strawberry.input
class ProjectUpdateInput:
    id: strawberry.ID
    name: str


@strawberry.input
class ProjectDeleteInput:
    id: strawberry.ID


@strawberry.type
class ProjectCreatePayload:
    project: Project | None
    user_errors: list[OrganizationUserError]


@strawberry.type
class ProjectUpdatePayload:
    project: Project | None
    user_errors: list[OrganizationUserError]


@strawberry.type
class ProjectDeletePayload:
    deleted_project_id: strawberry.ID | None
    user_errors: list[OrganizationUserError]


@strawberry.input
class ApiKeyCreateInput:
    organization_id: strawberry.ID
    name: str
    role: Role = auth.Role.DEVELOPER  # type: ignore[valid-type]
    project_id: strawberry.ID | None = None
    permissions: list[str] | None = strawberry.field(
        default=None, description="Defaults to the role's permissions; never more than the creator has."
    )
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = strawberry.field(
        default=None,
        description="Gateway calls per minute, 1-100,000; above the server's default: platform admins. "
        "Null: the server's default.",
    )


@strawberry.type
class ApiKeyCreatePayload:
    api_key: ApiKey | None
    secret: str | None = strawberry.field(description="The whole key. Shown once, never again.")
    user_errors: list[ApiKeyUserError]


@strawberry.input
class ApiKeyRevokeInput:
    id: strawberry.ID


@strawberry.type
class ApiKeyRevokePayload:
    api_key: ApiKey | None
    user_errors: list[ApiKeyUserError]


_API_KEY_FRAME = MutationFrame(api_key_error)
_ORGANIZATION_FRAME = MutationFrame(organization_error)


@strawberry.type
class TenancyMutations:
    @strawberry.mutation(description="Platform admins only.")
    async def organization_create(
        self, info: GraphQLInfo, input: OrganizationCreateInput
    ) -> OrganizationCreatePayload:
        async def work(principal: Principal) -> tenancy.Organization:
            return await services(info).organizations.create(
                principal,
                name=input.name,
                plan=input.plan,
                monthly_credit_limit=input.monthly_credit_limit,
                auto_migrate_end_of_life=input.auto_migrate_end_of_life,
                external_id=input.external_id,
            )

        created, errors = await _ORGANIZATION_FRAME.run(info, input, work)
        return OrganizationCreatePayload(
            organization=Organization.of(created) if created else None, user_errors=errors
        )

    @strawberry.mutation
    async def organization_update(
        self, info: GraphQLInfo, input: OrganizationUpdateInput
    ) -> OrganizationUpdatePayload:
        async def work(principal: Principal) -> tenancy.Organization:
            organization_id = decode_id(input.id, "Organization", ["input", "id"])
            alert_emails = maybe_set(input.alert_emails, ["input", "alertEmails"])
            changes = OrganizationChanges(
                name=maybe_set(input.name, ["input", "name"]),
                plan=maybe_set(input.plan, ["input", "plan"]),
                monthly_credit_limit=maybe(input.monthly_credit_limit),
                auto_migrate_end_of_life=maybe_set(
                    input.auto_migrate_end_of_life, ["input", "autoMigrateEndOfLife"]
                ),
                external_id=maybe(input.external_id),
                max_concurrent_streams=maybe(input.max_concurrent_streams),
                alert_emails=UNSET if isinstance(alert_emails, UnsetType) else tuple(alert_emails),
            )
            return await services(info).organizations.update(principal, organization_id, changes)

        updated, errors = await _ORGANIZATION_FRAME.run(info, input, work)
        return OrganizationUpdatePayload(
            organization=Organization.of(updated) if updated else None, user_errors=errors
        )

    @strawberry.mutation
    async def project_create(self, info: GraphQLInfo, input: ProjectCreateInput) -> ProjectCreatePayload:
        async def work(principal: Principal) -> tenancy.Project:
            organization_id = decode_id(input.organization_id, "Organization", ["input", "organizationId"])
            return await services(info).projects.create(principal, organization_id, input.name)

        created, errors = await _ORGANIZATION_FRAME.run(info, input, work)
        return ProjectCreatePayload(project=Project.of(created) if created else None, user_errors=errors)

    @strawberry.mutation
    async def project_update(self, info: GraphQLInfo, input: ProjectUpdateInput) -> ProjectUpdatePayload:
        async def work(principal: Principal) -> tenancy.Project:
            project_id = decode_id(input.id, "Project", ["input", "id"])
            return await services(info).projects.rename(principal, project_id, input.name)

        updated, errors = await _ORGANIZATION_FRAME.run(info, input, work)
        return ProjectUpdatePayload(project=Project.of(updated) if updated else None, user_errors=errors)

    @strawberry.mutation(description="Deletes the project with its project-scoped models and keys.")
    async def project_delete(self, info: GraphQLInfo, input: ProjectDeleteInput) -> ProjectDeletePayload:
        async def work(principal: Principal) -> tenancy.Project:
            project_id = decode_id(input.id, "Project", ["input", "id"])
            return await services(info).projects.delete(principal, project_id)

        deleted, errors = await _ORGANIZATION_FRAME.run(info, input, work)
        return ProjectDeletePayload(deleted_project_id=input.id if deleted else None, user_errors=errors)

    @strawberry.mutation(description="Creates a key; the payload's `secret` is the only time it is shown.")
    async def api_key_create(self, info: GraphQLInfo, input: ApiKeyCreateInput) -> ApiKeyCreatePayload:
        async def work(principal: Principal) -> tuple[auth.ApiKey, str]:
            organization_id = decode_id(input.organization_id, "Organization", ["input", "organizationId"])
            project_id = decode_optional(input.project_id, "Project", ["input", "projectId"])
            return await services(info).api_keys.create(
                principal,
                organization_id=organization_id,
                project_id=project_id,
                name=input.name,
                role=input.role,
                permissions=input.permissions,
                expires_at=input.expires_at,
                rate_limit_per_minute=input.rate_limit_per_minute,
            )

        created, errors = await _API_KEY_FRAME.run(info, input, work)
        if created is None:
            return ApiKeyCreatePayload(api_key=None, secret=None, user_errors=errors)
        key, secret = created
        return ApiKeyCreatePayload(api_key=ApiKey.of(key), secret=secret, user_errors=[])

    @strawberry.mutation
    async def api_key_revoke(self, info: GraphQLInfo, input: ApiKeyRevokeInput) -> ApiKeyRevokePayload:
        async def work(principal: Principal) -> auth.ApiKey:
            key_id = decode_id(input.id, "ApiKey", ["input", "id"])
            return await services(info).api_keys.revoke(principal, key_id)

        revoked, errors = await _API_KEY_FRAME.run(info, input, work)
        return ApiKeyRevokePayload(api_key=ApiKey.of(revoked) if revoked else None, user_errors=errors)
