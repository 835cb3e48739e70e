"""Whole responses of catalog queries, kept in memory.

Model pickers ask the same catalog questions over and over, and executing a list of 50 models is
~650 GraphQL fields (milliseconds of CPU) for an answer that changes rarely. A query qualifies when
its root fields are catalog data (`CATALOG_ROOTS`) and it selects nothing `UNCACHEABLE` below them;
its result is keyed by the document, the variables and the caller's scope (organization, project,
permissions), and dropped on every instance whenever the catalog or tenancy changes (the same
LISTEN/NOTIFY topics as the other caches). `ttl` bounds what is derived from the clock (a model
reaching its end of life while nothing changed).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import orjson
from graphql import ExecutionResult, FieldNode, FragmentDefinitionNode, OperationDefinitionNode, OperationType
from strawberry.extensions import SchemaExtension

from app.domain.auth import Principal
from app.services.response_cache import ResponseCache

# Root fields whose answers are catalog data, and every field that may appear below them.
CATALOG_ROOTS = frozenset({"models", "model", "availableModels", "systemPrompts", "connections"})
# Operational data (health follows the clock and failures) and anything outside the catalog.
UNCACHEABLE = frozenset(
    {"health", "notifications", "webhooks", "usage", "apiKeys", "viewer", "latestRun", "runs", "lastUsedAt"}
)


# Whether a parsed document's operation is catalog-only, by document (the parser cache hands out
# one document object per query text): walking the syntax tree per request would cost more.
_VERDICTS: OrderedDict[int, tuple[Any, OperationDefinitionNode, bool]] = OrderedDict()
_VERDICTS_KEPT = 512


def _catalog_only_cached(document: Any, operation: OperationDefinitionNode) -> bool:
    entry = _VERDICTS.get(id(document))
    if entry is None or entry[0] is not document or entry[1] is not operation:
        entry = (document, operation, _catalog_only(document, operation))
        _VERDICTS[id(document)] = entry
        while len(_VERDICTS) > _VERDICTS_KEPT:
            _VERDICTS.popitem(last=False)
    return entry[2]


def _catalog_only(document: Any, operation: OperationDefinitionNode) -> bool:
    if operation.operation is not OperationType.QUERY:
        return False
    roots = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    if len(roots) != len(operation.selection_set.selections) or not roots:
        return False
    if any(root.name.value not in CATALOG_ROOTS for root in roots):
        return False
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    return not any(name in UNCACHEABLE for name in _field_names([operation, *fragments]))


def _field_names(nodes: list[Any]) -> Iterator[str]:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode):
            yield node.name.value
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)


def _scope(principal: Principal | None) -> tuple[Any, ...] | None:
    if principal is None:
        return None
    return (principal.organization_id, principal.project_id, principal.permissions)


class CatalogResponseCache(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        request_context = context.context
        cache: ResponseCache = request_context.services.response_cache
        scope = _scope(getattr(request_context, "principal", None))
        document = context.graphql_document
        key = None
        if (
            scope is not None
            and document is not None
            and getattr(request_context, "auth_error", None) is None
        ):
            definition = next(
                (
                    d
                    for d in document.definitions
                    if isinstance(d, OperationDefinitionNode)
                    and (
                        context.operation_name is None or (d.name and d.name.value == context.operation_name)
                    )
                ),
                None,
            )
            if definition is not None and _catalog_only_cached(document, definition):
                key = (
                    context.query,
                    orjson.dumps(context.variables or {}, option=orjson.OPT_SORT_KEYS),
                    scope,
                )
        if key is not None and isinstance(cached := cache.get(key), ExecutionResult):
            context.result = cached
            yield
            return
        generation = cache.generation
        yield
        result = context.result
        if key is not None and isinstance(result, ExecutionResult) and not result.errors:
            cache.put(key, result, generation)
