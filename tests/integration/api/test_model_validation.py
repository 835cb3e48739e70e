"""Every bad input of a model create or update is a user error with its field path, and writes nothing.

Cases are data: an input with `@name` references to objects the test world makes on demand (models,
projects, connections of this or another organization), and the exact user errors expected.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.catalog import (
    SYSTEM_CREATE,
    SYSTEM_UPDATE,
    USER_CREATE,
    USER_UPDATE,
    add_project,
    codes,
    create_connection,
    create_system_model,
    create_system_prompt,
    create_user_model,
    list_models,
    stored_catalog,
    system_model,
)
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.graphql import GraphQLClient

Errors = list[tuple[str, tuple[str, ...]]]


class World:
    """Objects the cases refer to as `@name`, each made the first time a case needs it."""

    def __init__(
        self, server: LiveServer, admin: GraphQLClient, org: GraphQLClient, tenant: Tenant, other: Tenant
    ) -> None:
        self.server = server
        self.admin = admin
        self.org = org
        self.tenant = tenant
        self.other = other
        self.foreign = org.with_key(other.keys[Role.ADMIN])
        self._made: dict[str, str] = {}
        self._factories: dict[str, Callable[[], Awaitable[str]]] = {
            "org": self._value(tenant.organization_gid),
            "project": self._value(tenant.project_gid),
            "chat": lambda: self._system("gpt-chat"),
            "embedding": lambda: self._system("text-embed", modelGroup="EMBEDDING", maxOutputTokens=None),
            "hidden": lambda: self._system("gpt-hidden", isVisible=False),
            "missing": self._value(encode_id("SystemModel", uuid.uuid4())),
            "missing_user": self._value(encode_id("UserModel", uuid.uuid4())),
            "taken": lambda: self._user(name="taken"),
            "spare": lambda: self._user(name="spare"),
            "small": lambda: self._user(name="small", contextWindow=8000, maxOutputTokens=4000),
            "project_model": lambda: self._user(
                name="primary", scope="PROJECT", projectId=tenant.project_gid
            ),
            "other_project": self._other_project,
            "other_project_model": self._other_project_model,
            "assigned_elsewhere": self._assigned_elsewhere,
            "a": lambda: self._chain("model-a", "b"),
            "b": lambda: self._chain("model-b", "c"),
            "c": lambda: self._chain("model-c", None),
            "foreign_model": self._foreign_model,
            "foreign_project": self._value(other.project_gid),
            "foreign_prompt": self._foreign_prompt,
            "openai_connection": lambda: self._connection(org, tenant, "OPENAI"),
            "anthropic_connection": lambda: self._connection(org, tenant, "ANTHROPIC"),
            "foreign_connection": lambda: self._connection(self.foreign, other, "OPENAI"),
        }

    @staticmethod
    def _value(value: str) -> Callable[[], Awaitable[str]]:
        async def made() -> str:
            return value

        return made

    async def ref(self, name: str) -> str:
        if name not in self._made:
            self._made[name] = await self._factories[name]()
        return self._made[name]

    async def resolve(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("@"):
            return await self.ref(value[1:])
        if isinstance(value, dict):
            return {k: await self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.resolve(v) for v in value]
        return value

    async def _system(self, name: str, **fields: Any) -> str:
        return str((await create_system_model(self.admin, name, **fields))["id"])

    async def _user(self, client: GraphQLClient | None = None, **fields: Any) -> str:
        values = {
            "organizationId": self.tenant.organization_gid,
            "provider": "OPENAI",
            "providerModelId": "gpt-4o-mini",
            **fields,
        }
        return str((await create_user_model(client or self.org, **values))["id"])

    async def _chain(self, name: str, replacement: str | None) -> str:
        fields = {"replacementModelId": await self.ref(replacement)} if replacement else {}
        return await self._user(name=name, **fields)

    async def _other_project(self) -> str:
        return await add_project(self.server.services, self.tenant, "Second project")

    async def _other_project_model(self) -> str:
        return await self._user(name="elsewhere", scope="PROJECT", projectId=await self.ref("other_project"))

    async def _assigned_elsewhere(self) -> str:
        return await self._user(
            name="assigned-elsewhere", assignedProjectIds=[await self.ref("other_project")]
        )

    async def _foreign_model(self) -> str:
        return await self._user(self.foreign, organizationId=self.other.organization_gid, name="foreign")

    async def _foreign_prompt(self) -> str:
        prompt = await create_system_prompt(
            self.foreign, "Globex voice", "Speak like Globex.", organization_gid=self.other.organization_gid
        )
        return str(prompt["id"])

    @staticmethod
    async def _connection(client: GraphQLClient, tenant: Tenant, provider: str) -> str:
        name = f"{provider.lower()}-keys"
        return str(
            (
                await create_connection(
                    client, tenant.organization_gid, name=name, provider=provider, token="t"
                )
            )["id"]
        )


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


@pytest.fixture
def world(
    server: LiveServer, admin: GraphQLClient, org: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> World:
    return World(server, admin, org, tenant, other_tenant)


def byok(**fields: Any) -> dict[str, Any]:
    """A standalone (bring-your-own-key) organization model, with `fields` on top."""
    return {
        "organizationId": "@org",
        "name": "new-model",
        "provider": "OPENAI",
        "providerModelId": "gpt-4o",
        **fields,
    }


def in_project(**fields: Any) -> dict[str, Any]:
    return byok(scope="PROJECT", projectId="@project", **fields)


def fallback(model: str, **fields: Any) -> dict[str, Any]:
    return {"modelId": model, **fields}


def path(*parts: str) -> tuple[str, ...]:
    return ("input", *parts)


# (case id, "create" or "@model" to update, input, the exact user errors). `_needs` makes an object
# exist first without sending it.
CASES: dict[str, list[tuple[str, str, dict[str, Any], Errors]]] = {
    "names": [
        ("name-empty", "create", byok(name=""), [("REQUIRED", path("name"))]),
        ("name-blank", "create", byok(name="   "), [("REQUIRED", path("name"))]),
        ("name-201-chars", "create", byok(name="x" * 201), [("TOO_LONG", path("name"))]),
        (
            "name-duplicate-padded",
            "create",
            byok(name="  taken ", _needs="@taken"),
            [("DUPLICATE", path("name"))],
        ),
        ("name-duplicate", "create", byok(name="taken", _needs="@taken"), [("DUPLICATE", path("name"))]),
        (
            "name-duplicate-other-case",
            "create",
            byok(name="TAKEN", _needs="@taken"),
            [("DUPLICATE", path("name"))],
        ),
        (
            "rename-to-a-taken-name",
            "@spare",
            {"name": "taken", "_needs": "@taken"},
            [("DUPLICATE", path("name"))],
        ),
        ("rename-empty", "@spare", {"name": ""}, [("REQUIRED", path("name"))]),
    ],
    "limits": [
        ("context-window-0", "create", byok(contextWindow=0), [("OUT_OF_RANGE", path("contextWindow"))]),
        (
            "context-window-negative",
            "create",
            byok(contextWindow=-5),
            [("OUT_OF_RANGE", path("contextWindow"))],
        ),
        (
            "context-window-2000001",
            "create",
            byok(contextWindow=2_000_001),
            [("OUT_OF_RANGE", path("contextWindow"))],
        ),
        ("max-output-0", "create", byok(maxOutputTokens=0), [("OUT_OF_RANGE", path("maxOutputTokens"))]),
        (
            "max-output-200001",
            "create",
            byok(maxOutputTokens=200_001),
            [("OUT_OF_RANGE", path("maxOutputTokens"))],
        ),
        (
            "max-output-over-context-window",
            "create",
            byok(contextWindow=4000, maxOutputTokens=4001),
            [("OUT_OF_RANGE", path("maxOutputTokens"))],
        ),
        (
            "context-window-lowered-below-max-output",
            "@small",
            {"contextWindow": 2000},
            [("OUT_OF_RANGE", path("maxOutputTokens"))],
        ),
        (
            "system-prompt-override-50001",
            "create",
            byok(systemPromptOverride="x" * 50_001),
            [("TOO_LONG", path("systemPromptOverride"))],
        ),
    ],
    "provider-settings": [
        (
            "unknown-setting",
            "create",
            byok(providerSettings={"bogus": "1"}),
            [("INVALID", path("providerSettings", "bogus"))],
        ),
        (
            "setting-not-a-string",
            "create",
            byok(providerSettings={"customModel": 5}),
            [("INVALID", path("providerSettings", "customModel"))],
        ),
        (
            "settings-not-an-object",
            "create",
            byok(providerSettings=["customModel"]),
            [("INVALID", path("providerSettings"))],
        ),
    ],
    "credentials": [
        (
            "client-key-without-secret-key",
            "create",
            byok(clientKey="ck-1"),
            [("REQUIRED", path("secretKey"))],
        ),
        (
            "secret-key-without-client-key",
            "create",
            byok(secretKey="sk-1"),
            [("REQUIRED", path("clientKey"))],
        ),
        (
            "token-and-client-keys",
            "create",
            byok(token="tok", clientKey="ck-1", secretKey="sk-1"),
            [("INVALID", path("clientKey"))],
        ),
        ("empty-token", "create", byok(token="  "), [("REQUIRED", path("token"))]),
        (
            "client-key-without-secret-key-on-update",
            "@spare",
            {"clientKey": "ck-1"},
            [("REQUIRED", path("secretKey"))],
        ),
    ],
    "scope": [
        ("default-on-organization-model", "create", byok(isDefault=True), [("INVALID", path("isDefault"))]),
        (
            "default-on-organization-model-update",
            "@spare",
            {"isDefault": True},
            [("INVALID", path("isDefault"))],
        ),
        (
            "fallbacks-on-organization-model",
            "create",
            byok(fallbacks=[fallback("@chat")]),
            [("INVALID", path("fallbacks"))],
        ),
        ("project-scope-without-project", "create", byok(scope="PROJECT"), [("REQUIRED", path("projectId"))]),
        (
            "organization-scope-with-project",
            "create",
            byok(projectId="@project"),
            [("INVALID", path("projectId"))],
        ),
        (
            "project-scope-with-assigned-projects",
            "create",
            in_project(assignedProjectIds=["@project"]),
            [("INVALID", path("assignedProjectIds"))],
        ),
        (
            "project-of-another-organization",
            "create",
            byok(scope="PROJECT", projectId="@foreign_project"),
            [("NOT_FOUND", path("projectId"))],
        ),
    ],
    "parents": [
        (
            "parent-does-not-exist",
            "create",
            {"organizationId": "@org", "name": "v", "parentModelId": "@missing"},
            [("NOT_FOUND", path("parentModelId"))],
        ),
        (
            "parent-is-invisible",
            "create",
            {"organizationId": "@org", "name": "v", "parentModelId": "@hidden"},
            [("NOT_FOUND", path("parentModelId"))],
        ),
    ],
    "replacements": [
        (
            "replacement-of-another-group",
            "create",
            byok(replacementModelId="@embedding"),
            [("GROUP_MISMATCH", path("replacementModelId"))],
        ),
        (
            "replacement-does-not-exist",
            "create",
            byok(replacementModelId="@missing_user"),
            [("NOT_FOUND", path("replacementModelId"))],
        ),
        (
            "replacement-of-another-organization",
            "create",
            byok(replacementModelId="@foreign_model"),
            [("NOT_FOUND", path("replacementModelId"))],
        ),
        (
            "replacement-invisible-system-model",
            "create",
            byok(replacementModelId="@hidden"),
            [("NOT_FOUND", path("replacementModelId"))],
        ),
        (
            "replacement-is-itself",
            "@c",
            {"replacementModelId": "@c"},
            [("REPLACEMENT_CYCLE", path("replacementModelId"))],
        ),
        (
            "replacement-two-cycle",
            "@b",
            {"replacementModelId": "@a"},
            [("REPLACEMENT_CYCLE", path("replacementModelId"))],
        ),
        (
            "replacement-three-cycle",
            "@c",
            {"replacementModelId": "@a"},
            [("REPLACEMENT_CYCLE", path("replacementModelId"))],
        ),
    ],
    "fallbacks": [
        (
            "fallback-to-itself",
            "@project_model",
            {"fallbacks": [fallback("@project_model")]},
            [("INVALID", path("fallbacks", "0", "modelId"))],
        ),
        (
            "fallback-of-another-organization",
            "create",
            in_project(fallbacks=[fallback("@foreign_model")]),
            [("NOT_FOUND", path("fallbacks", "0", "modelId"))],
        ),
        (
            "fallback-of-another-group",
            "create",
            in_project(fallbacks=[fallback("@embedding")]),
            [("GROUP_MISMATCH", path("fallbacks", "0", "modelId"))],
        ),
        (
            "fallback-in-another-project",
            "create",
            in_project(fallbacks=[fallback("@other_project_model")]),
            [("NOT_FOUND", path("fallbacks", "0", "modelId"))],
        ),
        (
            "fallback-assigned-to-another-project",
            "create",
            in_project(fallbacks=[fallback("@assigned_elsewhere")]),
            [("NOT_FOUND", path("fallbacks", "0", "modelId"))],
        ),
        (
            "fallback-invisible-system-model",
            "create",
            in_project(fallbacks=[fallback("@hidden")]),
            [("NOT_FOUND", path("fallbacks", "0", "modelId"))],
        ),
        (
            "fallback-does-not-exist",
            "create",
            in_project(fallbacks=[fallback("@missing")]),
            [("NOT_FOUND", path("fallbacks", "0", "modelId"))],
        ),
        (
            "fallback-duplicates",
            "create",
            in_project(fallbacks=[fallback("@chat"), fallback("@taken"), fallback("@chat")]),
            [("INVALID", path("fallbacks", "2", "modelId"))],
        ),
        (
            "fallback-failed-requests-0",
            "create",
            in_project(fallbacks=[fallback("@chat", failedRequests=0)]),
            [("OUT_OF_RANGE", path("fallbacks", "0", "failedRequests"))],
        ),
        (
            "fallback-duration-minutes-0",
            "create",
            in_project(fallbacks=[fallback("@chat", durationMinutes=0)]),
            [("OUT_OF_RANGE", path("fallbacks", "0", "durationMinutes"))],
        ),
        (
            "fallback-bad-notify-email",
            "create",
            in_project(fallbacks=[fallback("@chat", notifyEmails=["ops@example.com", "not-an-email"])]),
            [("INVALID", path("fallbacks", "0", "notifyEmails", "1"))],
        ),
        (
            # `$` matched before a final line break, which then reached the alert email's To header.
            "fallback-notify-email-ending-in-a-line-break",
            "create",
            in_project(fallbacks=[fallback("@chat", notifyEmails=["ops@example.com\n"])]),
            [("INVALID", path("fallbacks", "0", "notifyEmails", "0"))],
        ),
    ],
    "references": [
        (
            "connection-of-another-provider",
            "create",
            byok(connectionId="@anthropic_connection"),
            [("INVALID", path("connectionId"))],
        ),
        (
            "connection-of-another-organization",
            "create",
            byok(connectionId="@foreign_connection"),
            [("NOT_FOUND", path("connectionId"))],
        ),
        (
            "connection-of-another-provider-than-the-parent",
            "create",
            {
                "organizationId": "@org",
                "name": "v",
                "parentModelId": "@chat",
                "connectionId": "@anthropic_connection",
            },
            [("INVALID", path("connectionId"))],
        ),
        (
            "assigned-project-of-another-organization",
            "create",
            byok(assignedProjectIds=["@project", "@foreign_project"]),
            [("NOT_FOUND", path("assignedProjectIds", "1"))],
        ),
        (
            "system-prompt-of-another-organization",
            "create",
            byok(systemPromptId="@foreign_prompt"),
            [("NOT_FOUND", path("systemPromptId"))],
        ),
    ],
    "several-problems": [
        (
            "several-problems",
            "create",
            byok(name="", contextWindow=0, maxOutputTokens=0, isDefault=True),
            [
                ("INVALID", path("isDefault")),
                ("OUT_OF_RANGE", path("contextWindow")),
                ("OUT_OF_RANGE", path("maxOutputTokens")),
                ("REQUIRED", path("name")),
            ],
        ),
    ],
}


async def snapshot(server: LiveServer, org: GraphQLClient) -> tuple[Any, ...]:
    """What the organization's models query shows, and every stored catalog row."""
    return await list_models(org, {"includeSystem": True}), await stored_catalog(server.services.db)


