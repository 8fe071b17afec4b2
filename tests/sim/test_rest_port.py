"""REST served on the WebSocket's own port, as the exchange serves it, with the desk's
REST client and the simulator's REST fault switches (issue 13, item 7)."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from blotter.net.rest import RestServerError, RestUnavailable
from blotter.sim import SimConfig
from blotter.sim.cli import build_parser, config_from_args
from tests.helpers import running_desk, running_sim


async def test_the_desks_rest_road_reaches_the_simulator_on_the_websocket_port():
    async with running_sim(initial_orders=7) as sim, running_desk(sim) as desk:
        assert desk.rest is not None and desk.rest_problem is None
        assert desk.rest.base_url == sim.rest_url and sim.rest_url.endswith(f":{sim.port}")
        listed = await desk.rest.open_orders()
        assert {o.order_id for o in listed} == {o["orderId"] for o in sim.open_orders()}
        assert sim.rest.calls and sim.rest.calls[-1].path.endswith("/futures/order/open")


async def test_rest_faults_switch_at_run_time():
    async with running_sim(initial_orders=2) as sim, running_desk(sim) as desk:
        assert desk.rest is not None
        sim.rest.faults.server_error = 503
        with pytest.raises(RestServerError):
            await desk.rest.open_orders()
        sim.rest.faults.server_error = None
        sim.rest.faults.drop_connections = True
        with pytest.raises(RestUnavailable):
            await desk.rest.open_orders()
        sim.rest.faults.drop_connections = False
        assert len(await desk.rest.open_orders()) == 2


async def test_a_refused_stream_leaves_rest_answering():
    async with running_sim(initial_orders=3) as sim, running_desk(sim) as desk:
        assert await desk.wait_live(5)
        await sim.refuse_websocket()
        for _ in range(200):
            if desk.state.name != "LIVE":
                break
            await asyncio.sleep(0.01)
        assert desk.state.name != "LIVE"
        assert desk.rest is not None and len(await desk.rest.open_orders()) == 3
        await sim.refuse_websocket(False)
        assert await desk.wait_live(10)


def test_blotter_sim_flags_set_the_rest_faults():
    args = build_parser().parse_args(["--rest-delay", "0.5", "--rest-error", "502", "--rest-down", "--ws-refused"])
    config = config_from_args(args, environ={})
    assert (config.rest_delay, config.rest_error, config.rest_down, config.ws_refused) == (0.5, 502, True, True)
    assert SimConfig().ws_refused is False


async def test_a_tls_client_on_the_plain_port_is_refused_at_once():
    # A wss:// client on the plain port sends a TLS ClientHello: the server must answer as
    # websockets alone did (the handshake fails at once), not wait for an HTTP head that
    # never comes while the client hangs until its own timeout.
    async with running_sim(initial_orders=0) as sim:
        context = ssl.create_default_context()
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", sim.port, ssl=context), 5)
