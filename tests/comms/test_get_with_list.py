"""GET-WITH-LIST against the simulator over real sockets: several attributes in one request where the meter grants
multiple references, one GET each where it does not, and a clean fallback (remembered) where it refuses."""

from __future__ import annotations

import socket
import time

from app.comms.framing import SocketStream
from app.comms.session import DlmsError, DlmsSession, ObjectCache

CLOCK = ("0.0.1.0.0.255", 8, 2)
ENERGY = ("1.0.1.8.0.255", 3, 2)
ENERGY_SCALER = ("1.0.1.8.0.255", 3, 3)
VOLTAGE = ("1.0.32.7.0.255", 3, 2)
NO_SUCH_OBJECT = ("0.0.96.99.99.255", 1, 2)


class CountingStream(SocketStream):
    """A real socket stream that counts the requests the client sends."""

    sent = 0

    def send(self, data: bytes) -> None:
        """Send and count."""
        self.sent += 1
        super().send(data)


def _session(sim, index: int, cache: ObjectCache) -> tuple[DlmsSession, CountingStream, socket.socket]:
    params = sim.params()
    sock = socket.create_connection(("127.0.0.1", sim.port(index)), timeout=5)
    stream = CountingStream(sock, params.interface, params.response_timeout)
    session = DlmsSession(stream, params, object_cache=cache)
    session.associate()
    return session, stream, sock


def _read_many(sim, index: int, cache: ObjectCache, items) -> tuple[list, int, bool]:
    """Values of ``items`` through get_many, the requests it took, and whether the meter offered the list."""
    session, stream, sock = _session(sim, index, cache)
    try:
        offered = session.with_list
        before = stream.sent
        values = session.get_many(items)
        return values, stream.sent - before, offered
    finally:
        session.release()
        sock.close()


def _read_each(sim, index: int, items) -> list:
    session, _, sock = _session(sim, index, ObjectCache())
    try:
        return [session.get(*item) for item in items]
    finally:
        session.release()
        sock.close()


def test_several_attributes_in_one_request_same_values_as_one_get_each(sim_wrapper_lls):
    sim = sim_wrapper_lls
    items = [ENERGY_SCALER, CLOCK, VOLTAGE]
    values, requests, offered = _read_many(sim, 2, ObjectCache(), items)
    alone = _read_each(sim, 2, items)
    assert offered and requests == 1
    assert values[0] == alone[0] == [0, 30]  # scaler 0, unit Wh
    assert isinstance(values[1], bytes) and len(values[1]) == 12
    assert values[2] == alone[2] or abs(values[2] - alone[2]) < 50  # a live voltage, read moments apart


def test_a_refused_attribute_is_its_own_error_and_the_list_stays_in_use(sim_wrapper_lls):
    sim = sim_wrapper_lls
    cache = ObjectCache()
    values, _, _ = _read_many(sim, 3, cache, [ENERGY_SCALER, NO_SUCH_OBJECT, VOLTAGE])
    assert values[0] == [0, 30] and isinstance(values[2], int)
    assert isinstance(values[1], DlmsError) and values[1].kind == "data-access"
    assert cache.with_list is not False
    _, requests, _ = _read_many(sim, 3, cache, [ENERGY_SCALER, VOLTAGE])
    assert requests == 1


def test_a_meter_without_multiple_references_is_read_one_get_each(sim_factory):
    sim = sim_factory(meters=1, first_serial=61, extra=["--prefix", "GWL", "--behaviour", "get_with_list_unsupported"])
    values, requests, offered = _read_many(sim, 0, ObjectCache(), [ENERGY_SCALER, CLOCK, VOLTAGE])
    assert not offered and requests == 3
    assert values[0] == [0, 30] and len(values[1]) == 12 and isinstance(values[2], int)


def test_a_meter_that_refuses_the_list_falls_back_and_is_remembered(sim_factory):
    sim = sim_factory(meters=1, first_serial=71, extra=["--prefix", "GWR", "--behaviour", "get_with_list_refused"])
    cache = ObjectCache()
    values, requests, offered = _read_many(sim, 0, cache, [ENERGY_SCALER, CLOCK, VOLTAGE])
    assert offered  # the meter claims multiple references ...
    assert requests == 4  # ... refuses the list, then one GET each
    assert values[0] == [0, 30] and len(values[1]) == 12 and isinstance(values[2], int)
    assert cache.with_list is False
    time.sleep(0.05)
    values, requests, offered = _read_many(sim, 0, cache, [ENERGY_SCALER, CLOCK, VOLTAGE])
    assert not offered and requests == 3 and values[0] == [0, 30]
