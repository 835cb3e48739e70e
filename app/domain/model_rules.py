"""Field rules for models, checked on the candidate record a create or update would store.

Rules that need other rows (parent, replacement, fallbacks, connection, names) are checked by the
catalog service with the same collector, so the caller gets every problem at once.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

from app.domain.emails import is_email_address
from app.domain.enums import Provider
from app.domain.errors import ErrorCollector
from app.domain.models import Capability, ModelKind, ModelRecord, ModelScope, bedrock_model_id
from app.domain.storable import DecimalColumn
from app.domain.tenancy import check_name

CONTEXT_WINDOW_MAX = 2_000_000
CALL_DEADLINE_MAX = 3600
MAX_OUTPUT_TOKENS_MAX = 200_000
SYSTEM_PROMPT_OVERRIDE_MAX = 50_000
DESCRIPTION_MAX = 2000
# models.credit_multiplier is numeric(12, 6); the catalog allows up to 1000.
CREDIT_MULTIPLIER_COLUMN = DecimalColumn(precision=12, scale=6, maximum=Decimal(1000))
MAX_FALLBACKS = 10
MAX_NOTIFY_EMAILS = 20
SETTING_VALUE_MAX = 500

_URL_SETTINGS = frozenset({"baseCustomUrl", "apiEndpoint"})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}\Z")

# Provider settings each provider accepts (DESIGN.md), plus the ECHO demo switches.
PROVIDER_SETTINGS: dict[Provider, frozenset[str]] = {
    Provider.OPENAI: frozenset({"customModel", "clientKeyHeader", "secretKeyHeader"}),
    Provider.ANTHROPIC: frozenset({"customModel"}),
    Provider.ALEPH_ALPHA: frozenset({"customModel"}),
    Provider.MISTRAL: frozenset({"customModel"}),
    Provider.AZURE_OPENAI: frozenset({"resourceName", "deploymentName", "apiVersion", "baseCustomUrl"}),
    Provider.GOOGLE_VERTEX_AI: frozenset({"location", "apiEndpoint", "publisher", "projectId"}),
    Provider.GOOGLE_GENAI: frozenset({"location"}),
    Provider.OPENAI_COMPATIBLE: frozenset(
        {"customModel", "baseCustomUrl", "customAuthHeader", "clientKeyHeader", "secretKeyHeader"}
    ),
    Provider.AWS_BEDROCK: frozenset({"region"}),
    Provider.ECHO: frozenset({"wordDelayMs", "failWith", "failAfterWords"}),
}
# clientKey/secretKey send custom headers over the OpenAI wire format.
CLIENT_KEY_PROVIDERS = frozenset({Provider.OPENAI, Provider.OPENAI_COMPATIBLE, Provider.MISTRAL})


class ModelErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    REPLACEMENT_CYCLE = "REPLACEMENT_CYCLE"
    GROUP_MISMATCH = "GROUP_MISMATCH"
    UNSAFE_URL = "UNSAFE_URL"
    IN_USE = "IN_USE"


def _path(*parts: str) -> tuple[str, ...]:
    return ("input", *parts)


def check_model_fields(errors: ErrorCollector, model: ModelRecord, parent: ModelRecord | None) -> None:
    """Every rule that needs nothing but the candidate record and its parent."""
    check_name(errors, model.name, *_path("name"))
    if model.description is not None and len(model.description) > DESCRIPTION_MAX:
        errors.add(
            ModelErrorCode.TOO_LONG, f"must be at most {DESCRIPTION_MAX} characters", *_path("description")
        )
    _check_limits(errors, model, parent)
    if (
        model.system_prompt_override is not None
        and len(model.system_prompt_override) > SYSTEM_PROMPT_OVERRIDE_MAX
    ):
        errors.add(
            ModelErrorCode.TOO_LONG,
            f"must be at most {SYSTEM_PROMPT_OVERRIDE_MAX} characters",
            *_path("systemPromptOverride"),
        )
    multiplier = model.credit_multiplier
    if multiplier is not None and (problem := CREDIT_MULTIPLIER_COLUMN.problem(multiplier)):
        errors.add(ModelErrorCode.OUT_OF_RANGE, problem, *_path("creditMultiplier"))
    if model.deprecation_notice is not None and len(model.deprecation_notice) > DESCRIPTION_MAX:
        errors.add(
            ModelErrorCode.TOO_LONG,
            f"must be at most {DESCRIPTION_MAX} characters",
            *_path("deprecationNotice"),
        )
    _check_shape(errors, model, parent)
    provider = model.provider or (parent.provider if parent else None)
    if provider is not None:
        check_provider_settings(errors, provider, model.provider_settings)


def _check_limits(errors: ErrorCollector, model: ModelRecord, parent: ModelRecord | None) -> None:
    window, output = model.context_window, model.max_output_tokens
    if window is not None and not 1 <= window <= CONTEXT_WINDOW_MAX:
        errors.add(
            ModelErrorCode.OUT_OF_RANGE,
            f"must be between 1 and {CONTEXT_WINDOW_MAX}",
            *_path("contextWindow"),
        )
    if output is not None and not 1 <= output <= MAX_OUTPUT_TOKENS_MAX:
        errors.add(
            ModelErrorCode.OUT_OF_RANGE,
            f"must be between 1 and {MAX_OUTPUT_TOKENS_MAX}",
            *_path("maxOutputTokens"),
        )
    if parent is not None:
        # A variant may narrow its parent's limits, never widen them.
        if window is not None and parent.context_window is not None and window > parent.context_window:
            errors.add(
                ModelErrorCode.OUT_OF_RANGE,
                f"must not exceed the parent's context window ({parent.context_window})",
                *_path("contextWindow"),
            )
        if output is not None and parent.max_output_tokens is not None and output > parent.max_output_tokens:
            errors.add(
                ModelErrorCode.OUT_OF_RANGE,
                f"must not exceed the parent's maximum output ({parent.max_output_tokens})",
                *_path("maxOutputTokens"),
            )
    deadline = model.call_deadline_seconds
    parent_deadline = parent.call_deadline_seconds if parent else None
    if deadline is not None and not 1 <= deadline <= CALL_DEADLINE_MAX:
        errors.add(
            ModelErrorCode.OUT_OF_RANGE,
            f"must be between 1 and {CALL_DEADLINE_MAX} seconds",
            *_path("callDeadlineSeconds"),
        )
    elif deadline is not None and parent_deadline is not None and deadline > parent_deadline:
        errors.add(
            ModelErrorCode.OUT_OF_RANGE,
            f"must not exceed the parent's call deadline ({parent_deadline} seconds)",
            *_path("callDeadlineSeconds"),
        )
    effective_window = window if window is not None else (parent.context_window if parent else None)
    effective_output = output if output is not None else (parent.max_output_tokens if parent else None)
    if effective_window is not None and effective_output is not None and effective_output > effective_window:
        errors.add(ModelErrorCode.OUT_OF_RANGE, "must not exceed contextWindow", *_path("maxOutputTokens"))


def _check_shape(errors: ErrorCollector, model: ModelRecord, parent: ModelRecord | None) -> None:
    """Which fields a model of this kind, scope and parentage may and must have."""
    if model.kind is ModelKind.USER and model.scope is ModelScope.ORGANIZATION:
        if model.is_default:
            errors.add(
                ModelErrorCode.INVALID,
                "only project-scoped models can be a project's default",
                *_path("isDefault"),
            )
        if model.fallbacks:
            errors.add(
                ModelErrorCode.INVALID, "only project-scoped models can have fallbacks", *_path("fallbacks")
            )
    if model.scope is ModelScope.PROJECT and model.assigned_project_ids:
        errors.add(
            ModelErrorCode.INVALID,
            "a project-scoped model belongs to its project already",
            *_path("assignedProjectIds"),
        )
    if parent is None:
        if model.provider is None:
            errors.add(ModelErrorCode.REQUIRED, "required unless the model has a parent", *_path("provider"))
        _check_model_id(errors, model)
        if (
            model.provider is Provider.OPENAI_COMPATIBLE
            and model.connection_id is None  # else the connection's endpoint (checked with it)
            and not (model.model_url or model.provider_settings.get("baseCustomUrl"))
        ):
            errors.add(
                ModelErrorCode.REQUIRED,
                "an OpenAI-compatible model needs its server's URL",
                *_path("modelUrl"),
            )
    elif parent.model_group is not model.model_group:
        errors.add(ModelErrorCode.GROUP_MISMATCH, "must be the parent's model group", *_path("modelGroup"))
    if (
        model.has_client_key
        and (model.provider or (parent.provider if parent else None)) not in CLIENT_KEY_PROVIDERS
    ):
        errors.add(
            ModelErrorCode.INVALID,
            "clientKey/secretKey authentication needs an OpenAI-compatible provider",
            *_path("clientKey"),
        )
    for index, fallback in enumerate(model.fallbacks):
        _check_fallback(
            errors, model, fallback.failed_requests, fallback.duration_minutes, fallback.notify_emails, index
        )
    if len(model.fallbacks) > MAX_FALLBACKS:
        errors.add(ModelErrorCode.OUT_OF_RANGE, f"at most {MAX_FALLBACKS} fallbacks", *_path("fallbacks"))
    if model.capabilities is not None and not model.capabilities <= set(Capability):
        errors.add(ModelErrorCode.INVALID, "unknown capability", *_path("capabilities"))


def _check_model_id(errors: ErrorCollector, model: ModelRecord) -> None:
    """A standalone model names its provider's model: providerModelId, or a `bedrock://<model-id>`
    URL for Bedrock (when both are given they must agree). ECHO needs neither."""
    from_url = bedrock_model_id(model.provider, model.model_url)
    if from_url and model.provider_model_id and model.provider_model_id != from_url:
        errors.add(
            ModelErrorCode.INVALID,
            f"names the model {from_url!r} but providerModelId is {model.provider_model_id!r}: "
            "give one of them, or make them agree",
            *_path("modelUrl"),
        )
    if not (model.provider_model_id or from_url) and model.provider is not Provider.ECHO:
        errors.add(
            ModelErrorCode.REQUIRED, "required unless the model has a parent", *_path("providerModelId")
        )


def _check_fallback(
    errors: ErrorCollector,
    model: ModelRecord,
    failed_requests: int,
    duration_minutes: int,
    notify_emails: tuple[str, ...],
    index: int,
) -> None:
    at = ("fallbacks", str(index))
    if model.fallbacks[index].model_id == model.id:
        errors.add(ModelErrorCode.INVALID, "a model cannot fall back to itself", *_path(*at, "modelId"))
    if not 1 <= failed_requests <= 1000:
        errors.add(ModelErrorCode.OUT_OF_RANGE, "must be between 1 and 1000", *_path(*at, "failedRequests"))
    if not 1 <= duration_minutes <= 10080:
        errors.add(
            ModelErrorCode.OUT_OF_RANGE,
            "must be between 1 and 10080 (a week)",
            *_path(*at, "durationMinutes"),
        )
    if len(notify_emails) > MAX_NOTIFY_EMAILS:
        errors.add(
            ModelErrorCode.OUT_OF_RANGE, f"at most {MAX_NOTIFY_EMAILS} addresses", *_path(*at, "notifyEmails")
        )
    for email_index, email in enumerate(notify_emails):
        if not is_email_address(email):
            errors.add(
                ModelErrorCode.INVALID, "not an email address", *_path(*at, "notifyEmails", str(email_index))
            )


def check_provider_settings(errors: ErrorCollector, provider: Provider, settings: dict[str, object]) -> None:
    allowed = PROVIDER_SETTINGS[provider]
    for key, value in settings.items():
        at = _path("providerSettings", key)
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            errors.add(
                ModelErrorCode.INVALID, f"unknown setting for {provider.value} (allowed: {names})", *at
            )
        elif not isinstance(value, str) or not value or len(value) > SETTING_VALUE_MAX:
            errors.add(ModelErrorCode.INVALID, f"must be a string of 1-{SETTING_VALUE_MAX} characters", *at)
        elif key in ("customAuthHeader", "clientKeyHeader", "secretKeyHeader") and not _HEADER_NAME.match(
            value
        ):
            errors.add(ModelErrorCode.INVALID, "must be an HTTP header name", *at)
        elif key in ("wordDelayMs", "failAfterWords") and not (value.isdigit() and int(value) <= 60000):
            errors.add(ModelErrorCode.INVALID, "must be a whole number", *at)


def url_settings(settings: dict[str, object]) -> list[tuple[str, str]]:
    """The provider settings that are URLs, which the outbound policy must accept."""
    return [(k, v) for k, v in settings.items() if k in _URL_SETTINGS and isinstance(v, str)]
