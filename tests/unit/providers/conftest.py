"""Fixtures the provider tests share: runtimes whose HTTP client may call the fakes on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.providers.http import Timeouts, UpstreamHttp
from app.providers.runtime import ProviderConfig, ProviderRuntime
from tests.fakes.openai_server import OpenAIFake, openai_fake_server

TIMEOUTS = Timeouts(connect=2, first_byte=5, idle=5)
QUICK_TIMEOUTS = Timeouts(connect=0.5, first_byte=0.3, idle=0.3)  # for the tests of timeouts

MakeRuntime = Callable[..., ProviderRuntime]


@pytest.fixture
def runtime_config() -> dict[str, Any]:
    """ProviderConfig fields of the runtimes beyond their timeouts; a module may override this."""
    return {"bedrock_region": "us-east-1"}  # the Bedrock tests' region; no other adapter reads it


@pytest.fixture
def clock() -> Callable[[], float]:
    """The runtimes' clock; a module may override this."""
    return time.time


@pytest.fixture
async def make_runtime(
    runtime_config: dict[str, Any], clock: Callable[[], float]
) -> AsyncIterator[MakeRuntime]:
    """`make_runtime(timeouts=TIMEOUTS, *, allow_private=True, **config)`: a runtime, closed after the
    test; `config` (ProviderConfig fields) goes over `runtime_config`."""
    made: list[ProviderRuntime] = []

    def make(timeouts: Timeouts = TIMEOUTS, *, allow_private: bool = True, **config: Any) -> ProviderRuntime:
        config = {**runtime_config, **config}
        http = UpstreamHttp.create(timeouts, allow_private=allow_private)
        provider_config = ProviderConfig(timeouts=timeouts, allow_private_upstreams=allow_private, **config)
        made.append(ProviderRuntime(http, provider_config, clock=clock))
        return made[-1]

    yield make
    for runtime in made:
        await runtime.close()


@pytest.fixture
def runtime(make_runtime: MakeRuntime) -> ProviderRuntime:
    return make_runtime()


@pytest.fixture
def quick_runtime(make_runtime: MakeRuntime) -> ProviderRuntime:
    return make_runtime(QUICK_TIMEOUTS)


@pytest.fixture
async def openai_fake() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server() as fake:
        yield fake
