"""The baseline of the catalog scenario: a minimal aiohttp + asyncpg endpoint returning the same
rows as `models(first: 50, filter: {includeSystem: true})` with the bench's selection, as JSON.

    python -m bench.catalog_baseline --port 9300 --dsn postgresql://… --organization <uuid>
"""

from __future__ import annotations

import argparse
from uuid import UUID

import asyncpg
import orjson
from aiohttp import web

QUERY = """
SELECT m.id, m.name, coalesce(m.provider, p.provider) AS provider,
       coalesce(m.provider_model_id, p.provider_model_id) AS provider_model_id,
       coalesce(m.context_window, p.context_window) AS context_window,
       coalesce(m.max_output_tokens, p.max_output_tokens) AS max_output_tokens,
       coalesce(m.capabilities, p.capabilities, '{}') AS capabilities,
       coalesce(m.credit_multiplier, p.credit_multiplier) AS credit_multiplier,
       m.enabled AND coalesce(p.enabled, true) AS enabled, least(m.end_of_life_at, p.end_of_life_at) AS eol
FROM models m LEFT JOIN models p ON p.id = m.parent_id
WHERE (m.kind = 'SYSTEM' AND m.is_visible) OR m.organization_id = $1
ORDER BY lower(m.name), m.id
LIMIT 50
"""


def make_app(dsn: str, organization_id: UUID) -> web.Application:
    app = web.Application()

    async def pool(app: web.Application):  # type: ignore[no-untyped-def]
        app["pool"] = await asyncpg.create_pool(dsn, min_size=4, max_size=16)
        yield
        await app["pool"].close()

    async def models(request: web.Request) -> web.Response:
        rows = await request.app["pool"].fetch(QUERY, organization_id)
        nodes = [
            {
                "id": str(r["id"]),
                "name": r["name"],
                "provider": r["provider"],
                "providerModelId": r["provider_model_id"],
                "contextWindow": r["context_window"],
                "maxOutputTokens": r["max_output_tokens"],
                "capabilities": list(r["capabilities"]),
                "creditMultiplier": str(r["credit_multiplier"]),
                "lifecycleState": "ACTIVE" if r["enabled"] and r["eol"] is None else "OTHER",
            }
            for r in rows
        ]
        body = orjson.dumps({"data": {"models": {"nodes": nodes}}})
        return web.Response(body=body, content_type="application/json")

    app.cleanup_ctx.append(pool)
    app.router.add_route("*", "/models", models)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--organization", required=True)
    args = parser.parse_args()
    web.run_app(
        make_app(args.dsn, UUID(args.organization)),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
