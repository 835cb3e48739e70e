"""AWS Bedrock Runtime: Converse and ConverseStream for CHAT and COMPLETION models, InvokeModel with
Amazon Titan text-embedding bodies for EMBEDDING models, through aioboto3.

Which model: `bedrock://<model-id>` model URLs (an id, an inference-profile id or an ARN), else the
target's providerModelId. Which region: the `region` setting, else the runtime's `bedrock_region`,
else the AWS environment's. Authentication is the AWS credential chain; the model's `token` only
says "use IAM" and is never sent anywhere. Clients and retries: see `bedrock_clients`. Tools, images
and structured output (a forced tool): see `bedrock_messages` and `tool_use`.

Factory: `bedrock_adapter(target, runtime) -> ProviderAdapter`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from app.domain.calls import (
    Finished,
    ProviderError,
    ProviderErrorCode,
    StreamEvent,
    Usage,
    UsageUpdate,
)
from app.domain.enums import FinishReason, Provider
from app.domain.models import bedrock_model_id
from app.providers.base import (
    ChatRequest,
    Completion,
    Embeddings,
    EmbedRequest,
    ProviderAdapter,
    ProviderTarget,
)
from app.providers.bedrock_clients import BedrockClients, bedrock_clients
from app.providers.bedrock_errors import bedrock_errors
from app.providers.bedrock_messages import completion_of, converse_arguments
from app.providers.http import Timeouts, UpstreamHttp
from app.providers.runtime import ProviderRuntime
from app.providers.tool_use import StreamedBlocks, plan_tools

# Embedding calls are one InvokeModel per text; this many run at once.
_EMBED_CONCURRENCY = 8

_FINISH_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "content_filtered": FinishReason.CONTENT_FILTER,
    "guardrail_intervened": FinishReason.CONTENT_FILTER,
    "tool_use": FinishReason.TOOL_CALLS,
}


class BedrockAdapter(ProviderAdapter):
    def __init__(
        self,
        target: ProviderTarget,
        clients: BedrockClients,
        region: str | None,
        timeouts: Timeouts,
        http: UpstreamHttp,  # for image URLs only: Converse takes an image's bytes
    ) -> None:
        super().__init__(target)
        self._clients = clients
        self._region = region
        self._timeouts = timeouts
        self._http = http

    async def _client(self) -> Any:
        """The region's client, signing with the server's AWS identity: the platform's credential,
        which only system models and their variants may use."""
        if not self.target.credentials.platform_identity:
            raise ProviderError(
                ProviderErrorCode.AUTH_FAILED,
                "AWS Bedrock is called with the platform's AWS identity, which serves system models "
                "and their variants only",
                retryable=False,
            )
        return await self._clients.client(self._region)

    async def _complete(self, request: ChatRequest) -> Completion:
        plan = plan_tools(request)
        arguments = await converse_arguments(self._model_id(), request, plan, self._http)
        async with bedrock_errors(self._sent_secrets):
            client = await self._client()
            async with asyncio.timeout(self._timeouts.connect + self._timeouts.first_byte):
                response = await client.converse(**arguments)
        finish = _finish_reason(response.get("stopReason"))
        return completion_of(response, plan, finish, _usage(response.get("usage")))

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        plan = plan_tools(request)
        arguments = await converse_arguments(self._model_id(), request, plan, self._http)
        blocks = StreamedBlocks(plan.answer_tool)
        finish: FinishReason | None = None
        usage_seen = False
        async with bedrock_errors(self._sent_secrets):
            client = await self._client()
            async with asyncio.timeout(self._timeouts.connect + self._timeouts.first_byte):
                response = await client.converse_stream(**arguments)
            stream = response["stream"]
            try:
                events = aiter(stream)
                limit = self._timeouts.first_byte  # for the first event; each later one gets idle
                while (event := await _next_event(events, limit)) is not None:
                    limit = self._timeouts.idle
                    if "contentBlockStart" in event or "contentBlockDelta" in event:
                        if (found := _block_event(event, blocks)) is not None:
                            yield found
                    elif "messageStop" in event:
                        finish = _finish_reason(event["messageStop"].get("stopReason"))
                    elif "metadata" in event:
                        usage_seen = True
                        yield UsageUpdate(_usage(event["metadata"].get("usage")))
            finally:
                # Drops the HTTP connection at once when the consumer goes away mid-stream.
                stream.close()
        # The stream is complete only with messageStop and then metadata, before EOF.
        if finish is None or not usage_seen:
            raise ProviderError(ProviderErrorCode.TRUNCATED, "the provider stream ended early")
        closing, finish = blocks.finish(finish)
        for delta in closing:
            yield delta
        yield Finished(finish)

    async def _embed(self, request: EmbedRequest) -> Embeddings:
        model_id = self._model_id()
        async with bedrock_errors(self._sent_secrets):
            client = await self._client()
        limit = asyncio.Semaphore(_EMBED_CONCURRENCY)

        async def embed_one(text: str) -> tuple[list[float], int]:
            async with limit:
                return await self._titan_embedding(client, model_id, text)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(embed_one(text)) for text in request.texts]
        except BaseExceptionGroup as failures:
            raise failures.exceptions[0] from None  # the first failure; the other calls were cancelled
        results = [task.result() for task in tasks]
        return Embeddings(
            [vector for vector, _ in results], Usage(input_tokens=sum(tokens for _, tokens in results))
        )

    async def _titan_embedding(self, client: Any, model_id: str, text: str) -> tuple[list[float], int]:
        async with bedrock_errors(self._sent_secrets):
            async with asyncio.timeout(self._timeouts.connect + self._timeouts.first_byte):
                response = await client.invoke_model(
                    modelId=model_id,
                    body=orjson.dumps({"inputText": text}),
                    contentType="application/json",
                    accept="application/json",
                )
                try:
                    body = await response["body"].read()
                finally:
                    response["body"].close()
        answer = orjson.loads(body)
        return [float(x) for x in answer["embedding"]], int(answer.get("inputTextTokenCount", 0))

    async def _sent_secrets(self) -> tuple[str, ...]:
        return (*self.target.credentials.secrets(), *await self._clients.sent_secrets())

    def _model_id(self) -> str:
        url = self.target.model_url
        if not url:
            return self.target.provider_model_id
        model_id = bedrock_model_id(Provider.AWS_BEDROCK, url)
        if model_id is None:
            raise ProviderError(
                ProviderErrorCode.BAD_REQUEST,
                "a Bedrock model URL must look like bedrock://<model-id>",
                retryable=False,
            )
        return model_id


def _block_event(event: dict[str, Any], blocks: StreamedBlocks) -> StreamEvent | None:
    """A text or tool-call piece from a content block's start or delta (reasoning is left out)."""
    if "contentBlockStart" in event:
        start = event["contentBlockStart"]
        if (use := start.get("start", {}).get("toolUse")) is None:
            return None
        return blocks.start(start["contentBlockIndex"], use["toolUseId"], use["name"])
    delta = event["contentBlockDelta"]
    if "text" in delta["delta"]:
        return blocks.text(delta["delta"]["text"])
    if (use := delta["delta"].get("toolUse")) is not None:
        return blocks.input(delta["contentBlockIndex"], use.get("input", ""))
    return None


async def _next_event(events: AsyncIterator[dict[str, Any]], limit: float) -> dict[str, Any] | None:
    """The next stream event within `limit` seconds; None at the end of the stream."""
    try:
        async with asyncio.timeout(limit):
            return await anext(events)
    except StopAsyncIteration:
        return None
    except TimeoutError as exc:
        raise ProviderError(ProviderErrorCode.TIMEOUT, "the provider stream stalled") from exc


def _finish_reason(stop_reason: str | None) -> FinishReason:
    return _FINISH_REASONS.get(stop_reason or "", FinishReason.STOP)


def _usage(usage: dict[str, Any] | None) -> Usage:
    usage = usage or {}
    return Usage(int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0)))


def bedrock_adapter(target: ProviderTarget, runtime: ProviderRuntime) -> ProviderAdapter:
    region = target.settings.get("region") or runtime.config.bedrock_region
    return BedrockAdapter(target, bedrock_clients(runtime), region, runtime.config.timeouts, runtime.http)
