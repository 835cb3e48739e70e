"""Outbound addresses: every spelling of a private address is refused, the same way when a model is
saved, before a call and for what a host name resolves to; the IPv6 transition ranges are judged by
the IPv4 address they lead to, or refused whole (see app/providers/addresses.py)."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from app.domain.auth import Role
from app.domain.calls import ProviderError, ProviderErrorCode
from app.domain.enums import Provider
from app.providers.addresses import parse_host
from app.providers.http import Timeouts, UpstreamHttp
from app.providers.openai_family import openai_family_adapter
from app.providers.outbound import GuardedResolver, UnsafeUpstreamError, check_url
from app.providers.runtime import ProviderConfig, ProviderRuntime
from tests.conftest import make_settings, running_server
from tests.fakes.openai_server import CHAT, make_target
from tests.support.catalog import USER_CREATE, codes, stored_catalog
from tests.support.factories import make_tenant
from tests.support.graphql import GraphQLClient
from tests.support.loopback import loopback_app

FULLWIDTH_LOOPBACK = "\uff11\uff12\uff17.\uff10.\uff10.\uff11"  # IDNA would make it 127.0.0.1

# Hosts that reach this machine or a private network, each in a spelling that a resolver or an HTTP
# client reads as such.
PRIVATE_HOSTS = [
    "127.0.0.1",
    "127.1",  # short dotted forms: the last part fills the rest
    "127.0.1",
    "0x7f000001",  # one hex number
    "0x7F.0.0.1",
    "2130706433",  # one decimal number
    "0177.0.0.1",  # octal
    "0177.1",
    "017700000001",
    "0",  # 0.0.0.0, which reaches this machine
    "0x0",
    "0.0.0.0",  # noqa: S104 (a host to refuse, not an address to bind)
    "10.0.0.1",
    "012.1",  # 10.0.0.1 in octal
    "172.16.0.1",
    "192.168.1.1",
    "0xc0a80101",
    "169.254.169.254",  # cloud metadata
    "0xa9fea9fe",
    "2852039166",
    "100.100.100.200",
    "100.64.0.1",  # carrier-grade NAT
    "127.0.0.1.",  # trailing dot
    "localhost",
    "localhost.",
    "LocalHost.",
    "api.localhost",
    "metadata.google.internal",
    "printer.local",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::ffff:a9fe:a9fe]",
    "[::127.0.0.1]",  # IPv4-compatible (refused whole)
    "[::8.8.8.8]",
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a00:1::1]",  # 6to4 of 10.0.0.1
    "[2002:a9fe:a9fe::]",  # 6to4 of the metadata address
    "[64:ff9b::127.0.0.1]",  # NAT64 well-known prefix
    "[64:ff9b::a9fe:a9fe]",
    "[64:ff9b:1::8.8.8.8]",  # local-use NAT64 (refused whole)
    "[2001::1]",  # Teredo (refused whole)
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
    "[fe80::1]",
    "[fc00::1]",
    "[fd00:ec2::254]",  # AWS metadata over IPv6
    "[ff02::1]",
    "[2001:db8::1]",
]
# Hosts that are not hosts at all: refused even when private upstreams are allowed.
INVALID_HOSTS = [
    "[fe80::1%25eth0]",  # zone ids
    "[::1%25lo]",
    "[v1.x]",  # IPvFuture
    "1.2.3.4.5",
    "256.0.0.1",
    "1.16777216",
    "0x100000000",
    "08.0.0.1",  # 8 is no octal digit
    FULLWIDTH_LOOPBACK,
    "127\u30020\u30020\u30021",  # ideographic full stops: IDNA would make them dots
    "%31%32%37.0.0.1",
    "bad_host-.example",
    "a..b",
    "api.example.123",
]
PUBLIC_HOSTS = [
    "api.openai.com",
    "api.openai.com.",
    "xn--bcher-kva.example",
    "8.8.8.8",
    "0x8.0x8.0x8.0x8",  # 8.8.8.8 in another spelling is still 8.8.8.8
    "134744072",
    "1.1.1.1",
    "[2606:4700:4700::1111]",
    "[::ffff:8.8.8.8]",
    "[2002:808:808::1]",  # 6to4 of 8.8.8.8
    "[64:ff9b::8.8.8.8]",
]


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_private_hosts_are_refused(host: str) -> None:
    with pytest.raises(UnsafeUpstreamError, match="must not point at a loopback"):
        check_url(f"https://{host}/v1", allow_private=False)
    check_url(f"http://{host}:8080/v1", allow_private=True)  # the on-prem override still holds


@pytest.mark.parametrize("host", INVALID_HOSTS)
def test_invalid_hosts_are_refused_even_on_prem(host: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(UnsafeUpstreamError, match=r"is not a valid URL|has an invalid host"):
            check_url(f"https://{host}/v1", allow_private=allow_private)


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_public_hosts_are_allowed(host: str) -> None:
    check_url(f"https://{host}/v1", allow_private=False)


@pytest.mark.parametrize(
    "host",
    [
        "127.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "0",
        "0x7F.1",
        "10.0x10.1",
        "0300.0250.1.1",
        "1.1.1.1",
    ],
)
def test_numeric_hosts_are_read_as_the_c_library_reads_them(host: str) -> None:
    """What getaddrinfo would connect to, without asking it (inet_aton is the same reader)."""
    assert parse_host(host, bracketed=False) == IPv4Address(socket.inet_aton(host))


class _Answers(AbstractResolver):
    """A resolver that answers with fixed addresses (as a rebinding DNS server would)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "fe80::1%2",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "64:ff9b::a00:1",
        "64:ff9b:1::808:808",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "not-an-address",
    ],
)
async def test_the_resolver_drops_private_answers(address: str) -> None:
    resolver = GuardedResolver(_Answers(address, "8.8.8.8"))
    assert [r["host"] for r in await resolver.resolve("rebind.example", 443)] == ["8.8.8.8"]
    with pytest.raises(OSError, match="resolves only to addresses"):
        await GuardedResolver(_Answers(address)).resolve("rebind.example", 443)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700:4700::1111", "2002:808:808::1", "64:ff9b::808:808"]
)
async def test_the_resolver_keeps_public_answers(address: str) -> None:
    assert [r["host"] for r in await GuardedResolver(_Answers(address)).resolve("api.example", 443)] == [
        address
    ]


