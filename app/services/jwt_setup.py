"""The JWT authenticator as the settings describe it: HS256 with a shared secret, or RS256/ES256 with
keys from a JWKS file or URL (cached, refetched on an unknown key id)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from app.config import Settings
from app.repositories.organizations import OrganizationRepository
from app.services.jwt_auth import JwksCache, JwtAuthenticator


def jwt_authenticator(settings: Settings, organizations: OrganizationRepository) -> JwtAuthenticator:
    jwks = None
    if settings.jwt_jwks_file is not None:
        jwks = JwksCache(
            _file_fetcher(settings.jwt_jwks_file), refetch_interval=settings.jwks_refetch_interval
        )
    elif settings.jwt_jwks_url is not None:
        jwks = JwksCache(_url_fetcher(settings.jwt_jwks_url), refetch_interval=settings.jwks_refetch_interval)
    return JwtAuthenticator(
        organizations,
        hs256_secret=settings.jwt_hs256_secret.get_secret_value() if settings.jwt_hs256_secret else None,
        jwks=jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        organization_claim=settings.jwt_organization_claim,
        roles_claim=settings.jwt_roles_claim,
        role_map=settings.jwt_role_map,
    )


def _file_fetcher(path: Path) -> Any:
    async def fetch() -> dict[str, Any]:
        document: dict[str, Any] = orjson.loads(await asyncio.to_thread(path.read_bytes))
        return document

    return fetch


def _url_fetcher(url: str) -> Any:
    async def fetch() -> dict[str, Any]:
        # The JWKS URL is the operator's configuration, not user input: no outbound guard needed.
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(url) as response,
        ):
            response.raise_for_status()
            document: dict[str, Any] = await response.json(content_type=None)
            return document

    return fetch
