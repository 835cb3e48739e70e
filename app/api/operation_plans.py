"""Mutations over HTTP by a plan made once per document, without Strawberry's per-operation pipeline.

Clients send a handful of documents over and over (`generate`, `chat`), and for such a request
Strawberry's pipeline cost more than graphql-core's execution: an execution context, six
extensions bound and their hooks entered and left four times, the parse and validation caches
looked up, the operation found again. Here a document is parsed, checked against the query limits
and validated once (the same parser options and rules as Strawberry's path), and each request only
coerces its variables and runs graphql-core's executor (the schema's own executor class, the
resolvers and completion unchanged). What the schema's extensions do for an HTTP mutation is done
directly: the operation is named for the access log and the metrics (`OperationObserver`), and
errors get their code and request id (`ErrorFormatter`). The others have nothing to do here: the
caller is checked again only on sockets (`CallerCheck`), the response cache keeps queries only,
introspection can only be asked for in a query.

A document qualifies when its operation is a mutation without directives. Anything else (a query,
a subscription, a document that does not parse, validate or stay within the limits, variables
that do not coerce) is left to Strawberry's path, which answers it as it always did; nothing has
run for it by then. A schema with an extension this module does not know of has no plans at all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.executor import Executor
from graphql.language import BREAK, Visitor
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import DisableIntrospection
from strawberry.schema.schema import validate_document
from strawberry.types.execution import ExecutionResult
from strawberry.utils.await_maybe import await_maybe

from app.api.context import Context
from app.api.errors import ErrorFormatter, format_error
from app.api.limits import QueryLimits
from app.api.observability import OperationObserver, observe_operation
from app.api.response_cache import CatalogResponseCache
from app.api.revocation import CallerCheck
from app.api.schema import DocumentParserCache, DocumentValidationCache
from app.config import Settings

PLANS_KEPT = 512
_NO_PLAN = None
# The schema's extensions whose work for a planned mutation is done here, is the plan itself (the
# parse and validation caches), or is nothing.
_KNOWN_EXTENSIONS = (
    OperationObserver,
    ErrorFormatter,
    CallerCheck,
    DocumentParserCache,
    DocumentValidationCache,
    CatalogResponseCache,
    DisableIntrospection,
)


class OperationPlan:
    """One validated mutation document: what a request needs besides its variables."""

    __slots__ = ("document", "name", "operation_name")

    def __init__(
        self, document: DocumentNode, operation: OperationDefinitionNode, operation_name: str | None
    ):
        self.document = document
        self.operation_name = operation_name  # as the request gave it, for graphql-core
        self.name = operation.name.value if operation.name else None  # for the access log


class OperationPlans:
    def __init__(self, schema: Any, settings: Settings, kept: int = PLANS_KEPT) -> None:
        self.schema = schema
        self.enabled = all(isinstance(e, _KNOWN_EXTENSIONS) for e in schema.get_extensions())
        self.executor_class: Any = schema.execution_context_class  # as Strawberry's path executes
        self.limits = QueryLimits.of(settings)
        self.max_tokens = settings.max_query_tokens
        rules = tuple(specified_rules)
        self.rules = rules if settings.introspection else (*rules, NoSchemaIntrospectionCustomRule)
        self.kept = kept
        self._plans: OrderedDict[tuple[str, str | None], OperationPlan | None] = OrderedDict()

    def executor(
        self, query: str, variables: Any, operation_name: Any, extensions: dict[str, Any] | None
    ) -> tuple[OperationPlan, Executor[Context]] | None:
        """The plan and an executor with the variables coerced, or None for Strawberry's path."""
        if not self.enabled or not isinstance(variables, dict | None):
            return None
        if not isinstance(operation_name, str | None):
            return None
        plan = self._plan(query, operation_name)
        if plan is None:
            return None
        executor = self.executor_class.build(
            self.schema._schema,
            plan.document,
            raw_variable_values=variables,
            operation_name=operation_name,
            is_awaitable=optimized_is_awaitable,
            operation_extensions=extensions,
        )
        if isinstance(executor, list):  # variables that do not coerce: Strawberry's path words the errors
            return None
        return plan, executor

    async def execute(
        self, plan: OperationPlan, executor: Executor[Context], context: Context
    ) -> ExecutionResult:
        executor.context_value = context
        result = await await_maybe(executor.execute_operation())
        assert isinstance(result, GraphQLExecutionResult)  # incremental delivery (@defer) is off
        errors = [format_error(error, context.request_id) for error in result.errors or ()] or None
        observe_operation(context.request, plan.name, "mutation", failed=errors is not None)
        return ExecutionResult(data=result.data, errors=errors, extensions=result.extensions)

    def _plan(self, query: str, operation_name: str | None) -> OperationPlan | None:
        key = (query, operation_name)
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = self._make(query, operation_name)
        self._plans[key] = plan
        while len(self._plans) > self.kept:
            self._plans.popitem(last=False)
        return plan

    def _make(self, query: str, operation_name: str | None) -> OperationPlan | None:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return _NO_PLAN
        operation = get_operation_ast(document, operation_name)
        if (
            operation is None
            or operation.operation is not OperationType.MUTATION
            or _has_directives(document)
        ):
            return _NO_PLAN
        schema = self.schema._schema
        if self.limits.check(schema, document) or validate_document(schema, document, self.rules):
            return _NO_PLAN
        return OperationPlan(document, operation, operation_name)


class _DirectiveFinder(Visitor):
    found = False

    def enter_directive(self, node: DirectiveNode, *_: Any) -> object:
        self.found = True
        return BREAK


def _has_directives(document: DocumentNode) -> bool:
    """`@skip`, `@include` and the like change what executes with the variables: not planned."""
    finder = _DirectiveFinder()
    visit(document, finder)
    return finder.found