@pytest.mark.parametrize(
    "host", ["127.1", "0x7f000001", "2130706433", "0", "[2002:7f00:1::]", "[::ffff:7f00:1]"]
)
async def test_a_call_to_a_private_spelling_is_refused_before_connecting(host: str) -> None:
    http = UpstreamHttp.create(Timeouts(connect=2, first_byte=2, idle=2), allow_private=False)
    runtime = ProviderRuntime(http, ProviderConfig(timeouts=http.timeouts, allow_private_upstreams=False))
    try:
        adapter = openai_family_adapter(make_target(Provider.OPENAI, f"https://{host}/v1"), runtime)
        with pytest.raises(ProviderError) as caught:
            await adapter.complete(CHAT)
        assert caught.value.code is ProviderErrorCode.BAD_REQUEST
        assert "loopback, private or link-local" in caught.value.message
    finally:
        await runtime.close()


SAVE_REFUSED = [
    "127.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "0",
    "localhost.",
    "[2002:7f00:1::]",
    "[64:ff9b::7f00:1]",
    "[2001::1]",
    "[::ffff:a9fe:a9fe]",
    "[fe80::1%25eth0]",
    FULLWIDTH_LOOPBACK,
]


async def test_a_model_save_refuses_every_private_spelling(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    async with running_server(make_settings(database_url, allow_private_upstreams=False)) as live:
        tenant = await make_tenant(live.services, "Acme")
        org = GraphQLClient(http, live.url, tenant.keys[Role.ADMIN])
        mine = {
            "organizationId": tenant.organization_gid,
            "name": "mine",
            "provider": "OPENAI_COMPATIBLE",
            "providerModelId": "llama",
        }
        before = await stored_catalog(live.services.db)
        for host in SAVE_REFUSED:
            url = f"https://{host}/v1"
            payload = await org.mutate(USER_CREATE, {**mine, "modelUrl": url})
            assert codes(payload) == [("UNSAFE_URL", ["input", "modelUrl"])], url
            payload = await org.mutate(USER_CREATE, {**mine, "providerSettings": {"baseCustomUrl": url}})
            assert codes(payload) == [("UNSAFE_URL", ["input", "providerSettings", "baseCustomUrl"])], url
        assert await stored_catalog(live.services.db) == before


async def test_an_upstream_redirect_is_not_followed() -> None:
    """A 3xx is the provider's answer, not a new destination: following it would send the model's
    credential to wherever it points, past the outbound checks."""
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("authorization"))
        return web.json_response({})

    elsewhere_app = web.Application()
    elsewhere_app.router.add_post("/v1/chat/completions", elsewhere)
    async with loopback_app(elsewhere_app) as elsewhere_url:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{elsewhere_url}/v1/chat/completions")

        redirecting = web.Application()
        redirecting.router.add_post("/v1/chat/completions", redirect)
        async with loopback_app(redirecting) as url:
            http = UpstreamHttp.create(Timeouts(connect=2, first_byte=2, idle=2), allow_private=True)
            config = ProviderConfig(timeouts=http.timeouts, allow_private_upstreams=True)
            runtime = ProviderRuntime(http, config)
            try:
                adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{url}/v1"), runtime)
                with pytest.raises(ProviderError) as caught:
                    await adapter.complete(CHAT)
                assert "HTTP 307" in caught.value.message
            finally:
                await runtime.close()
    assert seen == []
