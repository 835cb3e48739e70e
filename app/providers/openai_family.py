"""The entry point of the OpenAI wire-format family.

`openai_family_adapter(target, runtime) -> ProviderAdapter` serves targets of the providers OPENAI,
AZURE_OPENAI, MISTRAL and OPENAI_COMPATIBLE, and any target whose credentials are a clientKey +
secretKey pair (custom-header auth over the OpenAI wire format). It picks the wire format from the
target — EMBEDDING models: embeddings; COMPLETION models: legacy completions; api_type RESPONSES:
the Responses API; otherwise Chat Completions — while `openai_endpoints.resolve_endpoint` picks the
connection (base URL, auth headers, dialect) from the provider, settings and credentials.
"""

from __future__ import annotations

from app.domain.enums import ApiType, ModelGroup
from app.providers.base import ProviderAdapter, ProviderTarget
from app.providers.openai_chat import OpenAIChatAdapter, OpenAICompletionsAdapter
from app.providers.openai_embeddings import OpenAIEmbeddingsAdapter
from app.providers.openai_responses import OpenAIResponsesAdapter
from app.providers.runtime import ProviderRuntime


def openai_family_adapter(target: ProviderTarget, runtime: ProviderRuntime) -> ProviderAdapter:
    if target.model_group is ModelGroup.EMBEDDING:
        return OpenAIEmbeddingsAdapter(target, runtime)
    if target.model_group is ModelGroup.COMPLETION:
        return OpenAICompletionsAdapter(target, runtime)
    if target.api_type is ApiType.RESPONSES:
        return OpenAIResponsesAdapter(target, runtime)
    return OpenAIChatAdapter(target, runtime)
