"""One JSON access-log line per request: request id, operation, caller (key prefix), status, duration."""

from __future__ import annotations

import logging

import orjson
import pytest

from app.domain.auth import Role, split_api_key
from app.logs import JsonFormatter
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient


async def test_access_log_line(gql: GraphQLClient, tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    key = tenant.keys[Role.ADMIN]
    with caplog.at_level(logging.INFO, logger="modelgate.access"):
        body = await gql.with_key(key).post("query WhoAmI { viewer { kind } }")
    records = [r for r in caplog.records if r.name == "modelgate.access"]
    assert len(records) == 1
    line = orjson.loads(JsonFormatter().format(records[0]))
    prefix, secret = split_api_key(key) or ("", "")
    assert line["requestId"] == body["_request_id"]
    assert line["operation"] == "WhoAmI"
    assert line["caller"] == f"key:{prefix}"
    assert line["status"] == 200
    assert isinstance(line["durationMs"], float)
    assert secret not in str(line)
