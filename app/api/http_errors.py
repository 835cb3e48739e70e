"""A top-level GraphQL error as an HTTP response, under the media type the client accepts: for the
view's refusals and for the middleware's (413, 503, 500)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from app.api.errors import ErrorCode
from app.api.media_types import Media, response_type
from app.server_keys import REQUEST_ID


def error_response(
    request: web.Request,
    status: int,
    code: ErrorCode,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """No `data` under application/graphql-response+json (nothing was executed); `"data": null`
    under application/json, as it always was."""
    media = response_type(request.headers.get("Accept"))
    error = {"message": message, "extensions": {"code": code.value, "requestId": request.get(REQUEST_ID, "")}}
    body = {"errors": [error]} if media is Media.GRAPHQL_RESPONSE_JSON else {"data": None, "errors": [error]}
    response = web.Response(status=status, body=orjson.dumps(body), headers=headers)
    response.content_type = media.value
    response.charset = "utf-8"
    return response
