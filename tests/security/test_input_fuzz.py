"""Every input field of every mutation, walked from the schema, against a battery of hostile values
on the live server: no answer is a 500; a refused value is refused with an error that names its
field (a user error's `field`, or a top-level BAD_USER_INPUT about that part of `$input`) and
stores nothing; valid Unicode in free text is accepted and read back exactly.

Each mutation has a valid base input (BASES) and each input object type a valid base object
(NESTED_BASES): the field under test is the only bad thing in a request. A mutation, input object
or scalar without one fails `test_every_mutation_input_field_has_a_base_and_a_battery`, so no field
is skipped silently. Query arguments get the same battery, and cursors forged to carry what a
column cannot store: never a 500 (test_bad_input.py holds what a NUL in a filter answers).
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from graphql import (
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    get_nullable_type,
)

from app.api.schema import schema as app_schema
from app.config import Settings
from app.domain.auth import Role
from tests.conftest import LiveServer, make_settings
from tests.support.catalog import add_project, create_connection, create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient
from tests.support.input_fuzz import (
    NUL,
    Expect,
    Hostile,
    InputField,
    battery,
    input_fields,
    named_field,
    placed,
)
from tests.support.prompts import create_prompt
from tests.support.stored_rows import stored_fingerprint

SCHEMA = app_schema._schema
MUTATIONS: dict[str, GraphQLField] = SCHEMA.mutation_type.fields  # type: ignore[union-attr]
QUERIES: dict[str, GraphQLField] = SCHEMA.query_type.fields  # type: ignore[union-attr]

# The global ids of what the bases refer to (made by the `world` fixture); "spare-…" ones are the
# targets of deletes, "to-update-…" ones of updates.
World = dict[str, str]
Base = Callable[[World, str], dict[str, Any]]  # (world, a unique suffix for names) -> input

CHAT_MESSAGE = {"role": "USER", "content": "Hi"}
PARTICLE = {"kind": "ROLE", "text": "Be brief."}
CALL_CAPABILITIES = {"streaming": True, "tools": True, "vision": True, "structuredOutput": True}
IMAGE = {"url": "https://example.com/cat.png"}
TOOL_CALL = {"id": "call_1", "name": "get_weather", "arguments": "{}"}
ECHO = {"provider": "ECHO", "providerModelId": "echo-1"}

# Loopback's discard port; the relay never comes round in these tests anyway (see `settings`).
WEBHOOK_URL = "http://127.0.0.1:9/hook"
BASES: dict[str, Base] = {
    "organizationCreate": lambda w, u: {"name": f"Org {u}"},
    "organizationUpdate": lambda w, u: {"id": w["to-update-organization"]},
    "projectCreate": lambda w, u: {"organizationId": w["org"], "name": f"Project {u}"},
    "projectUpdate": lambda w, u: {"id": w["to-update-project"], "name": f"Project {u}"},
    "projectDelete": lambda w, u: {"id": w["spare-project"]},
    "apiKeyCreate": lambda w, u: {"organizationId": w["org"], "name": f"Key {u}"},
    "apiKeyRevoke": lambda w, u: {"id": w["spare-api-key"]},
    "connectionCreate": lambda w, u: {"organizationId": w["org"], "name": f"C {u}", "provider": "OPENAI"},
    "connectionUpdate": lambda w, u: {"id": w["to-update-connection"]},
    "connectionDelete": lambda w, u: {"id": w["spare-connection"]},
    "systemModelCreate": lambda w, u: {"name": f"system {u}", **ECHO},
    "systemModelUpdate": lambda w, u: {"id": w["to-update-system-model"]},
    "userModelCreate": lambda w, u: {
        "organizationId": w["org"],
        "name": f"mine {u}",
        "scope": "PROJECT",
        "projectId": w["project"],
        **ECHO,
    },
    "userModelUpdate": lambda w, u: {"id": w["to-update-user-model"]},
    "modelDelete": lambda w, u: {"id": w["spare-model"]},
    "systemPromptCreate": lambda w, u: {
        "organizationId": w["org"],
        "name": f"SP {u}",
        "particles": [PARTICLE],
    },
    "systemPromptUpdate": lambda w, u: {"id": w["to-update-system-prompt"]},
    "systemPromptDelete": lambda w, u: {"id": w["spare-system-prompt"]},
    "promptCreate": lambda w, u: {
        "projectId": w["project"],
        "name": f"P {u}",
        "template": "About {{ topic }}",
    },
    "promptUpdate": lambda w, u: {"id": w["to-update-prompt"]},
    "promptDelete": lambda w, u: {"id": w["spare-prompt"]},
    "promptRun": lambda w, u: {"promptId": w["prompt-to-run"], "variables": {"topic": "cats"}},
    "generate": lambda w, u: {"prompt": "Hi", "model": w["echo"], "projectId": w["project"]},
    "chat": lambda w, u: {"messages": [CHAT_MESSAGE], "model": w["echo"], "projectId": w["project"]},
    "embed": lambda w, u: {"texts": ["Hi"], "model": w["echo-embed"], "projectId": w["project"]},
    "webhookCreate": lambda w, u: {"organizationId": w["org"], "url": WEBHOOK_URL},
    "webhookUpdate": lambda w, u: {"id": w["to-update-webhook"]},
    "webhookRotateSecret": lambda w, u: {"id": w["to-update-webhook"]},
    "webhookDelete": lambda w, u: {"id": w["spare-webhook"]},
}
NESTED_BASES: dict[str, Callable[[World], dict[str, Any]]] = {
    "ModelCapabilitiesInput": lambda w: {},
    "FallbackInput": lambda w: {"modelId": w["echo"]},
    "SystemPromptParticleInput": lambda w: dict(PARTICLE),
    "ChatMessageInput": lambda w: dict(CHAT_MESSAGE),
    # A @oneOf input: the battery's field joins `text`, so a second member is refused as one more.
    "ContentPartInput": lambda w: {"text": "Hi"},
    "ImageInput": lambda w: dict(IMAGE),
    "ToolCallInput": lambda w: dict(TOOL_CALL),
    "ToolInput": lambda w: {"name": "get_weather", "parameters": {"type": "object"}},
    "ToolChoiceInput": lambda w: {"mode": "AUTO"},
    "ResponseFormatInput": lambda w: {"type": "TEXT"},
}

# clientKey and secretKey go together, and only to OpenAI's wire format: a test of one sends both.
PARTNERS = {"clientKey": "secretKey", "secretKey": "clientKey"}
MODEL_MUTATIONS = ("systemModelCreate", "systemModelUpdate", "userModelCreate", "userModelUpdate")


def _with_partner(mutation: str, key: str) -> Base:
    openai = {"provider": "OPENAI"} if mutation in MODEL_MUTATIONS else {}
    return lambda w, u: {**BASES[mutation](w, u), **openai, PARTNERS[key]: "partner-secret"}


# Fields that are valid on another base than their mutation's.
FIELD_BASES: dict[tuple[str, str], Base] = {
    **{
        (mutation, key): _with_partner(mutation, key)
        for mutation in (*MODEL_MUTATIONS, "connectionCreate", "connectionUpdate")
        for key in PARTNERS
    },
    # assignedProjectIds: organization-scoped models only.
    ("userModelCreate", "assignedProjectIds"): lambda w, u: {
        "organizationId": w["org"],
        "name": f"mine {u}",
        **ECHO,
    },
    ("userModelUpdate", "assignedProjectIds"): lambda w, u: {"id": w["to-update-org-model"]},
    # A chat message's parts, tool calls and tool result: each in the turn that may carry it.
    ("chat", "messages.0.parts"): lambda w, u: _chat(w, {"role": "USER", "parts": [{"text": "Hi"}]}),
    ("chat", "messages.0.parts.0.image"): lambda w, u: _chat(
        w, {"role": "USER", "parts": [{"image": IMAGE}]}
    ),
    ("chat", "messages.0.toolCalls"): lambda w, u: _chat(w, {"role": "ASSISTANT", "toolCalls": [TOOL_CALL]}),
    ("chat", "messages.0.toolCallId"): lambda w, u: _chat(
        w, {"role": "TOOL", "toolCallId": "call_1", "content": "sunny"}
    ),
}


def _chat(world: World, message: dict[str, Any]) -> dict[str, Any]:
    return {**BASES["chat"](world, ""), "messages": [message], "model": world["echo-tools"]}


def field_base(mutation: str, path: tuple[str, ...]) -> Base:
    """The base for a field: the most specific of FIELD_BASES on its path, else its mutation's."""
    for length in range(len(path), 0, -1):
        if (base := FIELD_BASES.get((mutation, ".".join(path[:length])))) is not None:
            return base
    return BASES[mutation]


