"""Standard DLMS pushes: connect, Data-Notification, close — on the push port and the meter port, wrapper and
HDLC, plain and ciphered; identified by content, system title or source address; unknown senders listed;
undecodable and refused pushes kept with their bytes; counters on the node's API."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest

from tests.interop.conftest import node_counters, push_address, stored_readings
from tests.support.live import add_meter, brand_id
from tests.support.simulator import AUTH_KEY, BLOCK_KEY

IMPORT = "1.0.1.8.0.255"
MAGNET = 11  # hes_sim event code of a magnetic tamper


def events_of(hes, meter_id: int) -> list[dict]:
    return hes.api("GET", f"/event/?q=(filters:!((col:meter_id,opr:eq,value:{meter_id})))").json()["result"]


def set_keys(hes, meter_id: int) -> None:
    """Give the HES the meter's keys (as a utility imports them from the vendor)."""
    resp = hes.api("PUT", f"/meter/{meter_id}/credentials",
                   json={"block_cipher_key": BLOCK_KEY.hex(), "authentication_key": AUTH_KEY.hex()})
    assert resp.status_code == 200, resp.text


def title_of(sim, index: int = 0) -> str:
    """The simulated meter's system title, as the HES would get it from the vendor (upper-case hex)."""
    return sim.get(f"/meters/{sim.serial(index)}")["system_title"].upper()


def assert_push_stored(hes, sim, meter_id: int) -> None:
    """A tamper push becomes an event from source push, and its import register a reading from source push."""
    assert sim.post(f"/meters/{sim.serial(0)}/push", {"code": MAGNET})["sent"] is True
    event = hes.wait_for(lambda: [e for e in events_of(hes, meter_id) if e["source"] == "push"], timeout=15,
                         what="pushed event stored")[0]
    assert event["event_type"] == "magnetic_tamper"
    rows = stored_readings(hes, meter_id, IMPORT)
    assert rows and all(source == 2 for _, source in rows)  # Source.PUSH
    expected = sim.model_meter(0)
    now = dt.datetime.now(dt.UTC).timestamp()
    assert expected.import_wh(now - 120) <= rows[-1][0] <= expected.import_wh(now)


@pytest.mark.parametrize("interface,ciphered,port", [
    ("wrapper", False, "push"), ("hdlc", False, "push"), ("wrapper", True, "push"), ("hdlc", True, "push"),
    ("wrapper", True, "meter"), ("hdlc", False, "meter")])
def test_push_on_its_own_connection_is_stored(hes, simulators, interface, ciphered, port):
    prefix = f"P{interface[0]}{'c' if ciphered else 'p'}{port[0]}".upper()
    target = push_address(hes) if port == "push" else hes.meter_address
    sim = simulators(meters=1, interface=interface, push_to=target, first_serial=1,
                     extra=["--prefix", prefix] + (["--behaviour", "push_ciphered"] if ciphered else []))
    meter_id = add_meter(hes, sim.serial(0), comm_mode="dial_out", system_title=title_of(sim))
    if ciphered:
        set_keys(hes, meter_id)
    before = node_counters(hes).get("push_stored", 0)
    assert_push_stored(hes, sim, meter_id)
    counters = hes.wait_for(lambda: (c := node_counters(hes)).get("push_stored", 0) > before and c,
                            timeout=15, what="node counters")
    assert counters["push_received"] >= counters["push_stored"] > before


def test_push_from_unknown_meter_is_listed_with_its_content_then_registered(hes, simulators):
    sim = simulators(meters=1, push_to=push_address(hes), first_serial=5, extra=["--prefix", "PUNK"])
    identity = sim.serial(0)
    sim.post(f"/meters/{identity}/push", {"code": MAGNET})

    def listed():
        rows = hes.api("GET", "/unregistered/").json()["result"]
        return next((r for r in rows if r["identity"] == identity), None)

    row = hes.wait_for(listed, what="unknown push listed")
    assert row["kind"] == "push" and row["pushes"] == 1 and row["connected"] is False
    content = json.loads(row["last_push"])
    assert content["values"][0] == identity and content["values"][2] == MAGNET and not content["authenticated"]
    assert hes.wait_for(lambda: node_counters(hes).get("push_unknown_sender", 0) >= 1, what="unknown counted")
    resp = hes.api("POST", f"/unregistered/{row['id']}/register", json={"brand": "hes_sim"})
    assert resp.status_code == 201, resp.text
    assert_push_stored(hes, sim, resp.json()["id"])


