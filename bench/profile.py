"""Where the blotter's threads spend their time: a summary of a ``py-spy record
--format raw --threads --idle`` file (``python -m bench.profile FILE`` prints it), for
the main thread (the screen: Textual's loop) and the session's thread (``blotter-session``:
socket, parsing, folding, journal hand-off).

Each sample of those threads goes to one area, by these rules, first match wins:

0. waiting for the book lock: a frame in ``blotter/net/loop_thread.py`` acquiring it;

1. idle: the innermost frame waits in ``select``/``epoll`` (the loop has nothing to do);
2. snapshot application: a ``blotter`` frame whose function names a snapshot;
3. journal: a frame in ``blotter/journal`` (the hand-off to the writer thread);
4. Textual compositor / render: a frame in Textual's compositor, strips, styles cache,
   a widget's ``render_line(s)``, or Rich's segments;
5. terminal output: Textual's driver or writer (``write``, ``flush``);
6. otherwise the innermost frame that belongs to an area: socket reading (asyncio's
   socket transport, websockets, ``blotter/net/transport``), parsing
   (``blotter/protocol``, pydantic), store / view folding (``blotter/core``), session and
   desk dispatch, the UI's own code, Textual's events / messages / layout, garbage
   collection (``blotter/collector``), the asyncio event loop.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")

AREAS_INNER = (
    (
        "socket reading",
        ("asyncio/selector_events.py", "websockets/", "blotter/net/transport.py", "socket.py", "ssl.py"),
    ),
    ("parsing", ("blotter/protocol/", "pydantic/", "pydantic_core/", "json/")),
    ("store / view folding", ("blotter/core/",)),
    ("session / desk dispatch", ("blotter/net/", "blotter/desk.py")),
    ("garbage collection", ("blotter/collector.py",)),
    ("UI code (blotter/ui)", ("blotter/ui/",)),
    ("Textual events / messages / layout", ("textual/",)),
    ("asyncio event loop", ("asyncio/",)),
)
RENDER_FILES = (
    "textual/_compositor.py",
    "textual/strip.py",
    "textual/_styles_cache.py",
    "textual/_segment_tools.py",
    "rich/segment.py",
    "rich/style.py",
    "rich/color.py",
    "textual/_border.py",
)
RENDER_FUNCS = ("render_line", "render_lines", "_render_line", "_render_lines", "render_strips")
OUTPUT_FILES = ("textual/drivers/", "textual/_writer_thread.py")


def _frames(stack: str) -> tuple[str, list[tuple[str, str]]]:
    parts = stack.split(";")
    thread = parts[0].split(": ", 1)[-1] if parts and parts[0].startswith("thread") else "?"
    frames = []
    for p in parts[1:]:
        m = FRAME.match(p)
        frames.append((m.group("func"), m.group("file")) if m else (p, ""))
    return thread, frames


def area(frames: list[tuple[str, str]]) -> str:
    if not frames:
        return "other"
    leaf_func, leaf_file = frames[-1]
    for func, file in frames:
        if file.startswith("blotter/net/loop_thread.py") and func.rsplit(".", 1)[-1] in (
            "acquire",
            "take",
            "__enter__",
        ):
            return "waiting for the book lock"
    if leaf_file.endswith("selectors.py") and leaf_func.rsplit(".", 1)[-1] in ("select", "poll"):
        return "idle (waiting in select)"
    for func, file in frames:
        if file.startswith("blotter/") and "snapshot" in func.lower():
            return "snapshot application"
    for _func, file in frames:
        if file.startswith("blotter/journal/"):
            return "journal hand-off"
    for func, file in frames:
        if file.startswith(RENDER_FILES) or (func in RENDER_FUNCS and "/" in file):
            return "Textual compositor / render"
    for func, file in frames:
        if file.startswith(OUTPUT_FILES) or (file == "textual/app.py" and func in ("_display", "_refresh_layout")):
            return "terminal output"
    for _func, file in reversed(frames):
        for name, prefixes in AREAS_INNER:
            if file.startswith(prefixes):
                return name
    return "other"


THREADS = (("MainThread", "main thread"), ("blotter-session", "session thread"))


def summarise(path: str, top: int = 12) -> str:
    """A markdown summary per thread (the main thread, then the session's): time per area,
    top functions by self and by total time; then every thread's share."""
    per_area: dict[str, Counter[str]] = {name: Counter() for name, _ in THREADS}
    self_t: dict[str, Counter[str]] = {name: Counter() for name, _ in THREADS}
    total_t: dict[str, Counter[str]] = {name: Counter() for name, _ in THREADS}
    threads: Counter[str] = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        thread, frames = _frames(stack)
        threads[thread] += n
        if thread not in per_area:
            continue
        per_area[thread][area(frames)] += n
        if frames:
            f, file = frames[-1]
            self_t[thread][f"{f} ({file})"] += n
        for key in {f"{f} ({file})" for f, file in frames}:
            total_t[thread][key] += n
    if not threads["MainThread"]:
        return f"(no main-thread samples in {path})"
    out: list[str] = []
    for name, label in THREADS:
        samples = threads[name]
        if not samples:
            continue
        out += ["" if out else "", f"| Area ({label}) | share of samples |", "|---|---|"]
        out += [f"| {a} | {k / samples:.0%} |" for a, k in per_area[name].most_common()]
        out += ["", f"{label.capitalize()}: {samples} samples. Top functions by self time:", ""]
        out += [f"- {k / samples:5.1%}  {f}" for f, k in self_t[name].most_common(top)]
        out += ["", "Top functions by total time (inclusive; the loop's own frames, in every sample, left out):", ""]
        inclusive = [(f, k) for f, k in total_t[name].most_common() if k < 0.9 * samples]
        out += [f"- {k / samples:5.1%}  {f}" for f, k in inclusive[:top]]
    out += ["", "All threads (samples, idle included): " + ", ".join(f"{t} {n}" for t, n in threads.most_common())]
    return "\n".join(out).lstrip("\n")


if __name__ == "__main__":
    print(summarise(sys.argv[1]))
