"""Query analysis takes time linear in the document: a small hostile document (fragments that
spread the next one twice, forty deep: 2^40 fields once expanded) is refused at once, and the
server keeps answering everyone else meanwhile. Costs and depths through fragments are what they
would be with the fragments written out."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from graphql import parse

from app.api.limits import QueryLimits
from app.api.schema import schema
from tests.support.process import server_process


def doubled_fragments(count: int, leaf: str = "viewer { kind }") -> str:
    """`query{...F0}`, each fragment spreading the next twice, the last one selecting `leaf`."""
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(count)]
    parts.append(f"fragment F{count} on Query {{ {leaf} }}")
    return "\n".join(parts)


async def test_forty_doubled_fragments_are_refused_while_the_server_answers(database_url: str) -> None:
    document = doubled_fragments(40)
    assert len(document) < 2000
    async with server_process(database_url) as server, aiohttp.ClientSession() as session:
        timeout = aiohttp.ClientTimeout(total=10)

        async def hostile() -> dict[str, object]:
            async with session.post(
                f"{server.url}/graphql", json={"query": document}, timeout=timeout
            ) as response:
                body: dict[str, object] = await response.json()
                return body

        async def healthz() -> int:
            await asyncio.sleep(0.05)  # once the hostile requests are in
            async with session.get(f"{server.url}/healthz", timeout=timeout) as response:
                return response.status

        *bodies, health = await asyncio.gather(*(hostile() for _ in range(5)), healthz())
        # The old walk never finished (2^40 visits): the health check would time out instead.
        assert health == 200
        for body in bodies:
            assert body["data"] is None
            (error,) = body["errors"]  # type: ignore[misc]
            assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            assert error["extensions"]["limit"] == 20000
        await server.stop(grace=10)


def cost_and_depth(query: str) -> tuple[int, int]:
    """The smallest cost and depth limits that let `query` pass."""
    document = parse(query)

    def passes(*, cost: int = 10**9, depth: int = 1000) -> bool:
        limits = QueryLimits(max_depth=depth, max_aliases=1000, max_cost=cost)
        return not limits.check(schema._schema, document)

    cost = next(c for c in range(10_000) if passes(cost=c))
    depth = next(d for d in range(100) if passes(depth=d))
    return cost, depth


ORGANIZATION = "name projects(first: 5) { nodes { name organization { name } } }"


@pytest.mark.parametrize(
    ("with_fragments", "written_out"),
    [
        (
            "{ viewer { organization { ...O } } organization(id: $id) { ...O } }"
            f" fragment O on Organization {{ {ORGANIZATION} }}",
            f"{{ viewer {{ organization {{ {ORGANIZATION} }} }} "
            f"organization(id: $id) {{ {ORGANIZATION} }} }}",
        ),
        (  # the same fragment deeper the second time: depth is relative to where it is spread
            "{ organization(id: $id) { ...O } viewer { organization { projects(first: 2) { nodes { "
            f"organization {{ ...O }} }} }} }} }} }} fragment O on Organization {{ {ORGANIZATION} }}",
            f"{{ organization(id: $id) {{ {ORGANIZATION} }} viewer {{ organization {{ projects(first: 2) {{ "
            f"nodes {{ organization {{ {ORGANIZATION} }} }} }} }} }} }}",
        ),
        (
            doubled_fragments(6),
            "{ " + " ".join(["viewer { kind }"] * 2**6) + " }",
        ),
        (  # fragments inside fragments, and inline fragments
            "{ viewer { ...V } } fragment V on Viewer { organization { ...O ... on Organization { ...O } } }"
            f" fragment O on Organization {{ {ORGANIZATION} }}",
            f"{{ viewer {{ organization {{ {ORGANIZATION} {ORGANIZATION} }} }} }}",
        ),
    ],
)
def test_fragments_cost_what_they_would_written_out(with_fragments: str, written_out: str) -> None:
    variables = "query($id: ID!) "
    if with_fragments.startswith("{"):
        with_fragments, written_out = variables + with_fragments, variables + written_out
    assert cost_and_depth(with_fragments) == cost_and_depth(written_out)


def test_the_cost_model_is_unchanged() -> None:
    # organization 1 + projects (1 + 5 x nodes (1 + organization 1)) = 12; viewer 1 + that = 13.
    assert cost_and_depth(f"query($id: ID!) {{ organization(id: $id) {{ {ORGANIZATION} }} }}") == (12, 5)
    assert cost_and_depth(f"{{ viewer {{ organization {{ {ORGANIZATION} }} }} }}") == (13, 6)
    assert cost_and_depth("{ __schema { types { fields { name } } } }") == (0, 0)  # introspection is free
    assert cost_and_depth("{ availableModels { name } }") == (20, 2)


def test_a_fragment_cycle_is_left_to_the_standard_rules() -> None:
    document = parse("{ ...A } fragment A on Query { ...B viewer { kind } } fragment B on Query { ...A }")
    assert QueryLimits(max_depth=10, max_aliases=10, max_cost=100).check(schema._schema, document) == []
