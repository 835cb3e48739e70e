"""Every stored row of the tables a mutation can write, to prove that a refused one wrote nothing."""

from __future__ import annotations

from typing import Any

from app.db import Database

# What requests write as a side effect, not as their answer: a key's last use, rate-limit windows,
# usage rows of gateway calls.
_SIDE_EFFECTS = {"api_keys": "last_used_at"}
TABLES = (
    "organizations",
    "projects",
    "api_keys",
    "connections",
    "models",
    "model_project_assignments",
    "model_fallbacks",
    "system_prompts",
    "system_prompt_particles",
    "prompts",
    "prompt_runs",
)


async def stored_rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        rows = [dict(r) for r in await db.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]  # noqa: S608
        for row in rows:
            row.pop(_SIDE_EFFECTS.get(table, ""), None)
        snapshot[table] = rows
    return snapshot


async def stored_fingerprint(db: Database) -> str:
    """One hash of every row of TABLES: cheap enough to take around each of many requests."""
    # Only the constant table and column names above are spliced in.
    parts = " UNION ALL ".join(
        f"SELECT '{table}' || (to_jsonb(t) - '{_SIDE_EFFECTS.get(table, '')}')::text AS row FROM {table} t"  # noqa: S608
        for table in TABLES
    )
    query = f"SELECT md5(string_agg(row, '|' ORDER BY row)) FROM ({parts}) rows"  # noqa: S608
    fingerprint: str = await db.fetchval(query)
    return fingerprint
