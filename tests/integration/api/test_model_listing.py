"""The `models` query: keyset pagination with filters across pages, every ModelFilter field, what
platform admins see, and isolation between organizations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.conftest import LiveServer
from tests.support.catalog import (
    AVAILABLE,
    MODEL_DELETE,
    MODELS,
    NODE,
    USER_CREATE,
    USER_UPDATE,
    add_project,
    at,
    available_names,
    create_connection,
    create_system_model,
    create_user_model,
    fetch_model,
    list_models,
    model_names,
)
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes


@dataclass
class Catalog:
    """A mixed catalog: system models of the platform, and Acme's own models."""

    tenant: Tenant
    second_project: str
    ids: dict[str, str]


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


@pytest.fixture
async def catalog(server: LiveServer, admin: GraphQLClient, org: GraphQLClient, tenant: Tenant) -> Catalog:
    ids: dict[str, str] = {}
    streaming_tools = {"streaming": True, "tools": True}
    systems: list[tuple[str, dict[str, Any]]] = [
        ("Alpha", {"providerModelId": "gpt-alpha", "capabilities": streaming_tools}),
        ("bravo", {"provider": "ANTHROPIC", "providerModelId": "claude", "capabilities": {"vision": True}}),
        (
            "Charlie",
            {
                "providerModelId": "text-embed",
                "modelGroup": "EMBEDDING",
                "maxOutputTokens": None,
                "capabilities": {},
            },
        ),
        (
            "delta",
            {
                "provider": "GOOGLE_GENAI",
                "providerModelId": "gemini",
                "endOfLifeAt": at(30),
                "capabilities": {},
            },
        ),
        (
            "Echo",
            {"provider": "MISTRAL", "providerModelId": "mistral-small", "enabled": False, "capabilities": {}},
        ),
        ("hidden", {"providerModelId": "gpt-hidden", "isVisible": False, "capabilities": {}}),
        ("shared", {"providerModelId": "gpt-shared", "capabilities": {}}),
    ]
    for name, fields in systems:
        ids[name] = (await create_system_model(admin, name, **fields))["id"]
    second_project = await add_project(server.services, tenant, "Second project")
    own = {"organizationId": tenant.organization_gid}
    byok = {**own, "provider": "OPENAI"}
    users: list[tuple[str, dict[str, Any]]] = [
        ("foxtrot", {**own, "parentModelId": ids["Alpha"]}),
        (
            "Golf",
            {
                **own,
                "provider": "ANTHROPIC",
                "providerModelId": "claude-own",
                "scope": "PROJECT",
                "projectId": tenant.project_gid,
            },
        ),
        (
            "hotel",
            {**byok, "providerModelId": "gpt-hotel", "capabilities": {**streaming_tools, "reasoning": True}},
        ),
        (
            "India",
            {**own, "provider": "ALEPH_ALPHA", "providerModelId": "luminous-base", "endOfLifeAt": at(-1)},
        ),
        ("juliet", {**byok, "providerModelId": "gpt-juliet", "modelGroup": "COMPLETION"}),
        ("Kilo", {**byok, "providerModelId": "gpt-kilo", "assignedProjectIds": [second_project]}),
        ("lima", {**byok, "providerModelId": "gpt-lima", "description": "Our SPECIAL fine-tune"}),
        ("Mike", {**own, "provider": "MISTRAL", "providerModelId": "mistral-large-2411"}),
        ("SHARED", {**byok, "providerModelId": "gpt-shared-own"}),
        ("100% sure", {**byok, "providerModelId": "gpt-percent"}),
        ("a_b", {**byok, "providerModelId": "gpt-underscore"}),
        ("axb", {**byok, "providerModelId": "gpt-axb"}),
    ]
    for name, fields in users:
        ids[name] = (await create_user_model(org, name=name, **fields))["id"]
    return Catalog(tenant, second_project, ids)


SYSTEM_VISIBLE = ["Alpha", "bravo", "Charlie", "delta", "Echo", "shared"]
OWN = [
    "100% sure",
    "a_b",
    "axb",
    "foxtrot",
    "Golf",
    "hotel",
    "India",
    "juliet",
    "Kilo",
    "lima",
    "Mike",
    "SHARED",
]


def by_name(names: list[str]) -> list[str]:
    return sorted(names, key=str.lower)


