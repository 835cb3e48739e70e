"""Loading the starter system catalog (app/catalog/starter_catalog.json), idempotently: models
that exist (by name) are left as they are, so an operator's edits survive a re-seed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from app.domain.auth import OPERATOR
from app.domain.enums import ApiType, ModelGroup, Provider
from app.domain.models import AccessTier, Capability, ModelKind
from app.repositories.models import ModelListQuery
from app.services.model_input import ModelInput
from app.services.models import ModelService

STARTER_CATALOG = Path(__file__).resolve().parent.parent / "catalog" / "starter_catalog.json"
SUPPORTED_VERSION = 1


@dataclass(frozen=True, slots=True)
class SeedReport:
    created: list[str]
    existing: list[str]


def load_catalog(path: Path = STARTER_CATALOG) -> list[dict[str, Any]]:
    document = orjson.loads(path.read_bytes())
    if document.get("version") != SUPPORTED_VERSION:
        raise ValueError(
            f"{path.name}: catalog version {document.get('version')!r} is not {SUPPORTED_VERSION}"
        )
    entries: list[dict[str, Any]] = document["models"]
    return entries


def model_input(entry: dict[str, Any]) -> ModelInput:
    return ModelInput(
        name=entry["name"],
        description=entry.get("description"),
        provider=Provider(entry["provider"]),
        provider_model_id=entry.get("providerModelId"),
        model_url=entry.get("modelUrl"),
        model_group=ModelGroup(entry["modelGroup"]),
        api_type=ApiType(entry.get("apiType", "CHAT_COMPLETION")),
        context_window=entry.get("contextWindow"),
        max_output_tokens=entry.get("maxOutputTokens"),
        capabilities=frozenset(Capability(c) for c in entry.get("capabilities", [])),
        credit_multiplier=Decimal(str(entry.get("creditMultiplier", "1"))),
        access_tier=AccessTier(entry.get("accessTier", "STANDARD")),
        is_visible=entry.get("isVisible", True),
        is_recommended=entry.get("isRecommended", False),
        provider_settings=entry.get("providerSettings", {}),
    )


async def seed_catalog(models: ModelService, path: Path = STARTER_CATALOG) -> SeedReport:
    existing_records = await models.models.list_all(
        ModelListQuery(
            organization_id=None, include_system=True, include_invisible_system=True, kinds=["SYSTEM"]
        ),
        models.clock(),
    )
    existing = {r.name.lower() for r in existing_records if r.kind is ModelKind.SYSTEM}
    report = SeedReport(created=[], existing=[])
    for entry in load_catalog(path):
        if entry["name"].lower() in existing:
            report.existing.append(entry["name"])
            continue
        await models.create_system(OPERATOR, model_input(entry))
        report.created.append(entry["name"])
    return report
