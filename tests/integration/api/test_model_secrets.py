"""Model credentials are write-only: no response, log record or stored row shows a secret; clearing is
explicit; and calls resolve credentials as the model's own, else its connection's, else its parent's."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest

from app.domain.auth import OPERATOR, Role
from app.domain.credentials import Credentials
from app.logs import JsonFormatter
from tests.conftest import LiveServer
from tests.support.catalog import (
    AVAILABLE,
    CONNECTION_CREATE,
    CONNECTION_UPDATE,
    CONNECTIONS,
    MODEL,
    MODELS,
    NODE,
    SYSTEM_CREATE,
    SYSTEM_UPDATE,
    USER_CREATE,
    USER_UPDATE,
    create_connection,
    create_system_model,
    create_user_model,
    system_model,
    uuid_of,
)
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

SYSTEM_TOKEN = "sk-LEAK-CANARY-0001"
CLIENT_KEY = "ck-LEAK-CANARY-0002"
SECRET_KEY = "sk-LEAK-CANARY-0003"
CONNECTION_TOKEN = "sk-LEAK-CANARY-0004"
CONNECTION_CLIENT_KEY = "ck-LEAK-CANARY-0005"
CONNECTION_SECRET_KEY = "sk-LEAK-CANARY-0006"
USER_TOKEN = "sk-LEAK-CANARY-0007"
REFUSED_TOKEN = "sk-LEAK-CANARY-0008"
CANARIES = (
    SYSTEM_TOKEN,
    CLIENT_KEY,
    SECRET_KEY,
    CONNECTION_TOKEN,
    CONNECTION_CLIENT_KEY,
    CONNECTION_SECRET_KEY,
    USER_TOKEN,
    REFUSED_TOKEN,
)
# What any canary would show, even cut short or case-folded.
MARKER = "leak-canary"


class RecordingClient(GraphQLClient):
    """Keeps every response (status, headers, body) to scan for secrets."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, key: str | None, seen: list[str]
    ) -> None:
        super().__init__(session, base_url, key)
        self.seen = seen

    def with_key(self, key: str | None) -> RecordingClient:
        return RecordingClient(self.session, self.base_url, key, self.seen)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = await super().post(query, variables, headers=headers)
        self.seen.append(json.dumps(body))
        return body


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def admin(
    server: LiveServer, http: aiohttp.ClientSession, admin_key: str, seen: list[str]
) -> RecordingClient:
    return RecordingClient(http, server.url, admin_key, seen)


@pytest.fixture
def org(admin: RecordingClient, tenant: Tenant) -> RecordingClient:
    return admin.with_key(tenant.keys[Role.ADMIN])


def leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text] + ([MARKER] if MARKER in text.lower() else [])


async def every_stored_row(server: LiveServer) -> list[str]:
    """Every row of every table, as text."""
    tables = await server.services.db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    rows: list[str] = []
    for table in tables:
        name = table["tablename"]
        rows += [r["t"] for r in await server.services.db.fetch(f'SELECT t::text AS t FROM "{name}" t')]  # noqa: S608
    return rows


# ---- no secret in responses, logs or rows ------------------------------------------------------------


