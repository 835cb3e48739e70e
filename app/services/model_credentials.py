"""A model's credentials: checked and sealed on write, resolved for calls.

Precedence at call time: the model's own credentials, else its connection's, else its parent
system model's platform credentials."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from app.domain.credentials import CredentialChanges, EncryptedCredentials, check_credentials
from app.domain.errors import ErrorCollector
from app.domain.model_rules import ModelErrorCode
from app.domain.models import EffectiveModel
from app.domain.values import UnsetType
from app.providers.base import Credentials
from app.repositories.connections import ConnectionRepository
from app.repositories.model_writes import ModelWriter
from app.repositories.models import ModelRepository
from app.services.credential_vault import CLIENT_KEY, SECRET_KEY, TOKEN, CredentialVault

_TABLE = "models"


class ModelCredentials:
    def __init__(
        self, vault: CredentialVault, models: ModelRepository, connections: ConnectionRepository
    ) -> None:
        self.vault = vault
        self.models = models
        self.connections = connections
        self.writer = ModelWriter()

    def check(self, errors: ErrorCollector, changes: CredentialChanges) -> None:
        check_credentials(errors, changes)
        if changes.token is not None and changes.client_key is not None:
            errors.add(
                ModelErrorCode.INVALID,
                "give a token or clientKey and secretKey, not both",
                "input",
                "clientKey",
            )

    async def write(self, conn: asyncpg.Connection, model_id: UUID, changes: CredentialChanges) -> None:
        sealed = self.vault.seal(_TABLE, model_id, changes)
        changed = {column: value for column, value in sealed.items() if not isinstance(value, UnsetType)}
        await self.writer.set_secrets(conn, model_id, changed)

    async def resolve(self, model: EffectiveModel) -> Credentials:
        record = model.record
        own = await self._stored(record.id)
        if own.token or own.client_key:
            return self.vault.open(_TABLE, record.id, own)
        if record.connection_id is not None:
            stored = await self.connections.credentials(record.connection_id)
            if stored is not None:
                return self.vault.open("connections", record.connection_id, stored)
        if model.parent is not None:
            return self.vault.open(_TABLE, model.parent.id, await self._stored(model.parent.id))
        return Credentials()

    async def _stored(self, model_id: UUID) -> EncryptedCredentials:
        secrets = await self.models.secrets(model_id)
        return EncryptedCredentials(secrets[TOKEN], secrets[CLIENT_KEY], secrets[SECRET_KEY])
