"""Names each GraphQL operation for the access log and the metrics."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from app.metrics import GRAPHQL_OPERATIONS, labelled
from app.server_keys import OPERATION_NAME


class OperationObserver(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        name = self.execution_context.operation_name or "anonymous"
        request = getattr(context, "request", None)
        if request is not None and OPERATION_NAME not in request:
            request[OPERATION_NAME] = name
        result = self.execution_context.result
        outcome = "error" if getattr(result, "errors", None) else "ok"
        labelled(GRAPHQL_OPERATIONS, self._operation_type(), outcome).inc()

    def _operation_type(self) -> str:
        try:
            return self.execution_context.operation_type.value
        except RuntimeError:  # the document did not parse
            return "unknown"