async def attempt(
    server: LiveServer, org: GraphQLClient, world: World, target: str, values: dict[str, Any]
) -> tuple[list[tuple[str, list[str] | None]], bool, dict[str, Any]]:
    """Sends one case; its user errors, whether anything changed, and the payload."""
    resolved = await world.resolve(values)
    resolved.pop("_needs", None)  # only there to make the referenced object first
    if target != "create":
        resolved["id"] = await world.ref(target[1:])
    before = await snapshot(server, org)
    payload = await org.mutate(USER_CREATE if target == "create" else USER_UPDATE, resolved)
    return sorted(codes(payload)), await snapshot(server, org) != before, payload


@pytest.mark.parametrize("theme", list(CASES))
async def test_bad_input_is_a_user_error_and_writes_nothing(
    server: LiveServer, org: GraphQLClient, world: World, theme: str
) -> None:
    """One test per theme (a fresh database each costs more than a case); every case is checked and
    every mismatch reported."""
    mismatches = []
    for case_id, target, values, expected in CASES[theme]:
        got, wrote, payload = await attempt(server, org, world, target, values)
        wanted = sorted((code, list(field)) for code, field in expected)
        if got != wanted:
            mismatches.append(f"{case_id}: user errors {got}, expected {wanted}")
        if wrote:
            mismatches.append(f"{case_id}: something was written")
        if payload["model"] is not None or not all(e["message"] for e in payload["userErrors"]):
            mismatches.append(f"{case_id}: payload {payload}")
    assert mismatches == []


