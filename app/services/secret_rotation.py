"""Re-encrypts every stored secret under the key ring's first key, while the service runs.

Run it after putting a new key first in MODELGATE_SECRET_KEYS (keeping the old ones after it) and
restarting every instance; once it reports no failures, the old keys can be dropped. Each column is
read in id-ordered batches; each secret is decrypted with whichever key sealed it and sealed again
under the first key, and written back only if the row still holds the ciphertext that was read, so
a credential changed meanwhile is left as its writer stored it (and counted as skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from app.repositories.secrets import (
    SECRET_COLUMNS,
    Reencrypted,
    SecretRepository,
    StoredSecret,
)
from app.secrets import KeyRing, SecretError, SecretLocation

DEFAULT_BATCH_SIZE = 500


@dataclass(slots=True)
class ColumnCount:
    table: str
    column: str
    rotated: int = 0
    current: int = 0  # already under the first key
    skipped: int = 0  # changed concurrently, so not overwritten

    def line(self, kid: str) -> str:
        return (
            f"{self.table}.{self.column}: {self.rotated} re-encrypted, {self.current} already under "
            f"key {kid}, {self.skipped} skipped (changed concurrently)"
        )


@dataclass(frozen=True, slots=True)
class Undecryptable:
    """A ciphertext no key of the ring opens. `reason` never contains the secret."""

    table: str
    row_id: UUID
    column: str
    reason: str

    def line(self) -> str:
        return f"cannot decrypt {self.table} row {self.row_id} column {self.column}: {self.reason}"


@dataclass(slots=True)
class RotationReport:
    kid: str
    counts: list[ColumnCount] = field(default_factory=list)
    failures: list[Undecryptable] = field(default_factory=list)

    def lines(self) -> list[str]:
        total = (
            f"total: {sum(c.rotated for c in self.counts)} re-encrypted, "
            f"{sum(c.current for c in self.counts)} already current, "
            f"{sum(c.skipped for c in self.counts)} skipped, {len(self.failures)} failed"
        )
        return [c.line(self.kid) for c in self.counts] + [total]


class SecretRotation:
    def __init__(
        self, secrets: SecretRepository, keyring: KeyRing, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.secrets = secrets
        self.keyring = keyring
        self.batch_size = batch_size

    async def run(self) -> RotationReport:
        report = RotationReport(self.keyring.current_kid)
        for table, columns in SECRET_COLUMNS.items():
            for column in columns:
                count = ColumnCount(table, column)
                report.counts.append(count)
                await self._rotate_column(count, report.failures)
        return report

    async def _rotate_column(self, count: ColumnCount, failures: list[Undecryptable]) -> None:
        after: UUID | None = None
        while batch := await self.secrets.batch(count.table, count.column, after, self.batch_size):
            after = batch[-1].row_id
            changes = []
            for stored in batch:
                location = SecretLocation(count.table, stored.row_id, count.column)
                try:
                    new = self._reencrypted(stored, location)
                except SecretError as exc:
                    failures.append(Undecryptable(count.table, stored.row_id, count.column, str(exc)))
                    continue
                if new is None:
                    count.current += 1
                else:
                    changes.append(Reencrypted(stored.row_id, stored.ciphertext, new))
            written = await self.secrets.replace(count.table, count.column, changes)
            count.rotated += written
            count.skipped += len(changes) - written

    def _reencrypted(self, stored: StoredSecret, location: SecretLocation) -> bytes | None:
        """The secret sealed under the first key; None when it already is. Every ciphertext is
        decrypted, current ones too, so a clean report means every stored secret can be read."""
        plaintext = self.keyring.decrypt(stored.ciphertext, location)
        if self.keyring.key_id_of(stored.ciphertext) == self.keyring.current_kid:
            return None
        return self.keyring.encrypt(plaintext, location)
