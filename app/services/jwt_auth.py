"""Authenticating JWT bearer tokens from a B2B identity provider (Stytch's layout by default).

HS256 with a shared secret, or RS256/ES256 with keys from a JWKS file or URL. The JWKS is cached and
fetched again when a token names an unknown `kid`, at most once per `refetch_interval`. The token's
organization claim must name a known organization (its `externalId`); its roles map to ours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt

from app.domain.auth import ROLE_PERMISSIONS, Permission, Principal, PrincipalKind, Role
from app.domain.errors import Unauthenticated
from app.repositories.organizations import OrganizationRepository

_ASYMMETRIC = ("RS256", "ES256")
JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class JwksCache:
    def __init__(
        self, fetch: JwksFetcher, *, refetch_interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            due = self._fetched_at is None or self._clock() - self._fetched_at >= self._refetch_interval
            if kid not in self._keys and due:
                self._fetched_at = self._clock()
                document = await self._fetch()
                keys = jwt.PyJWKSet.from_dict(document).keys
                self._keys = {k.key_id: k for k in keys if k.key_id}
        return self._keys.get(kid)


class JwtAuthenticator:
    def __init__(
        self,
        organizations: OrganizationRepository,
        *,
        hs256_secret: str | None,
        jwks: JwksCache | None,
        issuer: str | None,
        audience: str | None,
        organization_claim: Sequence[str],
        roles_claim: Sequence[str],
        role_map: dict[str, str],
    ) -> None:
        self.organizations = organizations
        self.hs256_secret = hs256_secret
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.organization_claim = tuple(organization_claim)
        self.roles_claim = tuple(roles_claim)
        self.role_map = {k.lower(): v.upper() for k, v in role_map.items()}

    @property
    def enabled(self) -> bool:
        return self.hs256_secret is not None or self.jwks is not None

    async def authenticate(self, token: str) -> Principal:
        claims = await self._verified_claims(token)
        external_id = _claim(claims, self.organization_claim)
        if not isinstance(external_id, str) or not external_id:
            raise Unauthenticated()
        organization = await self.organizations.get_by_external_id(external_id)
        if organization is None:
            raise Unauthenticated()
        roles = self._roles(_claim(claims, self.roles_claim))
        permissions: frozenset[Permission] = frozenset().union(*(ROLE_PERMISSIONS[r] for r in roles))
        return Principal(
            kind=PrincipalKind.JWT,
            permissions=permissions,
            organization_id=organization.id,
            label=f"jwt:{str(claims.get('sub', ''))[:64]}",
            roles=roles,
            expires_at=_expiry(claims),
        )

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            key: Any
            if algorithm == "HS256" and self.hs256_secret is not None:
                key = self.hs256_secret
            elif algorithm in _ASYMMETRIC and self.jwks is not None and isinstance(header.get("kid"), str):
                jwk = await self.jwks.key(header["kid"])
                if jwk is None or (jwk.algorithm_name and jwk.algorithm_name != algorithm):
                    raise Unauthenticated()
                key = jwk.key
            else:
                raise Unauthenticated()
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
            return claims
        except jwt.PyJWTError as exc:
            raise Unauthenticated() from exc

    def _roles(self, value: object) -> tuple[Role, ...]:
        if not isinstance(value, list):
            return ()
        roles = []
        for name in value:
            if not isinstance(name, str):
                continue
            mapped = self.role_map.get(name.lower(), name.upper())
            if mapped in Role.__members__:
                roles.append(Role(mapped))
        return tuple(dict.fromkeys(roles))


def _expiry(claims: dict[str, Any]) -> datetime | None:
    """`exp` as a time (PyJWT checked that it is a number in the future); None past year 9999."""
    try:
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _claim(claims: dict[str, Any], path: tuple[str, ...]) -> object:
    value: object = claims
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
