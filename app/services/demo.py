"""What `make run` creates on first start, so a newcomer can call the API at once: the starter
catalog, a demo organization and project whose default model is a variant of the ECHO demo model
(offline, no keys needed), an ECHO embedding model in that project (`embed` and `/v1/embeddings`
offline), and the keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from app.domain.auth import OPERATOR, Role
from app.domain.enums import ModelGroup, Plan, Provider
from app.domain.models import ModelScope
from app.repositories.models import ModelListQuery
from app.services.catalog_seed import seed_catalog
from app.services.container import Services
from app.services.model_input import ModelInput

DEMO_ORGANIZATION = "Demo"
DEMO_PROJECT = "Demo project"
DEMO_MODEL = "Demo echo"
DEMO_EMBEDDING_MODEL = "Demo echo embeddings"


@dataclass(frozen=True, slots=True)
class DemoKeys:
    platform_admin: str
    demo_organization: str  # an ADMIN key of the demo organization
    demo_project: str  # a DEVELOPER key bound to the demo project: its calls use the project default


async def seed_demo(services: Services) -> DemoKeys | None:
    """Seeds everything; None (and nothing done) if the demo organization exists already."""
    repos = services.repositories
    if await repos.organizations.get_by_name(DEMO_ORGANIZATION) is not None:
        return None
    await seed_catalog(services.models)
    async with services.db.transaction():
        organization = await repos.organizations.insert(
            organization_id=uuid.uuid4(),
            name=DEMO_ORGANIZATION,
            plan=Plan.PRO,
            monthly_credit_limit=None,
            auto_migrate_end_of_life=True,
            external_id=None,
        )
        project = await repos.projects.insert(
            project_id=uuid.uuid4(), organization_id=organization.id, name=DEMO_PROJECT
        )
    await services.models.create_user(
        OPERATOR,
        organization_id=organization.id,
        scope=ModelScope.PROJECT,
        project_id=project.id,
        parent_id=await _echo_model_id(services),
        changes=ModelInput(
            name=DEMO_MODEL,
            description="The demo project's default: the ECHO model, streaming a word every 40 ms.",
            is_default=True,
            provider_settings={"wordDelayMs": "40"},
        ),
    )
    await services.models.create_user(
        OPERATOR,
        organization_id=organization.id,
        scope=ModelScope.PROJECT,
        project_id=project.id,
        parent_id=None,
        changes=ModelInput(
            name=DEMO_EMBEDDING_MODEL,
            description=(
                "Demo only: offline ECHO embeddings. 8 numbers derived from a hash of each text "
                "(unit length; the same text always gives the same vector); they carry no meaning."
            ),
            provider=Provider.ECHO,
            provider_model_id="echo-embeddings-1",
            model_group=ModelGroup.EMBEDDING,
        ),
    )
    _, admin_key = await services.api_keys.create_unchecked(
        name="platform admin (demo)", organization_id=None, platform_admin=True
    )
    _, demo_key = await services.api_keys.create_unchecked(
        name="demo", organization_id=organization.id, role=Role.ADMIN
    )
    _, project_key = await services.api_keys.create_unchecked(
        name="demo project", organization_id=organization.id, project_id=project.id, role=Role.DEVELOPER
    )
    return DemoKeys(platform_admin=admin_key, demo_organization=demo_key, demo_project=project_key)


async def _echo_model_id(services: Services) -> UUID:
    query = ModelListQuery(organization_id=None, include_system=True, providers=[Provider.ECHO.value])
    echo = await services.repositories.models.list_all(query, services.models.clock())
    if not echo:
        raise RuntimeError("the starter catalog has no ECHO model")
    return echo[0].id
