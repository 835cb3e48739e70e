"""Prompts: a project's reusable templates, bound to a model (or the project's default), and the
runs kept of them.

A run renders the template with the caller's variables and makes a generate call. What the prompt
layer refuses (a template or variables error) is a user error and stores nothing; whatever the
gateway refuses or fails with (lifecycle, quota, context window, provider failure) is stored as a
run with status ERROR and the gateway's code, so that a prompt's history shows why it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from app.domain import templates
from app.domain.errors import ErrorCollector, FieldError, UserInputError

NAME_MAX_LENGTH = 200
TEMPLATE_MAX_LENGTH = 100_000
SYSTEM_PROMPT_MAX_LENGTH = 50_000  # what the gateway takes as a call's system prompt
RENDERED_MAX_LENGTH = 1_000_000  # what the gateway takes as a prompt
MAX_TEMPERATURE = 2.0
MAX_TOKENS_LIMIT = 200_000  # the largest maxOutputTokens a model may have


class PromptErrorCode(StrEnum):
    """The common codes, the template codes, and every gateway code (a run reports the gateway's)."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INVALID_TEMPLATE = "INVALID_TEMPLATE"
    MISSING_VARIABLE = "MISSING_VARIABLE"
    NO_DEFAULT_MODEL = "NO_DEFAULT_MODEL"
    MODEL_DISABLED = "MODEL_DISABLED"
    MODEL_END_OF_LIFE = "MODEL_END_OF_LIFE"
    PLAN_UPGRADE_REQUIRED = "PLAN_UPGRADE_REQUIRED"
    MAX_TOKENS_TOO_LARGE = "MAX_TOKENS_TOO_LARGE"
    CONTEXT_TOO_LONG = "CONTEXT_TOO_LONG"
    MODEL_GROUP_MISMATCH = "MODEL_GROUP_MISMATCH"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    CONTENT_FILTERED = "CONTENT_FILTERED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CAPABILITY_NOT_SUPPORTED = "CAPABILITY_NOT_SUPPORTED"


class PromptRunStatus(StrEnum):
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Prompt:
    id: UUID
    organization_id: UUID
    project_id: UUID
    name: str
    template: str
    model_id: UUID | None  # None: the project's default model at run time
    system_prompt: str | None
    temperature: float | None
    max_tokens: int | None
    created_at: datetime
    updated_at: datetime

    @property
    def variables(self) -> list[str]:
        return templates.variables(self.template)


@dataclass(frozen=True, slots=True)
class PromptRun:
    id: UUID
    prompt_id: UUID
    rendered_prompt: str
    variables: dict[str, Any]
    output: str | None
    input_tokens: int
    output_tokens: int
    credits: Decimal
    served_model_id: UUID | None
    status: PromptRunStatus
    error_code: str | None
    error_message: str | None
    request_id: str
    started_at: datetime
    finished_at: datetime


def check_prompt(
    errors: ErrorCollector,
    *,
    name: str | None,
    template: str | None,
    system_prompt: str | None,
    temperature: float | None,
    max_tokens: int | None,
) -> None:
    """The field rules of a create or update input; None: not set (or cleared, where allowed)."""
    if name is not None and not name.strip():
        errors.add(PromptErrorCode.REQUIRED, "must not be empty", "input", "name")
    elif name is not None and len(name) > NAME_MAX_LENGTH:
        errors.add(PromptErrorCode.TOO_LONG, f"must be at most {NAME_MAX_LENGTH} characters", "input", "name")
    if template is not None:
        check_template(errors, template)
    if system_prompt is not None and len(system_prompt) > SYSTEM_PROMPT_MAX_LENGTH:
        errors.add(
            PromptErrorCode.TOO_LONG,
            f"must be at most {SYSTEM_PROMPT_MAX_LENGTH} characters",
            "input",
            "systemPrompt",
        )
    if temperature is not None and not 0 <= temperature <= MAX_TEMPERATURE:
        errors.add(
            PromptErrorCode.OUT_OF_RANGE, f"must be between 0 and {MAX_TEMPERATURE}", "input", "temperature"
        )
    if max_tokens is not None and not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        errors.add(
            PromptErrorCode.OUT_OF_RANGE, f"must be between 1 and {MAX_TOKENS_LIMIT}", "input", "maxTokens"
        )


def check_template(errors: ErrorCollector, template: str) -> None:
    """Not blank, at most 100,000 characters, and it parses (each problem with its position)."""
    if not template.strip():
        errors.add(PromptErrorCode.REQUIRED, "must not be empty", "input", "template")
        return
    if len(template) > TEMPLATE_MAX_LENGTH:
        errors.add(
            PromptErrorCode.TOO_LONG,
            f"must be at most {TEMPLATE_MAX_LENGTH:,} characters",
            "input",
            "template",
        )
        return
    try:
        templates.parse(template)
    except templates.TemplateSyntaxError as exc:
        for problem in exc.problems:
            errors.add(PromptErrorCode.INVALID_TEMPLATE, str(problem), "input", "template")


def render_prompt(template: str, variables: object) -> str:
    """The text a run sends; a UserInputError about `input.variables` when it cannot be made:
    variables that are not an object, one MISSING_VARIABLE per missing path (its field is the
    path inside the variables), or a rendered text that is blank or too long."""
    try:
        rendered = templates.render(template, variables)
    except templates.VariablesNotObject as exc:
        raise UserInputError.single(PromptErrorCode.INVALID, str(exc), ["input", "variables"]) from exc
    except templates.MissingVariables as exc:
        raise UserInputError(
            [
                FieldError(
                    PromptErrorCode.MISSING_VARIABLE,
                    f"no value for {{{{{'.'.join(path)}}}}}",
                    ("input", "variables", *path),
                )
                for path in exc.paths
            ]
        ) from exc
    if not rendered.strip():
        raise UserInputError.single(
            PromptErrorCode.REQUIRED, "the rendered prompt is empty", ["input", "variables"]
        )
    if len(rendered) > RENDERED_MAX_LENGTH:
        raise UserInputError.single(
            PromptErrorCode.TOO_LONG,
            f"the rendered prompt is longer than {RENDERED_MAX_LENGTH:,} characters",
            ["input", "variables"],
        )
    return rendered


def run_field(gateway_field: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A gateway error's field, in terms of promptRun's input: the prompt text comes from the
    variables; everything else the gateway checks (model, project, maxTokens) is the prompt's."""
    if gateway_field is None:
        return None
    if gateway_field[-1:] in (("prompt",), ("messages",)):
        return ("input", "variables")
    return ("input", "promptId")