async def test_no_response_log_record_or_row_contains_a_secret(
    server: LiveServer,
    admin: RecordingClient,
    org: RecordingClient,
    tenant: Tenant,
    seen: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Made with secrets.
    parent = await create_system_model(admin, "gpt-platform", token=SYSTEM_TOKEN)
    compatible = await create_system_model(
        admin, "gpt-compatible", provider="OPENAI_COMPATIBLE", modelUrl="https://llm.example.com/v1"
    )
    with_keys = await admin.mutate(
        SYSTEM_UPDATE, {"id": compatible["id"], "clientKey": CLIENT_KEY, "secretKey": SECRET_KEY}
    )
    assert with_keys["model"]["hasClientKey"] is True
    connection = await create_connection(org, tenant.organization_gid, token=CONNECTION_TOKEN)
    header_connection = await create_connection(
        org,
        tenant.organization_gid,
        name="custom-header",
        provider="OPENAI_COMPATIBLE",
        modelUrl="https://llm.example.com/v1",
        clientKey=CONNECTION_CLIENT_KEY,
        secretKey=CONNECTION_SECRET_KEY,
    )
    variant = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="acme-gpt",
        parentModelId=parent["id"],
        token=USER_TOKEN,
    )
    assert variant["hasToken"] is True
    connected = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="acme-connected",
        parentModelId=parent["id"],
        connectionId=connection["id"],
    )
    assert connected["connection"] == {"id": connection["id"]}
    header_model = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="acme-compatible",
        provider="OPENAI_COMPATIBLE",
        providerModelId="llama",
        connectionId=header_connection["id"],
    )

    # Refused with secrets in the input: user errors, top-level errors, client errors.
    own = {"organizationId": tenant.organization_gid, "provider": "OPENAI", "providerModelId": "gpt-4o"}
    refused: list[tuple[RecordingClient, str, dict[str, Any]]] = [
        (org, USER_CREATE, {**own, "name": "", "token": REFUSED_TOKEN}),
        (org, USER_CREATE, {**own, "name": "a", "clientKey": REFUSED_TOKEN}),
        (org, USER_CREATE, {**own, "name": "b", "secretKey": REFUSED_TOKEN}),
        (
            org,
            USER_CREATE,
            {**own, "name": "c", "token": REFUSED_TOKEN, "clientKey": REFUSED_TOKEN, "secretKey": "x"},
        ),
        (org, USER_CREATE, {**own, "name": "d", "token": REFUSED_TOKEN * 2000}),
        (org, USER_CREATE, {**own, "name": "acme-gpt", "token": REFUSED_TOKEN}),  # duplicate name
        (org, USER_UPDATE, {"id": variant["id"], "contextWindow": 0, "token": REFUSED_TOKEN}),
        (org, USER_UPDATE, {"id": variant["id"], "clearToken": True, "token": REFUSED_TOKEN}),
        (org, SYSTEM_CREATE, {**system_model("sneaky"), "token": REFUSED_TOKEN}),  # FORBIDDEN
        (org, SYSTEM_UPDATE, {"id": parent["id"], "token": REFUSED_TOKEN}),  # PERMISSION_DENIED
        (admin.with_key(None), USER_CREATE, {**own, "name": "e", "token": REFUSED_TOKEN}),  # UNAUTHENTICATED
        (org, USER_CREATE, {**own, "name": "f", "token": REFUSED_TOKEN, "provider": "NOT_A_PROVIDER"}),
        (org, USER_CREATE, {**own, "name": "g", "token": REFUSED_TOKEN, "contextWindow": "many"}),
        (
            org,
            CONNECTION_CREATE,
            {
                "organizationId": tenant.organization_gid,
                "name": "",
                "provider": "OPENAI",
                "token": REFUSED_TOKEN,
            },
        ),
        (org, CONNECTION_UPDATE, {"id": connection["id"], "clientKey": REFUSED_TOKEN}),
    ]
    for client, document, values in refused:
        body = await client.post(document, {"input": values})
        assert "errors" in body or next(iter(body["data"].values()))["userErrors"], values

    # Read everything back every way there is.
    for client in (admin, org):
        for model_id in (parent["id"], compatible["id"], variant["id"], header_model["id"]):
            await client.post(MODEL, {"id": model_id})
            await client.post(NODE, {"id": model_id})
        await client.post(MODELS, {"first": 100, "filter": {"includeSystem": True}})
        await client.post(AVAILABLE, {"projectId": tenant.project_gid})
        await client.post(CONNECTIONS, {"id": tenant.organization_gid})
    await admin.post(MODELS, {"first": 100})

    assert len(seen) > 30
    assert [leaks(body) for body in seen if leaks(body)] == []
    assert caplog.records, "the server logs requests"
    formatter = JsonFormatter()
    logged = [formatter.format(r) for r in caplog.records] + [r.getMessage() for r in caplog.records]
    logged += [repr(vars(r)) for r in caplog.records]
    assert [line for line in logged if leaks(line)] == []
    rows = await every_stored_row(server)
    assert [row for row in rows if leaks(row)] == []


