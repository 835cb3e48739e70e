"""Relay connections over keyset pages: `first` (default 20, 1-100) and an opaque `after` cursor."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

import orjson
import strawberry

from app.api.errors import ApiError, ErrorCode
from app.domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CreatedKey, Page, PageRequest
from app.domain.storable import json_problems, utc_instant

N = TypeVar("N")
D = TypeVar("D")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    nodes: list[N] = strawberry.field(description="The nodes of `edges`, for clients that need no cursors.")
    page_info: PageInfo


def encode_cursor(parts: Sequence[object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[object]:
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ApiError(ErrorCode.BAD_USER_INPUT, "the cursor is not valid") from exc
    # A cursor is the caller's text: its parts go to SQL as they are.
    if not isinstance(parts, list) or any(next(json_problems(part), None) for part in parts):
        raise ApiError(ErrorCode.BAD_USER_INPUT, "the cursor is not valid")
    return parts


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ApiError(ErrorCode.BAD_USER_INPUT, f"first must be between 1 and {MAX_PAGE_SIZE}")
    return first


def created_page(first: int | None, after: str | None) -> PageRequest[CreatedKey]:
    """A page request for lists ordered by (created_at, id)."""
    key = None
    if after is not None:
        parts = decode_cursor(after)
        try:
            key = CreatedKey(utc_instant(datetime.fromisoformat(str(parts[0]))), UUID(str(parts[1])))
        except (ValueError, IndexError) as exc:
            raise ApiError(ErrorCode.BAD_USER_INPUT, "the cursor is not valid") from exc
    return PageRequest(page_size(first), key)


def created_cursor(created_at: datetime, id_: UUID) -> str:
    return encode_cursor([created_at.isoformat(), str(id_)])


class _Created(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> UUID: ...


def cursor_by_created(item: _Created) -> str:
    """The cursor of an item in a list ordered by (created_at, id)."""
    return created_cursor(item.created_at, item.id)


def connection(
    page: Page[D], to_node: Callable[[D], N], cursor_of: Callable[[D], str], *, has_previous: bool
) -> Connection[N]:
    edges = [Edge(cursor=cursor_of(item), node=to_node(item)) for item in page.items]
    return Connection(
        edges=edges,
        nodes=[e.node for e in edges],
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
