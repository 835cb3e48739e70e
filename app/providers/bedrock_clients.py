"""Connection setup for AWS Bedrock, kept apart from the Converse wire format.

One aioboto3 Session per process and one `bedrock-runtime` client per region, kept open between
calls (each client owns an aiohttp connection pool) and closed on shutdown through `aclose`, which
`ProviderRuntime.close` calls. Credentials come from the AWS credential chain (environment, shared
files, container or instance roles); the endpoint is botocore's own choice, so
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` (or `AWS_ENDPOINT_URL`) points every client at another host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError

from app.providers.http import Timeouts
from app.providers.runtime import ProviderRuntime

# aiobotocore's default pool of 10 connections would cap a region at 10 concurrent streams.
_MAX_POOL_CONNECTIONS = 1000


class BedrockClients:
    def __init__(self, timeouts: Timeouts) -> None:
        self._session = aioboto3.Session()
        self._config = AioConfig(
            connect_timeout=timeouts.connect,
            # A backstop only: the adapter enforces the first-byte and idle timeouts itself.
            read_timeout=max(timeouts.first_byte, timeouts.idle),
            # The gateway decides about retries and fallbacks; botocore's own would hide the failure
            # and multiply the wait (legacy mode makes 5 attempts on a throttle).
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=_MAX_POOL_CONNECTIONS,
        )
        self._clients: dict[str | None, Any] = {}
        self._exit_stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def client(self, region: str | None) -> Any:
        """The bedrock-runtime client for `region` (None: the AWS environment's region)."""
        if (client := self._clients.get(region)) is not None:
            return client
        async with self._lock:
            if region not in self._clients:
                context = self._session.client("bedrock-runtime", region_name=region, config=self._config)
                self._clients[region] = await self._exit_stack.enter_async_context(context)
            return self._clients[region]

    async def sent_secrets(self) -> tuple[str, ...]:
        """The AWS credentials calls are made with: the access key id and session token travel in
        every signed request, a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK) whole; the secret key only
        signs, but must never be shown either."""
        found = [os.environ.get("AWS_BEARER_TOKEN_BEDROCK")]
        with contextlib.suppress(BotoCoreError):  # the call's own error is the one to report
            credentials = await self._session.get_credentials()
            if credentials is not None:
                frozen = await credentials.get_frozen_credentials()
                found += (frozen.access_key, frozen.secret_key, frozen.token)
        return tuple(s for s in found if s)

    async def aclose(self) -> None:
        self._clients.clear()
        await self._exit_stack.aclose()


def bedrock_clients(runtime: ProviderRuntime) -> BedrockClients:
    return runtime.shared("aws-bedrock-clients", lambda: BedrockClients(runtime.config.timeouts))
