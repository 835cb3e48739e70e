"""graphql-http's GraphQL-over-HTTP server audit (the pinned version in node/package-lock.json),
run against a live server: every MUST and every SHOULD passes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import LiveServer
from tests.contract.conftest import run_node


async def test_the_graphql_over_http_audit_passes_every_must_and_should(
    server: LiveServer, node_project: Path
) -> None:
    status, out, err = await run_node("audit.mjs", f"{server.url}/graphql")
    assert status == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    musts = [r for r in results if r["name"].startswith("MUST")]
    shoulds = [r for r in results if r["name"].startswith("SHOULD")]
    assert len(musts) >= 13, "the audit ran its checks"
    assert len(shoulds) >= 20, "the audit ran its checks"
    failed = [f"{r['id']} {r['name']}: {r['reason']}" for r in musts + shoulds if r["status"] != "ok"]
    assert failed == []
