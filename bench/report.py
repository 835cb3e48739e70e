"""The results table, with the ratios the targets are stated in."""

from __future__ import annotations

from typing import Any

from bench import workers
from bench.query_analysis import print_rows as print_query_analysis


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def added_per_chunk(concurrent: dict[str, Any]) -> float:
    """Scenario 4: how much later than directly each chunk arrives on its stream's schedule while
    all streams run (p50); results from before that was measured: the whole stream's extra time
    over its 20 chunks."""
    modelgate, direct = concurrent["modelgate"], concurrent["direct"]
    if "steady_chunks" in modelgate:
        return float(modelgate["chunk_lateness_p50_ms"] - direct["chunk_lateness_p50_ms"])
    return float(modelgate["total_p50_ms"] - direct["total_p50_ms"]) / 20


def _print_per_chunk(concurrent: dict[str, Any], shape: str) -> None:
    print(
        f"Scenario 4 ({shape}) added latency per chunk (p50 lateness): {added_per_chunk(concurrent):.2f} ms"
    )
    for name, r in concurrent.items():
        if "steady_chunks" in r:  # results written before it was measured have none
            print(
                f"  {name}: chunk lateness p50 {r['chunk_lateness_p50_ms']:.2f} ms, "
                f"p99 {r['chunk_lateness_p99_ms']:.2f} ms, over {r['steady_chunks']:,} chunks in the "
                f"{r['steady_seconds']:.1f} s all streams ran together; "
                f"first chunk p50 {r['ttft_p50_ms']:.0f} ms"
            )


def _two_workers_per_chunk(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    if "concurrent_2_workers" not in results:  # measured since issue 17's second round
        return []
    per_chunk = added_per_chunk(results["concurrent_2_workers"])
    return [("S4 added per chunk <= 5 ms, 2 workers", per_chunk <= 5, f"{per_chunk:.2f} ms")]


def targets(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for each target of the benchmark issue."""
    c1, c16 = results["generate"]["c1"], results["generate"]["c16"]
    added_p50 = c1["modelgate"]["p50_ms"] - c1["direct"]["p50_ms"]
    added_p99 = c1["modelgate"]["p99_ms"] - c1["direct"]["p99_ms"]
    throughput = c16["modelgate"]["rps"] / c16["litellm"]["rps"]
    stream = results["streaming"]
    added_ttft = stream["modelgate"]["ttft_p50_ms"] - stream["direct"]["ttft_p50_ms"]
    litellm_ttft = stream["litellm"]["ttft_p50_ms"] - stream["direct"]["ttft_p50_ms"]
    catalog = results["catalog"]["modelgate"]["rps"] / results["catalog"]["baseline"]["rps"]
    concurrent = results["concurrent"]["modelgate"]
    per_chunk = added_per_chunk(results["concurrent"])
    many = results.get("many_streams", {"streams": 0, "failures": -1, "peak_rss_mb": float("inf")})
    persisted = c1.get("modelgate-persisted", {"p50_ms": float("inf")})["p50_ms"] - c1["direct"]["p50_ms"]
    return [
        ("S1 c=1 added p50 <= 1.0 ms", added_p50 <= 1.0, f"{added_p50:.2f} ms"),
        ("S1 c=1 added p50 <= 1.0 ms, persisted", persisted <= 1.0, f"{persisted:.2f} ms"),
        ("S1 c=1 added p99 <= 4 ms", added_p99 <= 4, f"{added_p99:.2f} ms"),
        ("S1 c=16 >= 6x LiteLLM req/s", throughput >= 6, f"{throughput:.1f}x"),
        ("S2 added TTFT p50 <= 2 ms", added_ttft <= 2, f"{added_ttft:.2f} ms"),
        (
            "S2 added TTFT <= 1/4 of LiteLLM's",
            added_ttft <= litellm_ttft / 4,
            f"{added_ttft:.2f} ms vs {litellm_ttft:.2f} ms",
        ),
        ("S3 >= 50% of raw aiohttp+asyncpg", catalog >= 0.5, f"{catalog:.0%}"),
        ("S4 no failed stream", concurrent["failures"] == 0, f"{concurrent['failures']} failed"),
        ("S4 peak RSS <= 400 MB", concurrent["peak_rss_mb"] <= 400, f"{concurrent['peak_rss_mb']:.0f} MB"),
        ("S4 added per chunk <= 5 ms, one process", per_chunk <= 5, f"{per_chunk:.2f} ms"),
        *_two_workers_per_chunk(results),
        *(workers.targets(results["workers"]) if "workers" in results else []),
        (
            f"S7 {many['streams']:,} streams, none failed, <= 1 GB",
            many["failures"] == 0 and many["peak_rss_mb"] <= 1024,
            f"{many['failures']} failed, {many['peak_rss_mb']:.0f} MB",
        ),
    ]


def print_table(results: dict[str, Any]) -> None:
    print(_row("scenario", "target", "p50 ms", "p99 ms", "req/s", "failures"))
    print(_row(*["---"] * 6))
    for level in ("c1", "c16"):
        for name, r in results["generate"][level].items():
            print(
                _row(
                    f"1 generate {level}",
                    name,
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['rps']:.0f}",
                    r["failures"],
                )
            )
    for name, r in results["catalog"].items():
        print(
            _row(
                "3 models(first: 50) c16",
                name,
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['rps']:.0f}",
                r["failures"],
            )
        )
    print()
    print(_row("scenario", "target", "TTFT p50 ms", "TTFT p99 ms", "total p50 ms", "failures"))
    print(_row(*["---"] * 6))
    for name, r in results["streaming"].items():
        print(
            _row(
                "2 chatStream, 20 chunks",
                name,
                f"{r['ttft_p50_ms']:.2f}",
                f"{r['ttft_p99_ms']:.2f}",
                f"{r['total_p50_ms']:.1f}",
                r["failures"],
            )
        )
    shapes = {"concurrent": "one process", "concurrent_2_workers": "2 workers"}
    for key, shape in shapes.items():
        for name, r in results.get(key, {}).items():
            rss = f", peak RSS {r['peak_rss_mb']:.0f} MB" if r["peak_rss_mb"] is not None else ""
            print(
                _row(
                    f"4 {r['streams']} concurrent streams ({shape}){rss}",
                    name,
                    "",
                    "",
                    f"{r['total_p50_ms']:.1f}",
                    r["failures"],
                )
            )
    print()
    for key, shape in shapes.items():
        if key in results:
            _print_per_chunk(results[key], shape)
    if "many_streams" in results:  # scenario 7 came later
        many = results["many_streams"]
        print(
            f"7 {many['streams']:,} concurrent streams, a chunk every 2 s: {many['failures']} failed, "
            f"peak RSS {many['peak_rss_mb']:.0f} MB, total p50 {many['total_p50_ms'] / 1000:.1f} s"
        )
    if "query_analysis" in results:  # results written before scenario 5 existed have none
        print_query_analysis(results["query_analysis"])
    if "workers" in results:  # likewise, before scenario 6 existed
        workers.print_rows(results["workers"])
    print()
    print(_row("target", "met", "measured"))
    print(_row("---", "---", "---"))
    for name, met, measured in targets(results):
        print(_row(name, "yes" if met else "NO", measured))
