"""Outbound safety: which upstream URLs and addresses Modelgate may call.

Model URLs come from users, so a URL could point at the metadata service or an internal host.
`check_url` refuses bad URLs when they are saved and before each call; `GuardedResolver` checks
the address each host name resolves to at connect time, so a DNS answer that changes after the
URL was accepted (rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)


class UnsafeUpstreamError(ValueError):
    """A URL or address Modelgate refuses to call. The message is safe to show a user."""


def is_public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip in _METADATA_ADDRESSES
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip in ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, often internal
    )


def check_url(url: str, *, allow_private: bool) -> None:
    """Raises UnsafeUpstreamError unless `url` may be called. With `allow_private` (tests, on-prem),
    plain http and private addresses are allowed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise UnsafeUpstreamError("is not a valid URL") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeUpstreamError("must be an absolute https URL")
    if parts.username or parts.password:
        raise UnsafeUpstreamError("must not contain credentials")
    if allow_private:
        return
    if parts.scheme != "https":
        raise UnsafeUpstreamError("must use https")
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise UnsafeUpstreamError("must not point at a loopback, private or link-local address")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a host name: its addresses are checked when it is resolved
    if not is_public_address(host):
        raise UnsafeUpstreamError("must not point at a loopback, private or link-local address")


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then drops every non-public address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if is_public_address(r["host"])]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses Modelgate may not call")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def resolver_kwargs(*, allow_private: bool) -> dict[str, Any]:
    """Connector arguments: the guarded resolver unless private upstreams are allowed."""
    return {} if allow_private else {"resolver": GuardedResolver()}
