"""Prompt mutations: promptCreate, promptUpdate, promptDelete and promptRun."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.api.context import GraphQLInfo, authenticated, services
from app.api.errors import MutationFrame, user_errors
from app.api.input_check import refuse_unstorable
from app.api.llm.types import CallWarning, warnings_of
from app.api.prompts.types import Prompt, PromptRun, PromptUserError, prompt_error
from app.api.scalars import maybe, maybe_set
from app.domain import prompts
from app.domain.auth import Principal
from app.domain.errors import UserInputError
from app.domain.ids import MODEL_TYPES, decode_id, decode_optional
from app.domain.values import UNSET, UnsetType
from app.services.prompt_runs import PromptRunFailed
from app.services.prompts import PromptChanges


@strawberry.input(description="A prompt of a project. Needs prompts:manage.")
class PromptCreateInput:
    project_id: strawberry.ID
    name: str = strawberry.field(description="Unique in the project (ignoring case).")
    template: str = strawberry.field(
        description="At most 100,000 characters, with {{dotted.path}} placeholders; \\{{ is a literal {{."
    )
    model_id: strawberry.ID | None = strawberry.field(
        default=None, description="Null: the project's default model at run time."
    )
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@strawberry.input(description="Fields left out are not changed; null clears a nullable field.")
class PromptUpdateInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    template: str | None = strawberry.UNSET
    model_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Null: the project's default model at run time."
    )
    system_prompt: str | None = strawberry.UNSET
    temperature: float | None = strawberry.UNSET
    max_tokens: int | None = strawberry.UNSET
    expected_updated_at: datetime | None = strawberry.field(
        default=None,
        description="The updatedAt you last read; if the prompt changed since, nothing is written "
        "and the payload has a CONFLICT error.",
    )


@strawberry.input
class PromptDeleteInput:
    id: strawberry.ID


@strawberry.input(description="Runs a prompt. Needs llm:invoke.")
class PromptRunInput:
    prompt_id: strawberry.ID
    variables: JSON | None = strawberry.field(
        default=None, description="A JSON object with a value for every placeholder; null: {}."
    )


@strawberry.type
class PromptCreatePayload:
    prompt: Prompt | None
    user_errors: list[PromptUserError]


@strawberry.type
class PromptUpdatePayload:
    prompt: Prompt | None
    user_errors: list[PromptUserError]


@strawberry.type
class PromptDeletePayload:
    deleted_prompt_id: strawberry.ID | None
    user_errors: list[PromptUserError]


@strawberry.type(
    description="A run that reached the gateway is stored even when it failed: then `run` has status "
    "ERROR and `userErrors` says why. Template and variables errors store nothing."
)
class PromptRunPayload:
    run: PromptRun | None
    warnings: list[CallWarning]
    request_id: str
    user_errors: list[PromptUserError]


_PROMPT_FRAME = MutationFrame(prompt_error)


@strawberry.type
class PromptMutations:
    @strawberry.mutation(description="Needs prompts:manage in the project.")
    async def prompt_create(self, info: GraphQLInfo, input: PromptCreateInput) -> PromptCreatePayload:
        async def work(principal: Principal) -> prompts.Prompt:
            project_id = decode_id(input.project_id, "Project", ["input", "projectId"])
            changes = PromptChanges(
                name=input.name,
                template=input.template,
                model_id=decode_optional(input.model_id, MODEL_TYPES, ["input", "modelId"]),
                system_prompt=input.system_prompt,
                temperature=input.temperature,
                max_tokens=input.max_tokens,
            )
            return await services(info).prompts.create(principal, project_id, changes)

        created, errors = await _PROMPT_FRAME.run(info, input, work)
        return PromptCreatePayload(prompt=Prompt.of(created) if created else None, user_errors=errors)

    @strawberry.mutation
    async def prompt_update(self, info: GraphQLInfo, input: PromptUpdateInput) -> PromptUpdatePayload:
        async def work(principal: Principal) -> prompts.Prompt:
            prompt_id = decode_id(input.id, "Prompt", ["input", "id"])
            model_id = maybe(input.model_id)
            changes = PromptChanges(
                name=maybe_set(input.name, ["input", "name"]),
                template=maybe_set(input.template, ["input", "template"]),
                model_id=UNSET
                if isinstance(model_id, UnsetType)
                else decode_optional(model_id, MODEL_TYPES, ["input", "modelId"]),
                system_prompt=maybe(input.system_prompt),
                temperature=maybe(input.temperature),
                max_tokens=maybe(input.max_tokens),
                expected_updated_at=input.expected_updated_at,
            )
            return await services(info).prompts.update(principal, prompt_id, changes)

        updated, errors = await _PROMPT_FRAME.run(info, input, work)
        return PromptUpdatePayload(prompt=Prompt.of(updated) if updated else None, user_errors=errors)

    @strawberry.mutation(description="Deletes the prompt and its runs.")
    async def prompt_delete(self, info: GraphQLInfo, input: PromptDeleteInput) -> PromptDeletePayload:
        async def work(principal: Principal) -> prompts.Prompt:
            prompt_id = decode_id(input.id, "Prompt", ["input", "id"])
            return await services(info).prompts.delete(principal, prompt_id)

        deleted, errors = await _PROMPT_FRAME.run(info, input, work)
        return PromptDeletePayload(deleted_prompt_id=input.id if deleted else None, user_errors=errors)

    @strawberry.mutation(
        description="Renders the template and calls the model as generate does (same policies, "
        "fallbacks, quota and usage). Needs llm:invoke."
    )
    async def prompt_run(self, info: GraphQLInfo, input: PromptRunInput) -> PromptRunPayload:
        principal = authenticated(info)
        request_id = info.context.request_id
        try:
            refuse_unstorable(input)
            prompt_id = decode_id(input.prompt_id, "Prompt", ["input", "promptId"])
            variables: object = {} if input.variables is None else input.variables
            result = await services(info).prompt_runs.run(principal, prompt_id, variables, request_id)
        except PromptRunFailed as failed:
            errors = user_errors(failed, prompt_error)
            return PromptRunPayload(
                run=PromptRun.of(failed.run), warnings=[], request_id=request_id, user_errors=errors
            )
        except UserInputError as exc:
            errors = user_errors(exc, prompt_error)
            return PromptRunPayload(run=None, warnings=[], request_id=request_id, user_errors=errors)
        return PromptRunPayload(
            run=PromptRun.of(result.run),
            warnings=warnings_of(result.warnings),
            request_id=request_id,
            user_errors=[],
        )