PLATFORM_ADMIN_MUTATIONS = {
    "organizationCreate",
    "organizationUpdate",
    "systemModelCreate",
    "systemModelUpdate",
}
# Strings with a format of their own, which valid Unicode text need not fit (refused on the field).
# A webhook's url is a URL; its secret has a minimum length that short text does not reach;
# notifyEmails and alertEmails hold email addresses.
FORMATTED_STRINGS = {"modelUrl", "notifyEmails", "alertEmails", "permissions", "url", "secret"}
# The same by where they stand: a call's tool, tool call, choice and format names follow OpenAI's name
# rule; arguments are JSON; image data is base64 of a media type; a tool result answers a call id.
FORMATTED_PATHS = {
    ("tools", "name"),
    ("toolCalls", "name"),
    ("toolCalls", "arguments"),
    ("toolChoice", "name"),
    ("responseFormat", "name"),
    ("image", "data"),
    ("image", "mediaType"),
    ("messages", "toolCallId"),
}

QUERY_BASES: dict[str, Callable[[World], dict[str, Any]]] = {
    "apiKeys": lambda w: {"organizationId": w["org"]},
    "availableModels": lambda w: {"projectId": w["project"]},
    "connections": lambda w: {"organizationId": w["org"]},
    "model": lambda w: {"id": w["echo"]},
    "models": lambda w: {"filter": {"organizationId": w["org"]}},
    "node": lambda w: {"id": w["echo"]},
    "organization": lambda w: {"id": w["org"]},
    "organizations": lambda w: {},
    "project": lambda w: {"id": w["project"]},
    "prompts": lambda w: {"projectId": w["project"]},
    "systemPrompts": lambda w: {"organizationId": w["org"]},
    "usage": lambda w: {
        "filter": {"organizationId": w["org"], "from": "2031-01-01T00:00:00Z", "to": "2031-02-01T00:00:00Z"}
    },
    "viewer": lambda w: {},
}


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


