"""``python -m bench.run NAME '{json args}'``: one benchmark in this (fresh) process;
prints one JSON line with its numbers. ``bench/__main__`` runs each in its own
process so memory (RSS) and warm caches never leak from one into the next."""

from __future__ import annotations

import asyncio
import os
import sys

import orjson


def main(argv: list[str]) -> None:
    profile = os.environ.get("BENCH_PROFILE")
    if profile:  # a developer's aid: BENCH_PROFILE=out.prof python -m bench.run ingest '{...}'
        import cProfile

        cProfile.runctx("_main(argv)", globals(), {"argv": argv, "_main": _main}, profile)
        return
    _main(argv)


def _main(argv: list[str]) -> None:
    name, args = argv[0], orjson.loads(argv[1]) if len(argv) > 1 else {}
    if name == "baseline":
        from .baseline import ingest

        result = asyncio.run(ingest(**args))
    elif name == "ingest":
        from .blotter_runs import ingest

        result = asyncio.run(ingest(**args))
    elif name == "ingest_journal":
        from .blotter_runs import ingest

        result = asyncio.run(ingest(**args, journal=True))
    elif name == "fire":
        from .blotter_runs import fire

        result = asyncio.run(fire(**args))
    elif name == "scale":
        from .blotter_runs import scale

        result = asyncio.run(scale(**args))
    elif name == "scale_baseline":
        from .baseline import ingest

        result = asyncio.run(ingest(**args))
    elif name == "terminal_flood":
        from .terminal_runs import flood

        result = asyncio.run(flood(**args))
    elif name == "terminal_bare_cancel":
        from .terminal_runs import bare_cancel

        result = asyncio.run(bare_cancel(**args))
    elif name == "terminal_scale":
        from .terminal_runs import scale

        result = asyncio.run(scale(**args))
    elif name == "startup":
        from .startup import run

        result = run(**args)
    else:
        raise SystemExit(f"unknown benchmark {name!r}")
    sys.stdout.write("RESULT " + orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
