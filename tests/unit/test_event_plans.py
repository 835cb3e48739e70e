"""Subscription events completed by a plan answer exactly as graphql-core's execution does: the
same schema runs the same subscriptions with and without `PlannedExecutor`, over events that a plan
completes and events it must leave to graphql-core."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import pytest
import strawberry

from app.api.event_plans import PlannedExecutor


@strawberry.enum
class Reason(enum.Enum):
    STOP = "stop"
    LENGTH = "length"


@strawberry.type
class Model:
    id: strawberry.ID
    name: str


@strawberry.type
class Delta:
    text: str
    index: int


@strawberry.type
class End:
    reason: Reason
    model: Model | None
    warnings: list[str]
    tokens: list[int | None] | None

    @strawberry.field
    def shout(self) -> str:
        return self.reason.name + "!"


@strawberry.type
class Broken:
    text: str  # the events below give it None: graphql-core's non-null error


Event = Annotated[Delta | End | Broken, strawberry.union("Event")]
EVENTS: list[Any] = [
    Delta(text="a", index=0),
    Delta(text="b", index=1),
    End(reason=Reason.STOP, model=Model(id=strawberry.ID("m1"), name="M"), warnings=["w"], tokens=[1, None]),
    End(reason=Reason.LENGTH, model=None, warnings=[], tokens=None),
    Broken(text=None),  # type: ignore[arg-type]
    Delta(text="c", index=2),
]


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def events(self) -> AsyncGenerator[Event, None]:
        for event in EVENTS:
            yield event


SUBSCRIPTIONS = [
    "subscription { events { __typename ... on Delta { text index } } }",
    """subscription($verbose: Boolean!) { events { kind: __typename
        ... on Delta { t: text index @include(if: $verbose) }
        ... on End { reason model { id name } warnings tokens }
        ... on Broken { text } } }""",
    "subscription { events { ... on End { shout reason } ... on Delta { text } } }",
    """subscription { events { ...D ...E } }
    fragment D on Delta { text text } fragment E on End { model { name } }""",
]


async def results(schema: strawberry.Schema, query: str, variables: dict[str, Any]) -> list[Any]:
    stream = await schema.subscribe(query, variable_values=variables)
    return [(result.data, [e.formatted for e in result.errors or []]) async for result in stream]  # type: ignore[union-attr]


@pytest.mark.parametrize("query", SUBSCRIPTIONS)
@pytest.mark.parametrize("verbose", [True, False])
async def test_planned_events_answer_as_graphql_core_does(query: str, verbose: bool) -> None:
    plain = strawberry.Schema(query=Query, subscription=Subscription)
    planned = strawberry.Schema(
        query=Query, subscription=Subscription, execution_context_class=PlannedExecutor
    )
    expected = await results(plain, query, {"verbose": verbose})
    assert len(expected) == len(EVENTS)
    assert await results(planned, query, {"verbose": verbose}) == expected


async def test_a_delta_is_completed_by_its_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan runs, rather than graphql-core behind it: field execution is never reached."""
    planned = strawberry.Schema(
        query=Query, subscription=Subscription, execution_context_class=PlannedExecutor
    )

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("graphql-core executed a planned event")

    query = "subscription { events { ... on Delta { text } } }"
    stream = await planned.subscribe(query)
    first = await stream.__anext__()  # type: ignore[union-attr]
    monkeypatch.setattr(PlannedExecutor, "execute_fields", refuse)
    second = await stream.__anext__()  # type: ignore[union-attr]
    await stream.aclose()  # type: ignore[union-attr]
    assert (first.data, second.data) == ({"events": {"text": "a"}}, {"events": {"text": "b"}})
