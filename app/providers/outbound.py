"""Outbound safety: which upstream URLs and addresses Modelgate may call.

Model URLs come from users, so a URL could point at the metadata service or an internal host.
`check_url` refuses bad URLs when they are saved and before each call; `GuardedResolver` checks
the address each host name resolves to at connect time, so a DNS answer that changes after the
URL was accepted (rebinding) is refused too. Both read hosts and decide about addresses through
`addresses`, so what a model save accepts is exactly what a call may reach.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from app.providers.addresses import InvalidHost, is_private_name, is_public, is_public_resolved, parse_host

_PRIVATE = "must not point at a loopback, private or link-local address"


class UnsafeUpstreamError(ValueError):
    """A URL or address Modelgate refuses to call. The message is safe to show a user."""


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
    try:
        target = parse_host(host, bracketed="[" in parts.netloc)
    except InvalidHost as exc:
        raise UnsafeUpstreamError(f"has an invalid host: {exc}") from exc
    if allow_private:
        return
    if parts.scheme != "https":
        raise UnsafeUpstreamError("must use https")
    if isinstance(target, str):
        if is_private_name(target):
            raise UnsafeUpstreamError(_PRIVATE)
        # Any other name: its addresses are checked when it is resolved.
    elif not is_public(target):
        raise UnsafeUpstreamError(_PRIVATE)


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver (or `inner`), then drops every non-public address."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if is_public_resolved(r["host"])]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses Modelgate may not call")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def resolver_kwargs(*, allow_private: bool) -> dict[str, Any]:
    """Connector arguments: the guarded resolver unless private upstreams are allowed."""
    return {} if allow_private else {"resolver": GuardedResolver()}