async def test_a_user_model_as_parent_is_invalid(
    server: LiveServer, org: GraphQLClient, world: World
) -> None:
    values = {"organizationId": "@org", "name": "v", "parentModelId": "@taken"}
    got, wrote, _ = await attempt(server, org, world, "create", values)
    assert not wrote
    assert got == [("INVALID", ["input", "parentModelId"])]


# (provider, settings with one key the provider does not take, that key)
SETTINGS_CASES = [
    ("OPENAI", {"customModel": "gpt-4o-2024", "region": "us-east-1"}, "region"),
    ("ANTHROPIC", {"customModel": "claude", "deploymentName": "d"}, "deploymentName"),
    ("ALEPH_ALPHA", {"customModel": "luminous", "apiVersion": "v1"}, "apiVersion"),
    ("MISTRAL", {"customModel": "mistral-large", "location": "eu"}, "location"),
    (
        "AZURE_OPENAI",
        {"resourceName": "acme", "deploymentName": "gpt", "customModel": "x"},
        "customModel",
    ),
    ("GOOGLE_VERTEX_AI", {"location": "europe-west4", "publisher": "google", "region": "x"}, "region"),
    ("GOOGLE_GENAI", {"location": "us-central1", "publisher": "google"}, "publisher"),
    ("OPENAI_COMPATIBLE", {"customAuthHeader": "X-Key", "resourceName": "x"}, "resourceName"),
    ("AWS_BEDROCK", {"region": "eu-central-1", "location": "x"}, "location"),
    ("OPENAI", {"nonsense": "x"}, "nonsense"),
]


