"""System prompt mutations: systemPromptCreate, systemPromptUpdate, systemPromptDelete."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.api.context import GraphQLInfo, services
from app.api.errors import MutationFrame
from app.api.scalars import maybe, maybe_set
from app.api.system_prompts.types import (
    SystemPrompt,
    SystemPromptParticleKind,
    SystemPromptUserError,
    system_prompt_error,
)
from app.domain import system_prompts as compositions
from app.domain.auth import Principal
from app.domain.ids import decode_id, decode_optional
from app.domain.values import UnsetType
from app.services.system_prompts import SystemPromptChanges


@strawberry.input(description="A particle; its position is its place in the list.")
class SystemPromptParticleInput:
    kind: SystemPromptParticleKind  # type: ignore[valid-type]
    text: str


def _particles(inputs: list[SystemPromptParticleInput]) -> list[compositions.Particle]:
    return [compositions.Particle(p.kind, p.text) for p in inputs]


@strawberry.input(description="Leave organizationId out for a platform-wide composition (platform admins).")
class SystemPromptCreateInput:
    name: str
    particles: list[SystemPromptParticleInput]
    organization_id: strawberry.ID | None = None
    description: str | None = None


@strawberry.input(description="Fields left out are not changed; particles replace the whole set.")
class SystemPromptUpdateInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    particles: list[SystemPromptParticleInput] | None = strawberry.UNSET
    expected_updated_at: datetime | None = strawberry.field(
        default=None,
        description="The updatedAt you last read; if the composition changed since, nothing is written "
        "and the payload has a CONFLICT error.",
    )


@strawberry.input
class SystemPromptDeleteInput:
    id: strawberry.ID


@strawberry.type
class SystemPromptCreatePayload:
    system_prompt: SystemPrompt | None
    user_errors: list[SystemPromptUserError]


@strawberry.type
class SystemPromptUpdatePayload:
    system_prompt: SystemPrompt | None
    user_errors: list[SystemPromptUserError]


@strawberry.type
class SystemPromptDeletePayload:
    deleted_system_prompt_id: strawberry.ID | None
    user_errors: list[SystemPromptUserError]


_SYSTEM_PROMPT_FRAME = MutationFrame(system_prompt_error)


@strawberry.type
class SystemPromptMutations:
    @strawberry.mutation(description="Needs models:update in the organization, or platform admin.")
    async def system_prompt_create(
        self, info: GraphQLInfo, input: SystemPromptCreateInput
    ) -> SystemPromptCreatePayload:
        async def work(principal: Principal) -> compositions.SystemPrompt:
            organization_id = decode_optional(
                input.organization_id, "Organization", ["input", "organizationId"]
            )
            return await services(info).system_prompts.create(
                principal,
                organization_id=organization_id,
                name=input.name,
                description=input.description,
                particles=_particles(input.particles),
            )

        created, errors = await _SYSTEM_PROMPT_FRAME.run(info, input, work)
        return SystemPromptCreatePayload(
            system_prompt=SystemPrompt.of(created) if created else None, user_errors=errors
        )

    @strawberry.mutation
    async def system_prompt_update(
        self, info: GraphQLInfo, input: SystemPromptUpdateInput
    ) -> SystemPromptUpdatePayload:
        async def work(principal: Principal) -> compositions.SystemPrompt:
            system_prompt_id = decode_id(input.id, "SystemPrompt", ["input", "id"])
            particles = maybe_set(input.particles, ["input", "particles"])
            changes = SystemPromptChanges(
                name=maybe_set(input.name, ["input", "name"]),
                description=maybe(input.description),
                particles=particles if isinstance(particles, UnsetType) else _particles(particles),
                expected_updated_at=input.expected_updated_at,
            )
            return await services(info).system_prompts.update(principal, system_prompt_id, changes)

        updated, errors = await _SYSTEM_PROMPT_FRAME.run(info, input, work)
        return SystemPromptUpdatePayload(
            system_prompt=SystemPrompt.of(updated) if updated else None, user_errors=errors
        )

    @strawberry.mutation(description="Models that used the composition keep working without it.")
    async def system_prompt_delete(
        self, info: GraphQLInfo, input: SystemPromptDeleteInput
    ) -> SystemPromptDeletePayload:
        async def work(principal: Principal) -> compositions.SystemPrompt:
            system_prompt_id = decode_id(input.id, "SystemPrompt", ["input", "id"])
            return await services(info).system_prompts.delete(principal, system_prompt_id)

        deleted, errors = await _SYSTEM_PROMPT_FRAME.run(info, input, work)
        return SystemPromptDeletePayload(
            deleted_system_prompt_id=input.id if deleted else None, user_errors=errors
        )
