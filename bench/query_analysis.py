"""How long Modelgate takes to refuse a hostile document, beside graphql-core's own validation of it.

The document: forty fragments, each spreading the next one twice (2^40 fields once expanded),
about 1.6 KB. Three figures, measured here one after the other on the same schema:

- the query analysis alone (depth, aliases, cost) on the parsed document: what Modelgate spends
  to decide, in place of the standard validation, that the document is not worth executing;
- graphql-core's `validate` with its standard rules on the same parsed document: the baseline,
  what any GraphQL server spends before it executes anything;
- Modelgate's whole refusal in process, as a request meets it: parse (with the token limit), the
  analysis, the error with its code; a new query text each round, so that no cache answers.

    python -m bench.query_analysis
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from graphql import parse, specified_rules, validate

from app.api.limits import QueryLimits
from app.api.schema import schema
from app.config import Settings

FRAGMENTS = 40


def doubled_fragments(count: int) -> str:
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(count)]
    parts.append(f"fragment F{count} on Query {{ viewer {{ kind }} }}")
    return "\n".join(parts)


def _median_us(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


async def _refusal_us(document: str, rounds: int) -> float:
    times = []
    for i in range(rounds):
        query = f"{document}\n# {i}"  # a new text: neither the parser nor the validation cache answers
        started = time.perf_counter()
        result = await schema.execute(query)
        times.append((time.perf_counter() - started) * 1e6)
        assert result.errors, "the document was not refused"
        assert result.errors[0].extensions["code"] == "QUERY_TOO_COMPLEX", result.errors
    return statistics.median(times)


async def measure(rounds: int = 200) -> dict[str, Any]:
    document = doubled_fragments(FRAGMENTS)
    parsed = parse(document)
    limits = QueryLimits.of(Settings())
    graphql_schema = schema._schema
    assert limits.check(graphql_schema, parsed), "the analysis let the document pass"
    await _refusal_us(document, 5)  # warm every path (imports, the schema's own caches)
    return {
        "fragments": FRAGMENTS,
        "document_bytes": len(document),
        "analysis_us": _median_us(lambda: limits.check(graphql_schema, parsed), rounds),
        "graphql_core_validation_us": _median_us(
            lambda: validate(graphql_schema, parsed, specified_rules), rounds
        ),
        "refusal_us": await _refusal_us(document, rounds),
    }


def print_rows(result: dict[str, Any]) -> None:
    baseline = result["graphql_core_validation_us"]
    print(
        f"5 refusing {result['fragments']} doubled fragments ({result['document_bytes']} bytes): "
        f"analysis {result['analysis_us']:.0f} us ({result['analysis_us'] / baseline:.3f}x "
        f"graphql-core's validation, {baseline:.0f} us); whole refusal with parsing "
        f"{result['refusal_us']:.0f} us"
    )


if __name__ == "__main__":
    print_rows(asyncio.run(measure()))
