"""Process-wide provider resources: the shared HTTP client, provider configuration, and per-process
objects some adapters keep between calls (OAuth token caches, AWS sessions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from app.providers.http import Timeouts, UpstreamHttp

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    timeouts: Timeouts = field(default_factory=Timeouts)
    allow_private_upstreams: bool = False
    # AWS region for Bedrock when a model names none; None: the AWS environment's own (AWS_REGION…).
    bedrock_region: str | None = None
    google_oauth_url: str = "https://oauth2.googleapis.com/token"
    max_connections: int = 1000  # pooled upstream connections; a running stream holds one


class ProviderRuntime:
    def __init__(
        self, http: UpstreamHttp, config: ProviderConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.http = http
        self.config = config
        self.clock = clock
        self._shared: dict[str, Any] = {}

    @classmethod
    def create(cls, config: ProviderConfig) -> ProviderRuntime:
        http = UpstreamHttp.create(
            config.timeouts,
            allow_private=config.allow_private_upstreams,
            max_connections=config.max_connections,
        )
        return cls(http, config)

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """One instance per runtime of whatever `factory` makes, created on first use."""
        if key not in self._shared:
            self._shared[key] = factory()
        return cast(T, self._shared[key])

    async def close(self) -> None:
        for value in self._shared.values():
            closer = getattr(value, "aclose", None)
            if closer is not None:
                await closer()
        self._shared.clear()
        await self.http.close()
