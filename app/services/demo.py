"""What `make run` creates on first start, so a newcomer can call the API at once: the starter
catalog, a demo organization and project whose default model is a variant of the ECHO demo model
(offline, no keys needed), an ECHO embedding model in that project (`embed` and `/v1/embeddings`
offline), and the keys."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from app.domain.auth import OPERATOR, Role
from app.domain.enums import ModelGroup, Plan, Provider
from app.domain.models import ModelKind, ModelScope
from app.domain.pagination import PageRequest
from app.services.catalog_seed import seed_catalog
from app.services.container import Services
from app.services.model_input import ModelInput
from app.services.models import ModelFilter

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
    if await services.organizations.named(OPERATOR, DEMO_ORGANIZATION) is not None:
        return None
    await seed_catalog(services.models)
    organization = await services.organizations.create(
        OPERATOR, name=DEMO_ORGANIZATION, plan=Plan.PRO, auto_migrate_end_of_life=True
    )
    project = await services.projects.create(OPERATOR, organization.id, DEMO_PROJECT)
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
    echo_models = ModelFilter(kinds=[ModelKind.SYSTEM], providers=[Provider.ECHO.value])
    echo = await services.models.list_page(OPERATOR, echo_models, PageRequest(first=1))
    if not echo.items:
        raise RuntimeError("the starter catalog has no ECHO model")
    return echo.items[0].id
