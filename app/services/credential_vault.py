"""Sealing and opening stored credentials (token, clientKey, secretKey) of any table that has the
three ciphertext columns. Each ciphertext is bound to its table, row and column."""

from __future__ import annotations

from uuid import UUID

from app.domain.credentials import CIPHERTEXT_COLUMNS, CredentialChanges, Credentials, EncryptedCredentials
from app.domain.values import UNSET, Maybe
from app.secrets import KeyRing, SecretLocation

TOKEN, CLIENT_KEY, SECRET_KEY = CIPHERTEXT_COLUMNS


class CredentialVault:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def seal(self, table: str, row_id: UUID, changes: CredentialChanges) -> dict[str, Maybe[bytes | None]]:
        """Per column: UNSET (keep), None (clear) or the new ciphertext."""

        def sealed(value: str | None, column: str, clear: bool) -> Maybe[bytes | None]:
            if clear:
                return None
            if value is None:
                return UNSET
            return self.keyring.encrypt(value, SecretLocation(table, row_id, column))

        return {
            TOKEN: sealed(changes.token, TOKEN, changes.clear_token),
            CLIENT_KEY: sealed(changes.client_key, CLIENT_KEY, changes.clear_client_keys),
            SECRET_KEY: sealed(changes.secret_key, SECRET_KEY, changes.clear_client_keys),
        }

    def open(self, table: str, row_id: UUID, stored: EncryptedCredentials) -> Credentials:
        def opened(value: bytes | None, column: str) -> str | None:
            return (
                None if value is None else self.keyring.decrypt(value, SecretLocation(table, row_id, column))
            )

        return Credentials(
            token=opened(stored.token, TOKEN),
            client_key=opened(stored.client_key, CLIENT_KEY),
            secret_key=opened(stored.secret_key, SECRET_KEY),
        )
