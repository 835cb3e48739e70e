"""Mutations run by a plan (`app.api.operation_plans`) answer as Strawberry's path answers them.

Each test sends a document twice: as is (planned) and with `@include(if: true)` on its field, which
leaves it to Strawberry's path; the answers must match but for what differs per request (the
request id). A spy on the plans tells which path ran."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from app.api.operation_plans import OperationPlans
from app.config import Settings
from app.logs import JsonFormatter
from app.metrics import GRAPHQL_OPERATIONS
from app.services.demo import DemoKeys, seed_demo
from tests.conftest import LiveServer

GENERATE = """mutation Ask($input: GenerateInput!) {
  generate(input: $input) { text finishReason requestId userErrors { code field } }
}"""
UNPLANNED = GENERATE.replace("generate(input: $input)", "generate(input: $input) @include(if: true)")
GRAPHQL_RESPONSE = "application/graphql-response+json"


class PlanSpy:
    """Counts the operations the plans executed."""

    def __init__(self, plans: OperationPlans) -> None:
        self.executed = 0
        self._execute = plans.execute

        async def execute(*args: Any) -> Any:
            self.executed += 1
            return await self._execute(*args)

        plans.execute = execute  # type: ignore[method-assign]


@pytest.fixture
def spy(server: LiveServer) -> Iterator[PlanSpy]:
    (view,) = (
        r.handler for r in server.app.router.routes() if r.resource and r.resource.canonical == "/graphql"
    )
    plans = view.operation_plans  # type: ignore[attr-defined]
    assert isinstance(plans, OperationPlans)
    assert plans.enabled
    spy = PlanSpy(plans)
    yield spy
    del plans.execute  # the class's method again


@pytest.fixture
async def keys(server: LiveServer) -> DemoKeys:
    seeded = await seed_demo(server.services)
    assert seeded is not None
    return seeded


async def post(
    http: aiohttp.ClientSession,
    server: LiveServer,
    body: Any,
    key: str | None,
    accept: str = GRAPHQL_RESPONSE,
) -> tuple[int, str, dict[str, Any]]:
    headers = {"Accept": accept, **({"X-API-Key": key} if key else {})}
    async with http.post(f"{server.url}/graphql", json=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        assert response.headers["X-Request-Id"]
        return response.status, response.content_type, answer


def without_request_ids(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {k: without_request_ids(v) for k, v in answer.items() if k != "requestId"}
    if isinstance(answer, list):
        return [without_request_ids(v) for v in answer]
    return answer


async def both_paths(
    http: aiohttp.ClientSession,
    server: LiveServer,
    spy: PlanSpy,
    body: dict[str, Any],
    key: str | None,
    **kw: Any,
) -> tuple[int, str, dict[str, Any]]:
    """The planned answer, after checking it against Strawberry's answer to the same request."""
    planned = await post(http, server, body, key, **kw)
    assert spy.executed == 1
    unplanned = await post(http, server, {**body, "query": UNPLANNED}, key, **kw)
    assert spy.executed == 1
    assert (planned[0], planned[1]) == (unplanned[0], unplanned[1])
    assert without_request_ids(planned[2]) == without_request_ids(unplanned[2])
    spy.executed = 0
    return planned


async def test_a_planned_generate_answers_as_strawberrys_path(
    http: aiohttp.ClientSession, server: LiveServer, spy: PlanSpy, keys: DemoKeys
) -> None:
    body = {"query": GENERATE, "variables": {"input": {"prompt": "hi there"}}, "operationName": "Ask"}
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        status, media, answer = await both_paths(http, server, spy, body, keys.demo_project, accept=accept)
        assert (status, media) == (200, accept)
        assert answer["data"]["generate"]["text"] == "Echo: hi there"
        assert answer["data"]["generate"]["requestId"]


async def test_errors_carry_their_code_and_request_id_on_both_paths(
    http: aiohttp.ClientSession, server: LiveServer, spy: PlanSpy, keys: DemoKeys
) -> None:
    body = {"query": GENERATE, "variables": {"input": {"prompt": "hi"}}}
    status, _, answer = await both_paths(http, server, spy, body, None)  # unauthenticated
    (error,) = answer["errors"]
    assert status == 200
    assert answer["data"] is None
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["requestId"]
    assert error["path"] == ["generate"]

    another = {"query": GENERATE, "variables": {"input": {"prompt": "hi", "model": "no-such-model"}}}
    _, _, answer = await both_paths(http, server, spy, another, keys.demo_project)
    (user_error,) = answer["data"]["generate"]["userErrors"]
    assert user_error["field"] == ["input", "model"]
    assert answer["data"]["generate"]["text"] is None


async def test_what_has_no_plan_is_left_to_strawberrys_path(
    http: aiohttp.ClientSession, server: LiveServer, spy: PlanSpy, keys: DemoKeys
) -> None:
    key = keys.demo_project
    not_coerced = {"query": GENERATE, "variables": {"input": {"prompt": 42}}}
    status, _, answer = await post(http, server, not_coerced, key)
    assert status == 400
    assert "data" not in answer
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    invalid = {"query": GENERATE.replace("finishReason", "nope"), "variables": {"input": {"prompt": "hi"}}}
    assert (await post(http, server, invalid, key))[0] == 400
    query = {"query": "{ viewer { kind } }"}
    assert (await post(http, server, query, key))[0] == 200
    batch = [{"query": GENERATE, "variables": {"input": {"prompt": "hi"}}}]
    assert (await post(http, server, batch, key))[0] == 400  # batching is off
    assert spy.executed == 0


async def test_a_persisted_mutation_runs_by_its_plan(
    http: aiohttp.ClientSession, server: LiveServer, spy: PlanSpy, keys: DemoKeys
) -> None:
    extensions = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(GENERATE.encode()).hexdigest()}
    }
    variables = {"input": {"prompt": "hi there"}}
    status, _, unknown = await post(
        http, server, {"variables": variables, "extensions": extensions}, keys.demo_project
    )
    assert status == 200
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    for body in (
        {"query": GENERATE, "variables": variables, "extensions": extensions},
        {"variables": variables, "extensions": extensions},
    ):
        status, _, answer = await post(http, server, body, keys.demo_project)
        assert (status, answer["data"]["generate"]["text"]) == (200, "Echo: hi there")
    assert spy.executed == 2


async def test_a_planned_operation_is_counted_and_named_in_the_access_log(
    http: aiohttp.ClientSession,
    server: LiveServer,
    spy: PlanSpy,
    keys: DemoKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok, error = (GRAPHQL_OPERATIONS.labels("mutation", outcome) for outcome in ("ok", "error"))
    before = ok._value.get(), error._value.get()
    body = {"query": GENERATE, "variables": {"input": {"prompt": "hi"}}}
    with caplog.at_level("INFO", logger="modelgate.access"):
        await post(http, server, body, keys.demo_project)
        await post(http, server, body, None)
    assert (ok._value.get() - before[0], error._value.get() - before[1]) == (1, 1)
    logged = [r for r in caplog.records if r.name == "modelgate.access"]
    assert [orjson.loads(JsonFormatter().format(r))["operation"] for r in logged] == ["Ask", "Ask"]
    assert spy.executed == 2


def test_an_extension_the_plans_do_not_know_turns_them_off(settings: Settings) -> None:
    class Unknown:
        pass

    class Schema:
        _schema = execution_context_class = None

        def get_extensions(self) -> list[object]:
            return [Unknown()]

    assert not OperationPlans(Schema(), settings).enabled
