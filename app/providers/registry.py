"""Which adapter serves a target: chosen by provider (and, inside a family, by model group and API
type). The one entry point the gateway uses."""

from __future__ import annotations

from collections.abc import Callable

from app.domain.enums import Provider
from app.providers.aleph_alpha import aleph_alpha_adapter
from app.providers.anthropic import anthropic_adapter
from app.providers.base import ProviderAdapter, ProviderTarget
from app.providers.bedrock import bedrock_adapter
from app.providers.echo import echo_adapter
from app.providers.gemini import google_adapter
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime

AdapterFactory = Callable[[ProviderTarget, ProviderRuntime], ProviderAdapter]

_FACTORIES: dict[Provider, AdapterFactory] = {
    Provider.OPENAI: openai_family_adapter,
    Provider.AZURE_OPENAI: openai_family_adapter,
    Provider.MISTRAL: openai_family_adapter,
    Provider.OPENAI_COMPATIBLE: openai_family_adapter,
    Provider.ANTHROPIC: anthropic_adapter,
    Provider.GOOGLE_GENAI: google_adapter,
    Provider.GOOGLE_VERTEX_AI: google_adapter,
    Provider.AWS_BEDROCK: bedrock_adapter,
    Provider.ALEPH_ALPHA: aleph_alpha_adapter,
    Provider.ECHO: echo_adapter,
}


def adapter_for(target: ProviderTarget, runtime: ProviderRuntime) -> ProviderAdapter:
    """clientKey/secretKey models speak the OpenAI wire format with custom auth headers."""
    if target.credentials.client_key is not None:
        return openai_family_adapter(target, runtime)
    return _FACTORIES[target.provider](target, runtime)
