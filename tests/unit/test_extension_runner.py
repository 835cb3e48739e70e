"""The lean extension runner (app/api/extension_runner.py) runs every hook as Strawberry's runner
does, in the same order, with each hook's kind (generator, async generator, plain or async
function) and each operation's own extension instances."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from app.api.extension_runner import LeanExtensionsRunner

LOG: list[str] = []
# The execution contexts the hooks saw, kept alive: an id alone could be reused once one is freed.
CONTEXTS: list[Any] = []


class Generators(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        LOG.append("operation in")
        CONTEXTS.append(self.execution_context)
        yield
        LOG.append(f"operation out {self.execution_context.result is not None}")

    def on_execute(self) -> Iterator[None]:
        LOG.append("execute in")
        yield
        LOG.append("execute out")


class AsyncGenerators(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        LOG.append("async operation in")
        yield
        LOG.append("async operation out")

    async def on_validate(self) -> AsyncIterator[None]:
        LOG.append("async validate in")
        yield
        LOG.append("async validate out")


class Functions(SchemaExtension):
    def on_parse(self) -> None:  # type: ignore[override]
        LOG.append(f"parse {self.execution_context.query}")

    async def on_execute(self) -> None:  # type: ignore[override]
        LOG.append("async execute")

    def get_results(self) -> dict[str, Any]:
        return {"functions": len(LOG)}


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        LOG.append("resolve")
        return "hi"


class Lean(strawberry.Schema):
    def create_extensions_runner(self, execution_context: Any, extensions: Any) -> LeanExtensionsRunner:
        return LeanExtensionsRunner(execution_context, extensions)


EXTENSIONS = [Generators, AsyncGenerators, Functions]


async def _run(schema: strawberry.Schema, query: str) -> tuple[list[str], Any]:
    LOG.clear()
    result = await schema.execute(query)
    return list(LOG), (result.data, [e.message for e in result.errors or []], result.extensions)


@pytest.mark.parametrize("query", ["{ hello }", "{ nope }", "{ hello"])
async def test_hooks_run_as_strawberrys_runner_runs_them(query: str) -> None:
    lean = Lean(query=Query, extensions=EXTENSIONS)
    strawberrys = strawberry.Schema(query=Query, extensions=EXTENSIONS)
    expected = await _run(strawberrys, query)
    assert expected[0]  # the hooks did run
    for _ in range(2):  # the second time with the wrapping known
        assert await _run(lean, query) == expected


async def test_each_operation_binds_its_own_extension_instances() -> None:
    lean = Lean(query=Query, extensions=EXTENSIONS)
    CONTEXTS.clear()
    await lean.execute("{ hello }")
    await lean.execute("{ hello }")
    first, second = CONTEXTS
    assert first is not second
