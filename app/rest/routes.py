"""The /v1 routes, and the one place where failures become OpenAI error envelopes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.db import DatabaseUnavailable
from app.domain.errors import AccessDenied, Unauthenticated, UserInputError
from app.rest.chat import chat_completions
from app.rest.completions import completions
from app.rest.embeddings import embeddings
from app.rest.errors import RestError, from_gateway
from app.rest.models import list_models, retrieve_model
from app.rest.responses_endpoint import create_response
from app.rest.streaming import STREAMS, DisconnectWatcher
from app.server_keys import OPERATION_NAME, REQUEST_ID
from app.services.gateway.service import as_gateway_error

log = logging.getLogger("modelgate.rest")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ENDPOINTS: list[tuple[str, str, str, Handler]] = [
    ("POST", "/v1/chat/completions", "chat.completions", chat_completions),
    ("POST", "/v1/completions", "completions", completions),
    ("POST", "/v1/embeddings", "embeddings", embeddings),
    ("POST", "/v1/responses", "responses.create", create_response),
    ("GET", "/v1/models", "models.list", list_models),
    ("GET", "/v1/models/{model}", "models.retrieve", retrieve_model),
]


def add_routes(app: web.Application) -> None:
    watcher = app[STREAMS] = DisconnectWatcher()

    async def stop_watching(_app: web.Application) -> None:
        await watcher.close()

    app.on_cleanup.append(stop_watching)
    for method, path, operation, handler in _ENDPOINTS:
        app.router.add_route(method, path, endpoint(operation, handler))
    app.router.add_route("*", "/v1/{tail:.*}", endpoint("unknown", _unknown))


def endpoint(operation: str, handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        request[OPERATION_NAME] = operation
        try:
            return await handler(request)
        except RestError as exc:
            return exc.response()
        except UserInputError as exc:
            return from_gateway(as_gateway_error(exc)).response()
        except Unauthenticated:
            return RestError(
                401, "Incorrect API key provided.", type="authentication_error", code="invalid_api_key"
            ).response()
        except AccessDenied as exc:
            return RestError(
                403, str(exc) or "forbidden", type="permission_error", code="permission_denied"
            ).response()
        except web.HTTPRequestEntityTooLarge as exc:
            return RestError(
                413, exc.text or "the request body is too large", code="body_too_large"
            ).response()
        except DatabaseUnavailable:
            return _unavailable().response()
        except Exception:
            log.exception("unexpected error in %s", operation, extra={"requestId": request.get(REQUEST_ID)})
            return RestError(500, "Unexpected error.", type="server_error", code="internal_error").response()

    return handle


def _unavailable() -> RestError:
    return RestError(
        503,
        "the service is temporarily unavailable",
        type="server_error",
        code="service_unavailable",
        retry_after=1,
    )


async def _unknown(request: web.Request) -> web.StreamResponse:
    known = {path for _, path, _, _ in _ENDPOINTS if "{" not in path}
    if request.path in known or request.path.startswith("/v1/models/"):
        raise RestError(405, f"{request.method} is not allowed on {request.path}", code="method_not_allowed")
    raise RestError(404, f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
