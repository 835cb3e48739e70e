"""Whether a prompt may be bound to a model: one its project can call now with generate.

The gateway checks the same at run time (a model may be disabled after the prompt was saved); this
is the early answer when the prompt is saved, in the gateway's own codes.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from app.domain.enums import ModelGroup
from app.domain.errors import ErrorCollector
from app.domain.models import EffectiveModel, LifecycleState
from app.domain.prompts import PromptErrorCode
from app.domain.tenancy import Organization

_GENERATE_GROUPS = (ModelGroup.CHAT, ModelGroup.COMPLETION)
_FIELD = ("input", "modelId")


def check_prompt_model(
    errors: ErrorCollector,
    model: EffectiveModel | None,
    organization: Organization,
    project_id: UUID,
    max_tokens: int | None,
    now: datetime,
) -> None:
    if (
        model is None
        or not model.record.is_visible
        or not model.usable_in_project(organization.id, project_id)
    ):
        # Another organization's model, or one not assigned to the project, reads as missing.
        errors.add(PromptErrorCode.NOT_FOUND, "model not found", *_FIELD)
        return
    name = model.record.name
    if model.record.model_group not in _GENERATE_GROUPS:
        errors.add(
            PromptErrorCode.MODEL_GROUP_MISMATCH,
            f"{name} is a {model.record.model_group.value} model; prompts need a CHAT or COMPLETION model",
            *_FIELD,
        )
        return
    lifecycle = model.lifecycle(now)
    if lifecycle.state is LifecycleState.DISABLED:
        errors.add(PromptErrorCode.MODEL_DISABLED, f"{name} is disabled", *_FIELD)
    elif lifecycle.state is LifecycleState.END_OF_LIFE and not (
        organization.auto_migrate_end_of_life and lifecycle.replacement_model_id
    ):
        errors.add(PromptErrorCode.MODEL_END_OF_LIFE, f"{name} reached its end of life", *_FIELD)
    elif not model.allowed_for(organization.plan):
        errors.add(
            PromptErrorCode.PLAN_UPGRADE_REQUIRED,
            f"{name} is a premium model: it needs a PRO or ENTERPRISE plan",
            *_FIELD,
        )
    elif (
        max_tokens is not None
        and model.max_output_tokens is not None
        and max_tokens > model.max_output_tokens
    ):
        errors.add(
            PromptErrorCode.MAX_TOKENS_TOO_LARGE,
            f"{name} writes at most {model.max_output_tokens} tokens",
            "input",
            "maxTokens",
        )
