"""What every fake answers when a request carries tools, images or an output schema. Each fake reads
its own wire format into an `Asked` and writes `decide`'s `Answer` back in that format, so the rules
are the same for every provider:

1. Tools are given, tool choice is not "none", and either the last message is the user's (not a tool
   result) or the choice forces a call ("required"/"any" or a named tool): the model calls tools.
   It calls the named tool, else the first one; `calls_per_answer` (a switch of each fake, default 1)
   calls in one answer when parallel calls are allowed, cycling through the tools in order (a
   named tool is called every time). The arguments come from the tool's JSON Schema (`value_for`).
2. Otherwise the model answers text:
   - with an output schema: JSON made from the schema (`value_for`), compact; JSON mode without a
     schema: `{"answer": <reply>}`;
   - else, when the last message carries tool results: `Tool result <call id>: <content>` for each,
     joined by " | ";
   - else, when the last user message carries images: `I see 2 images: image/png (68 bytes);
     https://example.com/cat.jpg` (inline data by media type and decoded size, URLs as given);
   - else the fake's `reply`, as before.

`value_for` makes deterministic values: the first `enum` value, `const`, the first non-null branch of
`anyOf`/`oneOf`, 1 for integers, 1.5 for numbers, true for booleans, a string's property name (or
"text"), a one-item array, and every property of an object (required or not); `$ref`s into `$defs`
or `definitions` are followed. Gemini's OpenAPI subset (upper-case types) reads the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class Rejected(Exception):
    """A request the real API refuses; each fake writes it in its own error envelope."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


@dataclass(frozen=True)
class Tool:
    name: str
    schema: Mapping[str, Any]  # the JSON Schema of the arguments


@dataclass(frozen=True)
class Image:
    media_type: str | None = None  # inline data: its type and decoded size
    size: int | None = None
    url: str | None = None  # a reference the provider would fetch

    def describe(self) -> str:
        return self.url if self.url is not None else f"{self.media_type} ({self.size} bytes)"


@dataclass(frozen=True)
class ToolResult:
    call_id: str  # Gemini, which takes no ids in a request, uses the function name
    content: str


@dataclass
class Asked:
    """What a request asks for, whatever its wire format."""

    tools: list[Tool] = field(default_factory=list)
    mode: str = "auto"  # auto | none | required
    forced: str | None = None  # the tool a named choice forces
    parallel: bool = True
    results: list[ToolResult] = field(default_factory=list)  # the last message's tool results
    images: list[Image] = field(default_factory=list)  # the last user message's images
    schema: Mapping[str, Any] | None = None  # structured output
    json_mode: bool = False  # JSON without a schema


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return compact(self.arguments)


@dataclass(frozen=True)
class Answer:
    calls: list[Call]
    text: str


def decide(asked: Asked, reply: str, calls_per_answer: int = 1) -> Answer:
    """The answer the rules above give to `asked`."""
    forcing = asked.mode == "required" or asked.forced is not None
    if asked.tools and asked.mode != "none" and (forcing or not asked.results):
        by_name = {tool.name: tool for tool in asked.tools}
        count = calls_per_answer if asked.parallel else 1
        chosen = [by_name[asked.forced]] * count if asked.forced else asked.tools
        calls = [chosen[i % len(chosen)] for i in range(max(1, count))]
        return Answer([Call(t.name, value_for(t.schema, root=t.schema)) for t in calls], "")
    if asked.schema is not None:
        return Answer([], compact(value_for(asked.schema, root=asked.schema)))
    if asked.json_mode:
        return Answer([], compact({"answer": reply}))
    if asked.results:
        return Answer([], " | ".join(f"Tool result {r.call_id}: {r.content}" for r in asked.results))
    if asked.images:
        seen = "; ".join(image.describe() for image in asked.images)
        count = len(asked.images)
        return Answer([], f"I see {count} image{'s' if count > 1 else ''}: {seen}")
    return Answer([], reply)


def value_for(schema: Any, *, root: Any = None, name: str = "text") -> Any:
    """A deterministic value that satisfies `schema` (JSON Schema or Gemini's OpenAPI subset)."""
    if not isinstance(schema, Mapping):
        return name
    root = schema if root is None else root
    if isinstance(ref := schema.get("$ref"), str):
        return value_for(_resolve(root, ref), root=root, name=name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf", "any_of"):
        if branches := schema.get(union):
            usable = [b for b in branches if _type_of(b) != "null"] or branches
            return value_for(usable[0], root=root, name=name)
    kind = _type_of(schema)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {key: value_for(sub, root=root, name=key) for key, sub in properties.items()}
    if kind == "array":
        return [value_for(schema.get("items", {}), root=root, name=name)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind or "", name)


def _type_of(schema: Any) -> str | None:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return kind.lower() if isinstance(kind, str) else None


def _resolve(root: Any, ref: str) -> Any:
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target.get(part, {}) if isinstance(target, Mapping) else {}
    return target


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def decoded_size(data: Any) -> int | None:
    """The byte size of base64 `data`; None when it is not valid base64."""
    if not isinstance(data, str) or not data:
        return None
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None


def pieces_of(text: str, parts: int) -> list[str]:
    """`text` cut into at most `parts` non-empty pieces of equal length (a streamed argument string)."""
    size = max(1, -(-len(text) // max(1, parts)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def joined_text(parts: Sequence[Any]) -> str:
    """The text of a tool result given as a list of typed text blocks (Anthropic, Bedrock)."""
    texts = []
    for part in parts:
        if isinstance(part, Mapping):
            if "text" in part:
                texts.append(str(part["text"]))
            elif "json" in part:
                texts.append(compact(part["json"]))
    return "".join(texts)