async def test_ciphertexts_are_not_the_plaintext(
    server: LiveServer, admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    model = await create_system_model(admin, "gpt-platform", token=SYSTEM_TOKEN)
    connection = await create_connection(org, tenant.organization_gid, token=CONNECTION_TOKEN)
    db = server.services.db
    model_token = await db.fetchval("SELECT token_ciphertext FROM models WHERE id = $1", uuid_of(model["id"]))
    connection_token = await db.fetchval(
        "SELECT token_ciphertext FROM connections WHERE id = $1", uuid_of(connection["id"])
    )
    for ciphertext, plaintext in ((model_token, SYSTEM_TOKEN), (connection_token, CONNECTION_TOKEN)):
        assert ciphertext is not None
        assert plaintext.encode() not in bytes(ciphertext)
        assert plaintext.encode().hex() not in bytes(ciphertext).hex()
        assert len(ciphertext) > len(plaintext)  # nonce and tag around it


# ---- changing credentials ---------------------------------------------------------------------------


async def stored_secrets(server: LiveServer, model_id: str) -> tuple[bytes | None, ...]:
    row = await server.services.db.fetchrow(
        "SELECT token_ciphertext, client_key_ciphertext, secret_key_ciphertext FROM models WHERE id = $1",
        uuid_of(model_id),
    )
    assert row is not None
    return tuple(None if v is None else bytes(v) for v in row.values())


async def test_omitting_credentials_never_clears_them_and_clearing_is_explicit(
    server: LiveServer, org: GraphQLClient, tenant: Tenant
) -> None:
    model = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="byok",
        provider="OPENAI",
        providerModelId="gpt-4o",
        token=USER_TOKEN,
    )
    stored = await stored_secrets(server, model["id"])
    assert stored[0] is not None
    for changes in (
        {"description": "no credentials sent"},
        {"token": None},
        {"clearToken": False, "clearClientKeys": False, "contextWindow": 1000},
        {"clearClientKeys": True},  # clears client keys (none), not the token
    ):
        payload = await org.mutate(USER_UPDATE, {"id": model["id"], **changes})
        assert payload["userErrors"] == []
        assert payload["model"]["hasToken"] is True, changes
        assert await stored_secrets(server, model["id"]) == stored, changes

    replaced = await org.mutate(USER_UPDATE, {"id": model["id"], "token": "sk-new-token"})
    assert replaced["model"]["hasToken"] is True
    assert (await stored_secrets(server, model["id"]))[0] != stored[0]
    assert (await server.services.model_cache.get(uuid_of(model["id"]))).credentials.token == "sk-new-token"  # type: ignore[union-attr]

    cleared = await org.mutate(USER_UPDATE, {"id": model["id"], "clearToken": True})
    assert cleared["userErrors"] == []
    assert cleared["model"]["hasToken"] is False
    assert await stored_secrets(server, model["id"]) == (None, None, None)


async def test_system_model_token_clearing(server: LiveServer, admin: GraphQLClient) -> None:
    model = await create_system_model(admin, "gpt-platform", token=SYSTEM_TOKEN)
    kept = await admin.mutate(SYSTEM_UPDATE, {"id": model["id"], "name": "gpt-renamed"})
    assert kept["model"]["hasToken"] is True
    cleared = await admin.mutate(SYSTEM_UPDATE, {"id": model["id"], "clearToken": True})
    assert cleared["model"]["hasToken"] is False
    assert (await stored_secrets(server, model["id"]))[0] is None


async def test_model_client_keys_are_stored_and_cleared_together(
    server: LiveServer, org: GraphQLClient, tenant: Tenant
) -> None:
    payload = await org.mutate(
        USER_CREATE,
        {
            "organizationId": tenant.organization_gid,
            "name": "custom-header",
            "provider": "OPENAI_COMPATIBLE",
            "providerModelId": "llama",
            "modelUrl": "https://llm.example.com/v1",
            "clientKey": CLIENT_KEY,
            "secretKey": SECRET_KEY,
        },
    )
    assert payload["userErrors"] == []
    model = payload["model"]
    assert (model["hasToken"], model["hasClientKey"]) == (False, True)
    resolved = await server.services.model_cache.get(uuid_of(model["id"]))
    assert resolved is not None
    assert (resolved.credentials.client_key, resolved.credentials.secret_key) == (CLIENT_KEY, SECRET_KEY)
    kept = await org.mutate(USER_UPDATE, {"id": model["id"], "description": "keys not sent"})
    assert kept["model"]["hasClientKey"] is True
    cleared = await org.mutate(USER_UPDATE, {"id": model["id"], "clearClientKeys": True})
    assert cleared["userErrors"] == []
    assert cleared["model"]["hasClientKey"] is False
    assert await stored_secrets(server, model["id"]) == (None, None, None)


# ---- resolution at call time (service level) -----------------------------------------------------------


