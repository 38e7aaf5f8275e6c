"""Identity you can trust: a second connection with an online meter's identity neither replaces it nor receives
a secret, a conflict alert names both addresses, HLS meters prove themselves on every dial-in, LLS passwords
are per meter (generated into the meter or imported), and HLS can be required for dial-in meters."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from app.comms.heartbeat import heartbeat_frame
from app.comms.session import AuthenticationError
from tests.interop.conftest import FAST
from tests.interop.test_profiles_and_errors import dial_out_meter
from tests.support.live import add_meter, meter, start_with_simulator_password
from tests.support.simulator import PASSWORD


def conflict_alerts(hes, meter_id: int) -> list[dict]:
    return hes.api("GET", f"/alert/?q=(filters:!((col:meter_id,opr:eq,value:{meter_id}),"
                          "(col:alert_type,opr:eq,value:identity_conflict)))").json()["result"]


def impersonate(hes, number: str, wait: float = 20.0) -> tuple[bytes, str]:
    """Connect to the meter port as `number` (its heartbeat), return what the HES sent before closing, and our
    address."""
    host, port = hes.meter_address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        me = "{}:{}".format(*raw.getsockname())
        raw.sendall(heartbeat_frame(number))
        raw.settimeout(wait)
        received = b""
        try:
            while chunk := raw.recv(4096):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received, me


def test_impostor_neither_replaces_an_online_meter_nor_receives_a_secret(hes, simulators):
    meter_id = add_meter(hes, "IDN00000001")
    simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=1, extra=["--prefix", "IDN"])
    hes.wait_for(lambda: meter(hes, meter_id)["online"], what="meter online")
    received, impostor = impersonate(hes, "IDN00000001")
    assert PASSWORD not in received  # nothing was sent to the newcomer but, at most, a close
    assert meter(hes, meter_id)["online"]
    read = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["serial_number"]})
    assert read.status_code == 200 and read.json()["results"][0]["value"] == "IDN00000001"
    alert = hes.wait_for(lambda: conflict_alerts(hes, meter_id), what="identity conflict alert")[0]
    assert impostor in alert["title"] and "live connection 127.0.0.1:" in alert["title"]
    assert alert["severity"] == "critical" and "newcomer refused" in alert["title"]
    lost = hes.api("GET", f"/event/?q=(filters:!((col:meter_id,opr:eq,value:{meter_id}),"
                          "(col:event_type,opr:eq,value:comm_lost)))").json()
    assert lost["count"] == 0  # the real meter never flapped


def test_a_live_connection_that_no_longer_answers_is_replaced(hes, simulators):
    meter_id = add_meter(hes, "IDD00000001")
    sim = simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=1, extra=["--prefix", "IDD"])
    hes.wait_for(lambda: meter(hes, meter_id)["online"], what="meter online")
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "slow", "seconds": 60})  # the old socket stops answering
    host, port = hes.meter_address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as newcomer:
        beating = threading.Event()

        def heartbeats() -> None:  # the newcomer behaves like a meter: a heartbeat every half second
            while not beating.wait(0.5):
                newcomer.sendall(heartbeat_frame("IDD00000001"))

        newcomer.sendall(heartbeat_frame("IDD00000001"))
        beat = threading.Thread(target=heartbeats, daemon=True)
        beat.start()
        try:
            alert = hes.wait_for(lambda: conflict_alerts(hes, meter_id), timeout=20, what="replacement alert")[0]
            assert "replaced" in alert["title"]
            assert hes.wait_for(lambda: meter(hes, meter_id)["online"], timeout=5, what="online on the newcomer")
        finally:
            beating.set()
            beat.join()
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "slow", "active": False})


def test_hls_meter_proves_itself_and_an_impostor_that_cannot_is_refused(hes, simulators):
    meter_id = add_meter(hes, "IDH00000001", auth_level="high_sha1")
    assert hes.api("PUT", f"/meter/{meter_id}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    genuine = simulators(meters=1, auth="high_sha1", listen=False, dial_in=hes.meter_address, first_serial=1,
                         extra=["--prefix", "IDH"])
    hes.wait_for(lambda: meter(hes, meter_id)["online"], what="genuine HLS meter online after proving itself")
    impostor = simulators(meters=1, auth="high_sha1", listen=False, dial_in=hes.meter_address, first_serial=1,
                          extra=["--prefix", "IDH", "--password", "not-the-secret", "--behaviour", "impostor"])
    alert = hes.wait_for(lambda: conflict_alerts(hes, meter_id), timeout=20, what="failed proof alert")[0]
    assert "failed to prove" in alert["title"]
    assert meter(hes, meter_id)["online"]
    genuine.stop()
    hes.wait_for(lambda: not meter(hes, meter_id)["online"], timeout=20, what="genuine meter gone")
    time.sleep(4)  # the impostor keeps dialling in, and keeps failing
    assert not meter(hes, meter_id)["online"]
    assert hes.api("GET", f"/alert/{alert['id']}").json()["result"]["count"] >= 2
    impostor.stop()


def test_per_meter_lls_password_generated_into_the_meter_and_imported(hes, simulators):
    sim = simulators(meters=2, first_serial=1, extra=["--prefix", "LLSP"])
    first, second = dial_out_meter(hes, sim, "LLSP", 0), dial_out_meter(hes, sim, "LLSP", 1)
    resp = hes.api("POST", f"/meter/{first}/credentials/rotate")
    assert resp.status_code == 200, resp.text
    assert resp.json()["password_set"] is True and set(resp.json()) >= {"password_set", "per_meter_password"}
    read = hes.api("POST", f"/meter/{first}/read", json={"points": ["energy_import"]})
    assert read.status_code == 200, read.text
    with pytest.raises(AuthenticationError):  # the brand-wide password no longer opens this meter
        with sim.session(0):
            pass
    bad = hes.api("POST", "/meter/credentials/import",
                  data=f"meter_number,password\nLLSP00000002,x\nNOSUCH,abc\nLLSP00000002,{'y' * 70}\n",
                  headers={"Content-Type": "text/csv"})
    assert bad.status_code == 422
    # line 3: no such meter; line 4: a password too long, and the meter a second time
    assert {(e["line"], e["column"]) for e in bad.json()["errors"]} == {(3, "meter_number"), (4, "password"),
                                                                       (4, "meter_number")}
    wrong = hes.api("POST", "/meter/credentials/import", data="meter_number,password\nLLSP00000002,wrong-one\n",
                    headers={"Content-Type": "text/csv"})
    assert wrong.status_code == 200 and wrong.json() == {"updated": 1}
    assert hes.api("POST", f"/meter/{second}/read", json={"points": ["energy_import"]}).status_code == 503
    right = hes.api("POST", "/meter/credentials/import",
                    data=f"meter_number,password\nLLSP00000002,{PASSWORD.decode()}\n",
                    headers={"Content-Type": "text/csv"})
    assert right.status_code == 200 and PASSWORD.decode() not in right.text
    assert hes.api("POST", f"/meter/{second}/read", json={"points": ["energy_import"]}).status_code == 200


def test_hls_required_for_dial_in_withholds_lls_passwords(tmp_path, simulators):
    live = start_with_simulator_password(tmp_path / "require-hls", {**FAST, "HES_DIAL_IN_REQUIRE_HLS": "true"})
    try:
        meter_id = add_meter(live, "RQH00000001")
        simulators(meters=1, listen=False, dial_in=live.meter_address, first_serial=1, extra=["--prefix", "RQH"])
        live.wait_for(lambda: meter(live, meter_id)["online"], what="meter online")
        resp = live.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
        assert resp.status_code == 503 and "LLS password withheld" in resp.json()["message"]
    finally:
        live.stop()
