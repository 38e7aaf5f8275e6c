"""Dial-in meters: online within seconds, offline when silent, unregistered ones listed and adopted."""

from __future__ import annotations

import socket
import time

from tests.support.live import add_meter, meter


def test_dial_in_meter_goes_online_and_offline(hes, simulators):
    meter_id = add_meter(hes, "DIN00000001")
    sim = simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=1, extra=["--prefix", "DIN"])
    hes.wait_for(lambda: meter(hes, meter_id)["online"], what="meter online")
    first = meter(hes, meter_id)
    assert first["last_seen"] is not None and first["node_id"] == "node-1"
    # Heartbeats keep moving last_seen forward.
    hes.wait_for(lambda: meter(hes, meter_id)["last_seen"] > first["last_seen"], timeout=10, what="heartbeat")
    # Pull the cable: the simulator stops answering and dialing.
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "offline", "seconds": 60})
    hes.wait_for(lambda: not meter(hes, meter_id)["online"], timeout=15, what="meter offline")


def test_unregistered_meter_is_listed_then_registered_with_live_connection(hes, simulators):
    sim = simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=7, extra=["--prefix", "UNR"])
    identity = sim.serial(0)

    def listed():
        rows = hes.api("GET", "/unregistered/").json()["result"]
        return next((r for r in rows if r["identity"] == identity and r["connected"]), None)

    row = hes.wait_for(listed, what="unregistered connection listed")
    assert row["how_identified"] == "heartbeat" and row["first_frame_hex"]
    resp = hes.api("POST", f"/unregistered/{row['id']}/register", json={"brand": "hes_sim"})
    assert resp.status_code == 201, resp.text
    meter_id = resp.json()["id"]
    # The same socket is adopted: online without the meter reconnecting, and readable at once.
    hes.wait_for(lambda: meter(hes, meter_id)["online"], timeout=5, what="registered meter online")
    read = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["serial_number"]})
    assert read.status_code == 200, read.text
    assert read.json()["results"][0]["value"] == identity


def test_garbage_connection_costs_one_socket_not_the_node(hes, simulators):
    meter_id = add_meter(hes, "GRB00000001")
    simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=1, extra=["--prefix", "GRB"])
    hes.wait_for(lambda: meter(hes, meter_id)["online"], what="meter online")
    host, port = hes.meter_address.split(":")
    garbage = (b"\x00\x01\x00\x01\x00\x01\xff\xff" + b"A" * 10,  # wrapper frame longer than allowed
               b"\x7e\xa0" + bytes(range(200)),                 # broken HDLC frame
               b"\x00\x01\x00\x01\x00\x01\x00\x40" + b"B" * 5,  # truncated frame, then silence
               b"\xff" * 600)                                    # unknown heartbeat: asked who it is, no answer
    for payload in garbage:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(payload)
            raw.settimeout(20)
            try:
                while raw.recv(4096):  # the HES may try to associate; it must end up closing
                    pass
            except ConnectionResetError:
                pass
    # A silent client is asked who it is (some meters wait for the HES to speak first), then dropped.
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.settimeout(20)
        received = b""
        while chunk := raw.recv(4096):
            received += chunk
        assert received[:2] == b"\x00\x01"  # a DLMS wrapper frame (the association request)
    read = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
    assert read.status_code == 200, read.text
    assert meter(hes, meter_id)["online"]


def test_quiet_meter_between_heartbeats_stays_online(tmp_path, simulators):
    """Silence shorter than the missed-heartbeat window keeps a meter online, even when that window is
    longer than the time allowed to identify a new connection."""
    from tests.support.live import start_with_simulator_password

    live = start_with_simulator_password(tmp_path / "quiet", {
        "HES_HEARTBEAT_SECONDS": "2", "HES_MISSED_HEARTBEATS": "3", "HES_IDENTIFY_TIMEOUT": "1"})
    try:
        meter_id = add_meter(live, "QUI00000001")
        simulators(meters=1, listen=False, dial_in=live.meter_address, heartbeat_seconds=3,
                   extra=["--prefix", "QUI"])
        live.wait_for(lambda: meter(live, meter_id)["online"], what="meter online")
        seen = [meter(live, meter_id) for _ in range(8) if not time.sleep(1)]
        assert all(m["online"] for m in seen)
        events = live.api("GET", "/event/?q=(filters:!((col:event_type,opr:eq,value:comm_lost)))").json()
        assert events["count"] == 0  # no flapping
    finally:
        live.stop()