# Cursors are opaque, but a client can forge one: what it holds goes to SQL.
FORGED_CURSORS = [
    Hostile(label, cursor, Expect.EITHER)
    for label, cursor in {
        "a cursor holding NUL": _cursor(f"a{NUL}", str(uuid.uuid4())),
        "a cursor past year 9999 in UTC": _cursor("9999-12-31T23:59:59-05:00", str(uuid.uuid4())),
        "a cursor without an offset": _cursor("2031-01-01T00:00:00", str(uuid.uuid4())),
        "a cursor of numbers": _cursor(2**63, 1e308),
        "a cursor that is not base64": "%%%",
    }.items()
]


def input_type_of(mutation: GraphQLField) -> GraphQLInputObjectType:
    input_type = get_nullable_type(mutation.args["input"].type)
    assert isinstance(input_type, GraphQLInputObjectType)
    return input_type


def arguments_type(name: str, query: GraphQLField) -> GraphQLInputObjectType:
    """A query's arguments as one input object, walked like a mutation's input."""
    return GraphQLInputObjectType(
        f"{name}Arguments", {arg: GraphQLInputField(value.type) for arg, value in query.args.items()}
    )


def is_free_text(field: InputField) -> bool:
    names = [p for p in field.path if p != "0"]
    return names[-1] not in FORMATTED_STRINGS and tuple(names[-2:]) not in FORMATTED_PATHS


