"""OpenAI-format embeddings (`POST {base}/embeddings`) for EMBEDDING-group models; OpenAI, Azure,
Mistral and compatible servers share the shape (reference §1.3, 6).

`encoding_format` is left to the server's default (float); a base64 answer (little-endian float32,
what the openai SDK asks for) is decoded too.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncGenerator
from typing import Any

from app.domain.calls import ProviderError, ProviderErrorCode, StreamEvent, Usage
from app.providers.base import ChatRequest, Completion, Embeddings, EmbedRequest
from app.providers.openai_wire import OpenAIWireAdapter, malformed, parse_usage


class OpenAIEmbeddingsAdapter(OpenAIWireAdapter):
    async def _embed(self, request: EmbedRequest) -> Embeddings:
        answer = await self._post("embeddings", {"model": self.endpoint.model, "input": list(request.texts)})
        items = answer.get("data")
        if not isinstance(items, list) or len(items) != len(request.texts):
            raise malformed("the provider sent a different number of embeddings")
        ordered = sorted(items, key=lambda item: int(item["index"]))
        return Embeddings(
            vectors=[_vector(item["embedding"]) for item in ordered],
            usage=parse_usage(answer.get("usage")) or Usage(),  # prompt_tokens only
        )

    async def _complete(self, request: ChatRequest) -> Completion:
        raise _not_a_chat_model()

    def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        raise _not_a_chat_model()


def _vector(raw: Any) -> list[float]:
    if isinstance(raw, str):
        packed = base64.b64decode(raw)
        return list(struct.unpack(f"<{len(packed) // 4}f", packed))
    if isinstance(raw, list):
        return [float(x) for x in raw]
    raise malformed("the provider sent a malformed embedding")


def _not_a_chat_model() -> ProviderError:
    return ProviderError(
        ProviderErrorCode.BAD_REQUEST, "embedding models cannot generate text", retryable=False
    )
