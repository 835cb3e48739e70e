"""Model queries: models (filtered, paginated), model, availableModels."""

from __future__ import annotations

from uuid import UUID

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.errors import ApiError, ErrorCode
from app.api.ids import decode_argument
from app.api.input_check import refuse_unstorable_named
from app.api.models.inputs import ModelFilter
from app.api.models.types import Model, ModelGroup, model_type
from app.api.node import register_node
from app.api.pagination import Connection, connection, decode_cursor, encode_cursor, page_size
from app.domain import models
from app.domain.ids import MODEL_TYPES, decode_as
from app.domain.pagination import NameKey, PageRequest
from app.services.models import ModelFilter as ServiceModelFilter


async def _model_node(info: GraphQLInfo, model_id: UUID) -> Model | None:
    found = await services(info).models.get(authenticated(info), model_id)
    return model_type(found) if found else None


register_node("SystemModel", _model_node)
register_node("UserModel", _model_node)


def _page(first: int | None, after: str | None) -> PageRequest[NameKey]:
    key = None
    if after is not None:
        parts = decode_cursor(after)
        try:
            key = NameKey(str(parts[0]), UUID(str(parts[1])))
        except (ValueError, IndexError) as exc:
            raise ApiError(ErrorCode.BAD_USER_INPUT, "the cursor is not valid") from exc
    return PageRequest(page_size(first), key)


def _cursor(model: models.EffectiveModel) -> str:
    return encode_cursor([model.record.name.lower(), str(model.id)])


def _filter(value: ModelFilter | None) -> ServiceModelFilter:
    if value is None:
        return ServiceModelFilter()
    refuse_unstorable_named(value, "filter")
    return ServiceModelFilter(
        organization_id=None
        if value.organization_id is None
        else decode_argument(value.organization_id, "Organization", "filter.organizationId"),
        project_id=None
        if value.project_id is None
        else decode_argument(value.project_id, "Project", "filter.projectId"),
        kinds=value.kinds,
        scopes=value.scopes,
        include_system=value.include_system,
        providers=value.providers,
        model_groups=value.model_groups,
        lifecycle_states=value.lifecycle_states,
        capabilities=value.capabilities,
        search=value.search,
    )


@strawberry.type
class ModelQueries:
    @strawberry.field(description="Models by filter, ordered by name. Needs models:read.")
    async def models(
        self,
        info: GraphQLInfo,
        first: int | None = None,
        after: str | None = None,
        filter: ModelFilter | None = None,
    ) -> Connection[Model]:
        page = await services(info).models.list_page(
            authenticated(info), _filter(filter), _page(first, after)
        )
        return connection(page, model_type, _cursor, has_previous=after is not None)

    @strawberry.field
    async def model(self, info: GraphQLInfo, id: strawberry.ID) -> Model | None:
        authenticated(info)
        model_id = decode_as(id, MODEL_TYPES)
        return await _model_node(info, model_id) if model_id else None

    @strawberry.field(
        description="Exactly the models the caller may call now in the project (the key's project if "
        "none is given): for model pickers."
    )
    async def available_models(
        self,
        info: GraphQLInfo,
        project_id: strawberry.ID | None = None,
        model_group: ModelGroup | None = None,  # type: ignore[valid-type]
    ) -> list[Model]:
        principal = authenticated(info)
        project = decode_argument(project_id, "Project", "projectId") if project_id else None
        found = await services(info).models.available(principal, project, model_group)
        return [model_type(m) for m in found]
