"""The headers of the pages Modelgate serves to browsers (the chat page and GraphiQL).

Their Content-Security-Policy allows this server only: scripts, styles and images from 'self', no
inline code, and network access only to this host (HTTP for queries, ws/wss for subscriptions).
"""

from __future__ import annotations

import re

# A Host header that is safe to repeat in the policy (aiohttp already refuses line breaks).
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?\Z|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?\Z")


def content_security_policy(host: str, *, fonts: bool = False) -> str:
    """`fonts`: GraphiQL's web fonts, served from this server too (the chat page uses system fonts)."""
    # CSP level 3 lets 'self' cover ws/wss of the same host, but older browsers need them named.
    sockets = f" ws://{host} wss://{host}" if _SAFE_HOST.match(host) else ""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            *(("font-src 'self'",) if fonts else ()),
            f"connect-src 'self'{sockets}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def common_headers() -> dict[str, str]:
    return {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # Small files that change with each release: revalidate instead of serving stale code.
        "Cache-Control": "no-cache",
    }
