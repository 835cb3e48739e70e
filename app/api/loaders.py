"""Per-request DataLoaders: one query per kind of object however many fields ask for it.

Loaders fetch by id without scoping; resolvers only follow references from objects the caller may
already see (a visible project's organization, a visible key's project)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar
from uuid import UUID

from strawberry.dataloader import DataLoader

from app.domain.notifications import Delivery
from app.domain.tenancy import Organization, Project

if TYPE_CHECKING:
    from app.services.container import Services


class _HasId(Protocol):
    @property
    def id(self) -> UUID: ...


T = TypeVar("T", bound=_HasId)


def by_id(fetch: Callable[[list[UUID]], Awaitable[Sequence[T]]]) -> DataLoader[UUID, T | None]:
    async def load(ids: list[UUID]) -> list[T | None]:
        found = {item.id: item for item in await fetch(list(ids))}
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


class Loaders:
    def __init__(self, services: Services) -> None:
        self.organization: DataLoader[UUID, Organization | None] = by_id(services.organizations.referenced)
        self.project: DataLoader[UUID, Project | None] = by_id(services.projects.referenced)
        # Of notifications already shown to the caller.
        self.deliveries: DataLoader[UUID, list[Delivery]] = DataLoader(
            load_fn=lambda ids: _in_order(services.health.deliveries, ids)
        )


async def _in_order(
    fetch: Callable[[list[UUID]], Awaitable[dict[UUID, list[Delivery]]]], ids: Sequence[UUID]
) -> list[list[Delivery]]:
    found = await fetch(list(ids))
    return [found[i] for i in ids]
