"""Firmware transfer with resume after a broken link, and store-and-forward for offline dial-in meters."""

from __future__ import annotations

import os
import time

from tests.remote.conftest import add_dialout_meter, add_meter, command, meter, send


def test_firmware_transfer_resumes_from_first_missing_block_and_activates(hes, simulators):
    sim = simulators(meters=1, first_serial=81, extra=["--prefix", "FW"])
    meter_id = add_dialout_meter(hes, sim, 0)
    image = os.urandom(200 * 1024)
    upload = hes.api("POST", "/firmware/image", data={"identifier": "HESSIM-9.1.0", "notes": "test"},
                     files={"file": ("fw.bin", image)})
    assert upload.status_code == 201, upload.text
    again = hes.api("POST", "/firmware/image", data={"identifier": "HESSIM-9.1.0"}, files={"file": ("x", b"1")})
    assert again.status_code == 409
    old_version = sim.get(f"/meters/{sim.serial(0)}")["firmware"]
    resp = hes.api("POST", "/command/", json={"kind": "firmware", "meter_id": meter_id,
                                              "image_id": upload.json()["id"]})
    assert resp.status_code == 201, resp.text
    command_id = resp.json()["id"]
    # Break the link in the middle of the transfer.
    total = -(-len(image) // 128)
    seen = hes.wait_for(lambda: (n := sim.get(f"/meters/{sim.serial(0)}")["image_first_missing"]) > total // 4 and n,
                        timeout=60, interval=0.05, what="a quarter of the blocks")
    sim.post(f"/meters/{sim.serial(0)}/fault", {"kind": "link_drop"})
    done = hes.wait_for(lambda: (c := command(hes, command_id))["state"] in ("succeeded", "failed") and c,
                        timeout=90, what="firmware command finished")
    assert done["state"] == "succeeded", done
    transfer = done["transfer"]
    assert transfer["blocks_total"] == total and transfer["block_size"] == 128  # block size from the meter
    assert transfer["sessions"] == 2 and transfer["resumed_from"] >= seen
    # Resumed, not restarted: the second session sent only what the meter was missing.
    assert transfer["blocks_sent"] <= total + 2
    assert transfer["version_before"] == old_version and transfer["version_after"] == "HESSIM-9.1.0"
    state = sim.get(f"/meters/{sim.serial(0)}")
    assert state["firmware"] == "HESSIM-9.1.0" and state["events"][-1]["type"] == "firmware_activated"
    assert meter(hes, meter_id)["firmware_version"] == "HESSIM-9.1.0"
    listed = hes.api("GET", "/firmware/transfer").json()["result"]
    assert listed[0]["command_id"] == command_id and listed[0]["progress"] == 1.0


def test_command_to_offline_dial_in_meter_runs_when_it_connects(hes, simulators):
    meter_id = add_meter(hes, "SFW00000001")
    resp = send(hes, "disconnect", meter_id, wait=1, expires_in=120)
    assert resp.status_code == 201
    queued = resp.json()["result"]
    assert queued["state"] == "queued" and queued["result"]["waiting"]
    sim = simulators(meters=1, listen=False, dial_in=hes.meter_address, first_serial=1, extra=["--prefix", "SFW"])
    done = hes.wait_for(lambda: (c := command(hes, queued["id"]))["state"] not in ("queued", "sent") and c,
                        timeout=30, what="stored command finished once the meter connected")
    assert done["state"] == "succeeded", done
    assert sim.get(f"/meters/{sim.serial(0)}")["relay_connected"] is False
    assert meter(hes, meter_id)["relay_state"] == "disconnected"


def test_command_to_offline_dial_in_meter_expires_when_it_does_not_connect(hes):
    meter_id = add_meter(hes, "EXP00000001")
    started = time.monotonic()
    resp = send(hes, "reconnect", meter_id, wait=0, expires_in=2)
    assert resp.json()["result"]["state"] == "queued"
    done = hes.wait_for(lambda: (c := command(hes, resp.json()["id"]))["state"] != "queued" and c, timeout=15,
                        what="command expired")
    assert done["state"] == "expired" and "did not connect" in done["reason"]
    assert time.monotonic() - started >= 2
    cancel = hes.api("POST", f"/command/{done['id']}/cancel")
    assert cancel.status_code == 409
