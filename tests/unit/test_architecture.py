"""The layers' import rules (README, Architecture), checked by walking every module's imports.

domain: pure, imports only the domain. repositories: never services. services: never strawberry
nor the database driver.
api (GraphQL) and rest (the OpenAI-compatible door): never providers or repositories, only the
services and the domain; and rest stands on its own, never on the GraphQL package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# (package, prefixes its modules must never import)
NEVER: list[tuple[str, tuple[str, ...]]] = [
    ("app.domain", ("app.api", "app.rest", "app.services", "app.repositories", "app.providers", "app.db")),
    ("app.repositories", ("app.services", "app.api", "app.rest")),
    # The driver stays below the repositories (app/db.py, app/listener.py): a duplicate name is a
    # domain fact (app/repositories/constraints.py), not an asyncpg error.
    ("app.services", ("strawberry", "asyncpg", "app.api", "app.rest")),
    ("app.providers", ("app.services", "app.repositories", "app.api", "app.rest", "asyncpg")),
    ("app.channels", ("app.services", "app.repositories", "app.api", "app.rest", "asyncpg")),
    ("app.api", ("app.providers", "app.repositories", "app.rest", "asyncpg")),
    ("app.rest", ("app.providers", "app.repositories", "app.api", "asyncpg")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def edges() -> list[tuple[str, str]]:
    return [(module_name(p), target) for p in sorted(APP.rglob("*.py")) for target in imports_of(p)]


@pytest.mark.parametrize(("package", "forbidden"), NEVER, ids=[p for p, _ in NEVER])
def test_no_layer_imports_what_it_must_not(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = [
        f"{source} imports {target}"
        for source, target in edges()
        if (source == package or source.startswith(package + "."))
        and any(target == f or target.startswith(f + ".") for f in forbidden)
    ]
    assert wrong == []
