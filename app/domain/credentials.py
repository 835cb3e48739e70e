"""Credentials of models and connections: what a caller sends, what is stored, and the rules.

Credentials are write-only. Changing them is explicit: a new value replaces the stored one, a clear
flag removes it, and leaving a field out keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import CommonErrorCode, ErrorCollector

# Room for a Google service-account key, the largest credential a provider takes.
SECRET_MAX_LENGTH = 20_000
# The ciphertext columns every table with credentials has (models, connections).
CIPHERTEXT_COLUMNS = ("token_ciphertext", "client_key_ciphertext", "secret_key_ciphertext")


@dataclass(frozen=True, slots=True)
class EncryptedCredentials:
    """The stored ciphertexts of a connection (or a model); None where there is no credential."""

    token: bytes | None
    client_key: bytes | None
    secret_key: bytes | None


@dataclass(frozen=True, slots=True)
class CredentialChanges:
    """Credentials as sent: None leaves the stored value alone; the clear flags remove it."""

    token: str | None = None
    client_key: str | None = None
    secret_key: str | None = None
    clear_token: bool = False
    clear_client_keys: bool = False


def check_credentials(errors: ErrorCollector, changes: CredentialChanges) -> None:
    """Messages name the rule, never the value: a credential must not reach a response or a log."""
    for value, field in (
        (changes.token, "token"),
        (changes.client_key, "clientKey"),
        (changes.secret_key, "secretKey"),
    ):
        if value is None:
            continue
        if not value.strip():
            errors.add(CommonErrorCode.REQUIRED, "must not be empty", "input", field)
        elif len(value) > SECRET_MAX_LENGTH:
            errors.add(
                CommonErrorCode.TOO_LONG,
                f"must be at most {SECRET_MAX_LENGTH} characters",
                "input",
                field,
            )
    if changes.client_key is not None and changes.secret_key is None:
        errors.add(CommonErrorCode.REQUIRED, "is required together with clientKey", "input", "secretKey")
    if changes.secret_key is not None and changes.client_key is None:
        errors.add(CommonErrorCode.REQUIRED, "is required together with secretKey", "input", "clientKey")
    if changes.clear_token and changes.token is not None:
        errors.add(CommonErrorCode.INVALID, "cannot set and clear the token at once", "input", "clearToken")
    if changes.clear_client_keys and (changes.client_key is not None or changes.secret_key is not None):
        errors.add(
            CommonErrorCode.INVALID,
            "cannot set and clear clientKey and secretKey at once",
            "input",
            "clearClientKeys",
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    """Decrypted credentials for one call. `repr` never shows them."""

    token: str | None = None
    client_key: str | None = None
    secret_key: str | None = None
    # Whether the server's own cloud identity (the AWS credential chain for Bedrock) may sign the
    # call: it is the platform's credential, for system models and their variants only.
    platform_identity: bool = False

    def __repr__(self) -> str:
        return (
            f"Credentials(token={'***' if self.token else None}, "
            f"client_key={'***' if self.client_key else None}, "
            f"secret_key={'***' if self.secret_key else None})"
        )

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.token, self.client_key, self.secret_key) if s)