def listed_as(got: list[str], expected: list[str]) -> bool:
    """`got` holds exactly `expected`, in case-insensitive name order (equal names in either order)."""
    return sorted(got) == sorted(expected) and [n.lower() for n in got] == sorted(n.lower() for n in got)


# ---- pagination ---------------------------------------------------------------------------------------

PAGED_FILTERS: list[tuple[dict[str, Any] | None, list[str]]] = [
    (None, OWN),
    ({"includeSystem": True}, SYSTEM_VISIBLE + OWN),
    (
        {"includeSystem": True, "providers": ["OPENAI"]},
        [
            "Alpha",
            "Charlie",
            "shared",
            "100% sure",
            "a_b",
            "axb",
            "foxtrot",
            "hotel",
            "juliet",
            "Kilo",
            "lima",
            "SHARED",
        ],
    ),
    (
        {"includeSystem": True, "modelGroups": ["CHAT"], "lifecycleStates": ["ACTIVE", "DEPRECATED"]},
        ["Alpha", "bravo", "delta", "shared"] + [n for n in OWN if n not in ("India", "juliet")],
    ),
]


async def all_pages(
    client: GraphQLClient, model_filter: dict[str, Any] | None, first: int
) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        data = (await client.data(MODELS, {"first": first, "after": after, "filter": model_filter}))["models"]
        pages.append(data)
        if not data["pageInfo"]["hasNextPage"]:
            return pages
        after = data["pageInfo"]["endCursor"]
        assert len(pages) < 20, "pagination does not end"


async def test_pages_of_a_filtered_list_add_up_to_the_whole_list(
    org: GraphQLClient, catalog: Catalog
) -> None:
    for model_filter, expected in PAGED_FILTERS:
        whole = await list_models(org, model_filter)
        names = [m["name"] for m in whole]
        assert listed_as(names, expected), model_filter

        pages = await all_pages(org, model_filter, first=5)
        assert [len(p["nodes"]) for p in pages] == [5] * (len(expected) // 5) + [len(expected) % 5] * (
            len(expected) % 5 > 0
        ), model_filter
        paged = [m["id"] for p in pages for m in p["nodes"]]
        assert paged == [m["id"] for m in whole], model_filter  # same models, same order, no duplicates
        assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True] * (len(pages) - 1) + [False]


async def test_a_page_boundary_between_equal_names_loses_nothing(
    org: GraphQLClient, catalog: Catalog
) -> None:
    """System "shared" and Acme's "SHARED" sort equal (the id breaks the tie): every page size keeps
    both exactly once."""
    whole = [m["id"] for m in await list_models(org, {"includeSystem": True})]
    for first in (1, 2, 3, 7):
        paged = [m["id"] for p in await all_pages(org, {"includeSystem": True}, first) for m in p["nodes"]]
        assert paged == whole, first


async def test_bad_page_arguments_are_client_errors(org: GraphQLClient) -> None:
    for variables in ({"first": 0}, {"first": 101}, {"first": -1}, {"after": "garbage"}):
        body = await org.post(MODELS, variables)
        assert error_codes(body) == ["BAD_USER_INPUT"], variables


# ---- every filter field ---------------------------------------------------------------------------------


