"""POST /v1/embeddings: one gateway `embed` call. Vectors as JSON floats, or with
`encoding_format: "base64"` (what OpenAI's SDKs ask for by default) as little-endian float32."""

from __future__ import annotations

import base64
import struct

from aiohttp import web

from app.domain.gateway import ModelRef
from app.domain.ids import model_global_id
from app.rest.caller import body_of, caller_of
from app.rest.headers import call_headers
from app.rest.responses import json_response, modelgate_extension
from app.rest.schemas import EmbeddingRequest
from app.services.gateway.requests import EmbedCall


async def embeddings(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    body = await body_of(request, EmbeddingRequest)
    call = EmbedCall(texts=body.texts, model=ModelRef.parse(body.model), project_id=caller.project_id)
    result = await caller.services.gateway.embed(caller.principal, call, caller.request_id)
    as_base64 = body.encoding_format == "base64"
    data = [
        {"object": "embedding", "index": index, "embedding": _base64(vector) if as_base64 else vector}
        for index, vector in enumerate(result.vectors)
    ]
    tokens = result.usage.input_tokens
    return json_response(
        {
            "object": "list",
            "data": data,
            "model": model_global_id(result.served.record),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "modelgate": modelgate_extension(
                caller.request_id, result.requested, result.served, result.credits, result.warnings
            ),
        },
        headers=call_headers(result.served, result.warnings),
    )


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
