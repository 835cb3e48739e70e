"""GraphQL types of connections: the object (never a secret), its provider enum and its user errors."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.api.context import GraphQLInfo
from app.api.errors import UserError
from app.api.node import Node
from app.api.orgs.types import Organization
from app.domain import connections
from app.domain.enums import Provider as DomainProvider
from app.domain.ids import encode_id

Provider = strawberry.enum(
    DomainProvider, description="Who serves a model. ECHO is an offline demo provider for tests."
)
ConnectionErrorCode = strawberry.enum(connections.ConnectionErrorCode, name="ConnectionErrorCode")


@strawberry.type(
    description="A named set of credentials for one provider, owned by an organization and reusable by "
    "many models. Credentials are write-only: only whether they are set is shown."
)
class Connection(Node):
    name: str
    provider: Provider  # type: ignore[valid-type]
    description: str | None
    has_token: bool
    has_client_key: bool = strawberry.field(description="Whether clientKey and secretKey are set.")
    model_url: str | None = strawberry.field(
        description="Where the credentials are sent (null: the provider's public API)."
    )
    provider_settings: JSON = strawberry.field(description="The destination settings of the provider.")
    created_at: datetime
    updated_at: datetime
    domain: strawberry.Private[connections.Connection]

    @classmethod
    def of(cls, connection: connections.Connection) -> Connection:
        return cls(
            id=strawberry.ID(encode_id("Connection", connection.id)),
            name=connection.name,
            provider=connection.provider,
            description=connection.description,
            has_token=connection.has_token,
            has_client_key=connection.has_client_key,
            model_url=connection.model_url,
            provider_settings=JSON(connection.provider_settings),
            created_at=connection.created_at,
            updated_at=connection.updated_at,
            domain=connection,
        )

    @strawberry.field
    async def organization(self, info: GraphQLInfo) -> Organization:
        organization = await info.context.loaders.organization.load(self.domain.organization_id)
        assert organization is not None  # a connection cannot outlive its organization
        return Organization.of(organization)


@strawberry.type
class ConnectionUserError(UserError):
    code: ConnectionErrorCode  # type: ignore[valid-type]


def connection_error(code: str, field: list[str] | None, message: str) -> ConnectionUserError:
    return ConnectionUserError(code=connections.ConnectionErrorCode(code), field=field, message=message)
