"""Use cases for connections. Reading needs models:read, changing needs connections:manage; another
organization's connection reads exactly like a missing one. Credentials are sealed by the vault,
bound to the connection's row and column, and opened only for the gateway (`credentials_for`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from app.db import Database
from app.domain.auth import Permission, Principal
from app.domain.connections import Connection, ConnectionErrorCode, check_description, in_use_message
from app.domain.credentials import CredentialChanges, Credentials, EncryptedCredentials, check_credentials
from app.domain.destinations import (
    DESTINATION_SETTINGS,
    Destination,
    changed_destination_fields,
    credentials_for_move,
)
from app.domain.enums import Provider
from app.domain.errors import AccessDenied, Duplicate, ErrorCollector, NotFoundError, UserInputError
from app.domain.model_rules import check_provider_settings
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.tenancy import check_name
from app.domain.values import UNSET, Maybe, UnsetType, apply
from app.repositories.connections import ConnectionRepository
from app.repositories.organizations import OrganizationRepository
from app.services.credential_vault import CLIENT_KEY, SECRET_KEY, TOKEN, CredentialVault
from app.services.destination_checks import check_destination_urls
from app.services.notifications import CATALOG_TOPIC, Notifications
from app.services.permissions import require

_TABLE = "connections"


@dataclass(frozen=True, slots=True)
class ConnectionChanges:
    name: Maybe[str] = UNSET
    description: Maybe[str | None] = UNSET
    model_url: Maybe[str | None] = UNSET
    provider_settings: Maybe[dict[str, Any]] = UNSET
    credentials: CredentialChanges = field(default_factory=CredentialChanges)
    # The updatedAt the client last saw; if the connection changed since, nothing is written.
    expected_updated_at: datetime | None = None


class ConnectionService:
    def __init__(
        self,
        db: Database,
        connections: ConnectionRepository,
        organizations: OrganizationRepository,
        vault: CredentialVault,
        notifications: Notifications,
        *,
        allow_private_upstreams: bool,
    ) -> None:
        self.allow_private_upstreams = allow_private_upstreams
        self.db = db
        self.connections = connections
        self.organizations = organizations
        self.vault = vault
        self.notifications = notifications

    async def get(self, principal: Principal, connection_id: UUID) -> Connection | None:
        connection = await self._visible(principal, connection_id)
        return connection if connection is not None and principal.has(Permission.MODELS_READ) else None

    async def list_for_organization(
        self, principal: Principal, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Connection]:
        if not principal.can_access_organization(organization_id):
            return Page([], False)
        require(principal, Permission.MODELS_READ)
        return await self.connections.list_for_organization(organization_id, page)

    async def create(
        self,
        principal: Principal,
        *,
        organization_id: UUID,
        name: str,
        provider: Provider,
        description: str | None = None,
        model_url: str | None = None,
        provider_settings: dict[str, Any] | None = None,
        credentials: CredentialChanges | None = None,
    ) -> Connection:
        if (
            not principal.can_access_organization(organization_id)
            or await self.organizations.get(organization_id) is None
        ):
            raise NotFoundError("organization", ["input", "organizationId"])
        _require_manage(principal)
        credentials = credentials or CredentialChanges()
        errors = ErrorCollector()
        check_name(errors, name, "input", "name")
        check_description(errors, description, "input", "description")
        self._check_destination(errors, provider, model_url, provider_settings or {})
        check_credentials(errors, credentials)
        errors.raise_if_any()
        connection_id = uuid.uuid4()
        sealed = self.vault.seal(_TABLE, connection_id, credentials)
        encrypted = EncryptedCredentials(
            _new(sealed[TOKEN]), _new(sealed[CLIENT_KEY]), _new(sealed[SECRET_KEY])
        )
        try:
            async with self.db.transaction():
                created = await self.connections.insert(
                    connection_id=connection_id,
                    organization_id=organization_id,
                    name=name.strip(),
                    provider=provider,
                    description=description,
                    destination=Destination.of(provider, model_url, provider_settings or {}),
                    credentials=encrypted,
                )
        except Duplicate as exc:
            raise _duplicate_name() from exc
        await self.notifications.publish(CATALOG_TOPIC, None)
        return created

    async def update(
        self, principal: Principal, connection_id: UUID, changes: ConnectionChanges
    ) -> Connection:
        await self._manageable(principal, connection_id)
        errors = ErrorCollector()
        if not isinstance(changes.name, UnsetType):
            check_name(errors, changes.name, "input", "name")
        if not isinstance(changes.description, UnsetType):
            check_description(errors, changes.description, "input", "description")
        check_credentials(errors, changes.credentials)
        errors.raise_if_any()
        try:
            async with self.db.transaction():
                locked = await self.connections.lock(connection_id)
                if locked is None:
                    raise NotFoundError("connection", ["input", "id"])
                if changes.expected_updated_at not in (None, locked.updated_at):
                    raise UserInputError.single(
                        ConnectionErrorCode.CONFLICT,
                        "the connection changed since you read it; read it again",
                        ["input", "expectedUpdatedAt"],
                    )
                model_url = apply(changes.model_url, locked.model_url)
                settings = apply(changes.provider_settings, locked.provider_settings)
                self._check_destination(errors, locked.provider, model_url, settings)
                moved = changed_destination_fields(
                    (locked.provider, locked.model_url, locked.provider_settings),
                    (locked.provider, model_url, settings),
                )
                credentials = credentials_for_move(
                    errors,
                    moved,
                    (locked.has_token, locked.has_client_key),
                    changes.credentials,
                    ConnectionErrorCode.INVALID,
                )
                errors.raise_if_any()
                sealed = self.vault.seal(_TABLE, connection_id, credentials)
                updated = await self.connections.update(
                    connection_id,
                    name=apply(changes.name, locked.name).strip(),
                    description=apply(changes.description, locked.description),
                    destination=Destination.of(locked.provider, model_url, settings),
                    token=sealed[TOKEN],
                    client_key=sealed[CLIENT_KEY],
                    secret_key=sealed[SECRET_KEY],
                )
        except Duplicate as exc:
            raise _duplicate_name() from exc
        await self.notifications.publish(CATALOG_TOPIC, None)
        return updated

    async def delete(self, principal: Principal, connection_id: UUID) -> Connection:
        connection = await self._manageable(principal, connection_id)
        async with self.db.transaction():
            # Locked first: a model saved meanwhile either shows up in the list or waits for us.
            if await self.connections.lock(connection_id) is None:
                raise NotFoundError("connection", ["input", "id"])
            users = await self.connections.model_names_using(connection_id)
            if users:
                raise UserInputError.single(
                    ConnectionErrorCode.IN_USE, in_use_message(users), ["input", "id"]
                )
            await self.connections.delete(connection_id)
        await self.notifications.publish(CATALOG_TOPIC, None)
        return connection

    async def credentials_for(self, connection_id: UUID) -> Credentials:
        """Decrypted credentials for the gateway, which has already checked the caller's model."""
        stored = await self.connections.credentials(connection_id)
        if stored is None:
            raise NotFoundError("connection")
        return self.vault.open(_TABLE, connection_id, stored)

    def _check_destination(
        self, errors: ErrorCollector, provider: Provider, model_url: str | None, settings: dict[str, Any]
    ) -> None:
        """A connection holds only where its credentials go: the URL and its provider's destination
        settings (the rest is each model's own)."""
        allowed = DESTINATION_SETTINGS[provider]
        for key in settings:
            if key not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                errors.add(
                    ConnectionErrorCode.INVALID,
                    f"not a destination setting of {provider.value} (allowed: {names}); "
                    "other settings belong on the models",
                    "input",
                    "providerSettings",
                    key,
                )
        check_provider_settings(errors, provider, {k: v for k, v in settings.items() if k in allowed})
        check_destination_urls(
            errors,
            model_url,
            settings,
            allow_private=self.allow_private_upstreams,
            code=ConnectionErrorCode.UNSAFE_URL,
        )

    async def _visible(self, principal: Principal, connection_id: UUID) -> Connection | None:
        connection = await self.connections.get(connection_id)
        if connection is None or not principal.can_access_organization(connection.organization_id):
            return None
        return connection

    async def _manageable(self, principal: Principal, connection_id: UUID) -> Connection:
        connection = await self._visible(principal, connection_id)
        if connection is None:
            raise NotFoundError("connection", ["input", "id"])
        _require_manage(principal)
        return connection


def _require_manage(principal: Principal) -> None:
    require(principal, Permission.CONNECTIONS_MANAGE)
    # Connections serve the whole organization: a key bound to one project may use, not change, them.
    if principal.project_id is not None:
        raise AccessDenied("a project key cannot change the organization's connections")


def _new(sealed: Maybe[bytes | None]) -> bytes | None:
    """A new row's ciphertext: nothing sent (UNSET) is no credential."""
    return None if isinstance(sealed, UnsetType) else sealed


def _duplicate_name() -> UserInputError:
    return UserInputError.single(
        ConnectionErrorCode.DUPLICATE, "this name is already taken in the organization", ["input", "name"]
    )
