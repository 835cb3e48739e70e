"""Starting and stopping the processes a benchmark run needs, each on its own loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import uvloop

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
LITELLM_VERSION = "1.106.2"  # never 1.82.7 or 1.82.8, which were compromised releases


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Processes:
    log_dir: Path
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], env: dict[str, str] | None = None, without: tuple[str, ...] = ()
    ) -> subprocess.Popen[bytes]:
        """Starts a process with this environment plus `env`, less the variables in `without`."""
        log = (self.log_dir / f"{name}.log").open("wb")
        environment = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in without}
        process = subprocess.Popen(args, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.running):
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_for_port(port: int, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return
    raise TimeoutError(f"nothing listens on port {port} after {within} s")


def python() -> str:
    return sys.executable


def ensure_litellm() -> Path:
    """LiteLLM lives in a virtual environment of its own: its pins must not meet ours."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"],
            check=True,
        )
    return binary


def ensure_wrk() -> str:
    for candidate in ("/usr/bin/wrk", "/usr/local/bin/wrk"):
        if Path(candidate).exists():
            return candidate
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        return "/usr/bin/wrk"
    raise SystemExit("make bench needs wrk (Debian package 'wrk'); install it and run again")


class RssSampler:
    """The peak resident memory of a process tree, sampled in the background."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def _rss(self) -> int:
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes if p.is_running())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self._rss())
            await asyncio.sleep(self.interval)

    @contextlib.contextmanager
    def watching(self) -> Iterator[RssSampler]:
        self.peak = self._rss()
        self._task = asyncio.get_running_loop().create_task(self._sample())
        try:
            yield self
        finally:
            self._task.cancel()


T = TypeVar("T")


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop, the server's loop: the load clients and fakes spend less of the
    machine's two cores, which the server shares with them."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
