"""Dial-in meters (heartbeat then DLMS on the same socket), pushes and link faults."""

from __future__ import annotations

import time

import pytest

from app.comms.framing import SocketStream, parse_wrapper
from app.comms.heartbeat import parse_heartbeat
from app.comms.push import PushError, PushKeys, decode_push
from app.comms.session import DlmsSession, ResponseTimeout
from tests.support.simulator import AUTH_KEY, BLOCK_KEY

PUSH_OBJECTS = [(1, "0.0.96.1.0.255", 2), (8, "0.0.1.0.0.255", 2), (1, "0.0.96.11.0.255", 2), (3, "1.0.1.8.0.255", 2)]


def _accept(listener):
    conn, _ = listener.accept()
    conn.settimeout(10)
    return conn


def test_dial_in_heartbeat_then_dlms_on_the_same_socket(sim_factory, tcp_listener):
    host, port = tcp_listener.getsockname()
    sim = sim_factory(meters=2, listen=False, dial_in=f"{host}:{port}", heartbeat_seconds=1.0)
    seen = {}
    for _ in range(2):
        conn = _accept(tcp_listener)
        stream = SocketStream(conn, "wrapper", timeout=10)
        beat = parse_heartbeat(stream.recv_initial())
        assert beat is not None and beat.kind == "register"
        seen[beat.meter_number] = (conn, stream)
    assert sorted(seen) == [sim.serial(0), sim.serial(1)]
    conn, stream = seen[sim.serial(1)]
    # Periodic heartbeats keep coming while no association is open.
    assert parse_heartbeat(stream.recv_frame(), first=False).kind == "heartbeat"
    session = DlmsSession(SocketStream(conn, "wrapper", 5, buffer=stream.take_buffer()), sim.params())
    session.associate()
    assert session.get("0.0.96.1.0.255", 1, 2) == sim.serial(1).encode()
    value, unit = session.read_register("1.0.1.8.0.255")
    assert unit == "Wh" and value > 0
    session.release()
    for conn, _ in seen.values():
        conn.close()


def test_dial_in_meter_reconnects_after_link_drop(sim_factory, tcp_listener):
    host, port = tcp_listener.getsockname()
    sim = sim_factory(meters=1, listen=False, dial_in=f"{host}:{port}")
    first = _accept(tcp_listener)
    assert parse_heartbeat(SocketStream(first, "wrapper", 5).recv_initial()).meter_number == sim.serial(0)
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "link_drop"})
    assert first.recv(100) == b""  # the meter closed its side
    second = _accept(tcp_listener)
    assert parse_heartbeat(SocketStream(second, "wrapper", 5).recv_initial()).meter_number == sim.serial(0)
    first.close()
    second.close()


@pytest.mark.parametrize("auth", ["low", "high_gmac"])
def test_tamper_is_logged_and_pushed(sim_factory, tcp_listener, auth):
    host, port = tcp_listener.getsockname()
    sim = sim_factory(meters=1, auth=auth, push_to=f"{host}:{port}")
    state = sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "reverse_flow"})
    assert state["faults"] == ["reverse_flow"] and state["events"][-1]["type"] == "reverse_flow"
    conn = _accept(tcp_listener)
    frame = SocketStream(conn, "wrapper", 5).recv_frame()
    conn.close()
    keys = {"keys": PushKeys(BLOCK_KEY, AUTH_KEY)} if auth == "high_gmac" else {}
    raw = decode_push(frame, **keys)
    assert raw.values[0] == sim.serial(0).encode() and raw.values[2] == 12
    paired = decode_push(frame, PUSH_OBJECTS, **keys)
    assert [o["obis"] for o in paired.objects] == [o[1] for o in PUSH_OBJECTS]
    assert paired.objects[1]["value"].tzinfo is not None
    assert abs(paired.timestamp.timestamp() - time.time()) < 120
    if auth == "high_gmac":
        assert raw.system_title is not None and raw.invocation_counter
        with pytest.raises(PushError):
            decode_push(frame)
        with pytest.raises(PushError):
            decode_push(frame, keys=PushKeys(bytes(16), AUTH_KEY))
    with sim.session(0) as session:
        _, rows = session.read_entries("0.0.99.98.1.255")
        assert rows[-1][1] == 12
        assert session.read_register("1.0.1.7.0.255")[0] < 0  # energy flows backwards now


def test_triggered_push_over_dial_in_socket(sim_factory, tcp_listener):
    host, port = tcp_listener.getsockname()
    sim = sim_factory(meters=1, listen=False, dial_in=f"{host}:{port}")
    conn = _accept(tcp_listener)
    stream = SocketStream(conn, "wrapper", 5)
    stream.recv_initial()
    assert sim.post(f"/meters/{sim.serial(0)}/push", {"code": 0})["sent"] is True
    frame = stream.recv_frame()
    assert parse_wrapper(frame).apdu[0] == 0x0F
    assert decode_push(frame).values[0] == sim.serial(0).encode()
    conn.close()


def test_slow_and_half_frame_meters_time_out(sim_factory):
    sim = sim_factory(meters=2)
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "slow", "seconds": 3})
    started = time.monotonic()
    with pytest.raises(ResponseTimeout), sim.session(0, response_timeout=1.0):
        pass
    assert time.monotonic() - started < 2.5
    with sim.session(1) as session:
        sim.post(f"/meters/{sim.serial(1)}/fault", {"kind": "half_frame"})
        session.stream.frame_deadline = 1.0
        started = time.monotonic()
        with pytest.raises(ResponseTimeout):
            session.read_clock()
        assert time.monotonic() - started < 2.5
        sim.post(f"/meters/{sim.serial(1)}/fault", {"kind": "half_frame", "active": False})


def test_wrong_password_fault_and_garbage(sim_factory):
    from app.comms.framing import FrameError
    from app.comms.session import AuthenticationError, DlmsError

    sim = sim_factory(meters=2)
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "wrong_password"})
    with pytest.raises(AuthenticationError), sim.session(0):
        pass
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "wrong_password", "active": False})
    with sim.session(0) as session:
        assert session.read_clock()
    sim.post(f"/meters/{sim.serial(1)}/fault", {"kind": "garbage"})
    with pytest.raises((FrameError, DlmsError, ResponseTimeout)):
        with sim.session(1, response_timeout=1.0):
            pass


def test_a_failed_last_seen_flush_keeps_its_batch_for_the_next(app):
    """A flush that fails (the database restarting) loses no meter's last-seen time; a newer time wins."""
    from app.comms.node import CommsNode, NodeHandlers

    written, failing = [], [True]

    def seen(batch: dict) -> list:
        if failing[0]:
            raise ConnectionError("database restarting")
        written.append(dict(batch))
        return []

    node = CommsNode(app, handlers=NodeHandlers(seen=seen))
    node._seen = {1: 100.0, 2: 100.0}
    with pytest.raises(ConnectionError):
        node._flush_seen()
    node._seen[2] = 160.0  # meter 2's next heartbeat came in before the next flush
    failing[0] = False
    node._flush_seen()
    assert written == [{1: 100.0, 2: 160.0}] and node._seen == {}