async def resolve(server: LiveServer, model_id: str) -> Credentials:
    services = server.services
    effective = await services.models.get(OPERATOR, uuid_of(model_id))
    assert effective is not None
    credentials, _ = await services.model_credentials.resolve(effective)
    return credentials


def shown(credentials: Credentials) -> tuple[str | None, str | None, str | None]:
    return credentials.token, credentials.client_key, credentials.secret_key


async def test_credentials_resolve_own_then_connection_then_parent(
    server: LiveServer, admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    parent = await create_system_model(admin, "gpt-platform", token=SYSTEM_TOKEN)
    bare_parent = await create_system_model(admin, "gpt-bare")
    connection = await create_connection(org, tenant.organization_gid, token=CONNECTION_TOKEN)
    header_connection = await create_connection(
        org,
        tenant.organization_gid,
        name="headers",
        clientKey=CONNECTION_CLIENT_KEY,
        secretKey=CONNECTION_SECRET_KEY,
    )
    own = {"organizationId": tenant.organization_gid, "parentModelId": parent["id"]}
    with_all = await create_user_model(org, **own, name="own-token", token=USER_TOKEN)
    with_connection = await create_user_model(
        org, **own, name="connection-only", connectionId=connection["id"]
    )
    with_headers = await create_user_model(
        org, **own, name="header-connection", connectionId=header_connection["id"]
    )
    inheriting = await create_user_model(org, **own, name="inheriting")
    own_headers = await create_user_model(
        org,
        **own,
        name="own-headers",
        clientKey=CLIENT_KEY,
        secretKey=SECRET_KEY,
    )
    with_nothing = await create_user_model(
        org, organizationId=tenant.organization_gid, parentModelId=bare_parent["id"], name="nothing"
    )

    assert shown(await resolve(server, with_all["id"])) == (USER_TOKEN, None, None)
    assert shown(await resolve(server, own_headers["id"])) == (None, CLIENT_KEY, SECRET_KEY)
    assert shown(await resolve(server, with_connection["id"])) == (CONNECTION_TOKEN, None, None)
    assert shown(await resolve(server, with_headers["id"])) == (
        None,
        CONNECTION_CLIENT_KEY,
        CONNECTION_SECRET_KEY,
    )
    assert shown(await resolve(server, inheriting["id"])) == (SYSTEM_TOKEN, None, None)
    assert shown(await resolve(server, parent["id"])) == (SYSTEM_TOKEN, None, None)
    assert shown(await resolve(server, with_nothing["id"])) == (None, None, None)
    assert "LEAK" not in repr(await resolve(server, with_all["id"]))

    # Dropping a level falls through to the next one.
    await org.mutate(
        USER_UPDATE, {"id": with_all["id"], "clearToken": True, "connectionId": connection["id"]}
    )
    assert shown(await resolve(server, with_all["id"])) == (CONNECTION_TOKEN, None, None)
    await org.mutate(USER_UPDATE, {"id": with_all["id"], "connectionId": None})
    assert shown(await resolve(server, with_all["id"])) == (SYSTEM_TOKEN, None, None)
    # A connection whose credentials change is seen at once.
    await org.mutate(CONNECTION_UPDATE, {"id": connection["id"], "token": "sk-rotated"})
    assert shown(await resolve(server, with_connection["id"])) == ("sk-rotated", None, None)


async def test_an_input_that_does_not_fit_its_type_does_not_echo_its_secrets(
    org: RecordingClient, tenant: Tenant, seen: list[str]
) -> None:
    own = {
        "organizationId": tenant.organization_gid,
        "name": "m",
        "provider": "OPENAI",
        "providerModelId": "x",
    }
    malformed: list[tuple[str, dict[str, Any]]] = [
        (USER_CREATE, {**own, "token": REFUSED_TOKEN, "tokn": "typo"}),
        (USER_CREATE, {**own, "clientKey": REFUSED_TOKEN, "secretkey": REFUSED_TOKEN}),
        (
            CONNECTION_CREATE,
            {
                "organizationId": tenant.organization_gid,
                "name": "c",
                "provider": "OPENAI",
                "token": REFUSED_TOKEN,
                "extra": True,
            },
        ),
    ]
    for document, values in malformed:  # a misspelt field name (the error suggests the right one)
        body = await org.post(document, {"input": values})
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert len(seen) == 3
    assert [leaks(body) for body in seen if leaks(body)] == []
