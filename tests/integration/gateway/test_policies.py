"""Every policy of a call, end to end: each refusal is a user error with its own code on
generate/chat/embed and a ChatStreamError event on chatStream (then the stream completes), and a
refused call never reaches the provider. Warnings (deprecation, migration) ride on answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from gql.transport.exceptions import TransportQueryError

from app.domain.auth import Role
from app.domain.enums import Plan
from app.domain.ids import encode_id
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake
from tests.integration.gateway.conftest import REPLY_A
from tests.support.catalog import (
    add_project,
    at,
    available_names,
    create_system_model,
    create_user_model,
    uuid_of,
)
from tests.support.factories import Tenant, make_tenant
from tests.support.gateway import (
    CHAT,
    EMBED,
    GENERATE,
    GRAPHQL_TRANSPORT_WS,
    TRANSPORTS,
    WsSubscription,
    create_key,
    kinds,
    stream_events,
    stream_input,
    stream_over,
    streamed_text,
    update_organization,
    usage_rows,
    user_says,
    warning_codes,
    ws_url,
)
from tests.support.graphql import GraphQLClient, error_codes

CHAT_MODES = ["chat", "chatStream"]


@dataclass
class Catalog:
    active: dict[str, Any]
    disabled: dict[str, Any]
    deprecated: dict[str, Any]
    retired: dict[str, Any]  # end of life, replaced by `active`
    premium: dict[str, Any]
    small: dict[str, Any]  # contextWindow 60, maxOutputTokens 50
    embedder: dict[str, Any]


@dataclass
class Outcome:
    """What a chat or chatStream call came to, in the same shape for both."""

    error: tuple[str, list[str] | None] | None  # (code, field); a stream's error has no field
    message: str | None
    served_by: str | None  # a model name
    warnings: list[str]
    text: str | None


@pytest.fixture
async def catalog(admin: GraphQLClient, fake_a: OpenAIFake) -> Catalog:
    url = f"{fake_a.url}/v1"
    active = await create_system_model(admin, "gpt-active", modelUrl=url)

    async def model(name: str, **fields: Any) -> dict[str, Any]:
        return await create_system_model(admin, name, modelUrl=url, **fields)

    return Catalog(
        active=active,
        disabled=await model("gpt-disabled", enabled=False),
        deprecated=await model(
            "gpt-deprecated",
            endOfLifeAt=at(30),
            deprecationNotice="Moving to gpt-active.",
            replacementModelId=active["id"],
        ),
        retired=await model("gpt-retired", endOfLifeAt=at(-1), replacementModelId=active["id"]),
        premium=await model("gpt-premium", accessTier="PREMIUM"),
        small=await model("gpt-small", contextWindow=60, maxOutputTokens=50),
        embedder=await model(
            "text-embedder", modelGroup="EMBEDDING", contextWindow=8000, maxOutputTokens=None
        ),
    )


async def call(
    mode: str, server: LiveServer, key: str, http: aiohttp.ClientSession, **fields: Any
) -> Outcome:
    """A chat (`mode` "chat") or a chatStream over graphql-transport-ws (`mode` "chatStream")."""
    fields.setdefault("messages", user_says("What is the capital of France?"))
    if mode == "chat":
        payload = await GraphQLClient(http, server.url, key).mutate(CHAT, fields)
        errors = payload["userErrors"]
        assert len(errors) <= 1, errors
        return Outcome(
            error=(errors[0]["code"], errors[0]["field"]) if errors else None,
            message=errors[0]["message"] if errors else None,
            served_by=payload["servedBy"] and payload["servedBy"]["name"],
            warnings=warning_codes(payload) if not errors else [],
            text=payload["message"] and payload["message"]["content"],
        )
    events = await stream_events(ws_url(server.url), key, {"input": fields})
    if events[-1]["__typename"] == "ChatStreamError":
        assert kinds(events) == ["ChatStreamError"], events  # refused before anything started
        return Outcome((events[0]["code"], None), events[0]["message"], None, [], None)
    assert kinds(events)[0] == "ChatStreamStart"
    assert kinds(events)[-1] == "ChatStreamEnd"
    return Outcome(
        error=None,
        message=None,
        served_by=events[0]["servedBy"]["name"],
        warnings=[w["code"] for w in events[-1]["warnings"]],
        text=streamed_text(events),
    )


def expect_error(mode: str, code: str, field: list[str] | None) -> tuple[str, list[str] | None]:
    return (code, field if mode == "chat" else None)


MODEL_FIELD = ["input", "model"]


# ---- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_a_disabled_model_is_refused(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    outcome = await call(mode, server, tenant.keys[Role.DEVELOPER], http, model=catalog.disabled["id"])
    assert outcome.error == expect_error(mode, "MODEL_DISABLED", MODEL_FIELD)
    assert fake_a.requests == []


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_an_end_of_life_model_is_refused_naming_its_replacement(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    outcome = await call(mode, server, tenant.keys[Role.DEVELOPER], http, model=catalog.retired["id"])
    assert outcome.error == expect_error(mode, "MODEL_END_OF_LIFE", MODEL_FIELD)
    assert outcome.message is not None
    assert "gpt-retired" in outcome.message
    assert "gpt-active" in outcome.message
    assert fake_a.requests == []


async def test_the_end_of_life_error_gives_the_replacement_as_an_id_the_caller_can_use(
    dev: GraphQLClient, catalog: Catalog
) -> None:
    payload = await dev.mutate(CHAT, {"messages": user_says("Hi"), "model": catalog.retired["id"]})
    (error,) = payload["userErrors"]
    assert error["code"] == "MODEL_END_OF_LIFE"
    assert str(uuid_of(catalog.active["id"])) not in error["message"]
    assert catalog.active["id"] in error["message"]


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_auto_migration_serves_an_end_of_life_model_by_its_replacement_with_a_warning(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake, org_admin: GraphQLClient,
) -> None:  # fmt: skip
    organization = await update_organization(org_admin, tenant.organization_gid, autoMigrateEndOfLife=True)
    assert organization["autoMigrateEndOfLife"] is True
    outcome = await call(mode, server, tenant.keys[Role.DEVELOPER], http, model=catalog.retired["id"])
    assert outcome.error is None
    assert outcome.served_by == "gpt-active"
    assert outcome.warnings == ["MODEL_MIGRATED"]
    assert outcome.text == REPLY_A
    (request,) = fake_a.requests
    assert request.body["model"] == "gpt-active"  # the replacement's providerModelId


async def test_a_migrated_answer_names_the_requested_model_and_the_replacement(
    dev: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant, catalog: Catalog
) -> None:
    await update_organization(org_admin, tenant.organization_gid, autoMigrateEndOfLife=True)
    payload = await dev.mutate(GENERATE, {"prompt": "Capital of France?", "model": catalog.retired["id"]})
    assert payload["userErrors"] == []
    assert payload["model"]["id"] == catalog.retired["id"]
    assert payload["servedBy"]["id"] == catalog.active["id"]
    (warning,) = payload["warnings"]
    assert warning["code"] == "MODEL_MIGRATED"
    assert warning["replacement"] == {"id": catalog.active["id"], "name": "gpt-active"}
    assert datetime.fromisoformat(warning["endOfLifeAt"]) < datetime.now(UTC)


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_a_deprecated_model_answers_with_a_deprecation_warning(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    outcome = await call(mode, server, tenant.keys[Role.DEVELOPER], http, model=catalog.deprecated["id"])
    assert outcome.error is None
    assert outcome.served_by == "gpt-deprecated"
    assert outcome.warnings == ["MODEL_DEPRECATED"]
    assert outcome.text == REPLY_A
    assert len(fake_a.requests) == 1


async def test_the_deprecation_warning_gives_the_date_the_replacement_and_the_notice(
    dev: GraphQLClient, catalog: Catalog
) -> None:
    payload = await dev.mutate(CHAT, {"messages": user_says("Hi"), "model": catalog.deprecated["id"]})
    (warning,) = payload["warnings"]
    assert warning["code"] == "MODEL_DEPRECATED"
    assert warning["endOfLifeAt"] is not None
    assert datetime.fromisoformat(warning["endOfLifeAt"]) == datetime.fromisoformat(
        catalog.deprecated["endOfLifeAt"]
    )
    assert warning["replacement"] == {"id": catalog.active["id"], "name": "gpt-active"}
    assert "Moving to gpt-active." in warning["message"]


# ---- plan, limits, model group ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_a_premium_model_needs_a_paid_plan(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    free = await make_tenant(server.services, "Free", plan=Plan.FREE)
    outcome = await call(mode, server, free.keys[Role.DEVELOPER], http, model=catalog.premium["id"])
    assert outcome.error == expect_error(mode, "PLAN_UPGRADE_REQUIRED", MODEL_FIELD)
    assert fake_a.requests == []
    # The PRO organization calls it.
    paid = await call(mode, server, tenant.keys[Role.DEVELOPER], http, model=catalog.premium["id"])
    assert paid.error is None
    assert paid.served_by == "gpt-premium"


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_max_tokens_over_the_models_output_limit_is_refused(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    key = tenant.keys[Role.DEVELOPER]
    outcome = await call(mode, server, key, http, model=catalog.small["id"], maxTokens=51)
    assert outcome.error == expect_error(mode, "MAX_TOKENS_TOO_LARGE", ["input", "maxTokens"])
    assert fake_a.requests == []
    at_the_limit = await call(mode, server, key, http, model=catalog.small["id"], maxTokens=50)
    assert at_the_limit.error is None


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_input_over_the_context_window_is_refused_before_any_provider_call(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    key = tenant.keys[Role.DEVELOPER]
    long = user_says("word " * 100)  # ~125 tokens by any estimate; the window is 60
    outcome = await call(mode, server, key, http, model=catalog.small["id"], messages=long)
    assert outcome.error == expect_error(mode, "CONTEXT_TOO_LONG", ["input", "messages"])
    assert fake_a.requests == []
    # The caller's system prompt counts too.
    with_prompt = await call(
        mode, server, key, http, model=catalog.small["id"], systemPrompt="be brief " * 40
    )
    assert with_prompt.error is not None
    assert with_prompt.error[0] == "CONTEXT_TOO_LONG"
    assert fake_a.requests == []


async def test_a_long_prompt_is_refused_on_generate_with_the_prompt_field(
    dev: GraphQLClient, catalog: Catalog, fake_a: OpenAIFake
) -> None:
    payload = await dev.mutate(GENERATE, {"prompt": "word " * 100, "model": catalog.small["id"]})
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("CONTEXT_TOO_LONG", ["input", "prompt"])
    ]
    assert fake_a.requests == []


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_an_embedding_model_cannot_chat(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    outcome = await call(mode, server, tenant.keys[Role.DEVELOPER], http, model=catalog.embedder["id"])
    assert outcome.error == expect_error(mode, "MODEL_GROUP_MISMATCH", MODEL_FIELD)
    assert fake_a.requests == []


async def test_model_groups_are_checked_on_generate_and_embed(
    dev: GraphQLClient, catalog: Catalog, fake_a: OpenAIFake
) -> None:
    generated = await dev.mutate(GENERATE, {"prompt": "Hi", "model": catalog.embedder["id"]})
    embedded = await dev.mutate(EMBED, {"texts": ["Hi"], "model": catalog.active["id"]})
    for payload in (generated, embedded):
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("MODEL_GROUP_MISMATCH", MODEL_FIELD)
        ]
        assert payload["servedBy"] is None
    assert fake_a.requests == []
    # Each with the right group is served.
    assert (await dev.mutate(EMBED, {"texts": ["Hi"], "model": catalog.embedder["id"]}))["userErrors"] == []


# ---- resolution ------------------------------------------------------------------------------------


async def test_a_variants_narrower_output_limit_is_enforced(
    dev: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant, catalog: Catalog, fake_a: OpenAIFake
) -> None:
    narrow = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        name="acme-narrow",
        parentModelId=catalog.active["id"],
        maxOutputTokens=20,
    )
    refused = await dev.mutate(CHAT, {"messages": user_says("Hi"), "model": narrow["id"], "maxTokens": 21})
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("MAX_TOKENS_TOO_LARGE", ["input", "maxTokens"])
    ]
    assert fake_a.requests == []
    served = await dev.mutate(CHAT, {"messages": user_says("Hi"), "model": narrow["id"], "maxTokens": 20})
    assert served["userErrors"] == []


async def test_the_models_system_prompt_comes_before_the_callers(
    dev: GraphQLClient, admin: GraphQLClient, catalog: Catalog, fake_a: OpenAIFake
) -> None:
    prompted = await create_system_model(
        admin, "gpt-prompted", modelUrl=catalog.active["modelUrl"], systemPromptOverride="You are Modelgate."
    )
    for system_prompt in ("Answer in French.", None):
        payload = await dev.mutate(
            CHAT, {"messages": user_says("Hi"), "model": prompted["id"], "systemPrompt": system_prompt}
        )
        assert payload["userErrors"] == []
    with_callers, alone = (r.body["messages"] for r in fake_a.requests)
    assert with_callers[0]["role"] == "system"
    assert with_callers[0]["content"].index("You are Modelgate.") < with_callers[0]["content"].index(
        "Answer in French."
    )
    assert with_callers[1:] == [{"role": "user", "content": "Hi"}]
    assert alone[0] == {"role": "system", "content": "You are Modelgate."}


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_no_model_and_no_project_default_is_refused(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    key = tenant.keys[Role.DEVELOPER]
    without_project = await call(mode, server, key, http)
    in_a_project_without_default = await call(mode, server, key, http, projectId=tenant.project_gid)
    for outcome in (without_project, in_a_project_without_default):
        assert outcome.error == expect_error(mode, "NO_DEFAULT_MODEL", MODEL_FIELD)
    assert fake_a.requests == []


async def test_the_project_default_serves_calls_without_a_model(
    server: LiveServer,
    http: aiohttp.ClientSession,
    org_admin: GraphQLClient,
    tenant: Tenant,
    catalog: Catalog,
) -> None:
    default = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="acme-default",
        parentModelId=catalog.active["id"],
        isDefault=True,
    )
    for mode in CHAT_MODES:
        outcome = await call(mode, server, tenant.keys[Role.DEVELOPER], http, projectId=tenant.project_gid)
        assert outcome.error is None
        assert outcome.served_by == default["name"]
    # A key bound to the project needs no projectId.
    _, project_key = await server.services.api_keys.create_unchecked(
        name="project key",
        organization_id=tenant.organization.id,
        project_id=tenant.project.id,
        role=Role.DEVELOPER,
    )
    assert (await call("chat", server, project_key, http)).served_by == "acme-default"


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_another_organizations_model_reads_exactly_like_an_unknown_id(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, other_tenant: Tenant,
    catalog: Catalog, fake_a: OpenAIFake, gql: GraphQLClient,
) -> None:  # fmt: skip
    theirs = await create_user_model(
        gql.with_key(other_tenant.admin_key),
        organizationId=other_tenant.organization_gid,
        name="globex-private",
        parentModelId=catalog.active["id"],
    )
    key = tenant.keys[Role.DEVELOPER]
    foreign = await call(mode, server, key, http, model=theirs["id"])
    unknown = await call(mode, server, key, http, model=encode_id("UserModel", uuid.uuid4()))
    assert foreign.error == expect_error(mode, "NOT_FOUND", MODEL_FIELD)
    assert foreign == unknown
    assert fake_a.requests == []
    # Their own key calls it.
    assert (
        await call(mode, server, other_tenant.keys[Role.DEVELOPER], http, model=theirs["id"])
    ).error is None


@pytest.mark.parametrize("mode", CHAT_MODES)
async def test_another_organizations_project_reads_exactly_like_an_unknown_one(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, other_tenant: Tenant,
    catalog: Catalog, fake_a: OpenAIFake,
) -> None:  # fmt: skip
    key, model = tenant.keys[Role.DEVELOPER], catalog.active["id"]
    foreign = await call(mode, server, key, http, model=model, projectId=other_tenant.project_gid)
    unknown = await call(mode, server, key, http, model=model, projectId=encode_id("Project", uuid.uuid4()))
    assert foreign.error == expect_error(mode, "NOT_FOUND", ["input", "projectId"])
    assert foreign == unknown
    # A key bound to one project cannot call in another project of its organization either.
    second = await add_project(server.services, tenant, "Second")
    _, project_key = await server.services.api_keys.create_unchecked(
        name="project key",
        organization_id=tenant.organization.id,
        project_id=tenant.project.id,
        role=Role.DEVELOPER,
    )
    elsewhere = await call(mode, server, project_key, http, model=model, projectId=second)
    assert elsewhere.error == expect_error(mode, "NOT_FOUND", ["input", "projectId"])
    assert fake_a.requests == []


async def available_and_answered(
    client: GraphQLClient, project_gid: str, candidates: dict[str, str]
) -> tuple[set[str], set[str]]:
    """The CHAT models availableModels offers in the project, and those of `candidates` (name ->
    id) that a chat in the project is answered by."""
    offered = {name for name in await available_names(client, project_gid, "CHAT") if name in candidates}
    answered = set()
    for name, model_id in candidates.items():
        payload = await client.mutate(
            CHAT, {"messages": user_says("Hi"), "model": model_id, "projectId": project_gid}
        )
        if not payload["userErrors"]:
            answered.add(name)
    return offered, answered


async def test_calls_are_answered_exactly_for_the_models_available_in_the_project(
    server: LiveServer, admin: GraphQLClient, org_admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant,
    catalog: Catalog,
) -> None:  # fmt: skip
    await update_organization(org_admin, tenant.organization_gid, autoMigrateEndOfLife=True)
    other_project = await add_project(server.services, tenant, "Second")
    url = catalog.active["modelUrl"]
    hidden = await create_system_model(admin, "gpt-hidden", modelUrl=url, isVisible=False)
    gone = await create_system_model(admin, "gpt-gone", modelUrl=url, endOfLifeAt=at(-1))

    async def variant(name: str, **fields: Any) -> dict[str, Any]:
        return await create_user_model(
            org_admin,
            organizationId=tenant.organization_gid,
            name=name,
            parentModelId=catalog.active["id"],
            **fields,
        )

    candidates = {
        m["name"]: m["id"]
        for m in [
            *(
                getattr(catalog, f)
                for f in ("active", "disabled", "deprecated", "retired", "premium", "small")
            ),
            hidden,
            gone,
            await variant("org-wide"),
            await variant("second-only", assignedProjectIds=[other_project]),
            await variant("here", scope="PROJECT", projectId=tenant.project_gid),
            await variant("there", scope="PROJECT", projectId=other_project),
        ]
    }
    offered, answered = await available_and_answered(dev, tenant.project_gid, candidates)
    assert offered == {
        "gpt-active",
        "gpt-deprecated",
        "gpt-retired",
        "gpt-premium",
        "gpt-small",
        "org-wide",
        "here",
    }
    assert answered == offered
    offered, answered = await available_and_answered(dev, other_project, candidates)
    assert "second-only" in offered
    assert "there" in offered
    assert answered == offered


@pytest.mark.parametrize("replacement", ["disabled", "premium-on-free"])
async def test_an_end_of_life_model_is_offered_only_if_its_replacement_can_serve(
    replacement: str, server: LiveServer, gql: GraphQLClient, admin: GraphQLClient, catalog: Catalog,
) -> None:  # fmt: skip
    free = await make_tenant(server.services, "Free", plan=Plan.FREE)
    await update_organization(gql.with_key(free.admin_key), free.organization_gid, autoMigrateEndOfLife=True)
    target = catalog.disabled if replacement == "disabled" else catalog.premium
    retired = await create_system_model(
        admin,
        "gpt-retiring",
        modelUrl=catalog.active["modelUrl"],
        endOfLifeAt=at(-1),
        replacementModelId=target["id"],
    )
    client = gql.with_key(free.keys[Role.DEVELOPER])
    offered, answered = await available_and_answered(
        client, free.project_gid, {"gpt-retiring": retired["id"]}
    )
    assert offered == answered


async def test_a_viewer_key_may_not_call_models(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, catalog: Catalog, fake_a: OpenAIFake
) -> None:
    viewer = gql.with_key(tenant.keys[Role.VIEWER])
    calls = [
        (GENERATE, {"prompt": "Hi", "model": catalog.active["id"]}),
        (CHAT, {"messages": user_says("Hi"), "model": catalog.active["id"]}),
        (EMBED, {"texts": ["Hi"], "model": catalog.embedder["id"]}),
    ]
    for document, values in calls:
        body = await viewer.post(document, {"input": values})
        assert error_codes(body) == ["FORBIDDEN"], body
        assert body["errors"][0]["extensions"]["requestId"] == body["_request_id"]
        assert body["data"] is None
    assert fake_a.requests == []
    assert await usage_rows(server.services) == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_viewer_key_may_not_stream(
    transport: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, catalog: Catalog,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    with pytest.raises(TransportQueryError) as raised:
        await stream_over(
            transport, http, server.url, tenant.keys[Role.VIEWER], stream_input(model=catalog.active["id"])
        )
    (error,) = raised.value.errors or []
    assert "llm:invoke" in error["message"]
    assert fake_a.requests == []
    # Like every top-level error: a code from the closed set, and the request id.
    assert error.get("extensions", {}).get("code") == "FORBIDDEN", error
    assert error["extensions"].get("requestId"), error


# ---- quota, rate limit, stream cap ------------------------------------------------------------------


async def test_the_monthly_credit_limit_refuses_calls_that_may_not_fit(
    server: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant,
    catalog: Catalog, fake_a: OpenAIFake,
) -> None:  # fmt: skip
    # Each call reserves (5 estimated input + 12 maxTokens) / 1000 * 2.5 = 0.0425 credits and costs
    # 12 input + 4 output tokens = 0.04.
    organization = await update_organization(admin, tenant.organization_gid, monthlyCreditLimit="0.1")
    assert Decimal(organization["monthlyCreditLimit"]) == Decimal("0.1")
    chat = {"messages": user_says("Hi"), "model": catalog.active["id"], "maxTokens": 12}
    answered = 0
    while True:
        payload = await dev.mutate(CHAT, chat)
        if payload["userErrors"]:
            break
        answered += 1
        assert answered <= 2, "the limit did not hold"
    assert answered == 2  # 0.08 spent: a third call might cost 0.0425 more, past the limit
    (error,) = payload["userErrors"]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert error["message"].startswith("this call may cost up to 0.0425 credits, more than the 0.02 left")
    assert payload["servedBy"] is None
    assert len(fake_a.requests) == 2

    # Streams and embeddings are refused too, and nothing more reaches the provider.
    events = await stream_events(
        ws_url(server.url),
        tenant.keys[Role.DEVELOPER],
        stream_input(model=catalog.active["id"], maxTokens=12),
    )
    assert kinds(events) == ["ChatStreamError"]
    assert events[0]["code"] == "QUOTA_EXCEEDED"
    embedded = await dev.mutate(EMBED, {"texts": ["Hi there " * 12], "model": catalog.embedder["id"]})
    assert [e["code"] for e in embedded["userErrors"]] == ["QUOTA_EXCEEDED"]  # 27 tokens: 0.0675
    assert len(fake_a.requests) == 2

    rows = await usage_rows(server.services, 5)
    assert [(r["status"], r["error_code"]) for r in rows] == [("SUCCESS", None)] * 2 + [
        ("ERROR", "QUOTA_EXCEEDED")
    ] * 3
    assert sum(r["credits"] for r in rows) == Decimal("0.08")

    # Raising the limit lets calls through again.
    await update_organization(admin, tenant.organization_gid, monthlyCreditLimit="1")
    assert (await dev.mutate(CHAT, chat))["userErrors"] == []


async def test_a_keys_rate_limit_refuses_calls_beyond_it(
    server: LiveServer, http: aiohttp.ClientSession, org_admin: GraphQLClient, gql: GraphQLClient,
    tenant: Tenant, catalog: Catalog, fake_a: OpenAIFake,
) -> None:  # fmt: skip
    fixed = datetime.now(UTC).replace(second=10)  # one minute window, whenever the test runs
    server.services.rate_limiter.clock = lambda: fixed
    limited = await create_key(org_admin, tenant.organization_gid, rateLimitPerMinute=3)
    client = gql.with_key(limited)
    chat = {"messages": user_says("Hi"), "model": catalog.active["id"]}
    for _ in range(3):
        assert (await client.mutate(CHAT, chat))["userErrors"] == []
    refused = await client.mutate(CHAT, chat)
    assert [e["code"] for e in refused["userErrors"]] == ["RATE_LIMITED"]
    events = await stream_events(ws_url(server.url), limited, stream_input(model=catalog.active["id"]))
    assert kinds(events) == ["ChatStreamError"]
    assert events[0]["code"] == "RATE_LIMITED"
    assert events[0]["retryable"] is True
    assert 0 < events[0]["retryAfter"] <= 60
    assert len(fake_a.requests) == 3
    # Other keys of the organization have their own budget.
    assert (await gql.with_key(tenant.keys[Role.DEVELOPER]).mutate(CHAT, chat))["userErrors"] == []
    # The next window opens.
    server.services.rate_limiter.clock = lambda: fixed + timedelta(minutes=1)
    assert (await client.mutate(CHAT, chat))["userErrors"] == []


async def test_the_organizations_stream_cap_refuses_a_second_concurrent_stream(
    server: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant
) -> None:
    organization = await update_organization(admin, tenant.organization_gid, maxConcurrentStreams=1)
    assert organization["maxConcurrentStreams"] == 1
    slow = await create_system_model(
        admin, "echo-slow", provider="ECHO", modelUrl=None, providerSettings={"wordDelayMs": "100"}
    )
    key, url = tenant.keys[Role.DEVELOPER], ws_url(server.url)
    words = "one two three four five six seven eight nine ten"
    long = stream_input(user_says(words), model=slow["id"])
    async with WsSubscription.open(http, server.url, key, long, GRAPHQL_TRANSPORT_WS) as first:
        assert (await first.next_event() or {}).get("__typename") == "ChatStreamStart"
        assert (await first.next_event() or {}).get("__typename") == "ChatStreamDelta"
        # The first stream is open (slow ECHO, ~1 s): a second one is refused.
        for transport in TRANSPORTS:
            second = await stream_over(transport, http, server.url, key, stream_input(model=slow["id"]))
            assert [(e["__typename"], e.get("code"), e.get("retryable")) for e in second] == [
                ("ChatStreamError", "TOO_MANY_STREAMS", True)
            ]
        # Mutations are not streams: they are not capped.
        assert (await dev.mutate(CHAT, {"messages": user_says("Hi"), "model": slow["id"]}))[
            "userErrors"
        ] == []
        rest = [event async for event in first.events()]
    assert kinds(rest)[-1] == "ChatStreamEnd"
    # Its slot is free again once it ended.
    again = await stream_events(url, key, stream_input(model=slow["id"]))
    assert kinds(again)[-1] == "ChatStreamEnd"
