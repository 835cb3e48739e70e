"""The gateway's view of models, kept in memory: a model resolved once (effective values, decrypted
credentials, effective system prompt) serves every call until the catalog changes.

Any catalog change, on any instance, publishes on the "catalog" topic and empties the cache here
(LISTEN/NOTIFY). While the database does not answer, entries are served up to `stale_for` seconds
past their freshness (see TtlCache).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from app.domain.credentials import Credentials
from app.domain.destinations import Destination, without_destination
from app.domain.models import EffectiveModel
from app.providers.base import ProviderTarget
from app.repositories.models import ModelRepository
from app.services.effective_prompts import EffectiveSystemPrompts
from app.services.model_credentials import ModelCredentials
from app.services.ttl_cache import TtlCache


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model: EffectiveModel
    credentials: Credentials
    # Where the credentials belong (see ModelCredentials.resolve): the only URL and destination
    # settings the call uses, whatever else the model's row says.
    destination: Destination
    system_prompt: str | None

    def target(self) -> ProviderTarget:
        model = self.model
        settings = {k: str(v) for k, v in without_destination(model.provider_settings).items()}
        return ProviderTarget(
            provider=model.provider,
            provider_model_id=model.provider_model_id,
            model_group=model.record.model_group,
            api_type=model.api_type,
            model_url=self.destination.model_url,
            settings={**settings, **self.destination.settings},
            credentials=self.credentials,
        )


class ModelCache:
    def __init__(
        self,
        models: ModelRepository,
        credentials: ModelCredentials,
        prompts: EffectiveSystemPrompts,
        *,
        stale_for: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.models = models
        self.credentials = credentials
        self.prompts = prompts
        self._resolved: TtlCache[UUID, ResolvedModel] = TtlCache(
            self._resolve, stale_for=stale_for, clock=clock
        )
        self._defaults: TtlCache[UUID, UUID] = TtlCache(
            models.default_for_project, stale_for=stale_for, clock=clock
        )
        # Names a caller may mean, per (organization, name): a few thousand at most are kept.
        self._named: TtlCache[tuple[UUID, str], list[UUID]] = TtlCache(
            self._ids_named, stale_for=stale_for, max_entries=10_000, clock=clock
        )

    async def get(self, model_id: UUID) -> ResolvedModel | None:
        return await self._resolved.get(model_id)

    async def default_for_project(self, project_id: UUID) -> UUID | None:
        """The id of the project's default model, if it has one."""
        return await self._defaults.get(project_id)

    async def ids_named(self, organization_id: UUID, name: str) -> list[UUID]:
        """The models an organization's callers may mean by `name` (before project scoping)."""
        return await self._named.get((organization_id, name)) or []

    async def _ids_named(self, key: tuple[UUID, str]) -> list[UUID]:
        return await self.models.ids_named(*key)

    async def _resolve(self, model_id: UUID) -> ResolvedModel | None:
        model = await self.models.get_effective(model_id)
        if model is None:
            return None
        credentials, destination = await self.credentials.resolve(model)
        return ResolvedModel(
            model=model,
            credentials=credentials,
            destination=destination,
            system_prompt=await self.prompts.for_model(model),
        )

    def invalidate(self, _key: str | None = None) -> None:
        """Any catalog change may touch any model (a parent, a connection, a composition)."""
        self._resolved.clear()
        self._defaults.clear()
        self._named.clear()
