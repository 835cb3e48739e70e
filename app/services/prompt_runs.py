"""Running prompts, and reading the runs kept of them.

A run is a generate call made exactly as the `generate` mutation makes it (`Gateway.complete`:
the same policies, fallbacks, quota and metering), with the rendered template as the prompt and the
prompt's model (or the project's default), system prompt, temperature and maxTokens. A prompt's
latest run is the one started last.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from app.domain.auth import Permission, Principal
from app.domain.calls import ChatMessage
from app.domain.enums import ChatRole
from app.domain.errors import FieldError, NotFoundError, ReferenceGone, UserInputError
from app.domain.gateway import CallOperation, CallWarning, GatewayError, ModelRef
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.prompts import Prompt, PromptErrorCode, PromptRun, PromptRunStatus, render_prompt, run_field
from app.repositories.prompts import PromptRunRepository
from app.services.gateway.requests import CallRequest
from app.services.gateway.service import Gateway
from app.services.permissions import require
from app.services.prompts import PromptService


@dataclass(frozen=True, slots=True)
class PromptRunResult:
    run: PromptRun
    warnings: tuple[CallWarning, ...]


class PromptRunFailed(UserInputError):
    """The gateway refused or failed the call: the run was stored with status ERROR."""

    def __init__(self, run: PromptRun, error: GatewayError) -> None:
        super().__init__(
            [FieldError(PromptErrorCode(error.code.value), error.message, run_field(error.field))]
        )
        self.run = run


class PromptRunner:
    def __init__(
        self,
        prompts: PromptService,
        runs: PromptRunRepository,
        gateway: Gateway,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.prompts = prompts
        self.runs = runs
        self.gateway = gateway
        self.clock = clock

    async def run(
        self, principal: Principal, prompt_id: UUID, variables: object, request_id: str
    ) -> PromptRunResult:
        """Renders and calls; a template or variables error raises before anything is called or
        stored; a gateway error raises PromptRunFailed after the run was stored."""
        prompt = await self.prompts.find(principal, prompt_id)
        if prompt is None:
            raise NotFoundError("prompt", ["input", "promptId"])
        require(principal, Permission.LLM_INVOKE)
        if principal.organization_id is None:
            raise UserInputError.single(
                PromptErrorCode.INVALID, "platform keys cannot run prompts; use an organization key"
            )
        rendered = render_prompt(prompt.template, variables)
        assert isinstance(variables, dict)  # render_prompt refuses anything else
        _check_storable(variables)
        request = CallRequest(
            operation=CallOperation.GENERATE,
            messages=(ChatMessage(ChatRole.USER, rendered),),
            model=ModelRef(id=prompt.model_id),
            project_id=prompt.project_id,
            system_prompt=prompt.system_prompt,
            temperature=prompt.temperature,
            max_tokens=prompt.max_tokens,
        )
        started_at = self.clock()
        try:
            result = await self.gateway.complete(principal, request, request_id)
        except GatewayError as exc:
            failed = await self._store(
                prompt,
                rendered,
                variables,
                request_id,
                started_at,
                status=PromptRunStatus.ERROR,
                error_code=exc.code.value,
                error_message=exc.message,
            )
            raise PromptRunFailed(failed, exc) from exc
        run = await self._store(
            prompt,
            rendered,
            variables,
            request_id,
            started_at,
            status=PromptRunStatus.SUCCESS,
            output=result.text,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            credits=result.credits,
            served_model_id=result.served.id,
        )
        return PromptRunResult(run, result.warnings)

    async def latest(self, principal: Principal, prompt: Prompt) -> PromptRun | None:
        if not self._readable(principal, prompt):
            return None
        return await self.runs.latest(prompt.id)

    async def list(
        self, principal: Principal, prompt: Prompt, page: PageRequest[CreatedKey]
    ) -> Page[PromptRun]:
        """Newest first; the page key holds a run's startedAt and id."""
        if not self._readable(principal, prompt):
            return Page([], False)
        return await self.runs.list_page(prompt.id, page)

    async def get(self, principal: Principal, run_id: UUID) -> PromptRun | None:
        """A run of a prompt the caller may read."""
        run = await self.runs.get(run_id)
        if run is None or await self.prompts.get(principal, run.prompt_id) is None:
            return None
        return run

    def _readable(self, principal: Principal, prompt: Prompt) -> bool:
        return principal.has(Permission.MODELS_READ) and self.prompts.visible(principal, prompt)

    async def _store(
        self,
        prompt: Prompt,
        rendered: str,
        variables: dict[str, Any],
        request_id: str,
        started_at: datetime,
        *,
        status: PromptRunStatus,
        output: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        credits: Decimal = Decimal(0),
        served_model_id: UUID | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> PromptRun:
        run = PromptRun(
            id=uuid.uuid4(),
            prompt_id=prompt.id,
            rendered_prompt=rendered,
            variables=variables,
            output=output,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            credits=credits,
            served_model_id=served_model_id,
            status=status,
            error_code=error_code,
            error_message=error_message,
            request_id=request_id,
            started_at=started_at,
            finished_at=self.clock(),
        )
        try:
            return await self.runs.insert(run)
        except ReferenceGone as exc:  # the prompt was deleted during the call
            raise NotFoundError("prompt", ["input", "promptId"]) from exc


def _check_storable(variables: dict[str, Any]) -> None:
    """Variables are stored with the run as JSON; PostgreSQL's codec (orjson) takes integers of
    64 bits at most. Checked before the call, so that no call goes unrecorded."""
    try:
        orjson.dumps(variables)
    except orjson.JSONEncodeError as exc:
        raise UserInputError.single(
            PromptErrorCode.INVALID, "numbers must fit in 64 bits", ["input", "variables"]
        ) from exc
