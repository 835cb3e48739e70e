"""An https image host on 127.0.0.1, for the providers that take image bytes only (Gemini, Bedrock):
the gateway accepts https image URLs only, and downloads them through the outbound guard, which the
test settings (`allow_private_upstreams`) open to loopback. The host's certificate is self-signed
for 127.0.0.1; for the duration of the block, the outbound client trusts it (aiohttp's verifying SSL
context is swapped for one that trusts this certificate: tests reach nothing but loopback), so
certificates are still checked."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp.connector
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _self_signed_for_loopback(folder: Path) -> tuple[Path, Path, str]:
    """A certificate for 127.0.0.1 and its key (files in `folder`); also the certificate as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelgate test image host")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = folder / "image-host.pem", folder / "image-host.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file, pem


@asynccontextmanager
async def https_image_server(
    images: dict[str, tuple[bytes, str]], monkeypatch: pytest.MonkeyPatch, folder: Path
) -> AsyncIterator[str]:
    """Serves `images` ({path: (bytes, content type)}) over https on 127.0.0.1; yields the base URL."""

    async def image(request: web.Request) -> web.Response:
        body, content_type = images[request.path]
        return web.Response(body=body, content_type=content_type)

    cert_file, key_file, pem = _self_signed_for_loopback(folder)
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cadata=pem)
    monkeypatch.setattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", trusting)
    app = web.Application()
    for path in images:
        app.router.add_get(path, image)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=serving)
    try:
        yield f"https://127.0.0.1:{server.port}"
    finally:
        await server.close()
