"""Errors that Strawberry's transports make themselves, outside the schema and so outside
ErrorFormatter, given the shape of every other error: a code from the closed set and the request id.

- WebSocket messages, either protocol: "Subscription limit reached" (RATE_LIMITED) and any other
  error sent without a code (BAD_USER_INPUT); a malformed client message is refused as the protocol
  says (graphql-transport-ws closes with 4400; legacy graphql-ws answers an error for the
  operation) instead of ending the socket's handler with an exception.
- HTTP: a body that is not a JSON object is refused (400) by Strawberry's own refusal path, which
  `app.api.http_view` answers as a GraphQL error with BAD_USER_INPUT.

The WebSocket handlers that apply these are in `app.api.websocket_handlers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException

from app.api.errors import ErrorCode

SUBSCRIPTION_LIMIT = "Subscription limit reached"
# Messages about one operation (graphql-transport-ws, then legacy graphql-ws), and those that start one.
_OPERATION_MESSAGES = ("subscribe", "complete", "start", "stop")
_STARTS = ("subscribe", "start")


def coded(error: Mapping[str, Any], request_id: str, max_operations: int | None) -> dict[str, Any]:
    """A formatted error with a code and the request id (an error that has a code is left as it is,
    apart from the request id)."""
    extensions = dict(error.get("extensions") or {})
    message = str(error.get("message", ""))
    if "code" not in extensions:
        if message == SUBSCRIPTION_LIMIT:
            extensions["code"] = ErrorCode.RATE_LIMITED.value
            message = f"At most {max_operations} operations may run at once on one connection."
        else:
            extensions["code"] = ErrorCode.BAD_USER_INPUT.value
    extensions.setdefault("requestId", request_id)
    return {**error, "message": message, "extensions": extensions}


def malformed(message: object) -> str | None:
    """What is wrong with a client's WebSocket message, if its shape is wrong."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message must be a JSON object with a type"
    kind = message["type"]
    if kind in _OPERATION_MESSAGES and not isinstance(message.get("id"), str):
        return f"a {kind} message needs an id"
    if kind not in _STARTS:
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return f"a {kind} message needs a payload"
    extensions = payload.get("extensions")
    if not isinstance(extensions, dict | None):
        return "the payload's extensions must be an object or null"
    persisted = extensions is not None and "persistedQuery" in extensions  # the text may be left out
    if not isinstance(payload.get("query"), str) and not (persisted and payload.get("query") is None):
        return "the payload's query must be a string"
    if not isinstance(payload.get("variables"), dict | None):
        return "the payload's variables must be an object or null"
    if not isinstance(payload.get("operationName"), str | None):
        return "the payload's operationName must be a string or null"
    return None


def with_codes(message: Mapping[str, Any], request_id: str, max_operations: int | None) -> Mapping[str, Any]:
    """A server message whose errors all have a code and the request id."""
    payload = message.get("payload")
    if message["type"] in ("error", "connection_error"):
        if isinstance(payload, list):  # graphql-transport-ws
            payload = [coded(e, request_id, max_operations) for e in payload]
        elif isinstance(payload, dict):  # legacy graphql-ws
            payload = coded(payload, request_id, max_operations)
    elif message["type"] in ("next", "data") and isinstance(payload, dict) and payload.get("errors"):
        payload = {**payload, "errors": [coded(e, request_id, max_operations) for e in payload["errors"]]}
    else:
        return message
    return {**message, "payload": payload}


def json_object(value: object) -> object:
    """A decoded request body (or `variables`, `extensions`): a JSON object, or a list (a batch,
    which Strawberry refuses with its own message)."""
    if isinstance(value, dict | list):
        return value
    kind = "null" if value is None else {str: "a string", bool: "a boolean"}.get(type(value), "a number")
    raise HTTPException(400, f"Expected a JSON object, got {kind}.")
