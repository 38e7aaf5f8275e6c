"""One association per meter: an on-demand read and an urgent command during a firmware transfer to a dial-out
meter run inside the transfer's association, so the transfer's connection is never dropped."""

from __future__ import annotations

import os

from tests.remote.conftest import add_dialout_meter, command, send


def test_read_and_command_during_firmware_transfer_do_not_drop_its_connection(hes, simulators):
    sim = simulators(meters=1, first_serial=61, extra=["--prefix", "GAT"])
    serial = sim.serial(0)
    meter_id = add_dialout_meter(hes, sim, 0)
    image = os.urandom(300 * 1024)
    upload = hes.api("POST", "/firmware/image", data={"identifier": "HESSIM-GATE-1"}, files={"file": ("fw", image)})
    assert upload.status_code == 201, upload.text
    resp = hes.api("POST", "/command/", json={"kind": "firmware", "meter_id": meter_id,
                                              "image_id": upload.json()["id"]})
    assert resp.status_code == 201, resp.text
    firmware_id = resp.json()["id"]
    total = -(-len(image) // 128)
    hes.wait_for(lambda: sim.get(f"/meters/{serial}")["image_first_missing"] > total // 10, timeout=60,
                 interval=0.05, what="a tenth of the blocks sent")

    read = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import", "0.0.1.0.0.255"]})
    assert read.status_code == 200, read.text
    assert all(r.get("error") is None and r["value"] is not None for r in read.json()["results"])
    relay = send(hes, "disconnect", meter_id, wait=30)
    assert relay.status_code == 201, relay.text
    assert relay.json()["result"]["state"] == "succeeded", relay.json()["result"]
    assert sim.get(f"/meters/{serial}")["relay_connected"] is False
    # Both ran while the transfer was still going, between its blocks.
    during = sim.get(f"/meters/{serial}")["image_first_missing"]
    assert 0 < during < total

    done = hes.wait_for(lambda: (c := command(hes, firmware_id))["state"] in ("succeeded", "failed") and c,
                        timeout=120, what="firmware finished")
    assert done["state"] == "succeeded", done
    # One association from start to end: never dropped by the read or the command, never resumed.
    assert done["transfer"]["sessions"] == 1 and done["transfer"]["resumed_from"] is None
    assert done["transfer"]["blocks_sent"] == total
    assert sim.get(f"/meters/{serial}")["firmware"] == "HESSIM-GATE-1"
