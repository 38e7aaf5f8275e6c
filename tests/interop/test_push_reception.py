"""Standard DLMS pushes: connect, Data-Notification, close — on the push port and the meter port, wrapper and
HDLC, plain and ciphered; identified by content, system title or source address; unknown senders listed;
undecodable and refused pushes kept with their bytes; counters on the node's API."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3

import pytest

from app.comms.cosem import encode_datetime
from app.comms.framing import wrapper_frame
from simulator import axdr
from simulator.dlms_server import data_notification
from tests.interop.conftest import node_counters, node_page_counters, push_address, stored_readings
from tests.support.live import add_meter, add_sim, brand_id
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


def plain_push_frame(number: str, when: dt.datetime, import_wh: int) -> bytes:
    """A plain wrapper-framed Data-Notification as hes_sim meters push it (number, clock, event code, import)."""
    stamp = encode_datetime(when, 0)
    body = axdr.structure(axdr.Typed(axdr.OCTET_STRING, number.encode()), axdr.Typed(axdr.OCTET_STRING, stamp),
                          axdr.Typed(axdr.UINT16, 0), axdr.Typed(axdr.UINT32, import_wh))
    return wrapper_frame(1, 1, data_notification(1, stamp, body))


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


@pytest.mark.parametrize("interface,cipher,port", [
    ("wrapper", "", "push"), ("hdlc", "", "push"), ("wrapper", "glo", "push"), ("hdlc", "glo", "push"),
    ("wrapper", "ded", "push"), ("hdlc", "ded", "meter"), ("wrapper", "glo", "meter"), ("hdlc", "", "meter")])
def test_push_on_its_own_connection_is_stored(hes, simulators, interface, cipher, port):
    """Plain, general-glo-ciphered and general-ded-ciphered pushes, each on its own connection."""
    prefix = f"P{interface[0]}{cipher[:1] or 'p'}{port[0]}".upper()
    target = push_address(hes) if port == "push" else hes.meter_address
    behaviours = {"": [], "glo": ["push_ciphered"], "ded": ["push_ciphered", "push_ded"]}[cipher]
    sim = simulators(meters=1, interface=interface, push_to=target, first_serial=1,
                     extra=["--prefix", prefix] + [arg for name in behaviours for arg in ("--behaviour", name)])
    meter_id = add_meter(hes, sim.serial(0), comm_mode="dial_out", system_title=title_of(sim))
    if cipher:
        set_keys(hes, meter_id)
    before = node_counters(hes).get("push_stored", 0)
    assert_push_stored(hes, sim, meter_id)
    counters = hes.wait_for(lambda: (c := node_counters(hes)).get("push_stored", 0) > before and c,
                            timeout=15, what="node counters")
    assert counters["push_received"] >= counters["push_stored"] > before


def test_plain_pushes_of_a_meter_that_ciphers_are_refused_by_default(hes, simulators):
    """A brand that authenticates with HLS-GMAC takes authenticated pushes only (push policy 'auto'): the
    plain pushes of one of its meters (behaviour push_plain) are refused and kept; its ciphered ones stored."""
    hes_sim = hes.api("GET", f"/brand/{brand_id(hes)}/definition").json()["result"]
    resp = hes.api("POST", "/brand/", json={
        "name": "gmac_push", "title": "GMAC meters", "points": hes_sim["points"], "roles": hes_sim["roles"],
        "connection": {"auth_level": "high_gmac"}})
    assert resp.status_code == 201, resp.text
    sim = simulators(meters=1, auth="high_gmac", push_to=push_address(hes), first_serial=9,
                     extra=["--prefix", "PPLN", "--behaviour", "push_plain"])
    meter_id = add_meter(hes, sim.serial(0), comm_mode="dial_out", brand="gmac_push", system_title=title_of(sim))
    set_keys(hes, meter_id)
    sim.post(f"/meters/{sim.serial(0)}/push", {"code": 0})
    refused = hes.wait_for(lambda: [f for f in _failures(hes, "refused") if f["meter_id"] == meter_id],
                           what="plain push refused")[0]
    assert "authenticated pushes only" in refused["reason"] and refused["frame_hex"]
    assert stored_readings(hes, meter_id, IMPORT) == []
    sim.post(f"/meters/{sim.serial(0)}/behaviour", {"name": "push_plain", "active": False})
    sim.post(f"/meters/{sim.serial(0)}/push", {"code": 0})
    assert hes.wait_for(lambda: stored_readings(hes, meter_id, IMPORT), what="ciphered push stored")


def test_plain_push_never_overrides_a_value_read_from_the_profile(hes, simulators):
    """A plain push claiming another import register value at an instant the profile read stored is not
    stored over it; the same push at an instant nothing holds is stored (marked source push)."""
    from tests.interop.test_profiles_and_errors import dial_out_meter, stored_import

    sim = simulators(meters=1, history_days=1, first_serial=1, extra=["--prefix", "POVR"])
    meter_id = dial_out_meter(hes, sim, "POVR")
    assert hes.api("POST", f"/meter/{meter_id}/collect", json={"kind": "load_profile"}).status_code == 200
    profile = stored_import(hes, meter_id)
    instant = sorted(profile)[-3]
    host, port = push_address(hes).split(":")

    def plain_push(when: dt.datetime, import_wh: int) -> None:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(plain_push_frame(sim.serial(0), when, import_wh))

    plain_push(dt.datetime.fromtimestamp(instant, dt.UTC), int(profile[instant]) + 12345)
    fresh = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=7)
    plain_push(fresh, int(profile[instant]) + 99)
    hes.wait_for(lambda: fresh.timestamp() in stored_import(hes, meter_id), what="plain push at a free instant")
    after = stored_import(hes, meter_id)
    assert after[instant] == profile[instant] and after[fresh.timestamp()] == profile[instant] + 99
    with sqlite3.connect(hes.data_dir / "hes.db") as conn:
        assert conn.execute("SELECT count(*) FROM reading_revision WHERE meter_id = ?", (meter_id,)).fetchone() == (0,)


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
    sim_id = add_sim(hes, "PSRC-SIM", sim.port(0), ip_address="127.0.0.2")
    meter_id = add_meter(hes, sim.serial(0), comm_mode="dial_out", sim=sim_id)
    assert_push_stored(hes, sim, meter_id)
    # A push from the same address that names a meter nobody has is not this meter's: it is listed unknown.
    host, port = push_address(hes).split(":")
    stored = len(stored_readings(hes, meter_id, IMPORT))
    with socket.create_connection((host, int(port)), timeout=5, source_address=("127.0.0.2", 0)) as raw:
        raw.sendall(plain_push_frame("NOTAMETER01", dt.datetime.now(dt.UTC).replace(microsecond=0), 5))
    listed = hes.wait_for(lambda: [r for r in hes.api("GET", "/unregistered/").json()["result"]
                                   if r["identity"] == "NOTAMETER01"], what="push naming an unknown meter listed")
    assert listed[0]["kind"] == "push" and len(stored_readings(hes, meter_id, IMPORT)) == stored


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
    # The node's status page shows the same counters as its API (they are flushed every few seconds).
    def page_matches_api():
        shown, api = node_page_counters(hes), node_counters(hes)
        return all(api.get(key, 0) == value for key, value in shown.items()) and shown

    page = hes.wait_for(page_matches_api, what="page counters equal to the API's")
    assert page["push_undecodable"] >= 1 and page["push_received"] >= page["push_stored"]
    assert {"push_unknown_sender", "identity_conflicts"} <= set(page)


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
