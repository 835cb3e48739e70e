"""Which responses the catalog cache may keep, and how long."""

import pytest
from graphql import ExecutionResult, OperationDefinitionNode, parse

from app.api.response_cache import _catalog_only
from app.services.response_cache import ResponseCache


def catalog_only(query: str) -> bool:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return _catalog_only(document, operation)


@pytest.mark.parametrize(
    ("query", "cacheable"),
    [
        ("{ models(first: 5) { nodes { name lifecycleState } } }", True),
        ('{ availableModels { id name } model(id: "x") { name } }', True),
        ("query { models { nodes { ...F } } } fragment F on Model { name capabilities { tools } }", True),
        ("query { models { nodes { ...F } } } fragment F on Model { name health { state } }", False),
        ("{ models { nodes { name } } viewer { kind } }", False),
        ("{ usage(filter: {}) { totals { credits } } }", False),
        (
            "{ models { nodes { ... on UserModel { organization { notifications { nodes { id } } } } } } }",
            False,
        ),
        (
            "query { models { nodes { ...F } } } "
            "fragment F on Model { ... on UserModel { organization { apiKeys } } }",
            False,
        ),
        ('mutation { modelDelete(input: {id: "x"}) { deletedModelId } }', False),
        ("subscription { chatStream(input: {messages: []}) { __typename } }", False),
    ],
)
def test_only_catalog_queries_are_cached(query: str, cacheable: bool) -> None:
    assert catalog_only(query) is cacheable


def test_entries_expire_and_a_change_empties_the_cache() -> None:
    now = [0.0]
    cache = ResponseCache(ttl=5, clock=lambda: now[0])
    result = ExecutionResult(data={"models": []})
    cache.put("k", result, cache.generation)
    assert cache.get("k") is result
    now[0] = 5.0
    assert cache.get("k") is None
    cache.put("k", result, cache.generation)
    cache.invalidate()
    assert cache.get("k") is None


def test_a_response_made_before_a_change_is_not_kept() -> None:
    cache = ResponseCache()
    generation = cache.generation
    cache.invalidate()  # the catalog changed while the query was executing
    cache.put("k", ExecutionResult(data={}), generation)
    assert cache.get("k") is None


def test_the_cache_is_bounded() -> None:
    cache = ResponseCache(size=2)
    for key in "abc":
        cache.put(key, ExecutionResult(data={}), cache.generation)
    assert cache.get("a") is None
    assert cache.get("c") is not None
