"""The simulator's Python API in-process under gevent: Fleet.start(), a session on gevent sockets, faults."""

from __future__ import annotations

import time

from gevent import socket as gsocket

from app.comms.framing import SocketStream
from app.comms.session import DlmsSession, SessionParams
from simulator.fleet import Fleet
from simulator.meter import FleetConfig


def test_fleet_in_process_with_gevent_sockets():
    cfg = FleetConfig(auth="low", password=b"in-proc-pw", history_days=2, start_time=time.time())
    fleet = Fleet(2, cfg, prefix="GEV", listen=("127.0.0.1", 0, 0)).start()
    try:
        serial = "GEV00000002"
        sock = gsocket.create_connection(("127.0.0.1", fleet.ports[serial]))
        params = SessionParams(client_address=1, auth="low", password=b"in-proc-pw", response_timeout=5)
        session = DlmsSession(SocketStream(sock, "wrapper", 5), params)
        with session:
            fleet.inject_fault(serial, "bypass")
            meter = fleet.meter(serial)
            before = time.time()
            value, _ = session.read_register("1.0.1.8.0.255")
            assert meter.import_wh(before) <= value <= meter.import_wh(time.time())
            assert session.read_entries("0.0.99.98.1.255")[1][-1][1] == 14
        sock.close()
        assert fleet.meter(serial).state()["faults"] == ["bypass"]
        assert fleet.stats()["meters"] == 2
    finally:
        fleet.stop()
