"""The lifecycle table: ACTIVE, DEPRECATED, END_OF_LIFE, DISABLED, derived from `enabled` and
`endOfLifeAt`; a variant shows the worse of its own state and its parent's; availableModels offers only
what may be called now (lifecycle, auto-migration, plan)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from app.domain.auth import Role
from app.domain.enums import Plan
from tests.conftest import LiveServer
from tests.support.catalog import (
    ORGANIZATION_UPDATE,
    SYSTEM_UPDATE,
    at,
    available_names,
    create_system_model,
    create_user_model,
    fetch_model,
    model_names,
)
from tests.support.factories import Tenant, make_tenant
from tests.support.graphql import GraphQLClient

# A state as (name, days until end of life): DEPRECATED/END_OF_LIFE need the days.
State = tuple[str, float | None]
ACTIVE: State = ("ACTIVE", None)
DISABLED: State = ("DISABLED", None)


def deprecated(days: float = 30) -> State:
    return ("DEPRECATED", days)


def end_of_life(days: float = -1) -> State:
    return ("END_OF_LIFE", days)


def state_fields(state: State, notice: str, replacement: str | None) -> dict[str, Any]:
    """The input fields that put a model in `state` (with its notice and replacement if it ends)."""
    name, days = state
    if name == "DISABLED":
        return {"enabled": False}
    if days is None:
        return {}
    fields: dict[str, Any] = {"endOfLifeAt": at(days), "deprecationNotice": notice}
    if replacement is not None:
        fields["replacementModelId"] = replacement
    return fields


def shown_lifecycle(model: dict[str, Any]) -> tuple[Any, ...]:
    end = model["endOfLifeAt"]
    replacement = model["replacement"]
    return (
        model["lifecycleState"],
        end and datetime.fromisoformat(end),
        model["deprecationNotice"],
        replacement and replacement["id"],
    )


def expected_lifecycle(state: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    end = fields.get("endOfLifeAt")
    return (
        state,
        end and datetime.fromisoformat(end),
        fields.get("deprecationNotice"),
        fields.get("replacementModelId"),
    )


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


async def variant_of(
    org: GraphQLClient, tenant: Tenant, parent: dict[str, Any], name: str, **fields: Any
) -> dict[str, Any]:
    return await create_user_model(
        org, organizationId=tenant.organization_gid, name=name, parentModelId=parent["id"], **fields
    )


STATES = [ACTIVE, deprecated(), end_of_life(), DISABLED]


@pytest.mark.parametrize("state", STATES, ids=[s[0] for s in STATES])
async def test_system_models_and_their_active_variants_show_the_state(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant, state: State
) -> None:
    successor = await create_system_model(admin, "gpt-successor")
    fields = state_fields(state, "Moving to gpt-successor.", successor["id"])
    model = await create_system_model(admin, "gpt-model", **fields)
    expected = expected_lifecycle(state[0], fields)
    assert shown_lifecycle(model) == expected
    assert shown_lifecycle(await fetch_model(org, model["id"]) or {}) == expected

    variant = await variant_of(org, tenant, model, "acme-variant")
    assert variant["overrides"]["enabled"] is True
    assert variant["overrides"]["endOfLifeAt"] is None
    assert variant["enabled"] is True  # its own switch; the state is the parent's
    assert shown_lifecycle(variant) == expected
    assert shown_lifecycle(await fetch_model(org, variant["id"]) or {}) == expected


async def test_the_state_follows_changes_of_enabled_and_end_of_life(admin: GraphQLClient) -> None:
    model = await create_system_model(admin, "gpt-model")
    steps: list[tuple[dict[str, Any], str]] = [
        ({"endOfLifeAt": at(10)}, "DEPRECATED"),
        ({"endOfLifeAt": at(-0.01)}, "END_OF_LIFE"),
        ({"enabled": False}, "DISABLED"),  # disabled beats end of life
        ({"enabled": True, "endOfLifeAt": None}, "ACTIVE"),
    ]
    for changes, state in steps:
        payload = await admin.mutate(SYSTEM_UPDATE, {"id": model["id"], **changes})
        assert payload["userErrors"] == []
        assert payload["model"]["lifecycleState"] == state, changes


# (parent state, variant state, expected state, whose end of life / notice / replacement is shown)
WORSE_CASES: list[tuple[State, State, str, str | None]] = [
    (ACTIVE, deprecated(10), "DEPRECATED", "variant"),
    (ACTIVE, end_of_life(), "END_OF_LIFE", "variant"),
    (ACTIVE, DISABLED, "DISABLED", None),
    (deprecated(60), deprecated(10), "DEPRECATED", "variant"),
    (deprecated(10), deprecated(60), "DEPRECATED", "parent"),
    (deprecated(60), end_of_life(-1), "END_OF_LIFE", "variant"),
    (end_of_life(-1), deprecated(10), "END_OF_LIFE", "parent"),
    (end_of_life(-10), end_of_life(-1), "END_OF_LIFE", "parent"),
    (deprecated(60), DISABLED, "DISABLED", "parent"),
    (DISABLED, end_of_life(-1), "DISABLED", "variant"),
    (DISABLED, ACTIVE, "DISABLED", None),
]


async def test_a_variant_shows_the_worse_of_its_own_and_its_parents_state(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    """One pair of models per row of WORSE_CASES (a fresh database per row costs more); every
    mismatch is reported."""
    parent_successor = await create_system_model(admin, "parent-successor")
    variant_successor = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="variant-successor",
        provider="OPENAI",
        providerModelId="x",
    )
    mismatches = []
    for index, (parent_state, variant_state, expected, source) in enumerate(WORSE_CASES):
        case = f"parent {parent_state}, variant {variant_state}"
        parent_fields = state_fields(parent_state, "parent notice", parent_successor["id"])
        variant_fields = state_fields(variant_state, "variant notice", variant_successor["id"])
        parent = await create_system_model(admin, f"gpt-parent-{index}", **parent_fields)
        variant = await variant_of(org, tenant, parent, f"acme-variant-{index}", **variant_fields)
        fields = {"parent": parent_fields, "variant": variant_fields, None: {}}[source]
        wanted = expected_lifecycle(expected, fields)
        for shown in (variant, await fetch_model(org, variant["id"]) or {}):
            if shown_lifecycle(shown) != wanted:
                mismatches.append(f"{case}: {shown_lifecycle(shown)}, expected {wanted}")
        # The variant's own settings stay visible as overrides.
        overrides = variant["overrides"]
        own_end = variant_fields.get("endOfLifeAt")
        if overrides["enabled"] is not (variant_state != DISABLED) or (
            overrides["endOfLifeAt"] and datetime.fromisoformat(overrides["endOfLifeAt"])
        ) != (own_end and datetime.fromisoformat(own_end)):
            mismatches.append(f"{case}: overrides {overrides}")
    assert mismatches == []


# ---- availableModels --------------------------------------------------------------------------------


async def test_available_models_follow_the_lifecycle_and_auto_migration(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    successor = await create_system_model(admin, "successor")
    replaced = {"replacementModelId": successor["id"], "deprecationNotice": "use successor"}
    await create_system_model(admin, "active")
    await create_system_model(admin, "deprecated", endOfLifeAt=at(30), **replaced)
    ended = await create_system_model(admin, "ended-with-replacement", endOfLifeAt=at(-1), **replaced)
    await create_system_model(admin, "ended-without-replacement", endOfLifeAt=at(-1))
    disabled = await create_system_model(admin, "disabled-with-replacement", enabled=False, **replaced)
    await create_system_model(admin, "hidden", isVisible=False)
    await create_system_model(admin, "embedding", modelGroup="EMBEDDING", maxOutputTokens=None)
    await variant_of(org, tenant, ended, "variant-of-ended")
    await variant_of(org, tenant, disabled, "variant-of-disabled")
    own_successor = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="own-successor",
        provider="OPENAI",
        providerModelId="x",
    )
    await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="own-ended",
        provider="OPENAI",
        providerModelId="y",
        endOfLifeAt=at(-1),
        replacementModelId=own_successor["id"],
    )

    callable_always = ["active", "deprecated", "embedding", "own-successor", "successor"]
    assert await available_names(org, tenant.project_gid) == callable_always
    assert await available_names(org) == callable_always  # an organization key: no project needed
    assert await available_names(org, tenant.project_gid, "EMBEDDING") == ["embedding"]

    payload = await org.mutate(
        ORGANIZATION_UPDATE, {"id": tenant.organization_gid, "autoMigrateEndOfLife": True}
    )
    assert payload["userErrors"] == []
    assert payload["organization"]["autoMigrateEndOfLife"] is True
    migrated = ["ended-with-replacement", "own-ended", "variant-of-ended"]
    assert await available_names(org, tenant.project_gid) == sorted(callable_always + migrated)
    assert await available_names(org, tenant.project_gid, "CHAT") == sorted(
        [n for n in callable_always if n != "embedding"] + migrated
    )
    data = await org.data(
        "query($p: ID) { availableModels(projectId: $p) { name lifecycleState replacement { name } } }",
        {"p": tenant.project_gid},
    )
    ended_shown = {m["name"]: m for m in data["availableModels"]}["ended-with-replacement"]
    assert ended_shown["lifecycleState"] == "END_OF_LIFE"
    assert ended_shown["replacement"] == {"name": "successor"}


@pytest.mark.parametrize(("plan", "allowed"), [(Plan.FREE, False), (Plan.PRO, True), (Plan.ENTERPRISE, True)])
async def test_premium_models_need_a_pro_or_enterprise_plan(
    server: LiveServer, gql: GraphQLClient, admin: GraphQLClient, plan: Plan, allowed: bool
) -> None:
    customer = await make_tenant(server.services, "Customer", plan=plan)
    client = gql.with_key(customer.keys[Role.ADMIN])
    await create_system_model(admin, "standard")
    premium = await create_system_model(admin, "premium", accessTier="PREMIUM")
    variant = await variant_of(client, customer, premium, "premium-variant")
    assert variant["accessTier"] == "PREMIUM"  # inherited
    expected = ["premium", "premium-variant", "standard"] if allowed else ["standard"]
    assert await available_names(client, customer.project_gid) == expected
    # The catalog still lists them: only calling them needs the plan.
    assert await model_names(client, {"includeSystem": True}) == ["premium", "premium-variant", "standard"]


# ---- the lifecycleStates filter --------------------------------------------------------------------


async def test_the_lifecycle_states_filter_uses_effective_states(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    successor = await create_system_model(admin, "successor")
    for state in STATES:
        name = state[0].lower()
        parent = await create_system_model(admin, name, **state_fields(state, "notice", successor["id"]))
        await variant_of(org, tenant, parent, f"variant-of-{name}")
    await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="own-ended",
        provider="OPENAI",
        providerModelId="x",
        endOfLifeAt=at(-1),
    )
    # A variant of an active parent with its own, worse, state.
    active_parent = await fetch_model(admin, successor["id"])
    assert active_parent is not None
    await variant_of(org, tenant, active_parent, "variant-disabled-itself", enabled=False)

    expected = {
        ("ACTIVE",): ["active", "successor", "variant-of-active"],
        ("DEPRECATED",): ["deprecated", "variant-of-deprecated"],
        ("END_OF_LIFE",): ["end_of_life", "own-ended", "variant-of-end_of_life"],
        ("DISABLED",): ["disabled", "variant-disabled-itself", "variant-of-disabled"],
        ("DEPRECATED", "END_OF_LIFE"): [
            "deprecated",
            "end_of_life",
            "own-ended",
            "variant-of-deprecated",
            "variant-of-end_of_life",
        ],
    }
    for states, names in expected.items():
        assert await model_names(org, {"includeSystem": True, "lifecycleStates": list(states)}) == names, (
            states
        )
    # Without includeSystem only the organization's own models.
    assert await model_names(org, {"lifecycleStates": ["END_OF_LIFE"]}) == [
        "own-ended",
        "variant-of-end_of_life",
    ]
