"""The Relay `Node` interface and `node(id:)` resolution.

Each area registers how to fetch its node types for a caller (`register_node`); a resolver returns
None both for a missing object and for one the caller may not see."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import strawberry

from app.api.context import GraphQLInfo, authenticated
from app.domain.ids import decode_any


@strawberry.interface(description="An object with an opaque, globally unique id.")
class Node:
    id: strawberry.ID


NodeResolver = Callable[[GraphQLInfo, UUID], Awaitable[Any]]
_RESOLVERS: dict[str, NodeResolver] = {}


def register_node(type_name: str, resolver: NodeResolver) -> None:
    _RESOLVERS[type_name] = resolver


async def resolve_node(info: GraphQLInfo, global_id: str) -> Node | None:
    authenticated(info)
    decoded = decode_any(global_id)
    if decoded is None or decoded[0] not in _RESOLVERS:
        return None
    node: Node | None = await _RESOLVERS[decoded[0]](info, decoded[1])
    return node
