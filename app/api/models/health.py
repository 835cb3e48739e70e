"""GraphQL types of model health: whether calls reach a model or go to its fallbacks."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import gateway

HealthState = strawberry.enum(
    gateway.HealthState,
    description="HEALTHY; DEGRADED: failing, not tripped yet; TRIPPED: calls go to its fallbacks.",
)


@strawberry.type(description="Shared by every instance.")
class ModelHealth:
    state: HealthState  # type: ignore[valid-type]
    consecutive_failures: int = strawberry.field(description="Failed calls since the last success.")
    tripped_until: datetime | None = strawberry.field(
        description="While TRIPPED: when the model is tried again. Null otherwise."
    )

    @classmethod
    def of(cls, health: gateway.ModelHealth) -> ModelHealth:
        return cls(
            state=health.state,
            consecutive_failures=health.consecutive_failures,
            tripped_until=health.tripped_until,
        )
