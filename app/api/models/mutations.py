"""Model mutations: systemModelCreate/Update, userModelCreate/Update, modelDelete."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import strawberry

from app.api.connections.types import Provider
from app.api.context import GraphQLInfo, services
from app.api.errors import MutationFrame
from app.api.models.inputs import SystemModelFieldsInput, UserModelFieldsInput, to_model_input
from app.api.models.types import (
    ModelGroup,
    ModelScope,
    ModelUserError,
    SystemModel,
    UserModel,
    model_error,
    model_type,
)
from app.domain import models
from app.domain.auth import Principal
from app.domain.enums import ModelGroup as DomainModelGroup
from app.domain.ids import MODEL_TYPES, decode_id, decode_optional

T = TypeVar("T")


@strawberry.input(description="A platform-wide model. Platform admins only.")
class SystemModelCreateInput(SystemModelFieldsInput):
    name: str
    provider: Provider  # type: ignore[valid-type]
    model_group: ModelGroup = DomainModelGroup.CHAT  # type: ignore[valid-type]


@strawberry.input(description="What an update of either kind of model says besides its fields.")
class ModelUpdateFields:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    expected_updated_at: datetime | None = strawberry.field(
        default=None,
        description="The updatedAt you last saw; if the model changed since, nothing is written.",
    )
    clear_token: bool = False
    clear_client_keys: bool = False


@strawberry.input
class SystemModelUpdateInput(SystemModelFieldsInput, ModelUpdateFields):
    pass


@strawberry.input(
    description="An organization's model: with parentModelId a variant of a system model, without it a "
    "bring-your-own-key endpoint of its own (provider, providerModelId, credentials)."
)
class UserModelCreateInput(UserModelFieldsInput):
    organization_id: strawberry.ID
    name: str
    scope: ModelScope = models.ModelScope.ORGANIZATION  # type: ignore[valid-type]
    project_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for PROJECT scope."
    )
    parent_model_id: strawberry.ID | None = None


@strawberry.input
class UserModelUpdateInput(UserModelFieldsInput, ModelUpdateFields):
    pass


@strawberry.input
class ModelDeleteInput:
    id: strawberry.ID


@strawberry.type
class SystemModelCreatePayload:
    model: SystemModel | None
    user_errors: list[ModelUserError]


@strawberry.type
class SystemModelUpdatePayload:
    model: SystemModel | None
    user_errors: list[ModelUserError]


@strawberry.type
class UserModelCreatePayload:
    model: UserModel | None
    user_errors: list[ModelUserError]


@strawberry.type
class UserModelUpdatePayload:
    model: UserModel | None
    user_errors: list[ModelUserError]


@strawberry.type
class ModelDeletePayload:
    deleted_model_id: strawberry.ID | None
    user_errors: list[ModelUserError]


_MODEL_FRAME = MutationFrame(model_error)


@strawberry.type
class ModelMutations:
    @strawberry.mutation
    async def system_model_create(
        self, info: GraphQLInfo, input: SystemModelCreateInput
    ) -> SystemModelCreatePayload:
        async def work(principal: Principal) -> models.EffectiveModel:
            return await services(info).models.create_system(principal, to_model_input(input))

        created, errors = await _MODEL_FRAME.run(info, input, work)
        return SystemModelCreatePayload(model=_as(SystemModel, created), user_errors=errors)

    @strawberry.mutation
    async def system_model_update(
        self, info: GraphQLInfo, input: SystemModelUpdateInput
    ) -> SystemModelUpdatePayload:
        updated, errors = await _update(info, input, "SystemModel")
        return SystemModelUpdatePayload(model=_as(SystemModel, updated), user_errors=errors)

    @strawberry.mutation
    async def user_model_create(
        self, info: GraphQLInfo, input: UserModelCreateInput
    ) -> UserModelCreatePayload:
        async def work(principal: Principal) -> models.EffectiveModel:
            return await services(info).models.create_user(
                principal,
                organization_id=decode_id(input.organization_id, "Organization", ["input", "organizationId"]),
                scope=input.scope,
                project_id=decode_optional(input.project_id, "Project", ["input", "projectId"]),
                # Any model id: the service says why a user model cannot be a parent.
                parent_id=decode_optional(input.parent_model_id, MODEL_TYPES, ["input", "parentModelId"]),
                changes=to_model_input(input),
            )

        created, errors = await _MODEL_FRAME.run(info, input, work)
        return UserModelCreatePayload(model=_as(UserModel, created), user_errors=errors)

    @strawberry.mutation
    async def user_model_update(
        self, info: GraphQLInfo, input: UserModelUpdateInput
    ) -> UserModelUpdatePayload:
        updated, errors = await _update(info, input, "UserModel")
        return UserModelUpdatePayload(model=_as(UserModel, updated), user_errors=errors)

    @strawberry.mutation(description="Refused while other models use it as parent, replacement or fallback.")
    async def model_delete(self, info: GraphQLInfo, input: ModelDeleteInput) -> ModelDeletePayload:
        async def work(principal: Principal) -> models.ModelRecord:
            model_id = decode_id(input.id, MODEL_TYPES, ["input", "id"])
            return await services(info).models.delete(principal, model_id)

        deleted, errors = await _MODEL_FRAME.run(info, input, work)
        return ModelDeletePayload(deleted_model_id=input.id if deleted else None, user_errors=errors)


async def _update(
    info: GraphQLInfo, input: SystemModelUpdateInput | UserModelUpdateInput, type_name: str
) -> tuple[models.EffectiveModel | None, list[ModelUserError]]:
    """Both update mutations: one service call, each on its own kind of model."""

    async def work(principal: Principal) -> models.EffectiveModel:
        model_id = decode_id(input.id, type_name, ["input", "id"])
        changes = to_model_input(
            input, clear_token=input.clear_token, clear_client_keys=input.clear_client_keys
        )
        return await services(info).models.update(principal, model_id, changes, input.expected_updated_at)

    return await _MODEL_FRAME.run(info, input, work)


def _as(cls: type[T], model: models.EffectiveModel | None) -> T | None:
    if model is None:
        return None
    typed = model_type(model)
    assert isinstance(typed, cls)
    return typed
