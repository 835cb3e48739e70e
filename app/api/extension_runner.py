"""Strawberry's extension runner, handing each hook only the extensions that implement it.

Strawberry builds a context manager per hook per operation, and per result of a subscription,
asking every extension whether it has the hook and wrapping the hook anew each time; it also
collects `get_results` from every extension for every result. With six extensions and a stream
sending a result per chunk, that cost more than what the hooks do. Which extensions implement what
is known from their classes, and so is how each hook is wrapped (Strawberry decorates the hook
function anew for every operation: `contextmanager` and `update_wrapper` for each hook of each
extension); an operation only binds its extensions to them. A subscription's stream-result hooks
are wrapped once and used for each of its results.

A subscription's results completed by plan (`app.api.planned_streams`) have no errors: the
stream-result hooks of extensions that only look at errors (`ERRORS_ONLY_STREAM_HOOK`) are left out
for them, and the extensions' results are only collected when some extension has any."""

from __future__ import annotations

import contextlib
import functools
import inspect
from asyncio import iscoroutinefunction
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    StreamResultContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

Manager = TypeVar("Manager", bound=ExtensionContextManagerBase)
Wrap = Callable[[SchemaExtension], WrappedHook]
# For each extension class and hook: None when the class does not implement it, else how to wrap
# one instance's hook (what Strawberry's `get_hook` builds, with the decorating done once).
_WRAPS: dict[tuple[type, str], Wrap | None] = {}
# The indices of the extensions implementing a hook, for a schema's list of extension classes.
_IMPLEMENTING: dict[tuple[tuple[type, ...], str], tuple[int, ...]] = {}
# An extension class with this attribute true: its on_stream_result does nothing to a result without errors.
ERRORS_ONLY_STREAM_HOOK = "stream_hook_reads_errors_only"


def _wrap(
    extension_class: type[SchemaExtension], hook: str
) -> Callable[[SchemaExtension], WrappedHook] | None:
    key = (extension_class, hook)
    if key not in _WRAPS:
        _WRAPS[key] = _make_wrap(extension_class, hook)
    return _WRAPS[key]


def _make_wrap(
    extension_class: type[SchemaExtension], hook: str
) -> Callable[[SchemaExtension], WrappedHook] | None:
    """As `ExtensionContextManagerBase.get_hook` wraps a hook, for every instance of the class."""
    function = getattr(extension_class, hook)
    if function is getattr(SchemaExtension, hook):
        return None
    if inspect.isgeneratorfunction(function):
        manager: Callable[..., Any] = contextlib.contextmanager(function)
        is_async = False
    elif inspect.isasyncgenfunction(function):
        manager, is_async = contextlib.asynccontextmanager(function), True
    elif not callable(function):
        raise ValueError(f"Hook {hook} on {extension_class} must be callable, received {function!r}")
    elif iscoroutinefunction(function):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await function(extension)
            yield

        manager, is_async = awaited, True
    else:

        @contextlib.contextmanager
        def called(extension: SchemaExtension) -> Iterator[None]:
            function(extension)
            yield

        manager, is_async = called, False

    def wrap(extension: SchemaExtension) -> WrappedHook:
        return WrappedHook(extension=extension, hook=functools.partial(manager, extension), is_async=is_async)

    return wrap


def _with_hooks(manager_class: type[Manager], hooks: list[WrappedHook]) -> Manager:
    """Strawberry's context manager for a hook, given the hooks wrapped already."""
    manager = manager_class.__new__(manager_class)
    manager.hooks = hooks
    manager.default_hook = getattr(SchemaExtension, manager_class.HOOK_NAME)
    return manager


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
        self._classes = tuple(type(extension) for extension in self.extensions)
        self._stream_result_hooks: list[WrappedHook] | None = None
        self._planned_result_hooks: list[WrappedHook] | None = None

    def _with(self, hook: str) -> list[SchemaExtension]:
        key = (self._classes, hook)
        indices = _IMPLEMENTING.get(key)
        if indices is None:
            indices = _IMPLEMENTING[key] = tuple(
                index for index, cls in enumerate(self._classes) if _wrap(cls, hook) is not None
            )
        return [self.extensions[index] for index in indices]

    def _hooks(self, hook: str) -> list[WrappedHook]:
        hooks = []
        for extension in self._with(hook):
            wrap = _wrap(type(extension), hook)
            assert wrap is not None
            hooks.append(wrap(extension))
        return hooks

    def operation(self) -> OperationContextManager:
        return _with_hooks(OperationContextManager, self._hooks("on_operation"))

    def validation(self) -> ValidationContextManager:
        return _with_hooks(ValidationContextManager, self._hooks("on_validate"))

    def parsing(self) -> ParsingContextManager:
        return _with_hooks(ParsingContextManager, self._hooks("on_parse"))

    def executing(self) -> ExecutingContextManager:
        return _with_hooks(ExecutingContextManager, self._hooks("on_execute"))

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
