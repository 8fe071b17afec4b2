"""Shared pieces: the simulator process handle, percentiles, the machine line."""

from __future__ import annotations

import asyncio
import itertools
import os
import platform
import sys
from importlib import metadata
from typing import Any

import orjson

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET

__all__ = ["DEMO_API_KEY", "DEMO_API_SECRET", "SimProcess", "machine", "pct"]


class SimProcess:
    """``python -m bench.simproc`` as a child process, spoken to over stdin/stdout."""

    def __init__(self, orders: int, seed: int = 20240601) -> None:
        self.orders = orders
        self.seed = seed
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.open = 0
        self._ids = itertools.count(1)
        self._waiting: dict[tuple[Any, str | None], asyncio.Future[dict[str, Any]]] = {}
        self._early: dict[tuple[Any, str | None], dict[str, Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SimProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.simproc",
            "--orders",
            str(self.orders),
            "--seed",
            str(self.seed),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            limit=64 * 1024 * 1024,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if not line:
            raise RuntimeError("simulator process did not start")
        ready = orjson.loads(line)
        self.url, self.open = ready["url"], ready["open"]
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.wait_for(self.call("quit"), 5)
        except Exception:
            pass
        if self._reader is not None:
            self._reader.cancel()
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:  # the simulator process ended: nothing waiting on it may wait on
                self._ended = True
                for fut in self._waiting.values():
                    if not fut.done():
                        fut.set_exception(RuntimeError("the simulator process ended (see its stderr above)"))
                self._waiting.clear()
                return
            msg = orjson.loads(line)
            key = (msg.get("id"), msg.get("event"))
            fut = self._waiting.pop(key, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            else:
                self._early[key] = msg

    def _expect(self, rid: Any, event: str | None) -> asyncio.Future[dict[str, Any]]:
        fut = asyncio.get_running_loop().create_future()
        key = (rid, event)
        if key in self._early:
            fut.set_result(self._early.pop(key))
        elif getattr(self, "_ended", False):
            fut.set_exception(RuntimeError("the simulator process ended (see its stderr above)"))
        else:
            self._waiting[key] = fut
        return fut

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        rid = next(self._ids)
        fut = self._expect(rid, None)
        self._send({"id": rid, "cmd": cmd, **args})
        return await asyncio.wait_for(fut, 300)

    def _send(self, msg: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(msg) + b"\n")

    async def burst(self) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """Start the prepared burst: (started_ns, a future for the burst-done message)."""
        rid = next(self._ids)
        started = self._expect(rid, None)
        done = self._expect(rid, "burst-done")
        self._send({"id": rid, "cmd": "burst"})
        msg = await asyncio.wait_for(started, 60)
        self.burst_started_mono_ns: int = msg["started_mono_ns"]
        return msg["started_ns"], done

    async def cancels(self) -> dict[str, int]:
        """order id → simulator-side receive time (ns) of its first cancel-order."""
        out: dict[str, int] = {}
        for oid, t in (await self.call("cancels"))["cancels"]:
            out.setdefault(oid, t)
        return out


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank, q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def machine() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {
            p: version(p) for p in ("blotter", "textual", "rich", "pydantic", "pydantic-core", "websockets", "orjson")
        },
    }
