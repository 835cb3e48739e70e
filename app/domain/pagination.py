"""Keyset pagination values: a page is asked for by size and the sort key of the last row seen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """The default sort key: creation time, then id to break ties."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class NameKey:
    """Sort key of model lists: name (case-insensitive), then id."""

    name: str
    id: UUID


@dataclass(frozen=True, slots=True)
class PageRequest(Generic[T]):
    first: int
    after: T | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_next_page: bool

    @classmethod
    def from_rows(cls, rows: Sequence[T], first: int) -> Page[T]:
        """`rows` was fetched with LIMIT first + 1: the extra row only says there is more."""
        return cls(rows[:first], len(rows) > first)
