"""Composing particles into one system prompt, and the rules on a composition's fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.domain.errors import ErrorCollector
from app.domain.system_prompts import (
    MAX_PARTICLES,
    TEXT_MAX_LENGTH,
    Particle,
    ParticleKind,
    SystemPrompt,
    check_composition,
    check_particles,
    compose,
)

Problem = tuple[str, tuple[str, ...] | None]


def problems(particles: list[Particle]) -> list[Problem]:
    errors = ErrorCollector()
    check_particles(errors, particles, "input", "particles")
    return [(e.code.value, e.field) for e in errors.errors]


def texts(*values: str) -> list[Particle]:
    return [Particle(ParticleKind.CUSTOM, v) for v in values]


def path(index: int) -> tuple[str, ...]:
    return ("input", "particles", str(index), "text")


def test_particles_compose_in_order_separated_by_a_blank_line() -> None:
    particles = [
        Particle(ParticleKind.ROLE, "You are a librarian."),
        Particle(ParticleKind.TONE, "Be kind.\nBe brief."),
        Particle(ParticleKind.FORMAT, "Answer in Markdown."),
    ]
    assert compose(particles) == "You are a librarian.\n\nBe kind.\nBe brief.\n\nAnswer in Markdown."


def test_a_single_particle_composes_to_its_own_text_unchanged() -> None:
    assert compose(texts("  keep my spaces  ")) == "  keep my spaces  "


def test_a_composition_exposes_its_composed_text_and_owner() -> None:
    now = datetime.now(UTC)
    platform = SystemPrompt(uuid.uuid4(), None, "p", None, tuple(texts("a", "b")), now, now)
    owned = SystemPrompt(uuid.uuid4(), uuid.uuid4(), "o", None, tuple(texts("c")), now, now)
    assert (platform.text, platform.is_platform) == ("a\n\nb", True)
    assert (owned.text, owned.is_platform) == ("c", False)


def test_valid_particles_have_no_problems() -> None:
    assert problems(texts("x")) == []
    assert problems(texts(*["p"] * MAX_PARTICLES)) == []


def test_at_least_one_particle_is_needed() -> None:
    assert problems([]) == [("REQUIRED", ("input", "particles"))]


def test_at_most_50_particles() -> None:
    assert problems(texts(*["p"] * (MAX_PARTICLES + 1))) == [("TOO_LONG", ("input", "particles"))]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_particle_is_required_at_its_path(text: str) -> None:
    assert problems(texts("fine", text)) == [("REQUIRED", path(1))]


def test_a_particle_longer_than_the_limit_is_too_long_at_its_path() -> None:
    assert problems(texts("a", "b", "c", "x" * (TEXT_MAX_LENGTH + 1))) == [("TOO_LONG", path(3))]


def test_a_particle_of_exactly_the_limit_is_accepted() -> None:
    assert problems(texts("x" * TEXT_MAX_LENGTH)) == []


def test_the_composed_text_limit_counts_the_separators() -> None:
    # Two halves fit only without the blank line between them.
    half = TEXT_MAX_LENGTH // 2
    assert problems(texts("x" * (half - 1), "y" * (half - 1))) == []
    assert problems(texts("x" * half, "y" * half)) == [("TOO_LONG", path(1))]


def test_an_overlong_composition_is_named_once_at_the_particle_that_crosses_the_limit() -> None:
    # 3 x 16,664 + 2 separators = 49,996; "d" brings it to 49,999 and "e" to 50,002.
    big = 16_664
    particles = texts("a" * big, "b" * big, "c" * big, "d", "e", "f")
    assert problems(particles) == [("TOO_LONG", path(4))]


def test_an_overlong_particle_is_not_reported_twice() -> None:
    assert problems(texts("x" * (TEXT_MAX_LENGTH + 1), "y")) == [("TOO_LONG", path(0))]


def test_every_empty_particle_is_reported() -> None:
    assert problems(texts("", "ok", " ")) == [("REQUIRED", path(0)), ("REQUIRED", path(2))]


def test_composition_fields_are_checked_together() -> None:
    errors = ErrorCollector()
    check_composition(errors, name=" ", description="d" * 2001, particles=[])
    assert [(e.code.value, e.field) for e in errors.errors] == [
        ("REQUIRED", ("input", "name")),
        ("TOO_LONG", ("input", "description")),
        ("REQUIRED", ("input", "particles")),
    ]


def test_fields_not_being_set_are_not_checked() -> None:
    errors = ErrorCollector()
    check_composition(errors, name=None, description=None, particles=None)
    assert errors.errors == []
