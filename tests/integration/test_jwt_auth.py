"""JWT bearer tokens: HS256, RS256/ES256 from a JWKS file or URL, claims and refusals."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.domain.auth import ROLE_PERMISSIONS, Role
from tests.conftest import make_settings, running_server
from tests.support.factories import make_tenant
from tests.support.graphql import GraphQLClient, error_codes

SECRET = "test-hs256-shared-secret-of-decent-length"
ISSUER = "stytch.com/project-test-1"
AUDIENCE = "project-test-1"
VIEWER = "{ viewer { kind permissions organization { name } } }"


def stytch_claims(organization: str, roles: list[str], **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "member-test-1",
        "iss": ISSUER,
        "aud": [AUDIENCE],
        "exp": int(time.time()) + 300,
        "https://stytch.com/organization": {"organization_id": organization, "slug": "acme"},
        "https://stytch.com/session": {"id": "session-1", "roles": roles},
    }
    claims.update(overrides)
    return claims


async def viewer_with(client: GraphQLClient, token: str) -> dict[str, Any]:
    return await client.post(VIEWER, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwks_of(**keys: Any) -> dict[str, Any]:
    document = []
    for kid, key in keys.items():
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[_alg(key)].to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": _alg(key), "use": "sig"})
        document.append(jwk)
    return {"keys": document}


def _alg(key: Any) -> str:
    return "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


async def test_hs256_token_authenticates_with_the_mapped_roles(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(database_url, jwt_hs256_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    async with running_server(settings) as live:
        await make_tenant(live.services, "Acme")
        client = GraphQLClient(http, live.url)
        member = jwt.encode(stytch_claims("ext-Acme", ["stytch_member"]), SECRET, algorithm="HS256")
        body = await viewer_with(client, member)
        viewer = body["data"]["viewer"]
        assert viewer["kind"] == "JWT"
        assert viewer["organization"]["name"] == "Acme"
        assert "llm:invoke" in viewer["permissions"]
        assert "keys:manage" not in viewer["permissions"]

        admin = jwt.encode(stytch_claims("ext-Acme", ["stytch_admin"]), SECRET, algorithm="HS256")
        assert "keys:manage" in (await viewer_with(client, admin))["data"]["viewer"]["permissions"]


async def test_bad_tokens_are_unauthenticated_and_say_nothing_more(
    database_url: str, http: aiohttp.ClientSession, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = make_settings(database_url, jwt_hs256_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    async with running_server(settings) as live:
        await make_tenant(live.services, "Acme")
        client = GraphQLClient(http, live.url)
        good = stytch_claims("ext-Acme", ["stytch_member"])
        bad_tokens = {
            "malformed": "not.a.jwt",
            "wrong signature": jwt.encode(good, SECRET + "x", algorithm="HS256"),
            "wrong audience": jwt.encode({**good, "aud": ["other"]}, SECRET, algorithm="HS256"),
            "wrong issuer": jwt.encode({**good, "iss": "evil"}, SECRET, algorithm="HS256"),
            "expired": jwt.encode({**good, "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"),
            "no expiry": jwt.encode({k: v for k, v in good.items() if k != "exp"}, SECRET, algorithm="HS256"),
            "unknown organization": jwt.encode(
                stytch_claims("ext-Nobody", ["stytch_member"]), SECRET, algorithm="HS256"
            ),
            "alg none": jwt.encode(good, None, algorithm="none"),
            "RS256 without a JWKS": jwt.encode(good, rsa_key, algorithm="RS256", headers={"kid": "k1"}),
        }
        messages = set()
        for reason, token in bad_tokens.items():
            body = await viewer_with(client, token)
            assert error_codes(body) == ["UNAUTHENTICATED"], reason
            messages.add(body["errors"][0]["message"])
        assert messages == {"authentication required"}


async def test_rs256_and_es256_from_a_jwks_file(
    database_url: str,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(rsa1=rsa_key, ec1=ec_key)))
    settings = make_settings(database_url, jwt_jwks_file=jwks_file, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    async with running_server(settings) as live:
        await make_tenant(live.services, "Acme")
        client = GraphQLClient(http, live.url)
        claims = stytch_claims("ext-Acme", ["stytch_admin"])
        for kid, key in (("rsa1", rsa_key), ("ec1", ec_key)):
            token = jwt.encode(claims, key, algorithm=_alg(key), headers={"kid": kid})
            assert (await viewer_with(client, token))["data"]["viewer"]["organization"]["name"] == "Acme"
        # Signed by the right kind of key but not the published one.
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "rsa1"})
        assert error_codes(await viewer_with(client, forged)) == ["UNAUTHENTICATED"]
        # An HS256 token is refused when only a JWKS is configured (no algorithm confusion).
        hs = jwt.encode(claims, "an-hs256-secret-nobody-configured-here", algorithm="HS256")
        assert error_codes(await viewer_with(client, hs)) == ["UNAUTHENTICATED"]


class JwksServer:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0

    async def handle(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response(self.document)


@pytest.fixture
async def jwks_server(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[tuple[JwksServer, str]]:
    state = JwksServer(jwks_of(old=rsa_key))
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield state, str(server.make_url("/.well-known/jwks.json"))
    finally:
        await server.close()


async def test_jwks_url_is_cached_and_refetched_on_an_unknown_kid_at_most_once_a_minute(
    database_url: str,
    http: aiohttp.ClientSession,
    rsa_key: rsa.RSAPrivateKey,
    jwks_server: tuple[JwksServer, str],
) -> None:
    state, url = jwks_server
    settings = make_settings(
        database_url, jwt_jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_refetch_interval=60
    )
    async with running_server(settings) as live:
        await make_tenant(live.services, "Acme")
        client = GraphQLClient(http, live.url)
        claims = stytch_claims("ext-Acme", ["stytch_member"])
        token = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "old"})
        for _ in range(3):
            assert "errors" not in await viewer_with(client, token)
        assert state.fetches == 1  # cached

        new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rotated = jwt.encode(claims, new_key, algorithm="RS256", headers={"kid": "new"})
        # Unknown kid within the minute since the last fetch: refused without refetching.
        assert error_codes(await viewer_with(client, rotated)) == ["UNAUTHENTICATED"]
        assert state.fetches == 1

        # After the interval, an unknown kid refetches once and the rotated key works.
        state.document = jwks_of(old=rsa_key, new=new_key)
        jwks = live.services.auth.jwts.jwks
        assert jwks is not None
        jwks._fetched_at = (jwks._fetched_at or 0) - 61
        assert "errors" not in await viewer_with(client, rotated)
        assert state.fetches == 2


async def test_token_roles_without_a_known_role_grant_nothing(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(database_url, jwt_hs256_secret=SECRET)
    async with running_server(settings) as live:
        tenant = await make_tenant(live.services, "Acme")
        client = GraphQLClient(http, live.url)
        token = jwt.encode(stytch_claims("ext-Acme", ["some_custom_role"]), SECRET, algorithm="HS256")
        assert (await viewer_with(client, token))["data"]["viewer"]["permissions"] == []
        body = await client.post(
            "query($id: ID!) { apiKeys(organizationId: $id) { nodes { name } } }",
            {"id": tenant.organization_gid},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert error_codes(body) == ["FORBIDDEN"]
        # Modelgate's own role names are understood without a mapping.
        viewer = jwt.encode(stytch_claims("ext-Acme", ["viewer"]), SECRET, algorithm="HS256")
        permissions = (await viewer_with(client, viewer))["data"]["viewer"]["permissions"]
        assert permissions == sorted(p.value for p in ROLE_PERMISSIONS[Role.VIEWER])
