"""Connection setup for the OpenAI wire-format family: where a target's API lives (base URL and
query), how it authenticates (headers), which model name the body carries, and the few switches in
which a provider's dialect of the format differs from OpenAI's own (and, for Azure, which features
the target's API version lacks: `check_azure_api_version`).

Kept apart from the wire format (pydantic-ai's provider/model split) so one set of adapters serves
OpenAI, Azure OpenAI, Mistral, any OpenAI-compatible server and custom-header (clientKey/secretKey)
models; only `resolve_endpoint` knows the providers apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from app.domain.calls import ProviderError, ProviderErrorCode, ResponseFormatType
from app.domain.enums import ApiType, Provider
from app.providers.base import ChatRequest, ProviderTarget

_PUBLIC_BASES = {
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.MISTRAL: "https://api.mistral.ai/v1",
}
# A modelUrl may name a full endpoint; these are cut off to get the API base. Longest first, so
# ".../chat/completions" is not mistaken for ".../completions".
_OPERATION_SUFFIXES = ("/chat/completions", "/completions", "/embeddings", "/responses")
_AZURE_GA_API_VERSION = "2024-10-21"
# Azure URLs that already name the API root: ".../openai/deployments/{name}" or ".../openai/v1".
_AZURE_API_ROOT = re.compile(r"/openai/(?:deployments/[^/]+|v1)$")
_AZURE_RESOURCE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # an RFC 9110 token
_API_VERSION_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")
# The first Azure API version (preview or GA) that takes each feature (Azure's API version history).
_AZURE_SINCE = {
    "tools": "2023-12-01",
    "images": "2023-12-01",
    "JSON output (response_format json_object)": "2023-12-01",
    "structured output (response_format json_schema)": "2024-08-01",
    "parallel_tool_calls": "2024-09-01",
}


@dataclass(frozen=True, slots=True)
class OpenAIDialect:
    """Where a provider's OpenAI-shaped API departs from OpenAI's."""

    # OpenAI deprecated `max_tokens` for chat and o-series models reject it; Mistral and most
    # compatible servers only know `max_tokens`.
    output_limit_field: str = "max_completion_tokens"
    # `stream_options.include_usage`; Mistral has no such option (it always streams usage).
    stream_usage_option: bool = True
    # Some compatible servers end a stream with EOF instead of `data: [DONE]`; for them EOF after a
    # finish_reason is a complete answer. Everyone else must send the marker.
    done_marker_required: bool = True
    # The `tool_choice` that forces some tool call: Mistral documents "any" (and lately "required").
    required_tool_choice: str = "required"
    # Mistral takes only 9-character alphanumeric tool call ids.
    short_tool_call_ids: bool = False


OPENAI_DIALECT = OpenAIDialect()
MISTRAL_DIALECT = OpenAIDialect(
    output_limit_field="max_tokens",
    stream_usage_option=False,
    required_tool_choice="any",
    short_tool_call_ids=True,
)
COMPATIBLE_DIALECT = OpenAIDialect(output_limit_field="max_tokens", done_marker_required=False)


@dataclass(frozen=True, slots=True)
class OpenAIEndpoint:
    """One target's connection: `url(operation)` is `{base_url}/{operation}?{query}`."""

    base_url: str
    headers: Mapping[str, str] = field(repr=False)  # carries the credentials
    model: str
    query: Mapping[str, str] = field(default_factory=dict)
    dialect: OpenAIDialect = OPENAI_DIALECT

    def url(self, operation: str) -> str:
        url = f"{self.base_url}/{operation}"
        return f"{url}?{urlencode(self.query)}" if self.query else url


def resolve_endpoint(target: ProviderTarget) -> OpenAIEndpoint:
    """The endpoint for `target`; a ProviderError (BAD_REQUEST) if its settings cannot make one."""
    settings = target.settings
    if target.provider is Provider.AZURE_OPENAI:
        base_url, query = _azure_api_root(target)
        auth_header, auth_prefix = "api-key", ""
    else:
        url = settings.get("baseCustomUrl") or target.model_url or _PUBLIC_BASES.get(target.provider)
        if not url:
            raise _config_error(f"{target.provider} models need a modelUrl or baseCustomUrl")
        base_url, query = _split_url(url)
        auth_header, auth_prefix = "Authorization", "Bearer "
        if custom := settings.get("customAuthHeader"):
            auth_header, auth_prefix = custom, ""  # e.g. Ocp-Apim-Subscription-Key: <key>
    return OpenAIEndpoint(
        base_url=base_url,
        headers=_auth_headers(target, auth_header, auth_prefix),
        model=settings.get("customModel") or target.provider_model_id,
        query=query,
        dialect=_dialect(target.provider),
    )


