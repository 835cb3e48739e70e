"""A subscription run by `PlannedSubscriptions` answers as Strawberry's own pipeline does: the same
results (data, formatted errors, extensions' results) for events its plan completes and for events
left to graphql-core, with every extension hook that reads a result still run; a planned result
carries its payload serialized."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from app.api.errors import ErrorFormatter
from app.api.event_plans import PlannedExecutor
from app.api.extension_runner import LeanExtensionsRunner
from app.api.planned_streams import PlannedResult, PlannedSubscriptions
from tests.unit.test_event_plans import EVENTS, SUBSCRIPTIONS, Query, Subscription


class Planned(PlannedSubscriptions):
    def create_extensions_runner(self, execution_context: Any, extensions: Any) -> LeanExtensionsRunner:
        return LeanExtensionsRunner(execution_context, extensions)


class Seen(SchemaExtension):
    """Records what the hooks see: every streamed result, and the operation's last result."""

    streamed: list[Any] = []
    last: list[Any] = []

    def on_operation(self) -> Iterator[None]:
        yield
        self.last.append(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self.streamed.append(result.data)
        yield

    def get_results(self) -> dict[str, Any]:
        return {"seen": len(self.streamed)}


def schemas(extensions: list[Any]) -> tuple[strawberry.Schema, strawberry.Schema]:
    plain = strawberry.Schema(query=Query, subscription=Subscription, extensions=extensions)
    planned = Planned(
        query=Query, subscription=Subscription, extensions=extensions, execution_context_class=PlannedExecutor
    )
    return plain, planned


async def results(schema: strawberry.Schema, query: str, variables: dict[str, Any]) -> list[Any]:
    stream = await schema.stream(query, variable_values=variables)
    return [result async for result in stream]


def answer(result: ExecutionResult) -> tuple[Any, ...]:
    return (result.data, [e.formatted for e in result.errors or []], result.extensions or None)


@pytest.mark.parametrize("query", SUBSCRIPTIONS)
@pytest.mark.parametrize("verbose", [True, False])
async def test_planned_and_fallback_events_answer_as_strawberry_does(query: str, verbose: bool) -> None:
    plain, planned = schemas([ErrorFormatter])
    expected = await results(plain, query, {"verbose": verbose})
    got = await results(planned, query, {"verbose": verbose})
    assert len(expected) == len(EVENTS)
    assert [answer(r) for r in got] == [answer(r) for r in expected]
    for result in got:
        if isinstance(result, PlannedResult):
            assert orjson.loads(result.payload) == {"data": result.data}
    # The Broken event's null in a non-null field is graphql-core's error, masked by ErrorFormatter.
    kinds = ["planned" if isinstance(r, PlannedResult) else "fallback" for r in got]
    assert "planned" in kinds
    if "Broken" in query:
        assert kinds[4] == "fallback"
        assert got[4].errors is not None
        assert got[4].errors[0].extensions is not None
        assert got[4].errors[0].extensions["code"] == "INTERNAL_SERVER_ERROR"


async def test_hooks_that_read_results_still_see_planned_ones() -> None:
    """An extension with its own stream-result hook and results: each result passes its hook, its
    results are in every payload, and the operation ends with the last result as Strawberry's."""
    query = SUBSCRIPTIONS[0]
    plain, planned = schemas([ErrorFormatter, Seen])
    expected = await results(plain, query, {})
    seen_plain = (list(Seen.streamed), [answer(r) for r in Seen.last])
    Seen.streamed.clear()
    Seen.last.clear()
    got = await results(planned, query, {})
    assert (Seen.streamed, [answer(r) for r in Seen.last]) == seen_plain
    assert [answer(r) for r in got] == [answer(r) for r in expected]
    first = got[0]
    assert isinstance(first, PlannedResult)
    assert orjson.loads(first.payload) == {"data": first.data, "extensions": {"seen": 0}}


async def test_a_subscription_that_does_not_start_answers_its_errors() -> None:
    plain, planned = schemas([ErrorFormatter])
    query = "subscription($n: Int!) { events { __typename } }"
    expected = await results(plain, query, {})  # a missing variable
    got = await results(planned, query, {})
    assert [answer(r) for r in got] == [answer(r) for r in expected]
    assert got[0].errors
