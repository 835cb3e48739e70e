"""Use cases for models: read, list, what a caller may call now, create, update, delete.

System models are the platform's (platform admins change them); user models belong to an
organization, scoped to it or to one project. Every change is published on the "catalog" topic so
that every instance drops its cached models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from app.db import Database
from app.domain.auth import Permission, Principal
from app.domain.destinations import changed_destination_fields, check_model_destination, credentials_for_move
from app.domain.enums import ModelGroup
from app.domain.errors import (
    AccessDenied,
    Duplicate,
    ErrorCollector,
    NotFoundError,
    ReferenceGone,
    StillReferenced,
    UserInputError,
)
from app.domain.model_rules import ModelErrorCode, check_model_fields
from app.domain.models import EffectiveModel, LifecycleState, ModelKind, ModelRecord, ModelScope
from app.domain.pagination import NameKey, Page, PageRequest
from app.domain.tenancy import Organization
from app.repositories.model_writes import ModelWriter
from app.repositories.models import ModelListQuery, ModelRepository
from app.repositories.organizations import OrganizationRepository, ProjectRepository
from app.services.model_checks import ReferenceChecker
from app.services.model_credentials import ModelCredentials
from app.services.model_input import ModelInput, apply_input, blank_record, with_credential_flags
from app.services.notifications import CATALOG_TOPIC, Notifications
from app.services.permissions import require


@dataclass(frozen=True, slots=True)
class ModelFilter:
    organization_id: UUID | None = None
    project_id: UUID | None = None
    kinds: Sequence[ModelKind] | None = None
    scopes: Sequence[ModelScope] | None = None
    include_system: bool = False
    providers: Sequence[str] | None = None
    model_groups: Sequence[ModelGroup] | None = None
    lifecycle_states: Sequence[LifecycleState] | None = None
    capabilities: Sequence[str] | None = None
    search: str | None = None


def _values(items: Sequence[object] | None) -> list[str] | None:
    return None if items is None else [str(getattr(i, "value", i)) for i in items]


class ModelService:
    def __init__(
        self,
        db: Database,
        models: ModelRepository,
        organizations: OrganizationRepository,
        projects: ProjectRepository,
        checker: ReferenceChecker,
        credentials: ModelCredentials,
        notifications: Notifications,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.models = models
        self.organizations = organizations
        self.projects = projects
        self.checker = checker
        self.credentials = credentials
        self.notifications = notifications
        self.writer = ModelWriter(db)
        self.clock = clock

    # ---- reads -----------------------------------------------------------------------------

    async def effective(self, records: Sequence[ModelRecord]) -> list[EffectiveModel]:
        parent_ids = list({r.parent_id for r in records if r.parent_id})
        parents = {p.id: p for p in await self.models.get_many(parent_ids)} if parent_ids else {}
        return [EffectiveModel(r, parents.get(r.parent_id) if r.parent_id else None) for r in records]

    def _readable(self, principal: Principal, model: EffectiveModel) -> bool:
        record = model.record
        if principal.is_platform_admin:
            return True
        if record.kind is ModelKind.SYSTEM:
            return record.is_visible
        if record.organization_id is None or not principal.can_access_organization(record.organization_id):
            return False
        return principal.project_id is None or model.usable_in_project(
            record.organization_id, principal.project_id
        )

    async def get(self, principal: Principal, model_id: UUID) -> EffectiveModel | None:
        require(principal, Permission.MODELS_READ)
        model = await self.models.get_effective(model_id)
        return model if model is not None and self._readable(principal, model) else None

    async def list_page(
        self, principal: Principal, model_filter: ModelFilter, page: PageRequest[NameKey]
    ) -> Page[EffectiveModel]:
        require(principal, Permission.MODELS_READ)
        query = self._list_query(principal, model_filter)
        if query is None or not await self._project_of(query.organization_id, query.project_id):
            return Page([], False)
        records = await self.models.list_page(query, page, self.clock())
        return Page(await self.effective(records.items), records.has_next_page)

    def _list_query(self, principal: Principal, f: ModelFilter) -> ModelListQuery | None:
        """Seed semantics: an organization's models, plus visible system models with includeSystem
        (or when the kinds filter asks for SYSTEM). Platform admins without an organization list
        the system catalog, hidden models included."""
        organization_id = f.organization_id or principal.organization_id
        if organization_id is not None and not principal.can_access_organization(organization_id):
            return None
        project_id = f.project_id or principal.project_id
        if principal.project_id is not None and project_id != principal.project_id:
            return None
        wants_system = f.include_system or (f.kinds is not None and ModelKind.SYSTEM in f.kinds)
        return ModelListQuery(
            organization_id=organization_id,
            include_system=wants_system or organization_id is None,
            include_invisible_system=principal.is_platform_admin and organization_id is None,
            project_id=project_id,
            kinds=_values(f.kinds),
            scopes=_values(f.scopes),
            providers=_values(f.providers),
            model_groups=_values(f.model_groups),
            lifecycle_states=_values(f.lifecycle_states),
            capabilities=_values(f.capabilities),
            search=f.search or None,
        )

    async def available(
        self, principal: Principal, project_id: UUID | None, model_group: ModelGroup | None
    ) -> list[EffectiveModel]:
        """Exactly what the caller may call now in that project: visible, assigned, enabled, not
        end-of-life (unless the organization migrates such calls to a replacement), and allowed by
        the plan. Model pickers show this list."""
        require(principal, Permission.MODELS_READ)
        if principal.organization_id is None:
            return []
        organization = await self.organizations.get(principal.organization_id)
        project_id = project_id or principal.project_id
        if organization is None or (principal.project_id is not None and project_id != principal.project_id):
            return []
        if not await self._project_of(organization.id, project_id):
            return []
        query = ModelListQuery(
            organization_id=organization.id,
            include_system=True,
            project_id=project_id,
            model_groups=[model_group.value] if model_group else None,
        )
        now = self.clock()
        models = await self.effective(await self.models.list_all(query, now))
        by_id = {m.id: m for m in models}
        return [m for m in models if _callable_now(m, by_id, organization, now)]

    async def _project_of(self, organization_id: UUID | None, project_id: UUID | None) -> bool:
        """No project asked for, or one of this organization (another's reads as missing)."""
        if project_id is None:
            return True
        project = await self.projects.get(project_id)
        return project is not None and project.organization_id == organization_id

    # ---- writes ----------------------------------------------------------------------------

    async def create_system(self, principal: Principal, changes: ModelInput) -> EffectiveModel:
        require(principal, Permission.PLATFORM_ADMIN)
        record = blank_record(
            kind=ModelKind.SYSTEM, organization_id=None, scope=None, project_id=None, parent=None
        )
        return await self._save(record, None, changes, created=True, expected_updated_at=None)

    async def create_user(
        self,
        principal: Principal,
        *,
        organization_id: UUID,
        scope: ModelScope,
        project_id: UUID | None,
        parent_id: UUID | None,
        changes: ModelInput,
    ) -> EffectiveModel:
        if not principal.can_access_organization(organization_id):
            raise NotFoundError("organization", ["input", "organizationId"])
        require(principal, Permission.MODELS_CREATE)
        errors = ErrorCollector()
        if scope is ModelScope.PROJECT and project_id is None:
            errors.add(
                ModelErrorCode.REQUIRED, "a project-scoped model needs its project", "input", "projectId"
            )
        if scope is ModelScope.ORGANIZATION and project_id is not None:
            errors.add(
                ModelErrorCode.INVALID,
                "an organization-scoped model takes assignedProjectIds, not projectId",
                "input",
                "projectId",
            )
        if principal.project_id is not None and (
            scope is not ModelScope.PROJECT or project_id != principal.project_id
        ):
            raise AccessDenied("a project key can only create models in its own project")
        parent = await self._parent(errors, principal, parent_id)
        errors.raise_if_any()
        record = blank_record(
            kind=ModelKind.USER,
            organization_id=organization_id,
            scope=scope,
            project_id=project_id if scope is ModelScope.PROJECT else None,
            parent=parent,
        )
        return await self._save(record, parent, changes, created=True, expected_updated_at=None)

    async def _parent(
        self, errors: ErrorCollector, principal: Principal, parent_id: UUID | None
    ) -> ModelRecord | None:
        if parent_id is None:
            return None
        parent = await self.models.get(parent_id)
        found = (await self.effective([parent]))[0] if parent else None
        if parent is None or found is None or not self._readable(principal, found):
            # Another organization's model reads exactly like a missing one.
            errors.add(ModelErrorCode.NOT_FOUND, "model not found", "input", "parentModelId")
            return None
        if parent.kind is not ModelKind.SYSTEM:
            errors.add(ModelErrorCode.INVALID, "a parent must be a system model", "input", "parentModelId")
            return None
        return parent

    async def update(
        self, principal: Principal, model_id: UUID, changes: ModelInput, expected_updated_at: datetime | None
    ) -> EffectiveModel:
        model = await self.get(principal, model_id)
        if model is None:
            raise NotFoundError("model", ["input", "id"])
        record = model.record
        _check_writable(principal, record, "changed")
        require(principal, Permission.MODELS_UPDATE)
        return await self._save(
            record, model.parent, changes, created=False, expected_updated_at=expected_updated_at
        )

    async def _save(
        self,
        current: ModelRecord,
        parent: ModelRecord | None,
        changes: ModelInput,
        *,
        created: bool,
        expected_updated_at: datetime | None,
    ) -> EffectiveModel:
        errors = ErrorCollector()
        candidate = apply_input(errors, current, changes, is_variant=parent is not None)
        credentials = changes.credentials
        if not created:
            if candidate.model_group is not current.model_group:
                await self._check_group_change(candidate.id)
            moved = changed_destination_fields(
                (current.provider, current.model_url, current.provider_settings),
                (candidate.provider, candidate.model_url, candidate.provider_settings),
            )
            stored = (current.has_token, current.has_client_key)
            credentials = credentials_for_move(errors, moved, stored, credentials, ModelErrorCode.INVALID)
            candidate = with_credential_flags(current, candidate, credentials)
        check_model_fields(errors, candidate, parent)
        check_model_destination(errors, candidate, parent, ModelErrorCode.INVALID)
        self.credentials.check(errors, credentials)
        await self.checker.check(errors, candidate, parent)
        errors.raise_if_any()
        try:
            async with self.db.transaction():
                if candidate.is_default and candidate.project_id is not None:
                    # Serialises concurrent default changes of one project (the index allows one).
                    await self.writer.lock_project(candidate.project_id)
                    await self.writer.unset_other_defaults(candidate.project_id, candidate.id)
                if created:
                    await self.writer.insert(candidate)
                elif not await self.writer.update(candidate, expected_updated_at):
                    raise UserInputError.single(
                        ModelErrorCode.CONFLICT,
                        "the model changed since you read it: reload and try again",
                        ["input", "expectedUpdatedAt"],
                    )
                await self.writer.set_assignments(candidate.id, candidate.assigned_project_ids)
                await self.writer.set_fallbacks(candidate)
                await self.credentials.write(candidate.id, credentials)
        except Duplicate as exc:
            raise UserInputError.single(
                ModelErrorCode.DUPLICATE, "a model with this name exists already", ["input", "name"]
            ) from exc
        except ReferenceGone as exc:
            raise UserInputError.single(
                ModelErrorCode.CONFLICT,
                "a model, project or connection this change refers to was deleted meanwhile: "
                "reload and try again",
            ) from exc
        await self.notifications.publish(CATALOG_TOPIC, None)
        saved = await self.models.get(candidate.id)
        assert saved is not None
        return EffectiveModel(saved, parent)

    async def _check_group_change(self, model_id: UUID) -> None:
        """Models that refer to this one (as parent, replacement or fallback) need its group."""
        users = await self.models.dependents(model_id)
        if users:
            raise UserInputError.single(
                ModelErrorCode.IN_USE,
                f"other models refer to this one, so its group cannot change: {', '.join(users[:10])}",
                ["input", "modelGroup"],
            )

    async def delete(self, principal: Principal, model_id: UUID) -> ModelRecord:
        model = await self.get(principal, model_id)
        if model is None:
            raise NotFoundError("model", ["input", "id"])
        _check_writable(principal, model.record, "deleted")
        require(principal, Permission.MODELS_DELETE)
        dependents = await self.models.dependents(model_id)
        if dependents:
            raise UserInputError.single(
                ModelErrorCode.IN_USE, f"still used by: {', '.join(dependents[:10])}", ["input", "id"]
            )
        try:
            async with self.db.transaction():
                await self.writer.delete(model_id)
        except StillReferenced as exc:  # referenced meanwhile
            raise UserInputError.single(
                ModelErrorCode.IN_USE, "still used by other models", ["input", "id"]
            ) from exc
        await self.notifications.publish(CATALOG_TOPIC, None)
        return model.record


def _check_writable(principal: Principal, record: ModelRecord, verb: str) -> None:
    """Write scope is key scope: a caller reads what it may use, but changes only what is its own
    (system models: platform admins; a project key: the models scoped to its project)."""
    if record.kind is ModelKind.SYSTEM and not principal.is_platform_admin:
        message = f"system models are {verb} by platform admins only"
    elif principal.project_id is not None and record.project_id != principal.project_id:
        message = f"a key bound to a project: only that project's own models can be {verb}"
    else:
        return
    raise UserInputError.single(ModelErrorCode.PERMISSION_DENIED, message, ["input", "id"])


def _callable_now(
    model: EffectiveModel,
    by_id: dict[UUID, EffectiveModel],
    organization: Organization,
    now: datetime,
    hops: int = 5,
) -> bool:
    """Whether a call to `model` would be answered: the gateway's own lifecycle and plan rules,
    following an end-of-life model to its replacement when the organization migrates such calls."""
    lifecycle = model.lifecycle(now)
    if lifecycle.state is LifecycleState.DISABLED or not model.record.is_visible:
        return False
    if lifecycle.state is LifecycleState.END_OF_LIFE:
        if not organization.auto_migrate_end_of_life or hops == 0 or lifecycle.replacement_model_id is None:
            return False
        replacement = by_id.get(lifecycle.replacement_model_id)
        return replacement is not None and _callable_now(replacement, by_id, organization, now, hops - 1)
    return model.allowed_for(organization.plan)
