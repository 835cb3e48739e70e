"""The schema's constraints as the domain facts they stand for. A repository write that may break one
runs inside `stored_facts()`: the driver's error becomes a domain error (a duplicate name, a row
still referred to, a reference that vanished), so no service sees the driver or a constraint name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from app.domain.errors import Duplicate, ReferenceGone, StillReferenced

# Unique indexes and constraints, by the input field whose value they keep unique.
_UNIQUE_FIELDS = {
    "organizations_name_key": "name",
    "organizations_external_id_key": "externalId",
    "projects_name_key": "name",
    "system_prompts_name_key": "name",
    "connections_name_key": "name",
    "models_name_key": "name",
    "prompts_name_key": "name",
}


@contextmanager
def stored_facts(*, deleting: bool = False) -> Iterator[None]:
    """A foreign-key violation means, `deleting`, that others still refer to the row; otherwise that
    a row referred to is gone."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        field = _UNIQUE_FIELDS.get(exc.constraint_name or "")
        if field is None:
            raise
        raise Duplicate(field) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise (StillReferenced() if deleting else ReferenceGone()) from exc
