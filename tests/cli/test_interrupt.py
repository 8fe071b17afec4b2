"""Ctrl-C at any moment of the start-up: exit 130 (or the signal itself, before Python
handles it), never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.15, 0.2, 0.3, 0.45])
def test_ctrl_c_while_the_modules_load_is_quiet(tmp_path, delay):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("BLOTTER_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "blotter", "orders", "--url", "ws://127.0.0.1:9/1/api/pro/v2/stream", "--no-journal"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err.decode(errors="replace")
    assert proc.returncode in (130, -signal.SIGINT, 4, 2), (proc.returncode, err)