def _dialect(provider: Provider) -> OpenAIDialect:
    if provider in (Provider.OPENAI, Provider.AZURE_OPENAI):
        return OPENAI_DIALECT
    if provider is Provider.MISTRAL:
        return MISTRAL_DIALECT
    return COMPATIBLE_DIALECT


def _auth_headers(target: ProviderTarget, token_header: str, token_prefix: str) -> dict[str, str]:
    """Custom-header credentials (clientKey + secretKey) win over a token: such models sit behind
    gateways that expect exactly those headers."""
    credentials, settings = target.credentials, target.settings
    if any("\r" in s or "\n" in s for s in credentials.secrets()):
        raise _config_error("the model's credentials contain a line break")
    if credentials.client_key and credentials.secret_key:
        headers = {
            _header_name(settings.get("clientKeyHeader") or "X-Client-Key"): credentials.client_key,
            _header_name(settings.get("secretKeyHeader") or "X-Secret-Key"): credentials.secret_key,
        }
    elif credentials.token:
        headers = {_header_name(token_header): token_prefix + credentials.token}
    else:
        headers = {}  # e.g. a local compatible server without auth
    return headers


def _header_name(name: str) -> str:
    if not _HEADER_NAME.match(name):
        raise _config_error(f"{name!r} is not a valid HTTP header name")
    return name


def _azure_api_root(target: ProviderTarget) -> tuple[str, dict[str, str]]:
    """Azure's two URL shapes. With a deploymentName or apiVersion: the classic
    `{host}/openai/deployments/{deployment}/…?api-version=…`; with neither: the v1 API
    `{host}/openai/v1/…` that takes the deployment as `model` in the body. `baseCustomUrl` or
    `modelUrl` replaces `https://{resourceName}.openai.azure.com`; a URL that already names the
    API root (…/openai/deployments/x or …/openai/v1) is used as it is."""
    settings = target.settings
    resource = settings.get("resourceName")
    host_url = settings.get("baseCustomUrl") or target.model_url
    if not host_url:
        if not resource:
            raise _config_error("Azure OpenAI models need a resourceName, baseCustomUrl or modelUrl")
        if not _AZURE_RESOURCE.match(resource):
            raise _config_error("the Azure resourceName may only hold letters, digits and hyphens")
        host_url = f"https://{resource}.openai.azure.com"
    root, query = _split_url(host_url)
    deployment, api_version = settings.get("deploymentName"), settings.get("apiVersion")
    if _AZURE_API_ROOT.search(root):
        if "/openai/deployments/" in root:
            query.setdefault("api-version", api_version or _AZURE_GA_API_VERSION)
        return root, query
    root = root.removesuffix("/openai")
    if not (deployment or api_version):
        return f"{root}/openai/v1", query
    query["api-version"] = api_version or _AZURE_GA_API_VERSION
    if target.api_type is ApiType.RESPONSES:
        return f"{root}/openai", query  # Responses is per resource, not per deployment
    name = quote(deployment or target.provider_model_id, safe="")
    return f"{root}/openai/deployments/{name}", query


def check_azure_api_version(api_version: str | None, request: ChatRequest) -> None:
    """Refuses what the target's Azure API version cannot take (the v1 API, without a version, takes all)."""
    date = _API_VERSION_DATE.match(api_version or "")
    if date is None:
        return
    fmt = request.response_format.type if request.response_format else ResponseFormatType.TEXT
    needed = {
        "tools": bool(request.tools),
        "images": request.image_count > 0,
        "JSON output (response_format json_object)": fmt is ResponseFormatType.JSON_OBJECT,
        "structured output (response_format json_schema)": fmt is ResponseFormatType.JSON_SCHEMA,
        "parallel_tool_calls": bool(request.tools) and request.parallel_tool_calls is not None,
    }
    for feature, since in _AZURE_SINCE.items():
        if needed[feature] and date.group(1) < since:
            raise _config_error(
                f"Azure OpenAI API version {api_version} does not support {feature} (since {since})"
            )


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """An API base without a trailing slash or a known operation suffix, and its query."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    for suffix in _OPERATION_SUFFIXES:
        if path.endswith(suffix):
            path = path.removesuffix(suffix)
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), dict(parse_qsl(parts.query))


def _config_error(message: str) -> ProviderError:
    return ProviderError(ProviderErrorCode.BAD_REQUEST, message, retryable=False)
