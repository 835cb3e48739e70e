"""The gateway's view of models, kept in memory: a model resolved once (effective values, decrypted
credentials, effective system prompt) serves every call until the catalog changes.

Any catalog change, on any instance, publishes on the "catalog" topic and empties the cache here
(LISTEN/NOTIFY). A fill that raced with a change is not stored, so a stale entry cannot outlive it.
The TTL is only a safety net.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from app.domain.models import EffectiveModel
from app.providers.base import Credentials, ProviderTarget
from app.repositories.models import ModelRepository
from app.services.effective_prompts import EffectiveSystemPrompts
from app.services.model_credentials import ModelCredentials


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model: EffectiveModel
    credentials: Credentials
    system_prompt: str | None

    def target(self) -> ProviderTarget:
        model = self.model
        return ProviderTarget(
            provider=model.provider,
            provider_model_id=model.provider_model_id,
            model_group=model.record.model_group,
            api_type=model.api_type,
            model_url=model.model_url,
            settings={k: str(v) for k, v in model.provider_settings.items()},
            credentials=self.credentials,
        )


class ModelCache:
    def __init__(
        self,
        models: ModelRepository,
        credentials: ModelCredentials,
        prompts: EffectiveSystemPrompts,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.models = models
        self.credentials = credentials
        self.prompts = prompts
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[UUID, tuple[ResolvedModel | None, float]] = {}
        self._generation = 0

    async def get(self, model_id: UUID) -> ResolvedModel | None:
        entry = self._entries.get(model_id)
        if entry is not None and self.clock() - entry[1] < self.ttl:
            return entry[0]
        generation = self._generation
        resolved = await self._resolve(model_id)
        if generation == self._generation:
            self._entries[model_id] = (resolved, self.clock())
        return resolved

    async def _resolve(self, model_id: UUID) -> ResolvedModel | None:
        record = await self.models.get(model_id)
        if record is None:
            return None
        parent = await self.models.get(record.parent_id) if record.parent_id else None
        model = EffectiveModel(record, parent)
        return ResolvedModel(
            model=model,
            credentials=await self.credentials.resolve(model),
            system_prompt=await self.prompts.for_model(model),
        )

    def invalidate(self, _key: str | None = None) -> None:
        """Any catalog change may touch any model (a parent, a connection, a composition)."""
        self._generation += 1
        self._entries.clear()