def filter_cases(c: Catalog, other: Tenant) -> list[tuple[dict[str, Any], list[str]]]:
    tenant = c.tenant
    not_in_second = [n for n in OWN if n != "Golf"]
    return [
        ({}, OWN),
        ({"organizationId": tenant.organization_gid}, OWN),
        ({"organizationId": other.organization_gid}, []),
        ({"organizationId": other.organization_gid, "includeSystem": True}, []),
        ({"includeSystem": True}, SYSTEM_VISIBLE + OWN),
        ({"projectId": tenant.project_gid}, [n for n in OWN if n != "Kilo"]),
        ({"projectId": c.second_project}, not_in_second),
        ({"projectId": c.second_project, "includeSystem": True}, SYSTEM_VISIBLE + not_in_second),
        ({"kinds": ["USER"]}, OWN),
        ({"kinds": ["SYSTEM"]}, SYSTEM_VISIBLE),
        ({"kinds": ["SYSTEM", "USER"]}, SYSTEM_VISIBLE + OWN),
        ({"kinds": ["USER"], "includeSystem": True}, OWN),
        ({"scopes": ["PROJECT"]}, ["Golf"]),
        ({"scopes": ["ORGANIZATION"]}, [n for n in OWN if n != "Golf"]),
        ({"providers": ["ANTHROPIC"], "includeSystem": True}, ["bravo", "Golf"]),
        ({"providers": ["ALEPH_ALPHA", "MISTRAL"], "includeSystem": True}, ["Echo", "India", "Mike"]),
        (
            {"providers": ["OPENAI"]},
            ["100% sure", "a_b", "axb", "foxtrot", "hotel", "juliet", "Kilo", "lima", "SHARED"],
        ),
        ({"modelGroups": ["EMBEDDING"], "includeSystem": True}, ["Charlie"]),
        ({"modelGroups": ["COMPLETION", "EMBEDDING"], "includeSystem": True}, ["Charlie", "juliet"]),
        ({"lifecycleStates": ["DISABLED", "END_OF_LIFE"], "includeSystem": True}, ["Echo", "India"]),
        ({"lifecycleStates": ["DEPRECATED"], "includeSystem": True}, ["delta"]),
        ({"capabilities": ["STREAMING"], "includeSystem": True}, ["Alpha", "foxtrot", "hotel"]),
        ({"capabilities": ["STREAMING", "TOOLS", "REASONING"], "includeSystem": True}, ["hotel"]),
        ({"capabilities": ["VISION", "STREAMING"], "includeSystem": True}, []),
        ({"capabilities": ["VISION"], "includeSystem": True}, ["bravo"]),
        ({"search": "ALPHA", "includeSystem": True}, ["Alpha", "foxtrot"]),  # foxtrot: gpt-alpha, inherited
        ({"search": "special"}, ["lima"]),  # description
        ({"search": "large-24"}, ["Mike"]),  # providerModelId
        ({"search": "%"}, ["100% sure"]),
        ({"search": "0%"}, ["100% sure"]),
        ({"search": "a_b"}, ["a_b"]),
        ({"search": "_"}, ["a_b"]),
        ({"search": "\\"}, []),
        ({"search": "nothing like this"}, []),
        (
            {
                "includeSystem": True,
                "providers": ["OPENAI"],
                "modelGroups": ["CHAT"],
                "capabilities": ["TOOLS"],
                "search": "HOT",
            },
            ["hotel"],
        ),
    ]


async def test_every_filter_field(org: GraphQLClient, catalog: Catalog, other_tenant: Tenant) -> None:
    mismatches = []
    for model_filter, expected in filter_cases(catalog, other_tenant):
        got = await model_names(org, model_filter)
        if not listed_as(got, expected):
            mismatches.append(f"{model_filter}: {got}, expected {by_name(expected)}")
    assert mismatches == []


