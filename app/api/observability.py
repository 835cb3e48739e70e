"""Names each GraphQL operation for the access log and the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from app.metrics import GRAPHQL_OPERATIONS, labelled
from app.server_keys import OPERATION_NAME


class OperationObserver(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        request = getattr(self.execution_context.context, "request", None)
        failed = bool(getattr(self.execution_context.result, "errors", None))
        observe_operation(
            request, self.execution_context.operation_name, self._operation_type(), failed=failed
        )

    def _operation_type(self) -> str:
        try:
            return self.execution_context.operation_type.value
        except RuntimeError:  # the document did not parse
            return "unknown"


def observe_operation(request: Any, name: str | None, operation_type: str, *, failed: bool) -> None:
    """The operation's name for the access log (the first of a socket's names it), and its count."""
    if request is not None and OPERATION_NAME not in request:
        request[OPERATION_NAME] = name or "anonymous"
    labelled(GRAPHQL_OPERATIONS, operation_type, "error" if failed else "ok").inc()
