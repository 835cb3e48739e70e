"""OpenAI's error envelope, and how the gateway's expected failures map onto HTTP statuses.

Every failure of the REST front door is `{"error": {"message", "type", "param", "code"}}` with a
fitting status; the messages are the gateway's (safe to show), never a stack trace. This module
only *presents* errors: which failures exist, and when, is the gateway's business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import orjson
from aiohttp import web
from pydantic import ValidationError

from app.domain.calls import ProviderErrorCode
from app.domain.gateway import GatewayError, GatewayErrorCode
from app.rest.streaming import frame

# OpenAI's `param` for the gateway's input field names (the GraphQL input's camelCase).
_PARAMS = {
    "model": "model",
    "messages": "messages",
    "prompt": "prompt",
    "texts": "input",
    "temperature": "temperature",
    "maxTokens": "max_tokens",
    "systemPrompt": "messages",
    "projectId": "X-Modelgate-Project",
    "tools": "tools",
    "toolChoice": "tool_choice",
    "parallelToolCalls": "parallel_tool_calls",
    "responseFormat": "response_format",
}
# Deeper in a path: the gateway's names whose OpenAI name differs (an image's data and media type
# are both in OpenAI's data URL).
_SEGMENTS = {
    "parts": "content",
    "toolCalls": "tool_calls",
    "toolCallId": "tool_call_id",
    "image": "image_url",
    "data": "url",
    "mediaType": "url",
}
# Fields OpenAI's shapes nest one level deeper: (container, field) -> the level between.
_NESTED = {
    ("tools", "name"): "function",
    ("tools", "description"): "function",
    ("tools", "parameters"): "function",
    ("tool_calls", "name"): "function",
    ("tool_calls", "arguments"): "function",
    ("response_format", "name"): "json_schema",
    ("response_format", "schema"): "json_schema",
}

# (status, type, code) per gateway code; None for the code: the gateway code in lower case.
_STATUS: dict[GatewayErrorCode, tuple[int, str, str | None]] = {
    GatewayErrorCode.INVALID: (400, "invalid_request_error", None),
    GatewayErrorCode.REQUIRED: (400, "invalid_request_error", None),
    GatewayErrorCode.TOO_LONG: (400, "invalid_request_error", None),
    GatewayErrorCode.OUT_OF_RANGE: (400, "invalid_request_error", None),
    GatewayErrorCode.MAX_TOKENS_TOO_LARGE: (400, "invalid_request_error", None),
    GatewayErrorCode.CONTEXT_TOO_LONG: (400, "invalid_request_error", "context_length_exceeded"),
    GatewayErrorCode.CONTENT_FILTERED: (400, "invalid_request_error", "content_filter"),
    GatewayErrorCode.MODEL_GROUP_MISMATCH: (400, "invalid_request_error", None),
    GatewayErrorCode.NOT_FOUND: (404, "invalid_request_error", "model_not_found"),
    GatewayErrorCode.NO_DEFAULT_MODEL: (404, "invalid_request_error", "model_not_found"),
    GatewayErrorCode.MODEL_DISABLED: (404, "invalid_request_error", None),
    GatewayErrorCode.MODEL_END_OF_LIFE: (404, "invalid_request_error", None),
    GatewayErrorCode.PLAN_UPGRADE_REQUIRED: (403, "permission_error", None),
    GatewayErrorCode.QUOTA_EXCEEDED: (402, "insufficient_quota", "insufficient_quota"),
    GatewayErrorCode.RATE_LIMITED: (429, "rate_limit_error", "rate_limit_exceeded"),
    GatewayErrorCode.TOO_MANY_STREAMS: (429, "rate_limit_error", None),
    GatewayErrorCode.SERVICE_UNAVAILABLE: (503, "server_error", "service_unavailable"),
    GatewayErrorCode.UNAUTHENTICATED: (401, "authentication_error", "invalid_api_key"),
}


class RestError(Exception):
    """A failure to answer in OpenAI's envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.retryable = retryable

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        if self.retryable is not None:
            # The OpenAI SDKs obey this: no pointless retries of a failure that will not go away.
            headers["x-should-retry"] = "true" if self.retryable else "false"
        return headers

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            body=orjson.dumps(self.body()),
            content_type="application/json",
            headers=self.headers(),
        )

    def frame(self) -> bytes:
        """The error as an SSE frame, for a stream that already began (OpenAI's SDKs raise it)."""
        return frame(self.body())


