"""GraphQL types of prompts and their runs."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.api.context import GraphQLInfo, authenticated, services
from app.api.errors import UserError
from app.api.llm.types import TokenUsage
from app.api.models.types import Model, model_type
from app.api.node import Node
from app.api.orgs.types import Project
from app.api.pagination import Connection, connection, created_cursor, created_page
from app.domain import prompts
from app.domain.calls import Usage
from app.domain.ids import encode_id

PromptErrorCode = strawberry.enum(
    prompts.PromptErrorCode,
    name="PromptErrorCode",
    description="Why a prompt change or run failed; a run reports the gateway's codes as they are.",
)
PromptRunStatus = strawberry.enum(prompts.PromptRunStatus, name="PromptRunStatus")


@strawberry.type(description="One run of a prompt: what was sent, what came back, what it cost.")
class PromptRun(Node):
    rendered_prompt: str = strawberry.field(description="The template filled with the variables.")
    output: str | None = strawberry.field(description="The model's answer; null when the run failed.")
    status: PromptRunStatus  # type: ignore[valid-type]
    error_message: str | None
    request_id: str = strawberry.field(description="The call's request id, as in its usage row.")
    started_at: datetime
    finished_at: datetime
    domain: strawberry.Private[prompts.PromptRun]

    @classmethod
    def of(cls, run: prompts.PromptRun) -> PromptRun:
        return cls(
            id=strawberry.ID(encode_id("PromptRun", run.id)),
            rendered_prompt=run.rendered_prompt,
            output=run.output,
            status=run.status,
            error_message=run.error_message,
            request_id=run.request_id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            domain=run,
        )

    @strawberry.field(description="The variables the run was given.")
    def variables(self) -> JSON:
        return JSON(self.domain.variables)

    @strawberry.field(description="Zero for runs that failed: failed calls use no tokens.")
    def usage(self) -> TokenUsage:
        run = self.domain
        return TokenUsage.of(Usage(run.input_tokens, run.output_tokens), run.credits)

    @strawberry.field(description="The gateway's code, for a run that failed.")
    def error_code(self) -> PromptErrorCode | None:  # type: ignore[valid-type]
        code = self.domain.error_code
        return prompts.PromptErrorCode(code) if code else None

    @strawberry.field(description="The model that answered (after a fallback or migration).")
    async def served_by(self, info: GraphQLInfo) -> Model | None:
        model_id = self.domain.served_model_id
        found = await services(info).models.get(authenticated(info), model_id) if model_id else None
        return model_type(found) if found else None

    @strawberry.field
    async def prompt(self, info: GraphQLInfo) -> Prompt | None:
        found = await services(info).prompts.get(authenticated(info), self.domain.prompt_id)
        return Prompt.of(found) if found else None


def _run_cursor(run: prompts.PromptRun) -> str:
    return created_cursor(run.started_at, run.id)


@strawberry.type(description="A reusable template of a project, run with a JSON object of variables.")
class Prompt(Node):
    name: str
    template: str = strawberry.field(
        description="Text with {{dotted.path}} placeholders; \\{{ is a literal {{."
    )
    system_prompt: str | None = strawberry.field(description="After the model's own system prompt.")
    temperature: float | None
    max_tokens: int | None
    created_at: datetime
    updated_at: datetime = strawberry.field(description="Send it back as expectedUpdatedAt to update safely.")
    domain: strawberry.Private[prompts.Prompt]

    @classmethod
    def of(cls, prompt: prompts.Prompt) -> Prompt:
        return cls(
            id=strawberry.ID(encode_id("Prompt", prompt.id)),
            name=prompt.name,
            template=prompt.template,
            system_prompt=prompt.system_prompt,
            temperature=prompt.temperature,
            max_tokens=prompt.max_tokens,
            created_at=prompt.created_at,
            updated_at=prompt.updated_at,
            domain=prompt,
        )

    @strawberry.field(
        description="The placeholder paths the template uses, each once, in order of first use."
    )
    def variables(self) -> list[str]:
        return self.domain.variables

    @strawberry.field(description="The model runs call; null: the project's default model at run time.")
    async def model(self, info: GraphQLInfo) -> Model | None:
        model_id = self.domain.model_id
        found = await services(info).models.get(authenticated(info), model_id) if model_id else None
        return model_type(found) if found else None

    @strawberry.field
    async def project(self, info: GraphQLInfo) -> Project:
        project = await info.context.loaders.project.load(self.domain.project_id)
        assert project is not None  # a prompt cannot outlive its project
        return Project.of(project)

    @strawberry.field(description="The run started last (concurrent runs may finish in another order).")
    async def latest_run(self, info: GraphQLInfo) -> PromptRun | None:
        run = await services(info).prompt_runs.latest(authenticated(info), self.domain)
        return PromptRun.of(run) if run else None

    @strawberry.field(description="Newest (last started) first.")
    async def runs(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[PromptRun]:
        page = await services(info).prompt_runs.list(
            authenticated(info), self.domain, created_page(first, after)
        )
        return connection(page, PromptRun.of, _run_cursor, has_previous=after is not None)


@strawberry.type
class PromptUserError(UserError):
    code: PromptErrorCode  # type: ignore[valid-type]


def prompt_error(code: str, field: list[str] | None, message: str) -> PromptUserError:
    return PromptUserError(code=prompts.PromptErrorCode(code), field=field, message=message)
