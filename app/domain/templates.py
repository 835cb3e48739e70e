"""Prompt templates: text with `{{dotted.path}}` placeholders filled from a JSON variables object.

Syntax:
- `{{ path }}`: white space inside the braces is ignored (`{{message.content}}` = `{{ message.content }}`).
- A path is names separated by dots. A name is letters, digits and `_`, not starting with a digit
  (ASCII only). After the first name, a segment may also be a list index, a whole number without
  leading zeros: `{{items.0.title}}` is the title of the first item. (On an object, a number
  segment looks up the key of that name, e.g. `"0"`.)
- `\\{{` is a literal `{{` (the backslash is dropped); `\\\\{{` is a literal backslash followed by a
  placeholder. Any other backslash, and any `}}` outside a placeholder, is plain text.

Rendering: strings are inserted as they are; numbers and booleans as JSON literals (`3`, `2.5`,
`true`); objects and lists as compact JSON (`{"a":1,"b":[1,2]}`). A path with no value — absent,
null, or not reachable (a name on a string, an index past a list's end) — is missing: rendering
names every missing path and inserts nothing, never an empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A placeholder's opening braces, with up to two backslashes that may escape them.
_OPENING = re.compile(r"(\\{0,2})\{\{")
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.(?:[A-Za-z_]\w*|0|[1-9]\d*))*", re.ASCII)
_PATH_RULE = "a path is names (letters, digits, _) and list indexes separated by dots, like order.items.0"


@dataclass(frozen=True, slots=True)
class Placeholder:
    path: tuple[str, ...]
    offset: int  # of its `{{` in the template

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """Why a template does not parse, and where: 0-based offset, 1-based line and column."""

    message: str
    offset: int
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class TemplateSyntaxError(ValueError):
    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class MissingVariables(ValueError):
    """Every placeholder path without a value, in order of first use."""

    def __init__(self, paths: list[tuple[str, ...]]) -> None:
        self.paths = paths
        super().__init__("missing variables: " + ", ".join(".".join(p) for p in paths))


class VariablesNotObject(TypeError):
    def __init__(self) -> None:
        super().__init__("variables must be a JSON object")


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> list[Placeholder]:
        return [p for p in self.parts if isinstance(p, Placeholder)]

    def variables(self) -> list[str]:
        """The placeholder paths, each once, in order of first use."""
        return list(dict.fromkeys(p.name for p in self.placeholders))

    def render(self, values: object) -> str:
        if not isinstance(values, Mapping):
            raise VariablesNotObject()
        found: dict[tuple[str, ...], str] = {}
        missing: dict[tuple[str, ...], None] = {}
        for placeholder in self.placeholders:
            value = _lookup(values, placeholder.path)
            if value is None:
                missing[placeholder.path] = None
            else:
                found[placeholder.path] = _as_text(value)
        if missing:
            raise MissingVariables(list(missing))
        return "".join(found[p.path] if isinstance(p, Placeholder) else p for p in self.parts)


def parse(text: str) -> Template:
    """The template's parts; TemplateSyntaxError naming every problem found, with its position."""
    parts: list[str | Placeholder] = []
    problems: list[TemplateProblem] = []
    literal: list[str] = []
    position = 0
    while (opening := _OPENING.search(text, position)) is not None:
        backslashes = len(opening.group(1))
        braces = opening.end() - 2
        literal.append(text[position : opening.start()])
        if backslashes == 1:  # \{{ : the braces are text
            literal.append("{{")
            position = opening.end()
            continue
        literal.append("\\" if backslashes == 2 else "")  # \\{{ : a backslash, then a placeholder
        closing = text.find("}}", opening.end())
        next_opening = text.find("{{", opening.end())
        if closing < 0 or 0 <= next_opening < closing:
            problems.append(_problem(text, braces, "`{{` is not closed by `}}`"))
            if closing < 0:
                break
            position = next_opening  # the next `{{` may well be a good placeholder: check it too
            continue
        placeholder = _placeholder(text, braces, closing, problems)
        if placeholder is not None:
            parts.extend(("".join(literal), placeholder))
            literal = []
        position = closing + 2
    literal.append(text[position:])
    if problems:
        raise TemplateSyntaxError(problems)
    parts.append("".join(literal))
    return Template(tuple(p for p in parts if p != ""))


def variables(text: str) -> list[str]:
    """The placeholder paths of a template, each once, in order of first use."""
    return parse(text).variables()


def render(text: str, values: object) -> str:
    """The template with every placeholder filled from `values` (a JSON object)."""
    return parse(text).render(values)


def _placeholder(text: str, braces: int, closing: int, problems: list[TemplateProblem]) -> Placeholder | None:
    inner_start = braces + 2
    inner = text[inner_start:closing]
    path = inner.strip()
    if not path:
        problems.append(_problem(text, braces, "empty placeholder: put a variable name inside `{{ }}`"))
        return None
    start = inner_start + (len(inner) - len(inner.lstrip()))
    matched = _PATH.match(path)
    length = matched.end() if matched else 0
    if length < len(path):
        problems.append(_problem(text, start + length, _path_problem(path, length)))
        return None
    return Placeholder(tuple(path.split(".")), braces)


def _path_problem(path: str, at: int) -> str:
    char = path[at]
    if char == "." and at == 0:
        return f"a path cannot start with '.': {_PATH_RULE}"
    if char == "." and at + 1 == len(path):
        return f"a path cannot end with '.': {_PATH_RULE}"
    if char == ".":
        return f"a name or index must follow each '.': {_PATH_RULE}"
    if at == 0 and char.isdigit():
        return f"a path starts with a name, not a number: {_PATH_RULE}"
    if path[at - 1].isdigit() and path[:at].rsplit(".", 1)[-1].isdigit():
        return f"an index has no leading zeros, and a name cannot start with a digit: {_PATH_RULE}"
    return f"unexpected {char!r} in a path: {_PATH_RULE}"


def _problem(text: str, offset: int, message: str) -> TemplateProblem:
    line_start = text.rfind("\n", 0, offset) + 1
    return TemplateProblem(message, offset, text.count("\n", 0, offset) + 1, offset - line_start + 1)


def _lookup(values: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path`, or None when there is none (null counts as none)."""
    current: Any = values
    for segment in path:
        if isinstance(current, Mapping):
            current = current.get(segment)
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return None
        if current is None:
            return None
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
