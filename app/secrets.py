"""Encryption of stored credentials: AES-256-GCM under a key ring.

`MODELGATE_SECRET_KEYS` is `kid:base64key,kid:base64key,…`; the first key encrypts, every key
decrypts, so keys can be rotated while the service runs (`python -m app rotate-secrets`).
Each ciphertext is bound to where it is stored (table, row id and column, as associated data): a
ciphertext copied to another row or column does not decrypt.

Stored form: b"v1" | kid length (1 byte) | kid | 12-byte nonce | ciphertext and tag.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

_VERSION = b"v1"
_NONCE_BYTES = 12


class SecretError(Exception):
    """A ciphertext that cannot be decrypted (unknown key, tampered, or moved to another row)."""


@dataclass(frozen=True, slots=True)
class SecretLocation:
    """Where a ciphertext lives; part of its associated data."""

    table: str
    row_id: UUID
    column: str

    def associated_data(self) -> bytes:
        return f"{self.table}:{self.row_id}:{self.column}".encode()


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        for kid, key in keys:
            if not kid or len(kid) > 64 or ":" in kid or "," in kid:
                raise ValueError(f"invalid key id {kid!r}")
            if len(key) != 32:
                raise ValueError(f"key {kid!r} must be 32 bytes (AES-256)")
        self._keys = dict(keys)
        self.current_kid = keys[0][0]

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        keys = []
        for item in spec.split(","):
            kid, sep, encoded = item.strip().partition(":")
            if not sep:
                raise ValueError("MODELGATE_SECRET_KEYS must be kid:base64key[,kid:base64key…]")
            try:
                keys.append((kid, base64.b64decode(encoded, validate=True)))
            except binascii.Error as exc:
                raise ValueError(f"key {kid!r} is not valid base64") from exc
        return cls(keys)

    @classmethod
    def development(cls, data_dir: Path) -> KeyRing:
        """A key kept in data_dir for local use, made on first use, with a warning."""
        path = data_dir / "secret-keys"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            spec = f"dev1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
            draft = data_dir / f".secret-keys.{os.getpid()}"
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(spec)
            # link() publishes the complete file or fails if another process was first: either
            # way every process then reads the same key.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        log.warning("MODELGATE_SECRET_KEYS is not set: using a development key from %s", path)
        return cls.parse(path.read_text().strip())

    def encrypt(self, plaintext: str, location: SecretLocation) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self._keys[self.current_kid]).encrypt(
            nonce, plaintext.encode(), location.associated_data()
        )
        kid = self.current_kid.encode()
        return _VERSION + bytes([len(kid)]) + kid + nonce + sealed

    def decrypt(self, stored: bytes, location: SecretLocation) -> str:
        kid, nonce, sealed = self._split(stored)
        key = self._keys.get(kid)
        if key is None:
            raise SecretError(f"no key {kid!r} in the key ring")
        try:
            return AESGCM(key).decrypt(nonce, sealed, location.associated_data()).decode()
        except InvalidTag as exc:
            raise SecretError("a stored secret failed to decrypt") from exc

    def key_id_of(self, stored: bytes) -> str:
        return self._split(stored)[0]

    @staticmethod
    def _split(stored: bytes) -> tuple[str, bytes, bytes]:
        if len(stored) < 4 or stored[:2] != _VERSION:
            raise SecretError("not a Modelgate ciphertext")
        kid_length = stored[2]
        kid_end = 3 + kid_length
        nonce_end = kid_end + _NONCE_BYTES
        if len(stored) <= nonce_end:
            raise SecretError("truncated ciphertext")
        return stored[3:kid_end].decode(), stored[kid_end:nonce_end], stored[nonce_end:]
