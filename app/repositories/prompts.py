"""SQL for prompts and their runs.

Runs are listed newest first by (started_at, id): the run started last is a prompt's latest, even
when a run started before it finishes (and is written) after it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.prompts import Prompt, PromptRun, PromptRunStatus
from app.repositories.constraints import stored_facts

_PROMPT_COLUMNS = (
    "id, organization_id, project_id, name, template, model_id, system_prompt, temperature, max_tokens, "
    "created_at, updated_at"
)
_RUN_COLUMNS = (
    "id, prompt_id, rendered_prompt, variables, output, input_tokens, output_tokens, credits, "
    "served_model_id, status, error_code, error_message, request_id, started_at, finished_at"
)


def _prompt(row: asyncpg.Record) -> Prompt:
    return Prompt(**dict(row))


def _run(row: asyncpg.Record) -> PromptRun:
    values = dict(row)
    return PromptRun(**{**values, "status": PromptRunStatus(values["status"])})


class PromptRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, prompt_id: UUID) -> Prompt | None:
        row = await self.db.fetchrow(f"SELECT {_PROMPT_COLUMNS} FROM prompts WHERE id = $1", prompt_id)
        return _prompt(row) if row else None

    async def list_page(self, project_id: UUID, page: PageRequest[CreatedKey]) -> Page[Prompt]:
        """A project's prompts, oldest first."""
        after = page.after
        rows = await self.db.fetch(
            f"""SELECT {_PROMPT_COLUMNS} FROM prompts
                WHERE project_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
                ORDER BY created_at, id LIMIT $4""",
            project_id,
            after.created_at if after else None,
            after.id if after else None,
            page.first + 1,
        )
        return Page.from_rows([_prompt(r) for r in rows], page.first)

    async def insert(self, prompt: Prompt) -> Prompt:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""INSERT INTO prompts (id, organization_id, project_id, name, template, model_id,
                                         system_prompt, temperature, max_tokens)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_PROMPT_COLUMNS}""",
                prompt.id,
                prompt.organization_id,
                prompt.project_id,
                prompt.name,
                prompt.template,
                prompt.model_id,
                prompt.system_prompt,
                prompt.temperature,
                prompt.max_tokens,
            )
        assert row is not None
        return _prompt(row)

    async def update(self, prompt: Prompt, expected_updated_at: datetime | None) -> Prompt | None:
        """Writes `prompt` whole; None when `expected_updated_at` is given and no longer current
        (or the row is gone), in which case nothing was written."""
        with stored_facts():
            row = await self.db.fetchrow(
                f"""UPDATE prompts SET name = $2, template = $3, model_id = $4, system_prompt = $5,
                        temperature = $6, max_tokens = $7,
                        -- strictly later than before, so every write changes the concurrency token
                        updated_at = greatest(now(), updated_at + interval '1 microsecond')
                    WHERE id = $1 AND ($8::timestamptz IS NULL OR updated_at = $8)
                    RETURNING {_PROMPT_COLUMNS}""",
                prompt.id,
                prompt.name,
                prompt.template,
                prompt.model_id,
                prompt.system_prompt,
                prompt.temperature,
                prompt.max_tokens,
                expected_updated_at,
            )
        return _prompt(row) if row else None

    async def delete(self, prompt_id: UUID) -> bool:
        """Deletes the prompt and its runs."""
        status = await self.db.execute("DELETE FROM prompts WHERE id = $1", prompt_id)
        return status != "DELETE 0"


class PromptRunRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, run_id: UUID) -> PromptRun | None:
        row = await self.db.fetchrow(f"SELECT {_RUN_COLUMNS} FROM prompt_runs WHERE id = $1", run_id)
        return _run(row) if row else None

    async def insert(self, run: PromptRun) -> PromptRun:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""INSERT INTO prompt_runs ({_RUN_COLUMNS})
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                    RETURNING {_RUN_COLUMNS}""",
                run.id,
                run.prompt_id,
                run.rendered_prompt,
                run.variables,
                run.output,
                run.input_tokens,
                run.output_tokens,
                run.credits,
                run.served_model_id,
                run.status.value,
                run.error_code,
                run.error_message,
                run.request_id,
                run.started_at,
                run.finished_at,
            )
        assert row is not None
        return _run(row)

    async def latest(self, prompt_id: UUID) -> PromptRun | None:
        row = await self.db.fetchrow(
            f"""SELECT {_RUN_COLUMNS} FROM prompt_runs WHERE prompt_id = $1
                ORDER BY started_at DESC, id DESC LIMIT 1""",
            prompt_id,
        )
        return _run(row) if row else None

    async def list_page(self, prompt_id: UUID, page: PageRequest[CreatedKey]) -> Page[PromptRun]:
        """A prompt's runs, newest first; the page key holds a run's started_at and id."""
        after = page.after
        rows = await self.db.fetch(
            f"""SELECT {_RUN_COLUMNS} FROM prompt_runs
                WHERE prompt_id = $1 AND ($2::timestamptz IS NULL OR (started_at, id) < ($2, $3))
                ORDER BY started_at DESC, id DESC LIMIT $4""",
            prompt_id,
            after.created_at if after else None,
            after.id if after else None,
            page.first + 1,
        )
        return Page.from_rows([_run(r) for r in rows], page.first)
