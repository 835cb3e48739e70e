"""GraphQL types of the tenancy area: organizations, projects, API keys, the viewer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from app.api.alerts.types import Webhook, organization_webhooks
from app.api.context import GraphQLInfo, authenticated, services
from app.api.errors import UserError
from app.api.node import Node
from app.api.orgs.notifications import Notification, organization_notifications
from app.api.pagination import Connection, connection, created_page, cursor_by_created
from app.domain import auth, tenancy
from app.domain.enums import Plan as DomainPlan
from app.domain.ids import encode_id
from app.services.api_keys import ApiKeyErrorCode as DomainApiKeyErrorCode

Plan = strawberry.enum(
    DomainPlan, description="What an organization pays for; PREMIUM models need PRO or above."
)
Role = strawberry.enum(auth.Role, description="A named set of permissions.")
OrganizationErrorCode = strawberry.enum(tenancy.TenancyErrorCode, name="OrganizationErrorCode")
ApiKeyErrorCode = strawberry.enum(DomainApiKeyErrorCode, name="ApiKeyErrorCode")


@strawberry.type
class Project(Node):
    name: str
    created_at: datetime
    updated_at: datetime
    domain: strawberry.Private[tenancy.Project]

    @classmethod
    def of(cls, project: tenancy.Project) -> Project:
        return cls(
            id=strawberry.ID(encode_id("Project", project.id)),
            name=project.name,
            created_at=project.created_at,
            updated_at=project.updated_at,
            domain=project,
        )

    @strawberry.field
    async def organization(self, info: GraphQLInfo) -> Organization:
        organization = await info.context.loaders.organization.load(self.domain.organization_id)
        assert organization is not None  # a project cannot outlive its organization
        return Organization.of(organization)


@strawberry.type
class Organization(Node):
    name: str
    plan: Plan  # type: ignore[valid-type]
    monthly_credit_limit: Decimal | None = strawberry.field(description="Credits a month; null: no limit.")
    auto_migrate_end_of_life: bool = strawberry.field(
        description="Route calls on an end-of-life model to its replacement instead of failing."
    )
    external_id: str | None = strawberry.field(
        description="The identity provider's id for this organization."
    )
    max_concurrent_streams: int | None = strawberry.field(
        description="Streams the organization may have open at once, across all instances; "
        "null: the server's default."
    )
    created_at: datetime
    updated_at: datetime
    domain: strawberry.Private[tenancy.Organization]

    @classmethod
    def of(cls, organization: tenancy.Organization) -> Organization:
        return cls(
            id=strawberry.ID(encode_id("Organization", organization.id)),
            name=organization.name,
            plan=organization.plan,
            monthly_credit_limit=organization.monthly_credit_limit,
            auto_migrate_end_of_life=organization.auto_migrate_end_of_life,
            external_id=organization.external_id,
            max_concurrent_streams=organization.max_concurrent_streams,
            created_at=organization.created_at,
            updated_at=organization.updated_at,
            domain=organization,
        )

    @strawberry.field
    async def projects(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[Project]:
        principal = authenticated(info)
        page = await services(info).projects.list_for_organization(
            principal, self.domain.id, created_page(first, after)
        )
        return connection(page, Project.of, cursor_by_created, has_previous=after is not None)

    @strawberry.field(description="Messages to the organization's people, newest first. Organization admins.")
    async def notifications(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[Notification]:
        return await organization_notifications(info, self.domain.id, first, after)

    @strawberry.field(
        description="Who is emailed every event of the organization (a tripped model's "
        "notifyEmails are emailed its trips too). Organization admins, not project keys."
    )
    def alert_emails(self, info: GraphQLInfo) -> list[str]:
        return list(services(info).organizations.alert_emails(authenticated(info), self.domain))

    @strawberry.field(description="Where its events are POSTed. Organization admins, not project keys.")
    async def webhooks(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[Webhook]:
        return await organization_webhooks(info, self.domain.id, first, after)


@strawberry.type
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The public part of the key, shown in logs.")
    role: Role | None  # type: ignore[valid-type]
    permissions: list[str]
    is_platform_admin: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = strawberry.field(description="Recorded in batches: may lag by seconds.")
    rate_limit_per_minute: int | None = strawberry.field(
        description="Gateway calls allowed per minute, across all instances; null: the server's default."
    )
    created_at: datetime
    domain: strawberry.Private[auth.ApiKey]

    @classmethod
    def of(cls, key: auth.ApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(encode_id("ApiKey", key.id)),
            name=key.name,
            prefix=key.prefix,
            role=key.role,
            permissions=sorted(p.value for p in key.permissions),
            is_platform_admin=key.is_platform_admin,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
            rate_limit_per_minute=key.rate_limit_per_minute,
            created_at=key.created_at,
            domain=key,
        )

    @strawberry.field
    async def project(self, info: GraphQLInfo) -> Project | None:
        if self.domain.project_id is None:
            return None
        project = await info.context.loaders.project.load(self.domain.project_id)
        return Project.of(project) if project else None


@strawberry.type(description="Who is calling.")
class Viewer:
    kind: str = strawberry.field(description="API_KEY or JWT.")
    permissions: list[str]
    is_platform_admin: bool
    principal: strawberry.Private[auth.Principal]

    @strawberry.field
    async def organization(self, info: GraphQLInfo) -> Organization | None:
        if self.principal.organization_id is None:
            return None
        organization = await info.context.loaders.organization.load(self.principal.organization_id)
        return Organization.of(organization) if organization else None

    @strawberry.field(description="The project an API key is bound to, if any.")
    async def project(self, info: GraphQLInfo) -> Project | None:
        if self.principal.project_id is None:
            return None
        project = await info.context.loaders.project.load(self.principal.project_id)
        return Project.of(project) if project else None


@strawberry.type
class OrganizationUserError(UserError):
    code: OrganizationErrorCode  # type: ignore[valid-type]


@strawberry.type
class ApiKeyUserError(UserError):
    code: ApiKeyErrorCode  # type: ignore[valid-type]


def organization_error(code: str, field: list[str] | None, message: str) -> OrganizationUserError:
    return OrganizationUserError(code=tenancy.TenancyErrorCode(code), field=field, message=message)


def api_key_error(code: str, field: list[str] | None, message: str) -> ApiKeyUserError:
    return ApiKeyUserError(code=DomainApiKeyErrorCode(code), field=field, message=message)