def test_every_mutation_input_field_has_a_base_and_a_battery() -> None:
    assert set(BASES) == set(MUTATIONS), "every mutation needs a base input (and only those)"
    fields = {name: list(input_fields(input_type_of(mutation))) for name, mutation in MUTATIONS.items()}
    every = [field for listed in fields.values() for field in listed]
    nested = {get_named_type(f.type).name for f in every if f.kind in ("object", "list")}
    assert nested <= set(NESTED_BASES), "every input object type needs a base object"
    assert all(battery(field, free_text=True) for field in every)  # a new scalar: a KeyError
    prefixes = {
        (name, ".".join(f.path[:n]))
        for name, listed in fields.items()
        for f in listed
        for n in (1, 2, 3, 4, 5)
    }
    assert set(FIELD_BASES) <= prefixes
    assert set(QUERY_BASES) == set(QUERIES), "every query needs base arguments"
    for name, query in QUERIES.items():
        assert all(battery(field, free_text=True) for field in input_fields(arguments_type(name, query)))


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Hundreds of gateway calls in a minute: no rate limit in the way. Alert deliveries (a revoked
    # key's, say) are never sent: the relay's first round runs before anything happens.
    return make_settings(
        database_url, rate_limit_per_minute=1_000_000, allow_private_webhooks=True, alert_poll_interval=3600
    )


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org_admin(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


async def _create(client: GraphQLClient, mutation: str, returned: str, values: dict[str, Any]) -> str:
    input_name = input_type_of(MUTATIONS[mutation]).name
    document = f"mutation($input: {input_name}!) {{ {mutation}(input: $input) {{ {returned} {{ id }} }} }}"
    payload = await client.mutate(document, values)
    created: str = payload[returned]["id"]
    return created


@pytest.fixture
async def world(server: LiveServer, admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant) -> World:
    org, project = tenant.organization_gid, tenant.project_gid
    quick = {**ECHO, "modelUrl": None, "providerSettings": {"wordDelayMs": "0"}}
    echo = (await create_system_model(admin, "echo", **quick))["id"]
    own = {"organizationId": org, **ECHO}
    world: World = {
        "org": org,
        "project": project,
        "echo": echo,
        "echo-tools": (
            await create_system_model(admin, "echo-tools", **quick, capabilities=CALL_CAPABILITIES)
        )["id"],
        "echo-embed": (await create_system_model(admin, "echo-embed", **quick, modelGroup="EMBEDDING"))["id"],
        "to-update-organization": await _create(admin, "organizationCreate", "organization", {"name": "upd"}),
        "to-update-project": await add_project(server.services, tenant, "to-update"),
        "spare-project": await add_project(server.services, tenant, "spare"),
        "spare-api-key": await _create(
            org_admin, "apiKeyCreate", "apiKey", {"organizationId": org, "name": "k"}
        ),
        "to-update-system-model": (await create_system_model(admin, "sys", **ECHO, modelUrl=None))["id"],
        "to-update-user-model": (
            await create_user_model(org_admin, **own, name="upd", scope="PROJECT", projectId=project)
        )["id"],
        "to-update-org-model": (await create_user_model(org_admin, **own, name="org-wide"))["id"],
        "spare-model": (await create_user_model(org_admin, **own, name="spare"))["id"],
        "to-update-connection": (await create_connection(org_admin, org, name="upd"))["id"],
        "spare-connection": (await create_connection(org_admin, org, name="spare"))["id"],
        "to-update-prompt": (await create_prompt(org_admin, project, name="upd", modelId=echo))["id"],
        "prompt-to-run": (await create_prompt(org_admin, project, name="run", modelId=echo))["id"],
        "spare-prompt": (await create_prompt(org_admin, project, name="spare", modelId=echo))["id"],
    }
    for name in ("to-update-webhook", "spare-webhook"):
        world[name] = await _create(
            org_admin, "webhookCreate", "webhook", {"organizationId": org, "url": WEBHOOK_URL}
        )
    for name in ("to-update-system-prompt", "spare-system-prompt"):
        values = {"organizationId": org, "name": name, "particles": [PARTICLE]}
        world[name] = await _create(org_admin, "systemPromptCreate", "systemPrompt", values)
    return world


def readback(payload_type: GraphQLObjectType, path: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """(selection, keys to the value) when the payload's object shows the input field at the same
    path, e.g. ("systemPrompt { particles { text } }", [systemPrompt, particles, 0, text])."""
    for name, field in payload_type.fields.items():
        current = get_named_type(field.type)
        if name == "userErrors" or not isinstance(current, GraphQLObjectType):
            continue
        keys, selection = [name], name
        for part in path:
            if part != "0":
                found = current.fields.get(part) if isinstance(current, GraphQLObjectType) else None
                if found is None:
                    break
                selection += f" {{ {part}"
                current = get_named_type(found.type)
            keys.append(part)
        else:
            if isinstance(current, GraphQLScalarType) and current.name == "String":
                return selection + " }" * (len(keys) - 1 - keys.count("0")), keys
    return None


def mutation_document(name: str, mutation: GraphQLField, selection: str) -> str:
    payload = get_nullable_type(mutation.type)
    request_id = "requestId" if "requestId" in payload.fields else ""
    return f"""mutation($input: {input_type_of(mutation).name}!) {{ {name}(input: $input) {{
      userErrors {{ code field message }} {request_id} {selection} }} }}"""


def refusal(body: dict[str, Any]) -> list[Any]:
    """The top-level errors, else the user errors: empty when the request went through."""
    payload = next(iter((body.get("data") or {}).values()), None) or {}
    problems: list[Any] = body.get("errors") or payload.get("userErrors") or []
    return problems


def value_at(data: Any, keys: list[str]) -> Any:
    for key in keys:
        data = data[int(key)] if key.isdigit() else data[key]
    return data


def judge(
    body: dict[str, Any], field: InputField, hostile: Hostile, sent: Any, keys: list[str] | None
) -> str | None:
    """What is wrong with the answer to one hostile value, if anything."""
    codes = [e["extensions"]["code"] for e in body.get("errors") or []]
    if body["_status"] != 200 or "INTERNAL_SERVER_ERROR" in codes:
        return f"a server error: {body}"
    problems = refusal(body)
    if hostile.expect is Expect.ACCEPTED:
        if problems:
            return f"refused: {problems}"
        if keys is not None and value_at(body["data"], keys) != sent:
            return f"read back as {value_at(body['data'], keys)!r}"
    if hostile.expect is Expect.REFUSED and not problems:
        return "accepted"
    if problems and not named_field(body, field.path):
        return f"the error does not name the field: {problems}"
    return None


@pytest.mark.slow
async def test_every_mutation_input_field_refuses_hostile_values_on_its_field(
    server: LiveServer, admin: GraphQLClient, org_admin: GraphQLClient, world: World
) -> None:
    unique = (f"n{n}" for n in itertools.count())
    failures: list[str] = []
    stored = await stored_fingerprint(server.services.db)
    # Deletes last: a delete that went through would take the base object of another mutation.
    for name in sorted(MUTATIONS, key=lambda m: m.endswith(("Delete", "Revoke"))):
        mutation = MUTATIONS[name]
        input_type = input_type_of(mutation)
        client = admin if name in PLATFORM_ADMIN_MUTATIONS else org_admin
        for field in input_fields(input_type):
            for hostile in battery(field, free_text=is_free_text(field)):
                u = next(unique)
                base = field_base(name, field.path)(world, u)
                sent, selection, keys = hostile.value, "", None
                if hostile.expect is Expect.ACCEPTED:
                    sent = f"{sent} {u}"  # names stay unique
                    selection, keys = readback(get_nullable_type(mutation.type), field.path) or ("", None)
                value = placed(base, input_type, field.path, sent, lambda t: NESTED_BASES[t](world))
                body = await client.post(mutation_document(name, mutation, selection), {"input": value})
                problem = judge(body, field, hostile, sent, [name, *keys] if keys else None)
                after = await stored_fingerprint(server.services.db)
                if problem is None and refusal(body) and after != stored:
                    problem = "refused, but something was stored"
                stored = after
                if problem:
                    failures.append(f"{name} {'.'.join(field.path)} <- {hostile.label}: {problem}"[:600])
    assert not failures, "\n".join(failures)


def query_document(name: str, query: GraphQLField) -> str:
    variables = ", ".join(f"${arg}: {value.type}" for arg, value in query.args.items())
    arguments = ", ".join(f"{arg}: ${arg}" for arg in query.args)
    returned = get_named_type(query.type)
    fields = returned.fields if isinstance(returned, GraphQLObjectType) else {}
    selection = "{ nodes { __typename } }" if "nodes" in fields else "{ __typename }"
    if isinstance(returned, GraphQLScalarType):
        selection = ""
    head = f"query({variables})" if variables else "query"
    return f"{head} {{ {name}{f'({arguments})' if arguments else ''} {selection} }}"


@pytest.mark.slow
async def test_every_query_argument_takes_hostile_values_without_a_server_error(
    org_admin: GraphQLClient, world: World
) -> None:
    failures: list[str] = []
    for name, query in QUERIES.items():
        arguments = arguments_type(name, query)
        for field in input_fields(arguments):
            cases = battery(field, free_text=True) + (FORGED_CURSORS if field.path == ("after",) else [])
            for hostile in cases:
                variables = placed(QUERY_BASES[name](world), arguments, field.path, hostile.value, dict)
                body = await org_admin.post(query_document(name, query), variables)
                codes = [e["extensions"]["code"] for e in body.get("errors") or []]
                if body["_status"] != 200 or "INTERNAL_SERVER_ERROR" in codes:
                    failures.append(f"{name} {'.'.join(field.path)} <- {hostile.label}: {body}"[:600])
    assert not failures, "\n".join(failures)


async def test_text_with_a_lone_surrogate_never_arrives(org_admin: GraphQLClient, server: LiveServer) -> None:
    """PostgreSQL cannot store a lone surrogate (it has no UTF-8 form); none reaches a resolver:
    JSON decoding refuses a body holding one, and the GraphQL lexer a string literal."""
    query = "query($f: ModelFilter) { models(filter: $f) { nodes { id } } }"
    body = b'{"query": "' + query.encode() + b'", "variables": {"f": {"search": "a\\ud800"}}}'
    headers = {"content-type": "application/json", "X-API-Key": org_admin.key or ""}
    async with org_admin.session.post(f"{server.url}/graphql", data=body, headers=headers) as response:
        assert response.status == 400
    literal = await org_admin.post('{ models(filter: {search: "a\\ud800"}) { nodes { id } } }')
    assert [e["extensions"]["code"] for e in literal["errors"]] == ["BAD_USER_INPUT"]
