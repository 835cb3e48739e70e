"""The zero-latency fake OpenAI upstream of tests/fakes, as a process of its own for load runs.

python -m bench.upstream --port 9100 --chunks 20 [--frame-interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio

from bench.processes import python, run_on_uvloop
from tests.fakes.openai_server import openai_fake_server

REPLY = " ".join(f"w{i}" for i in range(1, 41))  # 40 words: 20 chunks of two words


def command(port: int, *, frame_interval: float = 0.0, chunks: int = 20) -> list[str]:
    """The command that starts this fake as a process of its own."""
    return [
        *(python(), "-m", "bench.upstream", "--port", str(port)),
        *("--frame-interval", str(frame_interval), "--chunks", str(chunks)),
    ]


async def serve(port: int, chunks: int, frame_interval: float) -> None:
    async with openai_fake_server(
        port=port,
        reply=REPLY,
        chunks=chunks,
        frame_interval=frame_interval,
        keep_requests=False,
        backlog=4096,  # scenario 7 opens 10,000 upstream connections at once (Linux caps it at somaxconn)
    ) as fake:
        print(f"ready {fake.url}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--frame-interval", type=float, default=0.0)
    args = parser.parse_args()
    run_on_uvloop(serve(args.port, args.chunks, args.frame_interval))


if __name__ == "__main__":
    main()
