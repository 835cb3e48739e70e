"""The GraphQL schema: every area's queries and mutations merged, with the limits of settings.

Importing this module has no side effects; `build_schema` makes a schema for given settings and
`schema` is the default one that `export-schema` prints."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLInputObjectType,
    lexicographic_sort_schema,
    print_schema,
)
from strawberry.extensions import DisableIntrospection, ParserCache, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import validate_document
from strawberry.tools import merge_types

from app.api import input_conversion
from app.api.alerts.mutations import AlertMutations
from app.api.connections.mutations import ConnectionMutations
from app.api.connections.queries import ConnectionQueries
from app.api.context import GraphQLInfo
from app.api.errors import ErrorFormatter
from app.api.event_plans import PlannedExecutor
from app.api.extension_runner import LeanExtensionsRunner
from app.api.limits import QueryLimits
from app.api.llm.mutations import LlmMutations
from app.api.llm.subscriptions import LlmSubscriptions
from app.api.models.mutations import ModelMutations
from app.api.models.queries import ModelQueries
from app.api.models.types import SystemModel, UserModel
from app.api.node import Node, resolve_node
from app.api.observability import OperationObserver
from app.api.orgs.mutations import TenancyMutations
from app.api.orgs.queries import TenancyQueries
from app.api.planned_streams import PlannedSubscriptions
from app.api.prompts.mutations import PromptMutations
from app.api.prompts.queries import PromptQueries
from app.api.response_cache import CatalogResponseCache
from app.api.revocation import CallerCheck
from app.api.scalars import DATETIME_SCALAR
from app.api.system_prompts.mutations import SystemPromptMutations
from app.api.system_prompts.queries import SystemPromptQueries
from app.api.usage.queries import UsageQueries
from app.api.usage.types import BIG_INT_SCALAR, BigInt
from app.config import Settings


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global id; null when missing or not yours.")
    async def node(self, info: GraphQLInfo, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)


Query = merge_types(
    "Query",
    (
        NodeQueries,
        TenancyQueries,
        ModelQueries,
        SystemPromptQueries,
        ConnectionQueries,
        UsageQueries,
        PromptQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        TenancyMutations,
        ModelMutations,
        SystemPromptMutations,
        ConnectionMutations,
        LlmMutations,
        PromptMutations,
        AlertMutations,
    ),
)
Subscription = LlmSubscriptions


DOCUMENT_CACHE_SIZE = 512


class DocumentValidationCache(SchemaExtension):
    """Validation errors per parsed document. The parser cache hands out one document object per
    query text, so the object itself is the key: Strawberry's ValidationCache hashes the whole
    syntax tree on every lookup instead.

    The query limits come first, alone: a document past them is refused without the standard
    rules' walk (microseconds instead of milliseconds for a hostile document)."""

    _results: ClassVar[OrderedDict[int, tuple[DocumentNode, Any, list[GraphQLError]]]] = OrderedDict()

    def __init__(self, limits: QueryLimits) -> None:
        super().__init__()
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        rules = (context.schema, self.limits, context.validation_rules)
        entry = self._results.get(id(document))
        if entry is None or entry[0] is not document or entry[1] != rules:
            schema = context.schema._schema
            errors = self.limits.check(schema, document) or validate_document(
                schema, document, context.validation_rules
            )
            entry = (document, rules, errors)
            self._results[id(document)] = entry
            while len(self._results) > DOCUMENT_CACHE_SIZE:
                self._results.popitem(last=False)
        context.pre_execution_errors = entry[2]
        yield


class DocumentParserCache(ParserCache):
    """Strawberry's parser cache with the token limit, except that a document that does not parse is
    left to Strawberry's own parser: its error then takes the ordinary path (with a code and the
    request id) instead of escaping from this hook."""

    def __init__(self, *, maxsize: int, max_tokens: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens  # QUERY_TOO_COMPLEX past it
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


class ModelgateSchema(PlannedSubscriptions):  # subscription events by plan (planned_streams.py)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry checks `one_of` inputs written inline only; marked on graphql-core's type they
        # are checked in variables too (a part with both text and image), and the SDL says @oneOf.
        for graphql_type in self._schema.type_map.values():
            definition = (getattr(graphql_type, "extensions", None) or {}).get("strawberry-definition")
            if isinstance(graphql_type, GraphQLInputObjectType) and getattr(definition, "is_one_of", False):
                graphql_type.is_one_of = True
        input_conversion.install(self._schema, self.config, self.schema_converter.scalar_registry)

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """ErrorFormatter logs what is unexpected; expected errors are not worth a log line."""

    def create_extensions_runner(self, execution_context: Any, extensions: Any) -> LeanExtensionsRunner:
        return LeanExtensionsRunner(execution_context, extensions)


def build_schema(settings: Settings) -> strawberry.Schema:
    limits = QueryLimits.of(settings)
    extensions: list[Any] = [
        OperationObserver,
        ErrorFormatter,
        CallerCheck,
        # Clients send the same few documents over and over: parse and validate each once (the
        # token limit applies when parsing, the query limits when validating: both cached).
        lambda: DocumentParserCache(maxsize=DOCUMENT_CACHE_SIZE, max_tokens=settings.max_query_tokens),
        lambda: DocumentValidationCache(limits),
        CatalogResponseCache,
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return ModelgateSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        types=[SystemModel, UserModel],
        execution_context_class=PlannedExecutor,  # subscription events by a plan (event_plans.py)
        # Not sort_schema: sorting rebuilds the types and enum inputs would arrive as plain strings.
        config=StrawberryConfig(
            disable_field_suggestions=not settings.field_suggestions,
            scalar_map={BigInt: BIG_INT_SCALAR, datetime: DATETIME_SCALAR},
        ),
    )


schema = build_schema(Settings())


def export_sdl(exported: strawberry.Schema = schema) -> str:
    """The SDL, sorted so that diffs of schema.graphql are stable."""
    return print_schema(lexicographic_sort_schema(exported._schema)) + "\n"
