"""A usage row of a paid call, as the gateway hands it to the usage recorder, for tests that spend
credits without making calls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from app.domain.gateway import CallOperation, CallStatus, UsageEvent


def paid_call(organization_id: UUID, credits: str, at: datetime | None = None) -> UsageEvent:
    """A successful chat call of `organization_id` that cost `credits`, at `at` (default now)."""
    return UsageEvent(
        organization_id=organization_id,
        project_id=None,
        api_key_id=None,
        caller="key:test",
        operation=CallOperation.CHAT,
        requested_model_id=None,
        served_model_id=None,
        provider="OPENAI",
        input_tokens=0,
        output_tokens=0,
        credits=Decimal(credits),
        latency_ms=1,
        time_to_first_token_ms=None,
        status=CallStatus.SUCCESS,
        error_code=None,
        request_id=uuid.uuid4().hex,
        created_at=at or datetime.now(UTC),
    )
