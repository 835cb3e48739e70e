"""System prompt compositions: named, ordered particles composed into one system prompt.

A composition is platform-wide (no organization; platform admins manage it) or owned by one
organization. Its text is its particles' texts in order, separated by a blank line; a model's
effective system prompt uses that text when the model has no override of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from app.domain.errors import ErrorCollector
from app.domain.tenancy import check_name

PARTICLE_SEPARATOR = "\n\n"
TEXT_MAX_LENGTH = 50_000  # for each particle and for the composed text: the models' override limit
MAX_PARTICLES = 50
DESCRIPTION_MAX_LENGTH = 2000


class ParticleKind(StrEnum):
    """What a particle is for. Only a label: the composition treats every kind the same."""

    ROLE = "ROLE"
    CONTEXT = "CONTEXT"
    TONE = "TONE"
    FORMAT = "FORMAT"
    GUARDRAILS = "GUARDRAILS"
    CUSTOM = "CUSTOM"


class SystemPromptErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PERMISSION_DENIED = "PERMISSION_DENIED"


@dataclass(frozen=True, slots=True)
class Particle:
    kind: ParticleKind
    text: str


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    id: UUID
    organization_id: UUID | None
    name: str
    description: str | None
    particles: tuple[Particle, ...]  # in order; a particle's position is its index
    created_at: datetime
    updated_at: datetime

    @property
    def is_platform(self) -> bool:
        return self.organization_id is None

    @property
    def text(self) -> str:
        return compose(self.particles)


def compose(particles: Sequence[Particle]) -> str:
    return PARTICLE_SEPARATOR.join(p.text for p in particles)


def check_description(errors: ErrorCollector, description: str | None, *path: str) -> None:
    if description is not None and len(description) > DESCRIPTION_MAX_LENGTH:
        errors.add(
            SystemPromptErrorCode.TOO_LONG, f"must be at most {DESCRIPTION_MAX_LENGTH} characters", *path
        )


def check_particles(errors: ErrorCollector, particles: Sequence[Particle], *path: str) -> None:
    """1-50 particles, each 1-50,000 characters, composing to at most 50,000 characters.

    At least one particle is required so that a composition never composes to an empty prompt,
    which a model would otherwise use in place of its parent's."""
    if not particles:
        errors.add(SystemPromptErrorCode.REQUIRED, "needs at least one particle", *path)
        return
    if len(particles) > MAX_PARTICLES:
        errors.add(SystemPromptErrorCode.TOO_LONG, f"must have at most {MAX_PARTICLES} particles", *path)
        return
    composed_length = -len(PARTICLE_SEPARATOR)
    # The composed text's limit is named once, at the particle that crosses it; not after a particle
    # that is too long on its own, which says it already.
    said_too_long = False
    for index, particle in enumerate(particles):
        field = (*path, str(index), "text")
        composed_length += len(PARTICLE_SEPARATOR) + len(particle.text)
        if not particle.text.strip():
            errors.add(SystemPromptErrorCode.REQUIRED, "must not be empty", *field)
        elif len(particle.text) > TEXT_MAX_LENGTH:
            errors.add(
                SystemPromptErrorCode.TOO_LONG, f"must be at most {TEXT_MAX_LENGTH} characters", *field
            )
            said_too_long = True
        elif composed_length > TEXT_MAX_LENGTH and not said_too_long:
            errors.add(
                SystemPromptErrorCode.TOO_LONG,
                f"the composed text would exceed {TEXT_MAX_LENGTH} characters here",
                *field,
            )
            said_too_long = True


def check_composition(
    errors: ErrorCollector,
    *,
    name: str | None,
    description: str | None,
    particles: Sequence[Particle] | None,
) -> None:
    """The field rules of a create or update input; None: the field is not being set."""
    check_name(errors, name, "input", "name")
    check_description(errors, description, "input", "description")
    if particles is not None:
        check_particles(errors, particles, "input", "particles")
