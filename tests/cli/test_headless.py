"""Headless commands, run as real processes against the simulator on loopback."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
from pathlib import Path

import orjson
import pytest

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET
from tests.helpers import running_sim
from tests.helpers.exchange import record, scripted_exchange


def env_for(tmp_path: Path, key: str = DEMO_API_KEY, secret: str = DEMO_API_SECRET) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDEX_")}
    env.update(
        ASCENDEX_API_KEY=key,
        ASCENDEX_API_SECRET=secret,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        HOME=str(tmp_path),
        NO_COLOR="1",
    )
    return env


async def blotter(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "blotter",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or env_for(tmp_path),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text


async def test_cancel_confirmed(tmp_path):
    async with running_sim() as sim:
        order = sim.open_orders()[0]
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--no-journal",
            "--symbol",
            order["symbol"],
            "--order-id",
            order["orderId"],
        )
        assert code == 0, out + err
        rid = sim.requests("cancel-order")[0].data["id"]
        assert f"{rid} sent cancel-order {order['symbol']} {order['orderId']}" in out
        assert f"{rid} ACK" in out and f"{rid} confirmed Canceled" in out
        assert "result: cancelled" in out
        assert order["orderId"] not in {o["orderId"] for o in sim.open_orders()}
        assert DEMO_API_SECRET not in out + err


async def test_cancel_refused_and_bogus_exit_1(tmp_path):
    async with running_sim(refuse_cancels=300009) as sim:
        order = sim.open_orders()[0]
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--no-journal",
            "--symbol",
            order["symbol"],
            "--order-id",
            order["orderId"],
        )
        assert code == 1, out + err
        assert "ERR 300009 TRADING_VIOLATION" in err
    async with running_sim() as sim:
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--no-journal",
            "--json",
            "--symbol",
            "BTC-PERP",
            "--order-id",
            "s0000000000000U0000000000nosuch01",
        )
        assert code == 1
        lines = [orjson.loads(line) for line in out.splitlines()]
        assert any("ERR 300006 INVALID_ORDER_ID" in l.get("event", "") for l in lines)
        assert lines[-1]["exit"] == 1 and "refused" in lines[-1]["result"]


async def test_cancel_timeout_exit_3_and_dropped_connection(tmp_path):
    async with running_sim(ack_delay=5) as sim:
        order = sim.open_orders()[0]
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--no-journal",
            "--timeout",
            "0.5",
            "--symbol",
            order["symbol"],
            "--order-id",
            order["orderId"],
        )
        assert code == 3, out + err
        assert "TIMEOUT" in err and "still OPEN" in err
    async with running_sim(ignore_requests=True) as sim:
        order = sim.open_orders()[0]
        sim.config.ignore_requests = False  # the snapshot on connect is answered…

        async def drop_after_cancel():
            await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 20)
            await sim.drop_connections()  # …the cancel is not: the connection dies mid-request

        async def ignore_cancels():
            await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "futures-open-orders", 20)
            sim.config.ignore_requests = True
            await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "cancel-order", 20)
            sim.config.ignore_requests = False

        tasks = [asyncio.create_task(drop_after_cancel()), asyncio.create_task(ignore_cancels())]
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--no-journal",
            "--timeout",
            "1.5",
            "--symbol",
            order["symbol"],
            "--order-id",
            order["orderId"],
        )
        await asyncio.gather(*tasks)
        assert code == 3, out + err
        assert "reconnecting" in out and "TIMEOUT" in err
        assert_no_traceback(out, err)


async def test_cancel_all_verifies(tmp_path):
    async with running_sim(initial_orders=25) as sim:
        symbol = sim.open_orders()[0]["symbol"]
        others = len(sim.open_orders()) - len(sim.open_orders(symbol))
        code, out, err = await blotter(tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--symbol", symbol)
        assert code == 0, out + err
        assert sim.open_orders(symbol) == [] and len(sim.open_orders()) == others
        assert "verdict:" in out and "result: nothing left open" in out
        code, out, err = await blotter(tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--json")
        assert code == 0, out + err
        assert sim.open_orders() == []
        assert orjson.loads(out.splitlines()[-1])["result"] == "nothing left open"


async def test_cancel_all_refused_lists_what_is_left(tmp_path):
    async with running_sim(initial_orders=6, refuse_cancels=200002) as sim:
        code, out, err = await blotter(tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--retries", "1")
        assert code == 1, out + err
        assert err.count("ERR 200002 TOO_MANY_ATTEMPTS") == 2  # the request's line and the result line
        assert "result: refused" in err and len(sim.requests("cancel-all")) == 1  # a refusal is the answer: no retry
        assert out.count("still open:") == 6


async def test_orders_table_and_json(tmp_path):
    async with running_sim(initial_orders=9) as sim:
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal", "--json")
        assert code == 0, err
        rows = [orjson.loads(line) for line in out.splitlines()]
        assert rows.pop() == {"result": "9 open order(s)", "exit": 0, "error": None, "open": 9}
        assert {r["order_id"] for r in rows} == {o["orderId"] for o in sim.open_orders()}
        by_id = {o["orderId"]: o for o in sim.open_orders()}
        for r in rows:
            assert r["price"] == by_id[r["order_id"]]["price"] and r["qty"] == by_id[r["order_id"]]["orderQty"]
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal")
        assert code == 0
        assert out.splitlines()[0].split()[:3] == ["SYMBOL", "SIDE", "TYPE"]
        assert "9 open order(s)" in out


@pytest.mark.parametrize(
    "args, env_change, expect, exit_code",
    [
        (
            ["orders", "--url", "ws://127.0.0.1:9/1/api/pro/v2/stream"],
            {"ASCENDEX_API_SECRET": ""},
            "missing credentials",
            2,
        ),
        (["orders", "--url", "http://127.0.0.1/x"], {}, "bad URL", 2),
        (["orders", "--url", "ws://example.com/1/api/pro/v2/stream"], {}, "only loopback hosts may use ws://", 2),
        (["orders", "--url", "wss://" + "a" * 300 + ".com/x"], {}, "the host name is not valid", 2),
        (["orders", "--url", "wss://a..b.com/x"], {}, "the host name is not valid", 2),
        (["orders"], {}, "no exchange given", 2),
        (["orders", "--env", "mainnet"], {}, "--account-group", 2),
        (["--bogus-flag"], {}, "unrecognized arguments", 2),
        (["cancel", "--symbol", "BTC-PERP", "--order-id", "", "--url", "ws://127.0.0.1:9/x"], {}, "not an order id", 2),
        (["cancel-all", "--retries", "-1", "--url", "ws://127.0.0.1:9/x"], {}, "must be 0 or more", 2),
        (["flatten", "--retries", "x", "--url", "ws://127.0.0.1:9/x"], {}, "not a whole number", 2),
        (["orders", "--url", "ws://127.0.0.1:9/1/api/pro/v2/stream"], {}, "not connected", 4),
    ],
)
async def test_bad_input_is_one_clear_line(tmp_path, args, env_change, expect, exit_code):
    env = env_for(tmp_path)
    env.update(env_change)
    code, out, err = (
        await blotter(tmp_path, *args, "--no-journal", env=env)
        if args[0] != "--bogus-flag"
        else await blotter(tmp_path, *args, env=env)
    )
    assert code == exit_code, out + err
    assert expect in out + err
    assert_no_traceback(out, err)
    assert DEMO_API_SECRET not in out + err


async def test_auth_refused_names_the_key_form(tmp_path):
    async with running_sim() as sim:
        wrong = base64.b64encode(b"definitely-not-the-secret").decode()
        code, out, err = await blotter(
            tmp_path, "orders", "--url", sim.url, "--no-journal", env=env_for(tmp_path, secret=wrong)
        )
        assert code == 4
        assert "auth refused" in err and "base64 key form" in err and "--secret-encoding raw" in err
        assert wrong not in out + err
        assert_no_traceback(out, err)


async def test_group_readable_config_is_refused(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('url = "ws://127.0.0.1:9/1/api/pro/v2/stream"\napi_key = "k"\napi_secret = "c2VjcmV0"\n')
    cfg.chmod(0o644)
    env = env_for(tmp_path)
    code, out, err = await blotter(tmp_path, "orders", "--config", str(cfg), "--no-journal", env=env)
    assert code == 2 and f"chmod 600 {cfg}" in err and len(err.strip().splitlines()) == 1
    cfg.chmod(0o600)
    cfg.write_text('url = "ws://127.0.0.1:9/1/api/pro/v2/stream"\nthme = "dark"\n')
    code, out, err = await blotter(tmp_path, "orders", "--config", str(cfg), "--no-journal", env=env)
    assert code == 2 and "unknown key 'thme'" in err


async def test_journal_records_a_headless_cancel_without_secrets(tmp_path):
    journal = tmp_path / "audit" / "journal.sqlite3"
    async with running_sim(initial_orders=5) as sim:
        order = sim.open_orders()[0]
        code, out, err = await blotter(
            tmp_path,
            "cancel",
            "--url",
            sim.url,
            "--journal",
            str(journal),
            "--symbol",
            order["symbol"],
            "--order-id",
            order["orderId"],
        )
        assert code == 0, out + err
        code2, out2, err2 = await blotter(
            tmp_path, "cancel-all", "--url", sim.url, "--journal", str(journal), "--auth-mode", "op"
        )
        assert code2 == 0, out2 + err2
    rid = sim.requests("cancel-order")[0].data["id"]
    code, history, err = await blotter(tmp_path, "journal", "--journal", str(journal), "--request-id", rid)
    assert code == 0, err
    assert rid in history and "cancel-order" in history and "ACK" in history and "Canceled" in history
    code, lines, err = await blotter(tmp_path, "journal", "--journal", str(journal), "--since", "10m", "--json")
    assert code == 0, err
    items = [orjson.loads(line) for line in lines.splitlines()]
    assert {i["action"] for i in items} >= {"cancel-order", "cancel-all", "futures-open-orders"}
    raw = b"".join(p.read_bytes() for p in journal.parent.iterdir())
    assert DEMO_API_SECRET.encode() not in raw
    assert DEMO_API_KEY.encode() not in raw
    code, out, err = await blotter(tmp_path, "journal", "--journal", str(journal), "--since", "ten minutes")
    assert code == 2 and "30s" in err and len(err.strip().splitlines()) == 1


async def test_an_unusable_journal_is_a_warning_not_a_failure(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    async with running_sim(initial_orders=3) as sim:
        code, out, err = await blotter(
            tmp_path, "cancel-all", "--url", sim.url, "--journal", str(blocker / "j.sqlite3")
        )
        assert code == 0, out + err
        assert "journal disabled:" in out and "result: nothing left open" in out
        assert_no_traceback(out, err)


# -- verdicts that match the exchange (issue 10 item 1) -----------------------------------------
async def test_a_refused_scope_is_not_a_clean_book(tmp_path):
    async with running_sim(initial_orders=20) as sim:
        btc = len(sim.open_orders("BTC-PERP"))
        assert btc > 0
        code, out, err = await blotter(
            tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--symbol", "NOPE-PERP"
        )
        assert code == 1, out + err
        assert "nothing left open" not in out + err
        assert "300012" in err and "INVALID_PRODUCT" in err and "result: refused" in err
        assert len(sim.open_orders("BTC-PERP")) == btc

        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal", "--symbol", "NOPE-PERP")
        assert code == 1, out + err
        assert "0 open" not in out + err and "300012" in err

        code, out, err = await blotter(
            tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--json", "--symbol", "NOPE-PERP"
        )
        result = orjson.loads(out.splitlines()[-1])
        assert code == 1 and result["exit"] == 1 and "300012" in result["error"]


async def test_symbols_are_taken_in_upper_case(tmp_path):
    async with running_sim(initial_orders=20) as sim:
        others = len(sim.open_orders()) - len(sim.open_orders("BTC-PERP"))
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal", "--symbol", "btc-perp")
        assert code == 0, out + err
        assert f"{len(sim.open_orders('BTC-PERP'))} open order(s) on BTC-PERP" in out
        code, out, err = await blotter(tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--symbol", "btc-perp")
        assert code == 0, out + err
        assert "sent cancel-all BTC-PERP" in out and "result: nothing left open symbol=BTC-PERP" in out
        assert sim.open_orders("BTC-PERP") == [] and len(sim.open_orders()) == others
        assert [f.data["args"]["symbol"] for f in sim.requests("cancel-all")] == ["BTC-PERP"]
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal", "--symbol", "BTC PERP")
        assert code == 2 and "not a symbol" in err


# -- every request has a deadline (issue 10 item 3) --------------------------------------------
@pytest.mark.parametrize("fault", ["ignore", "garble"])
async def test_an_unanswered_open_orders_query_is_exit_3_within_the_timeout(tmp_path, fault):
    async with running_sim(open_orders_fault=fault) as sim:
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal", "--timeout", "1")
        assert code == 3, out + err
        assert "was not answered in 1 s" in err and "open-orders query oo-" in err
        assert "0 open" not in out + err
        code, out, err = await blotter(tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--timeout", "1")
        assert code == 3, out + err
        assert sim.requests("cancel-all") == []  # nothing is cancelled on a book never loaded
        assert "nothing left open" not in out + err


async def test_cancel_all_whose_verifying_query_is_never_answered_is_exit_3(tmp_path):
    async with running_sim(initial_orders=6) as sim:

        async def stop_answering():
            await sim.wait_for(lambda f: isinstance(f.data, dict) and f.data.get("action") == "futures-open-orders", 20)
            sim.config.open_orders_fault = "ignore"

        task = asyncio.create_task(stop_answering())
        code, out, err = await blotter(
            tmp_path, "cancel-all", "--url", sim.url, "--no-journal", "--timeout", "1", "--json"
        )
        await task
        assert code == 3, out + err
        result = orjson.loads(out.splitlines()[-1])
        assert result["exit"] == 3 and "not answered" in result["error"]
        assert result["result"] != "nothing left open"
        assert sim.open_orders() == []  # it was cancelled; only the verdict is missing


# -- output a script can trust (issue 10 item 12) -----------------------------------------------
async def test_errors_go_to_stderr_results_to_stdout(tmp_path):
    async with running_sim() as sim:
        wrong = base64.b64encode(b"definitely-not-the-secret").decode()
        code, out, err = await blotter(
            tmp_path, "orders", "--url", sim.url, "--no-journal", env=env_for(tmp_path, secret=wrong)
        )
        assert code == 4
        assert out == "" and "auth refused" in err
        code, out, err = await blotter(
            tmp_path, "orders", "--url", sim.url, "--no-journal", "--json", env=env_for(tmp_path, secret=wrong)
        )
        result = orjson.loads(out.splitlines()[-1])
        assert code == 4 and result["exit"] == 4 and "base64 key form" in result["error"]
        assert "auth refused" in err
        code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--no-journal", "--json")
        rows = [orjson.loads(line) for line in out.splitlines()]
        assert code == 0 and rows[-1] == {"result": "12 open order(s)", "exit": 0, "error": None, "open": 12}
        assert err == ""


async def test_a_closed_pipe_ends_quietly(tmp_path):
    async with running_sim(initial_orders=3000) as sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "blotter",
            "orders",
            "--url",
            sim.url,
            "--no-journal",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env_for(tmp_path),
        )
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert first.startswith(b"SYMBOL")
        proc._transport.get_pipe_transport(1).close()  # the reader goes away (| head -1)
        err = await asyncio.wait_for(proc.stderr.read(), 30)
        code = await asyncio.wait_for(proc.wait(), 30)
        assert b"BrokenPipe" not in err and b"internal error" not in err and b"Traceback" not in err, err
        assert code == 0


async def test_progress_reaches_a_pipe_line_by_line(tmp_path):
    async with running_sim(initial_orders=4, open_orders_fault="ignore") as sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "blotter",
            "cancel-all",
            "--url",
            sim.url,
            "--no-journal",
            "--timeout",
            "5",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env_for(tmp_path),
        )
        seen = b""
        while b"connection: live" not in seen:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, seen
            seen += line
        # the open orders are not answered: the command is still waiting, its progress already in the pipe
        assert proc.returncode is None
        rest, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 3 and b"was not answered in 5 s" in err
        assert sim.requests("cancel-all") == []


# -- exchange text is data (issue 12 item 5) ---------------------------------------------------
FORGED = "\x1b[2J\x1b[H\x1b[32mresult: nothing left open (exit 0)\x1b[0m\x1b]52;c;aGk=\x07\x1b]0;pwned\x07\x1b[8mhidden"
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_exchange(auth_error: str | None = None):
    """Answers like the exchange, but every refusal text is a terminal attack."""

    def open_orders(symbol):
        if symbol:
            return {"code": 300012, "info": {"reason": FORGED, "errorMsg": FORGED}}
        return {"code": 0, "data": []}

    def order_reply(data):
        return {
            "m": "order",
            "action": data.get("action"),
            "ac": "FUTURES",
            "code": 300012,
            "id": data["id"],
            "info": {"reason": FORGED, "errorMsg": FORGED},
        }

    return scripted_exchange(open_orders, order_reply, auth_error=auth_error)


def assert_terminal_safe(code: int, out: str, err: str) -> None:
    for line in (out + err).splitlines():
        assert not RAW_CONTROL.search(line), repr(line)
        assert not line.startswith("result: nothing left open"), line
        assert "(exit 0)" not in line or line.startswith("{") or "\\x1b" in line, line
    assert code != 0


async def test_exchange_text_never_reaches_the_terminal_raw(tmp_path):
    async with hostile_exchange() as url:
        for args in (
            ["cancel-all", "--symbol", "BTC-PERP"],
            ["cancel-all", "--symbol", "BTC-PERP", "--json"],
            ["orders", "--symbol", "BTC-PERP"],
            ["orders", "--symbol", "BTC-PERP", "--json"],
            ["cancel", "--symbol", "BTC-PERP", "--order-id", "s0000000000000U0000000000nosuch01"],
        ):
            code, out, err = await blotter(tmp_path, *args, "--url", url, "--no-journal", "--auth-mode", "op")
            assert "\\x1b[32mresult: nothing left open" in out + err, out + err  # shown, escaped
            assert_terminal_safe(code, out, err)
    async with hostile_exchange(auth_error=FORGED) as url:
        for extra in ([], ["--json"]):
            code, out, err = await blotter(
                tmp_path, "orders", "--url", url, "--no-journal", "--auth-mode", "op", *extra
            )
            assert code == 4 and "auth refused" in err
            assert_terminal_safe(code, out, err)


async def test_an_unreadable_open_order_is_never_a_clean_book(tmp_path):
    """The exchange lists an order the client cannot read: cancel-all is not verified."""
    odd = record("s18f1a2b3c4dU1234567890oddAAAAA1", avgFilledPx="NaN")

    def order_reply(data):
        return {
            "m": "order",
            "action": data.get("action"),
            "ac": "FUTURES",
            "code": 0,
            "id": data["id"],
            "info": {"symbol": ""},
        }

    async with scripted_exchange(lambda symbol: {"code": 0, "data": [odd]}, order_reply) as url:
        code, out, err = await blotter(
            tmp_path,
            "cancel-all",
            "--url",
            url,
            "--no-journal",
            "--auth-mode",
            "op",
            "--timeout",
            "2",
            "--retries",
            "0",
        )
        assert code == 1, out + err
        assert "nothing left open" not in out + err


async def test_a_server_that_never_answers_the_upgrade_is_exit_3_within_the_timeout(tmp_path):
    async def mute(reader, writer):
        await reader.read()  # accepts the connection, answers nothing
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code, out, err = await blotter(
            tmp_path, "orders", "--url", f"ws://127.0.0.1:{port}/1/api/pro/v2/stream", "--no-journal", "--timeout", "1"
        )
    finally:
        server.close()
    assert code == 3, out + err
    assert "no answer from the server in 1 s" in err and out == ""


async def test_a_journal_path_naming_another_file_leaves_it_alone_and_says_so_on_stderr(tmp_path):
    """``--journal`` pointed at a text file or another program's SQLite database: the
    command runs (a warning, not a failure), the warning is on stderr whatever the command
    prints, and the file keeps its bytes and its mode (no chmod, no WAL, no tables)."""
    import sqlite3
    import stat

    text_file = tmp_path / "notes.txt"
    text_file.write_text("hi\n")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    for path in (text_file, other):
        path.chmod(0o644)
    before = {p: p.read_bytes() for p in (text_file, other)}
    async with running_sim(initial_orders=3) as sim:
        for path, why in ((text_file, "not an SQLite database"), (other, "another program's SQLite database")):
            code, out, err = await blotter(tmp_path, "orders", "--url", sim.url, "--journal", str(path))
            assert code == 0, out + err
            assert f"blotter: journal disabled: cannot open journal {path}: it is" in err and why in err, err
            assert_no_traceback(out, err)
            assert path.read_bytes() == before[path]
            assert stat.S_IMODE(path.stat().st_mode) == 0o644
            assert not Path(f"{path}-wal").exists()
