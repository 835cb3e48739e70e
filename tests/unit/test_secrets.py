"""The key ring: AES-256-GCM round trips, binding to the storage location, rotation, parsing."""

from __future__ import annotations

import base64
import logging
import stat
import uuid
from pathlib import Path

import pytest

from app.secrets import KeyRing, SecretError, SecretLocation


def key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


RING_A = KeyRing.parse(f"a:{key(1)}")
ROW = uuid.uuid4()
TOKEN_AT_ROW = SecretLocation("connections", ROW, "token_ciphertext")


def test_a_round_trip_returns_the_plaintext_and_the_ciphertext_hides_it() -> None:
    sealed = RING_A.encrypt("sk-ROUND-TRIP-1", TOKEN_AT_ROW)
    assert b"sk-ROUND-TRIP-1" not in sealed
    assert RING_A.decrypt(sealed, TOKEN_AT_ROW) == "sk-ROUND-TRIP-1"
    assert RING_A.key_id_of(sealed) == "a"
    # A fresh nonce each time: the same secret never gives the same ciphertext.
    assert RING_A.encrypt("sk-ROUND-TRIP-1", TOKEN_AT_ROW) != sealed


def test_unicode_and_empty_plaintexts_round_trip() -> None:
    for plaintext in ("", "ключ-🔑", "x" * 20_000):
        assert RING_A.decrypt(RING_A.encrypt(plaintext, TOKEN_AT_ROW), TOKEN_AT_ROW) == plaintext


@pytest.mark.parametrize(
    "elsewhere",
    [
        SecretLocation("connections", uuid.uuid4(), "token_ciphertext"),  # another row
        SecretLocation("connections", ROW, "secret_key_ciphertext"),  # another column
        SecretLocation("models", ROW, "token_ciphertext"),  # another table, same id
    ],
)
def test_a_ciphertext_moved_elsewhere_does_not_decrypt(elsewhere: SecretLocation) -> None:
    sealed = RING_A.encrypt("sk-BOUND-1", TOKEN_AT_ROW)
    with pytest.raises(SecretError) as raised:
        RING_A.decrypt(sealed, elsewhere)
    assert "sk-BOUND-1" not in str(raised.value)


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old = RING_A.encrypt("sk-OLD", TOKEN_AT_ROW)
    rotated = KeyRing.parse(f"b:{key(2)}, a:{key(1)}")
    assert rotated.current_kid == "b"
    assert rotated.decrypt(old, TOKEN_AT_ROW) == "sk-OLD"
    new = rotated.encrypt("sk-NEW", TOKEN_AT_ROW)
    assert rotated.key_id_of(new) == "b"
    # The old ring does not know key b.
    with pytest.raises(SecretError, match="no key 'b'"):
        RING_A.decrypt(new, TOKEN_AT_ROW)


def test_a_key_with_a_known_id_but_other_bytes_fails() -> None:
    impostor = KeyRing.parse(f"a:{key(9)}")
    with pytest.raises(SecretError):
        impostor.decrypt(RING_A.encrypt("sk-X", TOKEN_AT_ROW), TOKEN_AT_ROW)


# Layout: b"v1", kid length, kid "a", 12-byte nonce (bytes 4-15), ciphertext, 16-byte tag.
@pytest.mark.parametrize("position", [5, 17, -1])  # nonce, ciphertext, tag
def test_tampering_is_detected(position: int) -> None:
    sealed = bytearray(RING_A.encrypt("sk-TAMPER-ME", TOKEN_AT_ROW))
    sealed[position] ^= 0x01
    with pytest.raises(SecretError):
        RING_A.decrypt(bytes(sealed), TOKEN_AT_ROW)


@pytest.mark.parametrize("stored", [b"", b"v1", b"v2\x01a" + bytes(40), b"v1\x01a" + bytes(12)])
def test_what_is_not_a_ciphertext_is_refused(stored: bytes) -> None:
    with pytest.raises(SecretError):
        RING_A.decrypt(stored, TOKEN_AT_ROW)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "kid:base64key"),
        ("justakey", "kid:base64key"),
        (f"a:{key(1)},nocolon", "kid:base64key"),
        ("a:not base64!", "not valid base64"),
        (f"a:{base64.b64encode(bytes(16)).decode()}", "32 bytes"),
        (f":{key(1)}", "invalid key id"),
        (f"{'k' * 65}:{key(1)}", "invalid key id"),
    ],
)
def test_bad_key_ring_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KeyRing.parse(spec)


def test_an_empty_ring_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing([])


def test_the_development_key_is_made_once_private_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="app.secrets"):
        first = KeyRing.development(data_dir)
    assert "MODELGATE_SECRET_KEYS is not set" in caplog.text
    key_file = data_dir / "secret-keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    contents = key_file.read_text()
    assert contents.startswith("dev1:")

    sealed = first.encrypt("sk-DEV", TOKEN_AT_ROW)
    second = KeyRing.development(data_dir)
    assert key_file.read_text() == contents
    assert second.decrypt(sealed, TOKEN_AT_ROW) == "sk-DEV"