async def test_provider_settings_are_checked_per_provider(
    server: LiveServer, admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    for provider, provider_settings, bad_key in SETTINGS_CASES:
        values = {
            "name": f"{provider.lower()}-{bad_key}",
            "provider": provider,
            "providerModelId": "some-model",
            "modelUrl": "https://llm.example.com/v1",
        }
        # Bedrock signs with the platform's AWS identity: system models only.
        client, create, extra = (
            (admin, SYSTEM_CREATE, {"modelGroup": "CHAT"})
            if provider == "AWS_BEDROCK"
            else (org, USER_CREATE, {"organizationId": tenant.organization_gid})
        )
        before = await snapshot(server, org)
        payload = await client.mutate(create, {**values, **extra, "providerSettings": provider_settings})
        assert codes(payload) == [("INVALID", ["input", "providerSettings", bad_key])], provider
        assert await snapshot(server, org) == before
        # Without the other provider's key the same settings are accepted.
        valid = {k: v for k, v in provider_settings.items() if k != bad_key}
        payload = await client.mutate(create, {**values, **extra, "providerSettings": valid})
        assert payload["userErrors"] == [], provider
        (created,) = (p for p in payload.values() if isinstance(p, dict))
        assert created["providerSettings"] == valid


async def test_bad_system_model_input_writes_nothing(server: LiveServer, admin: GraphQLClient) -> None:
    model = await create_system_model(admin, "gpt-platform")
    await create_system_model(admin, "gpt-other")
    before = await stored_catalog(server.services.db)
    cases: list[tuple[str, dict[str, Any], Errors]] = [
        (SYSTEM_CREATE, system_model("GPT-OTHER"), [("DUPLICATE", path("name"))]),
        (
            SYSTEM_CREATE,
            system_model("x", contextWindow=2_000_001),
            [("OUT_OF_RANGE", path("contextWindow"))],
        ),
        (
            SYSTEM_CREATE,
            system_model("x", creditMultiplier="-1"),
            [("OUT_OF_RANGE", path("creditMultiplier"))],
        ),
        (
            SYSTEM_CREATE,
            system_model("x", providerSettings={"region": "x"}),
            [("INVALID", path("providerSettings", "region"))],
        ),
        (SYSTEM_UPDATE, {"id": model["id"], "name": "gpt-other"}, [("DUPLICATE", path("name"))]),
        (
            SYSTEM_UPDATE,
            {"id": model["id"], "maxOutputTokens": 200_000},
            [("OUT_OF_RANGE", path("maxOutputTokens"))],
        ),
        (
            SYSTEM_UPDATE,
            {"id": model["id"], "replacementModelId": model["id"]},
            [("REPLACEMENT_CYCLE", path("replacementModelId"))],
        ),
        (
            SYSTEM_UPDATE,
            {"id": model["id"], "systemPromptOverride": "x" * 50_001},
            [("TOO_LONG", path("systemPromptOverride"))],
        ),
    ]
    for document, values, expected in cases:
        payload = await admin.mutate(document, values)
        assert sorted(codes(payload)) == sorted((c, list(f)) for c, f in expected), values
        assert payload["model"] is None
    assert await stored_catalog(server.services.db) == before


async def test_limits_at_their_bounds_are_accepted(org: GraphQLClient, tenant: Tenant) -> None:
    base = {"organizationId": tenant.organization_gid, "provider": "OPENAI", "providerModelId": "gpt-4o"}
    widest = await create_user_model(
        org,
        **base,
        name="x" * 200,
        contextWindow=2_000_000,
        maxOutputTokens=200_000,
        systemPromptOverride="y" * 50_000,
    )
    assert (widest["contextWindow"], widest["maxOutputTokens"]) == (2_000_000, 200_000)
    assert len(widest["systemPromptOverride"]) == 50_000
    narrowest = await create_user_model(org, **base, name="n", contextWindow=1, maxOutputTokens=1)
    assert (narrowest["contextWindow"], narrowest["maxOutputTokens"]) == (1, 1)


async def test_the_same_name_in_another_organization_or_the_system_catalog_is_fine(
    admin: GraphQLClient, org: GraphQLClient, gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create_system_model(admin, "shared-name")
    base = {"name": "shared-name", "provider": "OPENAI", "providerModelId": "gpt-4o"}
    mine = await create_user_model(org, organizationId=tenant.organization_gid, **base)
    theirs = await create_user_model(
        gql.with_key(other_tenant.keys[Role.ADMIN]), organizationId=other_tenant.organization_gid, **base
    )
    assert mine["id"] != theirs["id"]
    assert (mine["organization"]["name"], theirs["organization"]["name"]) == ("Acme", "Globex")


# ---- outbound URLs: the real policy (the test server allows private upstreams) ---------------------

UNSAFE_URLS = [  # not https, loopback, private, link-local (metadata), with credentials, not a URL
    "http://api.example.com/v1",
    "ftp://api.example.com/v1",
    "https://127.0.0.1/v1",
    "https://localhost:8443/v1",
    "https://10.1.2.3/v1",
    "https://192.168.0.10/v1",
    "https://169.254.169.254/latest",
    "https://[::1]/v1",
    "https://user:pass@api.example.com/v1",
    "not a url",
]


async def test_unsafe_urls_are_refused_unless_private_upstreams_are_allowed(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    async with running_server(make_settings(database_url, allow_private_upstreams=False)) as live:
        tenant = await make_tenant(live.services, "Acme")
        org = GraphQLClient(http, live.url, tenant.keys[Role.ADMIN])
        admin = GraphQLClient(http, live.url, await make_platform_admin_key(live.services))
        system = await create_system_model(admin, "gpt-platform", modelUrl="https://api.openai.com/v1")
        mine = {"organizationId": tenant.organization_gid, "name": "mine", "provider": "OPENAI_COMPATIBLE"}
        before = await stored_catalog(live.services.db)
        for url in UNSAFE_URLS:
            attempts: list[tuple[GraphQLClient, str, dict[str, Any], list[str]]] = [
                (
                    org,
                    USER_CREATE,
                    {**mine, "providerModelId": "llama", "modelUrl": url},
                    ["input", "modelUrl"],
                ),
                (
                    org,
                    USER_CREATE,
                    {**mine, "providerModelId": "llama", "providerSettings": {"baseCustomUrl": url}},
                    ["input", "providerSettings", "baseCustomUrl"],
                ),
                (admin, SYSTEM_CREATE, system_model("platform", modelUrl=url), ["input", "modelUrl"]),
                (admin, SYSTEM_UPDATE, {"id": system["id"], "modelUrl": url}, ["input", "modelUrl"]),
            ]
            for client, document, values, field in attempts:
                payload = await client.mutate(document, values)
                assert codes(payload) == [("UNSAFE_URL", field)], values
        assert await stored_catalog(live.services.db) == before
        # A public https URL is fine under the same policy.
        ok = await org.mutate(
            USER_CREATE, {**mine, "providerModelId": "llama", "modelUrl": "https://llm.example.com/v1"}
        )
        assert ok["userErrors"] == []


async def test_private_urls_are_accepted_when_private_upstreams_are_allowed(
    org: GraphQLClient, tenant: Tenant
) -> None:
    model = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="on-prem",
        provider="OPENAI_COMPATIBLE",
        providerModelId="llama",
        modelUrl="http://127.0.0.1:9/v1",
    )
    assert model["modelUrl"] == "http://127.0.0.1:9/v1"


async def test_changing_the_group_of_a_referenced_model_is_refused(
    server: LiveServer, admin: GraphQLClient, org: GraphQLClient, world: World
) -> None:
    await create_user_model(
        org, organizationId=await world.ref("org"), name="v", parentModelId=await world.ref("chat")
    )
    await world.ref("a")  # replaced by b
    primary = await world.ref("project_model")
    assert (
        await org.mutate(USER_UPDATE, {"id": primary, "fallbacks": [{"modelId": await world.ref("taken")}]})
    )["userErrors"] == []
    to_embedding = {"modelGroup": "EMBEDDING", "maxOutputTokens": None}
    attempts = [
        (admin, SYSTEM_UPDATE, await world.ref("chat")),  # a parent
        (org, USER_UPDATE, await world.ref("b")),  # a replacement
        (org, USER_UPDATE, await world.ref("taken")),  # a fallback
    ]
    for client, document, model_id in attempts:
        before = await stored_catalog(server.services.db)
        payload = await client.mutate(document, {"id": model_id, **to_embedding})
        assert [field for _, field in codes(payload)] == [["input", "modelGroup"]], model_id
        assert codes(payload)[0][0] in ("GROUP_MISMATCH", "IN_USE")
        assert await stored_catalog(server.services.db) == before
