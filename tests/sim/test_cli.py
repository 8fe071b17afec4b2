"""``blotter sim`` / ``python -m blotter.sim``: help, bad input, the URL line, clean Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import pytest

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET
from blotter.sim.cli import add_arguments, build_parser, config_from_args, main

FAULT_FLAGS = [
    "--ack-delay",
    "--refuse-cancels",
    "--drop-every",
    "--malformed-every",
    "--skip-sn-every",
    "--repeat-sn-every",
    "--drop-updates-every",
    "--no-pong",
    "--silent",
    "--ignore-requests",
    "--odd-records",
]


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    flags = [s for a in build_parser()._actions for s in a.option_strings if s.startswith("--")]
    for flag in (
        flags
        + FAULT_FLAGS
        + [
            "--port",
            "--host",
            "--api-key",
            "--api-secret",
            "--secret-encoding",
            "--dialect",
            "--seed",
            "--orders",
            "--rate",
            "--account-group",
            "--symbols",
            "--ping-interval",
            "--tls-cert",
            "--tls-key",
        ]
    ):
        assert flag in out, flag


def test_add_arguments_on_a_subparser():
    parser = argparse.ArgumentParser(prog="blotter")
    sub = parser.add_subparsers(dest="command")
    add_arguments(sub.add_parser("sim"))
    args = parser.parse_args(["sim", "--rate", "0", "--dialect", "2021", "--symbols", "BTC-PERP,ETH-PERP", "--no-pong"])
    config = config_from_args(args, environ={})
    assert config.rate == 0 and config.dialect == "2021" and config.symbols == ["BTC-PERP", "ETH-PERP"]
    assert config.no_pong and not config.silent and config.api_key == DEMO_API_KEY


def test_sequence_faults_from_the_command_line():
    args = build_parser().parse_args(["--drop-updates-every", "7", "--skip-sn-every", "5"])
    config = config_from_args(args, environ={})
    assert (config.drop_updates_every, config.skip_sn_every, config.repeat_sn_every) == (7, 5, None)


def test_odd_records_from_the_command_line():
    args = build_parser().parse_args(["--odd-records", "nan-avg-price, lone-surrogate"])
    assert config_from_args(args, environ={}).odd_records == ["nan-avg-price", "lone-surrogate"]


def test_credentials_from_environment():
    args = build_parser().parse_args([])
    config = config_from_args(args, environ={"ASCENDEX_API_KEY": "k" * 32, "ASCENDEX_API_SECRET": "c2VjcmV0"})
    assert config.api_key == "k" * 32 and config.api_secret == "c2VjcmV0"
    args = build_parser().parse_args(["--api-key", "flag"])
    assert config_from_args(args, environ={"ASCENDEX_API_KEY": "env"}).api_key == "flag"


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "-1"],
        ["--refuse-cancels", "42"],
        ["--api-secret", "not base64!"],
        ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"],
        ["--drop-every", "0"],
        ["--odd-records", "nan-avg-price,not-an-oddity"],
        ["--rest-error", "200"],
        ["--symbols", ""],
        ["--symbols", "BTC-PERP,,ETH-PERP"],
        ["--api-key", "bad key"],
    ],
)
def test_bad_values_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("blotter sim: ") and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [["--port", "x"], ["--port", "70000"], ["--dialect", "1999"], ["--bogus"], ["--host", "0.0.0.0"], ["--host", "::"]],
)
def test_bad_syntax_is_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_prints_url_and_stops_cleanly_on_ctrl_c():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "blotter.sim", "--port", "0", "--rate", "0", "--orders", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("blotter sim listening on ws://127.0.0.1:")
        assert "/1/api/pro/v2/stream" in line and DEMO_API_KEY in line and DEMO_API_SECRET in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_secret_is_not_printed_unless_demo_and_a_key_of_ones_own_is_masked():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
    env["ASCENDEX_API_SECRET"] = "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    env["ASCENDEX_API_KEY"] = "AKEYFULLqwertyZZZ9876543210abcd"  # a key of one's own: shown masked
    proc = subprocess.Popen(
        [sys.executable, "-m", "blotter.sim", "--rate", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert "ws://" in line and "c2VjcmV0" not in line and "secret" not in line
        assert "AKEYFULLqwertyZZZ9876543210abcd" not in line and "api key: AKEY…abcd (yours, masked)" in line, line
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_symbols_are_taken_in_upper_case_and_a_loopback_host_is_accepted():
    args = build_parser().parse_args(["--symbols", "btc-perp, eth-perp", "--host", "::1"])
    assert config_from_args(args, environ={}).symbols == ["BTC-PERP", "ETH-PERP"]
    assert args.host == "::1"
