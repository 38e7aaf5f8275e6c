"""A brand made from a bare OBIS list (no file, no restart) collects its load profile, reads, sets and
switches — real DLMS over real sockets to the simulator, through the HES API."""

from __future__ import annotations

import datetime as dt
import sqlite3

from tests.brands.conftest import dial_out_meter
from tests.support.simulator import PASSWORD

UTC = dt.UTC
BARE_LIST = """1.0.1.8.0.255
1.0.2.8.0.255
1.0.32.27.0.255
1.0.31.27.0.255
1.0.99.1.0.255
0.0.1.0.0.255
0.0.96.3.10.255
0.0.17.0.0.255, 71, 3, uint32
"""


def stored(hes, meter_id: int, obis: str) -> dict[float, float]:
    with sqlite3.connect(hes.data_dir / "hes.db") as conn:
        rows = conn.execute("SELECT r.ts, r.value FROM reading r JOIN channel c ON c.id = r.channel_id "
                            "WHERE r.meter_id = ? AND c.obis = ?", (meter_id, obis)).fetchall()
    return {dt.datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp(): value for ts, value in rows}


def test_brand_from_a_bare_obis_list_collects_reads_sets_and_switches(hes, simulators):
    resp = hes.api("POST", "/brand/", json={"name": "bare_api", "title": "Bare list (API)",
                                             "points_csv": BARE_LIST})
    assert resp.status_code == 201, resp.text
    brand = resp.json()["id"]
    assert hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    sim = simulators(meters=1, history_days=1, first_serial=1, extra=["--prefix", "BARE"])
    meter_id = dial_out_meter(hes, sim, "BARE", brand="bare_api")
    truth = sim.model_meter(0)

    collect = hes.api("POST", f"/meter/{meter_id}/collect", json={"kind": "load_profile"})
    assert collect.status_code == 200, collect.text
    assert "skipped" not in collect.text, collect.text
    now = dt.datetime.now(UTC).timestamp()
    expected = truth.profile_times(bytes([1, 0, 99, 1, 0, 255]), now)
    imports = stored(hes, meter_id, "1.0.1.8.0.255")
    assert expected and sorted(imports) == sorted(expected)
    assert all(imports[t] == truth.import_wh(t) for t in expected)

    read = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import", "clock"]})
    assert read.status_code == 200, read.text
    energy, clock = read.json()["results"]
    assert energy["value"] >= truth.import_wh(now - 60) and energy["unit"] == "Wh"
    assert abs(dt.datetime.fromisoformat(clock["value"]).timestamp() - now) < 120

    # A title-only edit while the meter is in use keeps every point: the meter still reads.
    assert hes.api("PUT", f"/brand/{brand}", json={"title": "Bare list v2"}).status_code == 200
    again = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["voltage_l1_avg"]})
    assert again.status_code == 200 and 180 < again.json()["results"][0]["value"] < 280, again.text

    # It switches and sets too: the relay and load limiter the standard OBIS codes named.
    off = hes.api("POST", "/command/", json={"kind": "disconnect", "meter_id": meter_id, "wait": 30})
    assert off.status_code == 201 and off.json()["result"]["state"] == "succeeded", off.text
    assert sim.get(f"/meters/{sim.serial(0)}")["relay_connected"] is False
    limit = hes.api("POST", "/command/", json={"kind": "load_limit", "meter_id": meter_id, "wait": 30,
                                                "threshold": "4500"})
    assert limit.status_code == 201 and limit.json()["result"]["state"] == "succeeded", limit.text
