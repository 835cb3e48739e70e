"""Who calls, and in which project.

Authentication is the GraphQL endpoint's (`services.auth`): an `mg_` key or a JWT as
`Authorization: Bearer …` (also `X-API-Key` or `?api_key=`), kept as a session so that a stream
ends when its key is revoked or expires (app/services/revocation.py). The project is the key's, or the one
named by the `X-Modelgate-Project` header (a Project id), as GraphQL's `projectId`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.domain.auth import Principal
from app.domain.ids import decode_any
from app.rest.errors import RestError, from_validation
from app.server_keys import CALLER, REQUEST_ID, SERVICES
from app.services.auth import http_credential
from app.services.revocation import CallerSession

if TYPE_CHECKING:
    from app.services.container import Services

PROJECT_HEADER = "X-Modelgate-Project"

B = TypeVar("B", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Caller:
    services: Services
    principal: Principal
    project_id: UUID | None
    request_id: str
    session: CallerSession


async def caller_of(request: web.Request) -> Caller:
    services = request.app[SERVICES]
    credential = http_credential(request.headers, request.query)
    if credential is None:
        raise RestError(
            401,
            "You didn't provide an API key: send it as `Authorization: Bearer mg_…`.",
            type="authentication_error",
            code="missing_api_key",
        )
    session = await services.revocations.open(credential)
    request[CALLER] = session.principal.label
    return Caller(services, session.principal, _project(request), request[REQUEST_ID], session)


def _project(request: web.Request) -> UUID | None:
    raw = request.headers.get(PROJECT_HEADER)
    if not raw:
        return None
    decoded = decode_any(raw)
    if decoded is None or decoded[0] != "Project":
        raise RestError(404, "project not found", code="project_not_found", param=PROJECT_HEADER)
    return decoded[1]


async def body_of(request: web.Request, schema: type[B]) -> B:
    try:
        return schema.model_validate_json(await request.read())
    except ValidationError as exc:
        raise from_validation(exc) from None
