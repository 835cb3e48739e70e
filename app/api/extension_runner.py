"""Strawberry's extension runner, handing each hook only the extensions that implement it.

Strawberry builds a context manager per hook per operation, and per result of a subscription,
asking every extension whether it has the hook and wrapping the hook anew each time; it also
collects `get_results` from every extension for every result. With six extensions and a stream
sending a result per chunk, that cost more than what the hooks do. Which extensions implement what
is known from their classes; a subscription's stream-result hooks are wrapped once and used for
each of its results.

A subscription's results completed by plan (`app.api.planned_streams`) have no errors: the
stream-result hooks of extensions that only look at errors (`ERRORS_ONLY_STREAM_HOOK`) are left out
for them, and the extensions' results are only collected when some extension has any."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    OperationContextManager,
    ParsingContextManager,
    StreamResultContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

_IMPLEMENTS: dict[tuple[type, str], bool] = {}
# An extension class with this attribute true: its on_stream_result does nothing to a result without errors.
ERRORS_ONLY_STREAM_HOOK = "stream_hook_reads_errors_only"


def _implements(extension_class: type[SchemaExtension], hook: str) -> bool:
    known = _IMPLEMENTS.get((extension_class, hook))
    if known is None:
        known = _IMPLEMENTS[(extension_class, hook)] = getattr(extension_class, hook) is not getattr(
            SchemaExtension, hook
        )
    return known


class _StreamResultHooks(StreamResultContextManager):
    """The stream-result hooks of one subscription, wrapped already, around one result."""

    def __init__(self, hooks: list[WrappedHook], result: Any) -> None:  # the hooks are known
        self.hooks = hooks
        self.result = result


class LeanExtensionsRunner(SchemaExtensionsRunner):
    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        self._implementing: dict[str, list[SchemaExtension]] = {}
        self._stream_result_hooks: list[WrappedHook] | None = None
        self._planned_result_hooks: list[WrappedHook] | None = None

    def _with(self, hook: str) -> list[SchemaExtension]:
        found = self._implementing.get(hook)
        if found is None:
            found = self._implementing[hook] = [e for e in self.extensions if _implements(type(e), hook)]
        return found

    def operation(self) -> OperationContextManager:
        return OperationContextManager(self._with("on_operation"))

    def validation(self) -> ValidationContextManager:
        return ValidationContextManager(self._with("on_validate"))

    def parsing(self) -> ParsingContextManager:
        return ParsingContextManager(self._with("on_parse"))

    def executing(self) -> ExecutingContextManager:
        return ExecutingContextManager(self._with("on_execute"))

    def on_stream_result(self, result: Any) -> StreamResultContextManager:
        if self._stream_result_hooks is None:
            self._stream_result_hooks = StreamResultContextManager(
                self._with("on_stream_result"), result
            ).hooks
        return _StreamResultHooks(self._stream_result_hooks, result)

    def on_planned_result(self, result: Any) -> StreamResultContextManager | None:
        """The stream-result hooks a result without errors needs, or None when there are none."""
        if self._planned_result_hooks is None:
            hooked = self._with("on_stream_result")
            needed = [e for e in hooked if not getattr(e, ERRORS_ONLY_STREAM_HOOK, False)]
            self._planned_result_hooks = StreamResultContextManager(needed, result).hooks
        hooks = self._planned_result_hooks
        return _StreamResultHooks(hooks, result) if hooks else None

    def has_extensions_results(self, ctx: ExecutionContext) -> bool:
        return bool(self._with("get_results") or ctx.extensions_results)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._with("get_results"):
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data
