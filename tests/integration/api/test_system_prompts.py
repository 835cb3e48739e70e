"""System prompt compositions over real HTTP GraphQL: CRUD, composed text, rules, concurrency,
platform-wide vs organization-owned permissions, isolation, and what deleting does to models."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from app.domain.auth import Role
from app.domain.ids import decode_any, encode_id
from tests.conftest import LiveServer
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes

FIELDS = (
    "id name description isPlatform organization { id name } particles { kind text position } text "
    "createdAt updatedAt"
)
PAYLOAD = f"systemPrompt {{ {FIELDS} }} userErrors {{ code field message }}"

CREATE = f"""
mutation Create($input: SystemPromptCreateInput!) {{ systemPromptCreate(input: $input) {{ {PAYLOAD} }} }}"""

UPDATE = f"""
mutation Update($input: SystemPromptUpdateInput!) {{ systemPromptUpdate(input: $input) {{ {PAYLOAD} }} }}"""

DELETE = """
mutation Delete($input: SystemPromptDeleteInput!) {
  systemPromptDelete(input: $input) { deletedSystemPromptId userErrors { code field message } }
}"""

NODE = f"query One($id: ID!) {{ node(id: $id) {{ ... on SystemPrompt {{ {FIELDS} }} }} }}"

LIST = """
query List($organizationId: ID, $first: Int, $after: String) {
  systemPrompts(organizationId: $organizationId, first: $first, after: $after) {
    nodes { name isPlatform }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""

PARTICLES = [
    {"kind": "ROLE", "text": "You are a support agent for Acme."},
    {"kind": "TONE", "text": "Be warm.\nBe brief."},
    {"kind": "GUARDRAILS", "text": "Never share internal prices."},
]
COMPOSED = "You are a support agent for Acme.\n\nBe warm.\nBe brief.\n\nNever share internal prices."


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def particle_path(index: int) -> list[str]:
    return ["input", "particles", str(index), "text"]


def custom(*texts: str) -> list[dict[str, str]]:
    return [{"kind": "CUSTOM", "text": t} for t in texts]


def owned_by(tenant: Tenant, name: str = "Support", **fields: Any) -> dict[str, Any]:
    return {"organizationId": tenant.organization_gid, "name": name, "particles": PARTICLES, **fields}


async def create(client: GraphQLClient, input_: dict[str, Any]) -> dict[str, Any]:
    payload = await client.mutate(CREATE, input_)
    assert payload["userErrors"] == []
    prompt: dict[str, Any] = payload["systemPrompt"]
    return prompt


async def read(client: GraphQLClient, prompt_id: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = (await client.data(NODE, {"id": prompt_id}))["node"]
    return node


async def names(client: GraphQLClient, organization_id: str | None = None) -> list[str]:
    data = await client.data(LIST, {"organizationId": organization_id, "first": 100})
    return [n["name"] for n in data["systemPrompts"]["nodes"]]


# ---- create and read -------------------------------------------------------------------------------


async def test_a_developer_creates_a_composition_whose_text_joins_the_particles_in_order(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    client = gql.with_key(tenant.keys[Role.DEVELOPER])
    created = await create(client, owned_by(tenant, name="  Support  ", description="For the help desk"))
    assert created["name"] == "Support"
    assert created["description"] == "For the help desk"
    assert created["isPlatform"] is False
    assert created["organization"] == {"id": tenant.organization_gid, "name": "Acme"}
    assert created["particles"] == [{**p, "position": i} for i, p in enumerate(PARTICLES)]
    assert created["text"] == COMPOSED
    assert created["createdAt"] == created["updatedAt"]
    assert await read(client, created["id"]) == created
    assert await names(client) == ["Support"]


async def test_a_platform_admin_creates_a_platform_wide_composition_every_organization_reads(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create(gql.with_key(admin_key), {"name": "Safety", "particles": custom("Be safe.")})
    assert (created["isPlatform"], created["organization"], created["text"]) == (True, None, "Be safe.")
    for member in (tenant, other_tenant):
        client = gql.with_key(member.keys[Role.VIEWER])
        assert await read(client, created["id"]) == created
        assert await names(client) == ["Safety"]


async def test_a_platform_admin_may_create_one_for_an_organization(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    created = await create(gql.with_key(admin_key), owned_by(tenant))
    assert created["organization"]["name"] == "Acme"
    assert await names(gql.with_key(tenant.keys[Role.VIEWER])) == ["Support"]


async def test_listing_without_an_organization_gives_platform_and_own_with_one_only_that_organization(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create(gql.with_key(admin_key), {"name": "Platform", "particles": custom("p")})
    await create(gql.with_key(tenant.admin_key), owned_by(tenant, "Acme's"))
    await create(gql.with_key(other_tenant.admin_key), owned_by(other_tenant, "Globex's"))
    client = gql.with_key(tenant.keys[Role.VIEWER])
    assert await names(client) == ["Platform", "Acme's"]
    assert await names(client, tenant.organization_gid) == ["Acme's"]
    assert await names(gql.with_key(admin_key)) == ["Platform"]
    assert await names(gql.with_key(admin_key), other_tenant.organization_gid) == ["Globex's"]


async def test_listing_pages_through_every_composition(gql: GraphQLClient, tenant: Tenant) -> None:
    client = gql.with_key(tenant.admin_key)
    for index in range(5):
        await create(client, owned_by(tenant, f"p{index}"))
    seen: list[str] = []
    after = None
    while True:
        data = await client.data(LIST, {"first": 2, "after": after})
        page = data["systemPrompts"]
        seen += [n["name"] for n in page["nodes"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["p0", "p1", "p2", "p3", "p4"]


# ---- update ----------------------------------------------------------------------------------------


async def test_an_update_changes_only_what_it_is_given_and_replaces_the_particles(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    client = gql.with_key(tenant.keys[Role.DEVELOPER])
    created = await create(client, owned_by(tenant, description="old"))
    payload = await client.mutate(
        UPDATE,
        {
            "id": created["id"],
            "description": None,
            "particles": [PARTICLES[2], {"kind": "FORMAT", "text": "Use bullet points."}],
        },
    )
    assert payload["userErrors"] == []
    updated = payload["systemPrompt"]
    assert (updated["name"], updated["description"]) == ("Support", None)
    assert [(p["kind"], p["position"]) for p in updated["particles"]] == [("GUARDRAILS", 0), ("FORMAT", 1)]
    assert updated["text"] == "Never share internal prices.\n\nUse bullet points."
    assert updated["updatedAt"] > created["updatedAt"]
    assert await read(client, created["id"]) == updated

    renamed = await client.mutate(UPDATE, {"id": created["id"], "name": "Help desk"})
    assert renamed["systemPrompt"]["particles"] == updated["particles"]
    assert renamed["systemPrompt"]["name"] == "Help desk"


async def test_an_update_with_the_current_updated_at_succeeds_and_a_stale_one_conflicts(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    client = gql.with_key(tenant.admin_key)
    created = await create(client, owned_by(tenant))
    first = await client.mutate(
        UPDATE, {"id": created["id"], "name": "Mine", "expectedUpdatedAt": created["updatedAt"]}
    )
    assert first["userErrors"] == []
    # A second editor read the composition before the first one saved.
    stale = await client.mutate(
        UPDATE,
        {"id": created["id"], "particles": custom("Theirs"), "expectedUpdatedAt": created["updatedAt"]},
    )
    assert stale["systemPrompt"] is None
    assert errors_of(stale) == [("CONFLICT", ["input", "expectedUpdatedAt"])]
    assert await read(client, created["id"]) == first["systemPrompt"]


async def test_of_two_concurrent_updates_from_the_same_read_exactly_one_wins(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    client = gql.with_key(tenant.admin_key)
    created = await create(client, owned_by(tenant))
    results = await asyncio.gather(
        *(
            client.mutate(
                UPDATE,
                {"id": created["id"], "particles": custom(text), "expectedUpdatedAt": created["updatedAt"]},
            )
            for text in ("first", "second")
        )
    )
    winners = [r["systemPrompt"] for r in results if not r["userErrors"]]
    assert len(winners) == 1
    assert [errors_of(r) for r in results if r["userErrors"]] == [
        [("CONFLICT", ["input", "expectedUpdatedAt"])]
    ]
    assert await read(client, created["id"]) == winners[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": ""}, [("REQUIRED", ["input", "name"])]),
        ({"name": None}, [("REQUIRED", ["input", "name"])]),
        ({"name": "n" * 201}, [("TOO_LONG", ["input", "name"])]),
        ({"name": "OTHER"}, [("DUPLICATE", ["input", "name"])]),
        ({"description": "d" * 2001}, [("TOO_LONG", ["input", "description"])]),
        ({"particles": None}, [("REQUIRED", ["input", "particles"])]),
        ({"particles": []}, [("REQUIRED", ["input", "particles"])]),
        ({"particles": custom("a", " ")}, [("REQUIRED", particle_path(1))]),
        ({"particles": custom("a", "b", "c", "x" * 50_001)}, [("TOO_LONG", particle_path(3))]),
        ({"particles": custom("x" * 30_000, "y" * 30_000)}, [("TOO_LONG", particle_path(1))]),
        ({"particles": custom(*["p"] * 51)}, [("TOO_LONG", ["input", "particles"])]),
    ],
)
async def test_an_invalid_update_writes_nothing(
    gql: GraphQLClient, tenant: Tenant, change: dict[str, Any], expected: list[tuple[str, list[str]]]
) -> None:
    client = gql.with_key(tenant.admin_key)
    await create(client, owned_by(tenant, "Other"))
    created = await create(client, owned_by(tenant))
    payload = await client.mutate(UPDATE, {"id": created["id"], **change})
    assert payload["systemPrompt"] is None
    assert errors_of(payload) == expected
    assert await read(client, created["id"]) == created


# ---- create rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": ""}, [("REQUIRED", ["input", "name"])]),
        ({"name": "  \n "}, [("REQUIRED", ["input", "name"])]),
        ({"name": "n" * 201}, [("TOO_LONG", ["input", "name"])]),
        ({"name": "existing"}, [("DUPLICATE", ["input", "name"])]),
        ({"description": "d" * 2001}, [("TOO_LONG", ["input", "description"])]),
        ({"particles": []}, [("REQUIRED", ["input", "particles"])]),
        ({"particles": custom("fine", "")}, [("REQUIRED", particle_path(1))]),
        ({"particles": custom("a", "b", "c", "x" * 50_001)}, [("TOO_LONG", particle_path(3))]),
        ({"particles": custom("x" * 25_000, "y" * 25_000)}, [("TOO_LONG", particle_path(1))]),
        ({"particles": custom(*["p"] * 51)}, [("TOO_LONG", ["input", "particles"])]),
        (
            {"name": "", "particles": custom("", "ok", "x" * 50_001)},
            [("REQUIRED", ["input", "name"]), ("REQUIRED", particle_path(0)), ("TOO_LONG", particle_path(2))],
        ),
    ],
)
async def test_an_invalid_create_writes_nothing(
    gql: GraphQLClient, tenant: Tenant, fields: dict[str, Any], expected: list[tuple[str, list[str]]]
) -> None:
    client = gql.with_key(tenant.admin_key)
    await create(client, owned_by(tenant, "Existing"))
    payload = await client.mutate(CREATE, owned_by(tenant, **fields))
    assert payload["systemPrompt"] is None
    assert errors_of(payload) == expected
    assert await names(client) == ["Existing"]


async def test_the_limits_themselves_are_accepted(gql: GraphQLClient, tenant: Tenant) -> None:
    created = await create(
        gql.with_key(tenant.admin_key),
        owned_by(tenant, "n" * 200, particles=custom("x" * 24_999, "y" * 24_999)),
    )
    assert len(created["text"]) == 50_000
    many = await create(gql.with_key(tenant.admin_key), owned_by(tenant, particles=custom(*["p"] * 50)))
    assert len(many["particles"]) == 50


async def test_names_are_unique_per_owner_only(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create(gql.with_key(admin_key), {"name": "Support", "particles": custom("platform")})
    await create(gql.with_key(tenant.admin_key), owned_by(tenant))
    await create(gql.with_key(other_tenant.admin_key), owned_by(other_tenant))
    duplicate = await gql.with_key(admin_key).mutate(CREATE, {"name": "SUPPORT", "particles": custom("x")})
    assert errors_of(duplicate) == [("DUPLICATE", ["input", "name"])]


# ---- permissions -----------------------------------------------------------------------------------


async def test_only_platform_admins_create_platform_wide_compositions(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    client = gql.with_key(tenant.admin_key)
    payload = await client.mutate(CREATE, {"name": "Mine", "particles": custom("x")})
    assert errors_of(payload) == [("PERMISSION_DENIED", ["input", "organizationId"])]
    assert await names(client) == []


@pytest.mark.parametrize("operation", ["update", "delete"])
async def test_members_cannot_change_platform_wide_compositions(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, operation: str
) -> None:
    created = await create(gql.with_key(admin_key), {"name": "Safety", "particles": custom("Be safe.")})
    document, input_ = {
        "update": (UPDATE, {"id": created["id"], "name": "Mine"}),
        "delete": (DELETE, {"id": created["id"]}),
    }[operation]
    payload = await gql.with_key(tenant.admin_key).mutate(document, input_)
    assert errors_of(payload) == [("PERMISSION_DENIED", ["input", "id"])]
    assert await read(gql.with_key(admin_key), created["id"]) == created


@pytest.mark.parametrize("operation", ["create", "update", "delete"])
async def test_changes_need_models_update(gql: GraphQLClient, tenant: Tenant, operation: str) -> None:
    created = await create(gql.with_key(tenant.admin_key), owned_by(tenant))
    document, input_ = {
        "create": (CREATE, owned_by(tenant, "New")),
        "update": (UPDATE, {"id": created["id"], "name": "New"}),
        "delete": (DELETE, {"id": created["id"]}),
    }[operation]
    viewer = gql.with_key(tenant.keys[Role.VIEWER])
    body = await viewer.post(document, {"input": input_})
    assert error_codes(body) == ["FORBIDDEN"]
    assert await read(viewer, created["id"]) == created
    assert await names(viewer) == ["Support"]


async def test_a_project_key_reads_but_does_not_change_the_organizations_compositions(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    created = await create(gql.with_key(tenant.admin_key), owned_by(tenant))
    _, project_key = await server.services.api_keys.create_unchecked(
        name="project", organization_id=tenant.organization.id, project_id=tenant.project.id, role=Role.ADMIN
    )
    client = gql.with_key(project_key)
    assert await read(client, created["id"]) == created
    body = await client.post(UPDATE, {"input": {"id": created["id"], "name": "New"}})
    assert error_codes(body) == ["FORBIDDEN"]
    assert await read(client, created["id"]) == created


# ---- isolation -------------------------------------------------------------------------------------


async def test_another_organizations_composition_reads_as_missing(
    gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create(gql.with_key(tenant.admin_key), owned_by(tenant))
    outsider = gql.with_key(other_tenant.admin_key)
    assert await read(outsider, created["id"]) is None
    assert await names(outsider) == []
    assert await names(outsider, tenant.organization_gid) == []
    for document, input_ in (
        (UPDATE, {"id": created["id"], "name": "Taken over"}),
        (DELETE, {"id": created["id"]}),
    ):
        payload = await outsider.mutate(document, input_)
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])]
    payload = await outsider.mutate(CREATE, owned_by(tenant, "Planted"))
    assert errors_of(payload) == [("NOT_FOUND", ["input", "organizationId"])]
    assert await read(gql.with_key(tenant.admin_key), created["id"]) == created
    assert await names(gql.with_key(tenant.admin_key)) == ["Support"]


async def test_missing_and_malformed_ids_read_as_not_found(gql: GraphQLClient, tenant: Tenant) -> None:
    client = gql.with_key(tenant.admin_key)
    missing = encode_id("SystemPrompt", uuid.uuid4())
    assert await read(client, missing) is None
    assert await read(client, "garbage") is None
    # Another type's id is not a composition's either.
    for prompt_id in (missing, tenant.project_gid, "garbage"):
        payload = await client.mutate(DELETE, {"id": prompt_id})
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])]
    assert await names(client, tenant.project_gid) == []


# ---- delete and the models using it ---------------------------------------------------------------


async def test_deleting_a_composition_detaches_the_models_using_it(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    client = gql.with_key(tenant.admin_key)
    created = await create(client, owned_by(tenant))
    decoded = decode_any(created["id"])
    assert decoded is not None
    model_id = uuid.uuid4()
    db = server.services.db
    await db.execute(
        """INSERT INTO models
               (id, kind, organization_id, scope, name, model_group, provider, system_prompt_id)
           VALUES ($1, 'USER', $2, 'ORGANIZATION', 'm', 'CHAT', 'OPENAI', $3)""",
        model_id,
        tenant.organization.id,
        decoded[1],
    )
    payload = await client.mutate(DELETE, {"id": created["id"]})
    assert payload == {"deletedSystemPromptId": created["id"], "userErrors": []}
    assert await read(client, created["id"]) is None
    assert await db.fetchval("SELECT system_prompt_id FROM models WHERE id = $1", model_id) is None
    assert await db.fetchval("SELECT count(*) FROM system_prompt_particles") == 0
    again = await client.mutate(DELETE, {"id": created["id"]})
    assert errors_of(again) == [("NOT_FOUND", ["input", "id"])]


# ---- for other services ----------------------------------------------------------------------------


async def test_every_change_tells_the_catalog_caches(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    seen: list[str | None] = []
    server.services.notifications.subscribe("catalog", seen.append)
    client = gql.with_key(tenant.admin_key)
    created = await create(client, owned_by(tenant))
    assert None in seen
    seen.clear()
    await client.mutate(UPDATE, {"id": created["id"], "name": "Renamed"})
    assert None in seen
    seen.clear()
    await client.mutate(DELETE, {"id": created["id"]})
    assert None in seen


async def test_text_for_gives_the_composed_text(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    created = await create(gql.with_key(tenant.admin_key), owned_by(tenant))
    decoded = decode_any(created["id"])
    assert decoded is not None
    prompts = server.services.system_prompts
    assert await prompts.text_for(decoded[1]) == COMPOSED
    assert await prompts.text_for(uuid.uuid4()) is None
