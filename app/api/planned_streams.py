"""A subscription's events from its resolver to the transport in one loop, each completed by its
plan (`app.api.event_plans`) and serialized once.

Strawberry hands every event of a subscription through graphql-core's response stream (an async
generator mapping the resolver's events, a copy of the executor per event, a new ExecutionResult)
and then through its own per-result pipeline (another async generator, the ExecutionResult made
again, the extensions' results, the stream-result hooks wrapped around each): per chunk of a
chatStream, several times what the plan that completes the event costs. Here the resolver's events
are read by the operation's own generator: an event its plan completes becomes a `PlannedResult`,
whose `payload` (the `next` message's payload as JSON) the transports write as it is; any other
event goes through graphql-core and Strawberry's per-result pipeline exactly as before.

A planned result still gets what the operation's hooks read: it becomes
`execution_context.result` (OperationObserver labels the operation by the last one), carries the
extensions' results when an extension has any, and passes through the stream-result hooks of every
extension except those that only look at a result's errors (`ERRORS_ONLY_STREAM_HOOK`), since a
planned result has none. Everything before the first event (parsing, validation, the operation and
execute hooks, the subscription's start and its errors) is Strawberry's, unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution import create_source_event_stream
from graphql.execution.middleware import MiddlewareManager
from strawberry.exceptions import MissingQueryError
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import StreamResult, _coerce_error, _coerce_pre_execution_error
from strawberry.types.execution import ExecutionContext, ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing
from strawberry.utils.await_maybe import await_maybe

from app.api.event_plans import PlannedExecutor
from app.api.extension_runner import LeanExtensionsRunner


@dataclass
class PlannedResult(ExecutionResult):
    """A subscription event completed by its plan: no errors, and its payload serialized once."""

    payload: bytes = field(default=b"", repr=False)  # {"data": …, "extensions": …} as JSON


def planned_result(data: dict[str, Any], extensions: dict[str, Any] | None) -> PlannedResult:
    body: dict[str, Any] = {"data": data, "extensions": extensions} if extensions else {"data": data}
    return PlannedResult(data=data, errors=None, extensions=extensions, payload=orjson.dumps(body))


class PlannedSubscriptions(strawberry.Schema):
    """A schema whose subscriptions run their events by plan (its executor: PlannedExecutor)."""

    async def _stream(  # Strawberry's, but for a subscription's events
        self,
        execution_context: ExecutionContext,
        extensions_runner: SchemaExtensionsRunner,
        middleware_manager: MiddlewareManager,
        execution_context_class: type[Any] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> StreamResult:
        ctx, runner = execution_context, extensions_runner
        async with runner.operation():
            try:
                initial_error = await self._prepare_operation_async(ctx, runner)
            except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError) as error:
                initial_error = PreExecutionError(data=None, errors=[_coerce_pre_execution_error(error)])
            if initial_error:
                initial_error.extensions = await runner.get_extensions_results(ctx)
                result = await self._handle_execution_result(ctx, initial_error, runner)
                async with runner.on_stream_result(result):
                    yield result
                return
            if ctx.operation_type is not OperationType.SUBSCRIPTION:
                results = self._stream_non_subscription(ctx, runner, middleware_manager, operation_extensions)
                async with aclosing(results):
                    async for answer in results:
                        async with runner.on_stream_result(answer):
                            yield answer
                return
            assert isinstance(runner, LeanExtensionsRunner)  # ModelgateSchema's
            try:
                async with runner.executing():
                    started = await self._subscribe(ctx, middleware_manager, operation_extensions)
                if isinstance(started, GraphQLExecutionResult):  # the subscription did not start
                    unstarted = PreExecutionError(data=None, errors=started.errors)
                    result = await self._handle_execution_result(ctx, unstarted, runner)
                    async with runner.on_stream_result(result):
                        yield result
                    return
                executor, events = started
                try:
                    async with aclosing(events):
                        async for event in events:
                            data = executor.planned_data(event)
                            if data is None:
                                result = await self._unplanned(ctx, executor, event, runner)
                                async with runner.on_stream_result(result):
                                    yield result
                                continue
                            planned = await _planned(ctx, data, runner)
                            hooks = runner.on_planned_result(planned)
                            if hooks is None:
                                yield planned
                                continue
                            async with hooks:
                                yield planned
                except Exception as exc:  # as Strawberry: an error result, not a crash
                    result = await self._handle_execution_result(ctx, _failed(exc), runner)
                    async with runner.on_stream_result(result):
                        yield result
            except Exception as exc:  # raised in an on_execute hook
                result = await self._handle_execution_result(ctx, _failed(exc), runner)
                async with runner.on_stream_result(result):
                    yield result

    async def _subscribe(
        self,
        execution_context: ExecutionContext,
        middleware_manager: MiddlewareManager,
        operation_extensions: dict[str, Any] | None,
    ) -> GraphQLExecutionResult | tuple[PlannedExecutor, AsyncIterable[Any]]:
        """graphql-core's `subscribe` as Strawberry calls it, up to the resolver's events (without
        graphql-core's response stream that executes them): the executor and the events, or the
        errors that kept the subscription from starting."""
        executor_class = self.execution_context_class
        assert executor_class is not None
        assert issubclass(executor_class, PlannedExecutor)
        assert execution_context.graphql_document is not None
        executor = executor_class.build(
            self._schema,
            execution_context.graphql_document,
            root_value=execution_context.root_value,
            context_value=execution_context.context,
            raw_variable_values=execution_context.variables,
            operation_name=execution_context.operation_name,
            middleware=middleware_manager,
            operation_extensions=operation_extensions,
        )
        if isinstance(executor, list):
            return GraphQLExecutionResult(data=None, errors=executor)
        assert isinstance(executor, PlannedExecutor)
        events = await await_maybe(create_source_event_stream(executor))
        if isinstance(events, GraphQLExecutionResult):
            return events
        return executor, executor.cancellable_iterable(cast(AsyncIterable[Any], events))

    async def _unplanned(
        self,
        execution_context: ExecutionContext,
        executor: PlannedExecutor,
        event: Any,
        extensions_runner: SchemaExtensionsRunner,
    ) -> ExecutionResult:
        result = await await_maybe(executor.execute_unplanned(event))
        return await self._handle_execution_result(execution_context, result, extensions_runner)


async def _planned(
    execution_context: ExecutionContext, data: dict[str, Any], extensions_runner: LeanExtensionsRunner
) -> PlannedResult:
    """What Strawberry's per-result pipeline makes of a result without errors, minus the work that
    changes nothing for one (the extensions' results are only collected when there are some)."""
    extensions: dict[str, Any] = {}
    if extensions_runner.has_extensions_results(execution_context):
        extensions = await extensions_runner.get_extensions_results(execution_context)
    result = planned_result(data, extensions)
    execution_context.result = result
    return result


def _failed(exc: Exception) -> GraphQLExecutionResult:
    return GraphQLExecutionResult(data=None, errors=[_coerce_error(exc)])