def from_gateway(error: GatewayError) -> RestError:
    if error.code is GatewayErrorCode.PROVIDER_ERROR:
        return _provider_failure(error)
    status, kind, code = _STATUS.get(error.code, (400, "invalid_request_error", None))
    if error.code is GatewayErrorCode.NOT_FOUND and error.field and error.field[-1] == "projectId":
        code = "project_not_found"
    retry_after = error.retry_after
    if status == 429 and retry_after is None:
        retry_after = 1.0
    return RestError(
        status,
        error.message,
        type=kind,
        code=code or error.code.value.lower(),
        param=param_of(error.field),
        retry_after=retry_after,
    )


def _provider_failure(error: GatewayError) -> RestError:
    """After retries and fallbacks: the upstream's verdict, as a gateway in front of it reports it."""
    provider_code = error.provider_code
    if provider_code in (ProviderErrorCode.RATE_LIMITED, ProviderErrorCode.OVERLOADED):
        status = 503
    elif provider_code == ProviderErrorCode.TIMEOUT:
        status = 504
    elif provider_code == ProviderErrorCode.BAD_REQUEST:
        return RestError(400, error.message, code="provider_rejected_request")
    else:
        status = 502
    return RestError(
        status,
        error.message,
        type="server_error",
        code="provider_error",
        retry_after=error.retry_after,
        retryable=error.retryable,
    )


def param_of(field: Sequence[str] | None) -> str | None:
    """A gateway input field as OpenAI's parameter: ("input", "messages", "0", "content") ->
    "messages[0].content", ("input", "maxTokens") -> "max_tokens", ("input", "messages", "1",
    "toolCalls", "0", "arguments") -> "messages[1].tool_calls[0].function.arguments"."""
    if not field:
        return None
    parts = list(field[1:] if field[0] == "input" else field)
    if not parts:
        return None
    path = [_PARAMS.get(parts[0], parts[0])]
    if path[0] == "tool_choice":  # OpenAI names the choice as a whole
        return path[0]
    container = path[0]
    for part in parts[1:]:
        if part.isdigit():
            path.append(part)
            continue
        if between := _NESTED.get((container, part)):
            path.append(between)
        path.append(_SEGMENTS.get(part, part))
        container = path[-1]
    return _path(path)


def _path(parts: Sequence[str]) -> str | None:
    if not parts:
        return None
    text = parts[0]
    for part in parts[1:]:
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


def from_validation(exc: ValidationError) -> RestError:
    """The first problem pydantic found, with OpenAI's parameter path (for a value of a union,
    such as a string or a list of strings, the most precise of the members' complaints)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid" or (
        first["type"] in ("model_type", "model_attributes_type") and not first["loc"]
    ):
        return RestError(
            400,
            "We could not parse the JSON body of your request: it must be a JSON object. "
            "See https://platform.openai.com/docs/api-reference.",
        )
    location = _location(first["loc"])
    for other in errors[1:]:
        deeper = _location(other["loc"])
        if deeper[: len(location)] == location and len(deeper) > len(location):
            first, location = other, deeper
    param = _path(location)
    if first["type"] == "missing" and param:
        return missing(param)
    if first["type"] == "extra_forbidden" and param:
        return RestError(400, f"Unrecognized request argument supplied: {param}", param=param)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] in ("model_type", "model_attributes_type"):
        message = "expected an object"  # not pydantic's, which names our class
    return RestError(400, f"{param}: {message}" if param else message, param=param, code="invalid_value")


def _location(loc: Sequence[int | str]) -> list[str]:
    return [str(p) for p in loc if not _is_union_tag(p)]


def _is_union_tag(part: int | str) -> bool:
    """pydantic names union members in error locations (`str`, `list[…]`, a model's class name):
    not OpenAI's path, whose names are all lower case."""
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool") or "[" in part or part[:1].isupper()
    )


def missing(param: str) -> RestError:
    return RestError(
        400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def invalid(param: str, why: str) -> RestError:
    return RestError(400, f"Invalid '{param}': {why}.", param=param, code="invalid_value")
