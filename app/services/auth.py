"""Turning whatever credentials a request carries into a Principal.

Sources, in order: `X-API-Key`, `Authorization: Bearer …` (an `mg_` key or a JWT), the `api_key`
query parameter; over WebSocket, the `connection_init` payload (`apiKey` or `authorization`).
No credentials: None (the caller is anonymous). Bad credentials: Unauthenticated, whatever the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.auth import API_KEY_PREFIX, Principal
from app.domain.errors import Unauthenticated
from app.services.api_key_auth import ApiKeyAuthenticator
from app.services.jwt_auth import JwtAuthenticator


class Authenticator:
    def __init__(self, api_keys: ApiKeyAuthenticator, jwts: JwtAuthenticator) -> None:
        self.api_keys = api_keys
        self.jwts = jwts

    async def from_http(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Principal | None:
        if key := headers.get("X-API-Key"):
            return await self.api_keys.authenticate(key)
        if authorization := headers.get("Authorization"):
            return await self._bearer(authorization)
        if key := query.get("api_key"):
            return await self.api_keys.authenticate(key)
        return None

    async def from_connection_params(self, params: Mapping[str, Any] | None) -> Principal | None:
        params = params or {}
        key = params.get("apiKey")
        if isinstance(key, str) and key:
            return await self.api_keys.authenticate(key)
        authorization = params.get("authorization") or params.get("Authorization")
        if isinstance(authorization, str) and authorization:
            return await self._bearer(authorization)
        return None

    async def _bearer(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated()
        if token.startswith(f"{API_KEY_PREFIX}_"):
            return await self.api_keys.authenticate(token)
        if not self.jwts.enabled:
            raise Unauthenticated()
        return await self.jwts.authenticate(token)