async def test_a_project_of_another_organization_lists_nothing(
    org: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create_user_model(
        org, organizationId=tenant.organization_gid, name="org-wide", provider="OPENAI", providerModelId="x"
    )
    for project in (other_tenant.project_gid, encode_id("Project", uuid.uuid4())):
        assert await model_names(org, {"projectId": project}) == []
        assert await model_names(org, {"projectId": project, "includeSystem": True}) == []
        assert await available_names(org, project) == []


async def test_platform_admins_list_the_system_catalog_or_one_organization(
    admin: GraphQLClient, catalog: Catalog
) -> None:
    everything_system = by_name([*SYSTEM_VISIBLE, "hidden"])
    assert await model_names(admin) == everything_system  # invisible ones too, and no user models
    assert await model_names(admin, {"kinds": ["SYSTEM"]}) == everything_system
    assert await model_names(admin, {"includeSystem": True}) == everything_system
    assert await model_names(admin, {"kinds": ["USER"]}) == []
    assert await model_names(admin, {"search": "hid"}) == ["hidden"]
    organization = catalog.tenant.organization_gid
    assert await model_names(admin, {"organizationId": organization}) == by_name(OWN)
    assert listed_as(
        await model_names(admin, {"organizationId": organization, "includeSystem": True}),
        SYSTEM_VISIBLE + OWN,
    )


# ---- isolation -------------------------------------------------------------------------------------------


async def test_another_organization_never_sees_the_models(
    gql: GraphQLClient, catalog: Catalog, other_tenant: Tenant
) -> None:
    other = gql.with_key(other_tenant.keys[Role.ADMIN])
    tenant = catalog.tenant
    assert await model_names(other) == []
    assert await model_names(other, {"includeSystem": True}) == by_name(SYSTEM_VISIBLE)
    assert await model_names(other, {"organizationId": tenant.organization_gid}) == []
    assert not set(await model_names(other, {"projectId": tenant.project_gid, "includeSystem": True})) & set(
        OWN
    )
    assert await model_names(other, {"search": "a", "kinds": ["USER"]}) == []
    available = (await other.data(AVAILABLE, {"projectId": tenant.project_gid}))["availableModels"]
    assert not {m["name"] for m in available} & set(OWN)
    available = (await other.data(AVAILABLE, {"projectId": other_tenant.project_gid}))["availableModels"]
    assert not {m["name"] for m in available} & set(OWN)
    for name in OWN:
        model_id = catalog.ids[name]
        assert await fetch_model(other, model_id) is None, name
        assert (await other.data(NODE, {"id": model_id}))["node"] is None, name


async def test_mutations_on_another_organizations_models_read_as_not_found(
    gql: GraphQLClient, org: GraphQLClient, catalog: Catalog, other_tenant: Tenant
) -> None:
    other = gql.with_key(other_tenant.keys[Role.ADMIN])
    tenant = catalog.tenant
    theirs = catalog.ids["hotel"]
    missing = encode_id("UserModel", uuid.uuid4())
    connection = await create_connection(org, tenant.organization_gid, token="t")
    missing_connection = encode_id("Connection", uuid.uuid4())
    own_project = {
        "organizationId": other_tenant.organization_gid,
        "scope": "PROJECT",
        "projectId": other_tenant.project_gid,
    }
    model = {"provider": "OPENAI", "providerModelId": "gpt-4o"}

    def attempts(
        model_id: str, connection_id: str, organization_id: str, project_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        return [
            (USER_UPDATE, {"id": model_id, "description": "taken over"}),
            (USER_UPDATE, {"id": model_id, "isDefault": True, "token": "sk-steal"}),
            (MODEL_DELETE, {"id": model_id}),
            (USER_CREATE, {**own_project, **model, "name": "r", "replacementModelId": model_id}),
            (USER_CREATE, {**own_project, **model, "name": "f", "fallbacks": [{"modelId": model_id}]}),
            (USER_CREATE, {**own_project, **model, "name": "c", "connectionId": connection_id}),
            (USER_CREATE, {**model, "organizationId": organization_id, "name": "o"}),
            (
                USER_CREATE,
                {
                    **model,
                    "organizationId": other_tenant.organization_gid,
                    "name": "p",
                    "assignedProjectIds": [project_id],
                },
            ),
        ]

    before = await list_models(org, {"includeSystem": True})
    random_org = encode_id("Organization", uuid.uuid4())
    for (document, foreign), (_, random) in zip(
        attempts(theirs, connection["id"], tenant.organization_gid, tenant.project_gid),
        attempts(missing, missing_connection, random_org, encode_id("Project", uuid.uuid4())),
        strict=True,
    ):
        foreign_payload = await other.mutate(document, foreign)
        random_payload = await other.mutate(document, random)
        assert foreign_payload["userErrors"], foreign
        assert [e["code"] for e in foreign_payload["userErrors"]] == ["NOT_FOUND"], foreign
        assert foreign_payload == random_payload, foreign
    assert await list_models(org, {"includeSystem": True}) == before
    assert await model_names(other) == []


async def test_another_organizations_model_as_parent_reads_as_not_found(
    gql: GraphQLClient, org: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await create_user_model(
        org, organizationId=tenant.organization_gid, name="hotel", provider="OPENAI", providerModelId="x"
    )
    other = gql.with_key(other_tenant.keys[Role.ADMIN])
    payloads = [
        await other.mutate(
            USER_CREATE,
            {"organizationId": other_tenant.organization_gid, "name": "v", "parentModelId": parent},
        )
        for parent in (theirs["id"], encode_id("UserModel", uuid.uuid4()))
    ]
    assert payloads[0] == payloads[1]
    assert [e["code"] for e in payloads[0]["userErrors"]] == ["NOT_FOUND"]
