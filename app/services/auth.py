"""Turning whatever credentials a request carries into a Principal.

Sources, in order: `X-API-Key`, `Authorization: Bearer …` (an `mg_` key or a JWT), the `api_key`
query parameter; over WebSocket, the `connection_init` payload (`apiKey` or `authorization`).
No credentials: None (the caller is anonymous). Bad credentials: Unauthenticated, whatever the reason.
A long-lived connection keeps its `Credential` to check it again (app/services/revocation.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.auth import API_KEY_PREFIX, Principal, split_api_key
from app.domain.errors import Unauthenticated
from app.services.api_key_auth import ApiKeyAuthenticator
from app.services.jwt_auth import JwtAuthenticator


@dataclass(frozen=True, slots=True)
class Credential:
    """What a caller presented: an API key, or an `Authorization` header value. The secret is never
    shown (not in repr, so not in a log line or a traceback either)."""

    secret: str = field(repr=False)
    is_authorization: bool = False

    @property
    def api_key_prefix(self) -> str | None:
        """The prefix of the API key this is (also as a bearer token), else None (a JWT)."""
        value = self.secret
        if self.is_authorization:
            value = value.partition(" ")[2].strip()
        parts = split_api_key(value)
        return parts[0] if parts else None


class Authenticator:
    def __init__(self, api_keys: ApiKeyAuthenticator, jwts: JwtAuthenticator) -> None:
        self.api_keys = api_keys
        self.jwts = jwts

    async def from_http(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Principal | None:
        credential = http_credential(headers, query)
        return await self.authenticate(credential) if credential else None

    async def authenticate(self, credential: Credential) -> Principal:
        if credential.is_authorization:
            return await self._bearer(credential.secret)
        return await self.api_keys.authenticate(credential.secret)

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


def http_credential(headers: Mapping[str, str], query: Mapping[str, str]) -> Credential | None:
    if key := headers.get("X-API-Key"):
        return Credential(key)
    if authorization := headers.get("Authorization"):
        return Credential(authorization, is_authorization=True)
    if key := query.get("api_key"):
        return Credential(key)
    return None


def connection_credential(params: Mapping[str, Any] | None) -> Credential | None:
    """From a WebSocket's `connection_init` payload."""
    params = params or {}
    key = params.get("apiKey")
    if isinstance(key, str) and key:
        return Credential(key)
    authorization = params.get("authorization") or params.get("Authorization")
    if isinstance(authorization, str) and authorization:
        return Credential(authorization, is_authorization=True)
    return None
