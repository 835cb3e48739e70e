"""A user's clone has nothing beside it: no file of the repository may read, or send a reader to, a
folder outside it (the team's workspace). `.ci/run` proves the rest by running the suite from a fresh
clone in an empty directory."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Untracked or generated trees: virtualenvs, caches, installed packages, local data.
SKIPPED_DIRS = {
    ".git",
    ".venv",
    ".venv-litellm",
    "node_modules",
    ".data",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".json", ".js", ".mjs", ".html", ".css", ".cfg", ".txt", ".sh", ""}
# Spelled in two parts so that this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + r"shared|\bshared/(recordings|reference)\b|/" + r"work/")


def repository_text_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIPPED_DIRS or any(part.endswith(".egg-info") for part in parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            files.append(path)
    return files


def test_no_file_points_outside_the_repository() -> None:
    offenders = []
    for path in repository_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [
            f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    assert offenders == []


def test_the_replayed_recordings_are_in_the_repository() -> None:
    recordings = ROOT / "tests" / "recordings"
    for provider in ("openai-chat", "anthropic", "aleph-alpha"):
        assert (recordings / provider / "index.json").is_file()
    assert "Sources and licences" in (recordings / "README.md").read_text()
