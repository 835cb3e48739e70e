"""Top-level GraphQL errors and user errors.

Top-level `errors` are for client and server faults only; each carries `extensions.code` from the
closed `ErrorCode` set and `extensions.requestId`. Anything unexpected is masked: the client sees
"Unexpected error." and the detail goes to the log under the same request id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from app.api.context import GraphQLInfo, authenticated
from app.api.input_check import refuse_unstorable
from app.db import DatabaseUnavailable
from app.domain.auth import Principal
from app.domain.errors import AccessDenied, Unauthenticated, UserInputError

log = logging.getLogger("modelgate.graphql")

TOO_MANY_TOKENS = "Document contains more than"
# graphql-core repeats the offending input value in coercion errors; it may hold a credential.
_ECHOED_VALUES = (
    (re.compile(r"got invalid value .*?; (?=[A-Z'])", re.DOTALL), "got an invalid value; "),
    (re.compile(r"[,.]? found:? .*$", re.DOTALL | re.IGNORECASE), "."),
)


class ErrorCode(Enum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    # Apollo's automatic persisted queries: the client sends the query text next (persisted_queries.py).
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


class ApiError(Exception):
    """A client or server fault whose message is safe to show."""

    def __init__(self, code: ErrorCode, message: str, extensions: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.extensions = extensions or {}


def classify(error: GraphQLError) -> tuple[ErrorCode, str, dict[str, Any]]:
    """The public code, message and extra extensions for one error."""
    original = error.original_error
    if original is None:
        preset = (error.extensions or {}).get("code")
        if isinstance(preset, str) and preset in ErrorCode.__members__:
            return ErrorCode[preset], error.message, dict(error.extensions or {})
        if TOO_MANY_TOKENS in error.message:  # the parser token limit (MaxTokensLimiter)
            return ErrorCode.QUERY_TOO_COMPLEX, error.message, {}
        return ErrorCode.BAD_USER_INPUT, _without_values(error.message), {}
    if isinstance(original, ApiError):
        return original.code, str(original), original.extensions
    if isinstance(original, Unauthenticated):
        return ErrorCode.UNAUTHENTICATED, "authentication required", {}
    if isinstance(original, AccessDenied):
        return ErrorCode.FORBIDDEN, str(original) or "forbidden", {}
    if isinstance(original, DatabaseUnavailable):
        return ErrorCode.SERVICE_UNAVAILABLE, "the service is temporarily unavailable", {}
    if isinstance(original, UserInputError):
        return ErrorCode.BAD_USER_INPUT, str(original), {}
    if isinstance(original, GraphQLError):
        code, message, extensions = classify(original)
        if code is ErrorCode.BAD_USER_INPUT and error.message != original.message:
            # A variable's coercion error wraps the scalar's: only the outer message names the field.
            message = _without_values(error.message)
        return code, message, extensions
    if isinstance(original, CannotGetOperationTypeError):  # an operationName the document lacks
        return ErrorCode.BAD_USER_INPUT, original.as_http_error_reason(), {}
    if isinstance(original, InvalidOperationTypeError):  # an operation the transport does not serve
        return ErrorCode.BAD_USER_INPUT, original.as_http_error_reason("this transport"), {}
    return ErrorCode.INTERNAL_SERVER_ERROR, "Unexpected error.", {}


def _without_values(message: str) -> str:
    for pattern, replacement in _ECHOED_VALUES:
        message = pattern.sub(replacement, message)
    return message


def format_error(error: GraphQLError, request_id: str) -> GraphQLError:
    code, message, extensions = classify(error)
    if code is ErrorCode.INTERNAL_SERVER_ERROR:
        log.error(
            "unexpected error in a GraphQL operation",
            exc_info=error.original_error or error,
            extra={"requestId": request_id, "path": error.path},
        )
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**extensions, "code": code.value, "requestId": request_id},
    )


class ErrorFormatter(SchemaExtension):
    """Gives every error its code and request id, and masks the unexpected ones."""

    stream_hook_reads_errors_only = True  # a result without errors skips on_stream_result (extension_runner)

    def _process(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            request_id = getattr(self.execution_context.context, "request_id", "")
            result.errors = [format_error(e, request_id) for e in errors]  # type: ignore[attr-defined]

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if self._streamed:
            return  # a subscription: each result was formatted as it went out
        result = self.execution_context.result
        self._process(result)
        if initial := getattr(result, "initial_result", None):
            self._process(initial)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result of a subscription, before it reaches the client."""
        self._streamed = True
        self._process(result)
        yield


# ---- user errors ---------------------------------------------------------------------------------


@strawberry.interface(description="An expected failure of a mutation, about one input field.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path to the input field, e.g. [input, name].")
    message: str


E = TypeVar("E")
T = TypeVar("T")


def user_errors(exc: UserInputError, make: Callable[[str, list[str] | None, str], E]) -> list[E]:
    return [make(e.code.value, list(e.field) if e.field else None, e.message) for e in exc.errors]


class MutationFrame(Generic[E]):
    """What every mutation of an area does around its service call: it authenticates the caller,
    refuses an input that holds a value no column can store, runs the call, and turns expected
    failures into the area's user errors (the rest propagates). A mutation is then its input, its
    service call and its payload."""

    def __init__(self, make_error: Callable[[str, list[str] | None, str], E]) -> None:
        self.make_error = make_error

    async def run(
        self, info: GraphQLInfo, input: object, call: Callable[[Principal], Awaitable[T]]
    ) -> tuple[T | None, list[E]]:
        principal = authenticated(info)
        try:
            refuse_unstorable(input)
            return await call(principal), []
        except UserInputError as exc:
            return None, user_errors(exc, self.make_error)
