"""Connection queries: `connections(organizationId)` and `node(id)` for connections."""

from __future__ import annotations

from uuid import UUID

import strawberry

from app.api.connections.types import Connection
from app.api.context import GraphQLInfo, authenticated, services
from app.api.node import register_node

# The generic Relay connection: `RelayConnection[Connection]` is named ConnectionConnection.
from app.api.pagination import Connection as RelayConnection
from app.api.pagination import connection, created_page, cursor_by_created
from app.domain.ids import decode_as
from app.domain.pagination import Page


async def _connection(info: GraphQLInfo, connection_id: UUID) -> Connection | None:
    found = await services(info).connections.get(authenticated(info), connection_id)
    return Connection.of(found) if found else None


register_node("Connection", _connection)


@strawberry.type
class ConnectionQueries:
    @strawberry.field(description="An organization's connections (never their secrets). Needs models:read.")
    async def connections(
        self,
        info: GraphQLInfo,
        organization_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> RelayConnection[Connection]:
        principal = authenticated(info)
        page_request = created_page(first, after)
        org_uuid = decode_as(organization_id, "Organization")
        if org_uuid is None:
            return connection(Page([], False), Connection.of, cursor_by_created, has_previous=False)
        page = await services(info).connections.list_for_organization(principal, org_uuid, page_request)
        return connection(page, Connection.of, cursor_by_created, has_previous=after is not None)