def test_ciphered_push_from_unknown_system_title_is_listed_then_registered_by_title(hes, simulators):
    sim = simulators(meters=1, push_to=push_address(hes), first_serial=6,
                     extra=["--prefix", "PUNC", "--behaviour", "push_ciphered"])
    title = sim.get(f"/meters/{sim.serial(0)}")["system_title"]
    sim.post(f"/meters/{sim.serial(0)}/push", {"code": MAGNET})

    def listed():
        rows = hes.api("GET", "/unregistered/").json()["result"]
        return next((r for r in rows if r["system_title"] == title), None)

    row = hes.wait_for(listed, what="ciphered unknown push listed by system title")
    assert row["identity"] == title and json.loads(row["last_push"])["ciphered"] is True
    resp = hes.api("POST", f"/unregistered/{row['id']}/register", json={"brand": "hes_sim", "number": sim.serial(0)})
    assert resp.status_code == 201, resp.text
    meter_id = resp.json()["id"]
    assert hes.api("GET", f"/meter/{meter_id}").json()["result"]["system_title"] == title
    assert hes.api("PUT", f"/meter/{meter_id}/credentials", json={
        "block_cipher_key": BLOCK_KEY.hex(), "authentication_key": AUTH_KEY.hex()}).status_code == 200
    assert_push_stored(hes, sim, meter_id)


def test_push_identified_by_the_static_source_address_of_its_sim(hes, simulators):
    sim = simulators(meters=1, push_to=push_address(hes), first_serial=7,
                     extra=["--prefix", "PSRC", "--push-from", "127.0.0.2", "--behaviour", "push_anonymous"])
    resp = hes.api("POST", "/sim/", json={"number": "PSRC-SIM", "ip_address": "127.0.0.2", "port": sim.port(0)})
    assert resp.status_code == 201, resp.text
    meter_id = add_meter(hes, sim.serial(0), comm_mode="dial_out", sim=resp.json()["id"])
    assert_push_stored(hes, sim, meter_id)


def _failures(hes, category: str) -> list[dict]:
    return hes.api("GET", f"/push_failure/?q=(filters:!((col:category,opr:eq,value:{category})))").json()["result"]


def test_undecodable_push_keeps_its_bytes(hes):
    host, port = push_address(hes).split(":")
    frame = bytes.fromhex("000100010001000a") + bytes.fromhex("0f000000010c0102ff03")  # body cut short
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(frame)
    kept = hes.wait_for(lambda: [f for f in _failures(hes, "undecodable") if f["frame_hex"] == frame.hex()],
                        what="undecodable push kept")[0]
    assert kept["remote_addr"].startswith("127.0.0.1:") and kept["port"] == "push" and kept["reason"]
    assert hes.wait_for(lambda: node_counters(hes).get("push_undecodable", 0) >= 1, what="undecodable counted")


def test_brand_requiring_authenticated_pushes_refuses_plain_ones_and_replays(hes, simulators):
    hes_sim = hes.api("GET", f"/brand/{brand_id(hes)}/definition").json()["result"]
    resp = hes.api("POST", "/brand/", json={
        "name": "secure_push", "title": "Secure pushes", "points": hes_sim["points"], "roles": hes_sim["roles"],
        "connection": {"auth_level": "low", "push_policy": "authenticated"}})
    assert resp.status_code == 201, resp.text
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)
    sim = simulators(meters=1, push_to=f"127.0.0.1:{listener.getsockname()[1]}", first_serial=8,
                     extra=["--prefix", "PSEC"])
    meter_id = add_meter(hes, sim.serial(0), comm_mode="dial_out", brand="secure_push", system_title=title_of(sim))
    host, port = push_address(hes).split(":")

    def relay_one_push() -> bytes:
        sim.post(f"/meters/{sim.serial(0)}/push", {"code": 0})
        conn, _ = listener.accept()
        with conn:
            frame = conn.recv(4096)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(frame)
        return frame

    plain = relay_one_push()
    refused = hes.wait_for(lambda: [f for f in _failures(hes, "refused") if f["frame_hex"] == plain.hex()],
                           what="plain push refused")[0]
    assert "authenticated pushes only" in refused["reason"] and refused["meter_id"] == meter_id
    assert stored_readings(hes, meter_id, IMPORT) == []
    # The same meter's authenticated pushes are stored; a replay of one is refused.
    set_keys(hes, meter_id)
    sim.post(f"/meters/{sim.serial(0)}/behaviour", {"name": "push_ciphered"})
    ciphered = relay_one_push()
    hes.wait_for(lambda: stored_readings(hes, meter_id, IMPORT), what="authenticated push stored")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(ciphered)
    replay = hes.wait_for(lambda: [f for f in _failures(hes, "refused") if f["frame_hex"] == ciphered.hex()],
                          what="replayed push refused")[0]
    assert "replayed" in replay["reason"]
    listener.close()
