"""GraphQL types of system prompt compositions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.api.context import GraphQLInfo
from app.api.errors import UserError
from app.api.node import Node
from app.api.orgs.types import Organization
from app.domain import system_prompts as compositions
from app.domain.ids import encode_id

SystemPromptParticleKind = strawberry.enum(
    compositions.ParticleKind, name="SystemPromptParticleKind", description="What a particle is for."
)
SystemPromptErrorCode = strawberry.enum(compositions.SystemPromptErrorCode, name="SystemPromptErrorCode")


@strawberry.type(description="One part of a composition.")
class SystemPromptParticle:
    kind: SystemPromptParticleKind  # type: ignore[valid-type]
    text: str
    position: int = strawberry.field(description="0-based place in the composition.")


@strawberry.type(description="A named, ordered set of particles composed into one system prompt.")
class SystemPrompt(Node):
    name: str
    description: str | None
    is_platform: bool = strawberry.field(description="Platform-wide (no organization).")
    particles: list[SystemPromptParticle]
    text: str = strawberry.field(
        description="The composed prompt: the particles' texts in order, blank-line separated."
    )
    created_at: datetime
    updated_at: datetime = strawberry.field(description="Send it back as expectedUpdatedAt to update safely.")
    domain: strawberry.Private[compositions.SystemPrompt]

    @classmethod
    def of(cls, prompt: compositions.SystemPrompt) -> SystemPrompt:
        return cls(
            id=strawberry.ID(encode_id("SystemPrompt", prompt.id)),
            name=prompt.name,
            description=prompt.description,
            is_platform=prompt.is_platform,
            particles=[
                SystemPromptParticle(kind=p.kind, text=p.text, position=index)
                for index, p in enumerate(prompt.particles)
            ],
            text=prompt.text,
            created_at=prompt.created_at,
            updated_at=prompt.updated_at,
            domain=prompt,
        )

    @strawberry.field(description="The owner; null for a platform-wide composition.")
    async def organization(self, info: GraphQLInfo) -> Organization | None:
        if self.domain.organization_id is None:
            return None
        organization = await info.context.loaders.organization.load(self.domain.organization_id)
        return Organization.of(organization) if organization else None


@strawberry.type
class SystemPromptUserError(UserError):
    code: SystemPromptErrorCode  # type: ignore[valid-type]


def system_prompt_error(code: str, field: list[str] | None, message: str) -> SystemPromptUserError:
    return SystemPromptUserError(code=compositions.SystemPromptErrorCode(code), field=field, message=message)
