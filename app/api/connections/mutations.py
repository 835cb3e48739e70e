"""Connection mutations. Credentials are write-only: sending one replaces it, a clear flag removes it,
leaving it out (or null) keeps it."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.api.connections.types import Connection, ConnectionUserError, Provider, connection_error
from app.api.context import GraphQLInfo, services
from app.api.errors import MutationFrame
from app.api.scalars import maybe, maybe_set
from app.domain import connections, credentials
from app.domain.auth import Principal
from app.domain.errors import CommonErrorCode, UserInputError
from app.domain.ids import decode_id
from app.domain.values import UNSET
from app.services.connections import ConnectionChanges


def expected_updated_at(input: ConnectionUpdateInput) -> datetime | None:
    """expectedUpdatedAt, or its deprecated alias updatedAt (not both)."""
    if input.expected_updated_at is not None and input.updated_at is not None:
        raise UserInputError.single(
            CommonErrorCode.INVALID,
            "give expectedUpdatedAt only (updatedAt is its old name)",
            ["input", "updatedAt"],
        )
    return input.expected_updated_at if input.expected_updated_at is not None else input.updated_at


def settings_of(value: object) -> dict[str, object] | None:
    if value is None or isinstance(value, dict):
        return value
    raise UserInputError.single(
        CommonErrorCode.INVALID, "must be a JSON object", ["input", "providerSettings"]
    )


_BEARER_DOC = "Bearer token or API key. Write-only."
_CLIENT_HEADER_DOC = "Custom-header auth; always sent together with secretKey. Write-only."
_PAIRED_HEADER_DOC = "Custom-header auth; always sent together with clientKey. Write-only."
_URL_DOC = (
    "Where the credentials are sent: the provider's API base (or a full endpoint URL). Null: the "
    "provider's public API. Models that use the connection take this endpoint."
)
_SETTINGS_DOC = (
    "The provider's destination settings (e.g. Azure resourceName/deploymentName/baseCustomUrl, Vertex "
    "location/apiEndpoint/projectId, OpenAI-compatible baseCustomUrl/customAuthHeader, Bedrock region)."
)
_MOVE_DOC = (
    " Changing it needs the stored credentials again in the same update (they are not sent to a new place)."
)


@strawberry.input
class ConnectionCreateInput:
    organization_id: strawberry.ID
    name: str
    provider: Provider  # type: ignore[valid-type]
    description: str | None = None
    model_url: str | None = strawberry.field(default=None, description=_URL_DOC)
    provider_settings: JSON | None = strawberry.field(default=None, description=_SETTINGS_DOC)
    token: str | None = strawberry.field(default=None, description=_BEARER_DOC)
    client_key: str | None = strawberry.field(default=None, description=_CLIENT_HEADER_DOC)
    secret_key: str | None = strawberry.field(default=None, description=_PAIRED_HEADER_DOC)


@strawberry.input(
    description="Fields left out are not changed. A credential left out or null is kept; "
    "clearToken / clearClientKeys remove them. The provider cannot change."
)
class ConnectionUpdateInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    model_url: str | None = strawberry.field(default=strawberry.UNSET, description=_URL_DOC + _MOVE_DOC)
    provider_settings: JSON | None = strawberry.field(
        default=strawberry.UNSET, description=_SETTINGS_DOC + _MOVE_DOC
    )
    token: str | None = strawberry.field(default=None, description=_BEARER_DOC)
    client_key: str | None = strawberry.field(default=None, description=_CLIENT_HEADER_DOC)
    secret_key: str | None = strawberry.field(default=None, description=_PAIRED_HEADER_DOC)
    clear_token: bool = strawberry.field(default=False, description="Removes the token.")
    clear_client_keys: bool = strawberry.field(default=False, description="Removes clientKey and secretKey.")
    expected_updated_at: datetime | None = strawberry.field(
        default=None,
        description="The updatedAt you last read; if the connection changed since, CONFLICT and no write.",
    )
    updated_at: datetime | None = strawberry.field(
        default=None,
        description="The former name of expectedUpdatedAt.",
        deprecation_reason="Use expectedUpdatedAt, as every other update does.",
    )


@strawberry.input
class ConnectionDeleteInput:
    id: strawberry.ID


@strawberry.type
class ConnectionCreatePayload:
    connection: Connection | None
    user_errors: list[ConnectionUserError]


@strawberry.type
class ConnectionUpdatePayload:
    connection: Connection | None
    user_errors: list[ConnectionUserError]


@strawberry.type
class ConnectionDeletePayload:
    deleted_connection_id: strawberry.ID | None
    user_errors: list[ConnectionUserError]


_CONNECTION_FRAME = MutationFrame(connection_error)


@strawberry.type
class ConnectionMutations:
    @strawberry.mutation(description="Needs connections:manage.")
    async def connection_create(
        self, info: GraphQLInfo, input: ConnectionCreateInput
    ) -> ConnectionCreatePayload:
        async def work(principal: Principal) -> connections.Connection:
            organization_id = decode_id(input.organization_id, "Organization", ["input", "organizationId"])
            return await services(info).connections.create(
                principal,
                organization_id=organization_id,
                name=input.name,
                provider=input.provider,
                description=input.description,
                model_url=input.model_url,
                provider_settings=settings_of(input.provider_settings) or {},
                credentials=credentials.CredentialChanges(
                    token=input.token, client_key=input.client_key, secret_key=input.secret_key
                ),
            )

        created, errors = await _CONNECTION_FRAME.run(info, input, work)
        return ConnectionCreatePayload(
            connection=Connection.of(created) if created else None, user_errors=errors
        )

    @strawberry.mutation(description="Needs connections:manage.")
    async def connection_update(
        self, info: GraphQLInfo, input: ConnectionUpdateInput
    ) -> ConnectionUpdatePayload:
        async def work(principal: Principal) -> connections.Connection:
            connection_id = decode_id(input.id, "Connection", ["input", "id"])
            changes = ConnectionChanges(
                name=maybe_set(input.name, ["input", "name"]),
                description=maybe(input.description),
                model_url=maybe(input.model_url),
                provider_settings=UNSET
                if input.provider_settings is strawberry.UNSET
                else settings_of(input.provider_settings) or {},
                credentials=credentials.CredentialChanges(
                    token=input.token,
                    client_key=input.client_key,
                    secret_key=input.secret_key,
                    clear_token=input.clear_token,
                    clear_client_keys=input.clear_client_keys,
                ),
                expected_updated_at=expected_updated_at(input),
            )
            return await services(info).connections.update(principal, connection_id, changes)

        updated, errors = await _CONNECTION_FRAME.run(info, input, work)
        if input.updated_at is not None:  # the deprecated name: errors name the field that was sent
            for error in errors:
                if error.field == ["input", "expectedUpdatedAt"]:
                    error.field = ["input", "updatedAt"]
        return ConnectionUpdatePayload(
            connection=Connection.of(updated) if updated else None, user_errors=errors
        )

    @strawberry.mutation(description="Needs connections:manage. Refused while models use the connection.")
    async def connection_delete(
        self, info: GraphQLInfo, input: ConnectionDeleteInput
    ) -> ConnectionDeletePayload:
        async def work(principal: Principal) -> connections.Connection:
            connection_id = decode_id(input.id, "Connection", ["input", "id"])
            return await services(info).connections.delete(principal, connection_id)

        deleted, errors = await _CONNECTION_FRAME.run(info, input, work)
        return ConnectionDeletePayload(
            deleted_connection_id=input.id if deleted else None, user_errors=errors
        )
