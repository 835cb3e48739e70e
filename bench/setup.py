"""Seeding the benchmark database: one organization and project, a key, models pointing at the fake
upstreams, and enough system models for the catalog scenario (through the services, as the API would)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from app.config import Settings
from app.db import Database
from app.domain.auth import OPERATOR, Role
from app.domain.enums import ModelGroup, Plan, Provider
from app.domain.ids import encode_id
from app.domain.models import Capability
from app.migrations import migrate
from app.services.catalog_seed import seed_catalog
from app.services.container import Services
from app.services.model_input import ModelInput
from app.services.tenancy import OrganizationChanges

EXTRA_MODELS = 40


@dataclass(frozen=True, slots=True)
class Seeded:
    key: str
    organization_id: str
    fast_model: str  # global ids
    slow_model: str
    scale_model: str  # scenario 7's upstream (the slow one when there is none)


async def seed(
    settings: Settings, upstream_url: str, slow_upstream_url: str, scale_upstream_url: str | None = None
) -> Seeded:
    assert settings.database_url
    await migrate(settings.database_url)
    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    try:
        services = Services(settings, db, settings.database_url)
        organization = await services.organizations.create(OPERATOR, name="Bench", plan=Plan.ENTERPRISE)
        project = await services.projects.create(OPERATOR, organization.id, "Bench project")
        # 1,000 concurrent streams in scenario 4, 10,000 in scenario 7 (the highest cap there is).
        await services.organizations.update(
            OPERATOR, organization.id, OrganizationChanges(max_concurrent_streams=10_000)
        )
        _, key = await services.api_keys.create_unchecked(
            name="bench", organization_id=organization.id, project_id=project.id, role=Role.DEVELOPER
        )
        await seed_catalog(services.models)
        fast = await _model(services, "bench-gpt", upstream_url)
        slow = await _model(services, "bench-gpt-slow", slow_upstream_url)
        scale = await _model(services, "bench-gpt-scale", scale_upstream_url) if scale_upstream_url else slow
        for index in range(EXTRA_MODELS):
            await _model(services, f"bench-extra-{index:02d}", upstream_url)
        return Seeded(
            key=key,
            organization_id=str(organization.id),
            fast_model=encode_id("SystemModel", fast),
            slow_model=encode_id("SystemModel", slow),
            scale_model=encode_id("SystemModel", scale),
        )
    finally:
        await db.close()


async def _model(services: Services, name: str, url: str) -> uuid.UUID:
    created = await services.models.create_system(
        OPERATOR,
        ModelInput(
            name=name,
            provider=Provider.OPENAI,
            provider_model_id=name,
            model_url=f"{url}/v1",
            model_group=ModelGroup.CHAT,
            context_window=128_000,
            max_output_tokens=4096,
            capabilities=frozenset({Capability.STREAMING}),
            credit_multiplier=Decimal("1"),
        ),
    )
    return created.id
