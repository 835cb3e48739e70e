"""A model's credentials: checked and sealed on write, resolved for calls.

Precedence at call time: the model's own credentials, else its connection's, else its parent
system model's platform credentials; each goes only to the destination of the row it came from
(app/domain/destinations.py)."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from app.domain.credentials import CredentialChanges, Credentials, EncryptedCredentials, check_credentials
from app.domain.destinations import Destination
from app.domain.errors import ErrorCollector
from app.domain.model_rules import ModelErrorCode
from app.domain.models import EffectiveModel, ModelKind, ModelRecord
from app.domain.values import UnsetType
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
        self.writer = ModelWriter(models.db)

    def check(self, errors: ErrorCollector, changes: CredentialChanges) -> None:
        check_credentials(errors, changes)
        if changes.token is not None and changes.client_key is not None:
            errors.add(
                ModelErrorCode.INVALID,
                "give a token or clientKey and secretKey, not both",
                "input",
                "clientKey",
            )

    async def write(self, model_id: UUID, changes: CredentialChanges) -> None:
        sealed = self.vault.seal(_TABLE, model_id, changes)
        changed = {column: value for column, value in sealed.items() if not isinstance(value, UnsetType)}
        await self.writer.set_secrets(model_id, changed)

    async def resolve(self, model: EffectiveModel) -> tuple[Credentials, Destination]:
        """The credentials a call uses and the destination they belong to, which is where they are
        sent: the model's own credentials go where the model points (a variant: where its parent
        points); a connection's go to the connection's endpoint; the parent's platform credentials
        go where the parent points. No field of a row that did not supply the credential counts."""
        record, parent = model.record, model.parent
        # The server's own cloud identity (Bedrock's AWS credential chain) is the platform's.
        platform = record.kind is ModelKind.SYSTEM or parent is not None
        connection = await self.connections.get(record.connection_id) if record.connection_id else None
        own_place = _destination(parent) if parent is not None else _destination(record)
        own = await self._stored(record.id)
        if own.token or own.client_key:
            return self._open(_TABLE, record.id, own, platform), own_place
        if connection is not None:
            stored = await self.connections.credentials(connection.id)
            if stored is not None and (stored.token or stored.client_key):
                return self._open("connections", connection.id, stored, False), connection.destination
            own_place = connection.destination
        if parent is not None:
            inherited = await self._stored(parent.id)
            return self._open(_TABLE, parent.id, inherited, platform), _destination(parent)
        return Credentials(platform_identity=platform), own_place

    def _open(self, table: str, row_id: UUID, stored: EncryptedCredentials, platform: bool) -> Credentials:
        return replace(self.vault.open(table, row_id, stored), platform_identity=platform)

    async def _stored(self, model_id: UUID) -> EncryptedCredentials:
        secrets = await self.models.secrets(model_id)
        return EncryptedCredentials(secrets[TOKEN], secrets[CLIENT_KEY], secrets[SECRET_KEY])


def _destination(record: ModelRecord) -> Destination:
    return Destination.of(record.provider, record.model_url, record.provider_settings)
