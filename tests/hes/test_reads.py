"""On-demand reads through the HES REST API against simulated meters (dial-out and dial-in)."""

from __future__ import annotations

import datetime as dt
import time

from tests.support.live import add_dial_out_meter, add_meter, meter
from tests.support.simulator import AUTH_KEY, BLOCK_KEY, CLIENT_TITLE

UTC = dt.UTC


def add_dialout_meter(hes, sim, index: int, number_prefix: str, **fields) -> int:
    """Register a simulator meter that listens (dial-out) with a SIM pointing at its port."""
    return add_dial_out_meter(hes, sim, index, f"{number_prefix}-SIM{index}", **fields)


def test_dial_out_read_returns_the_simulators_values(hes, simulators):
    sim = simulators(meters=2, first_serial=101, extra=["--prefix", "DOUT"])
    meter_id = add_dialout_meter(hes, sim, 0, "DOUT")
    expected = sim.model_meter(0)
    end = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - dt.timedelta(hours=6)
    before = time.time()
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={
        "points": ["0.0.1.0.0.255", "energy_import", "load_profile"],
        "from": start.isoformat(), "to": end.isoformat()})
    after = time.time()
    assert resp.status_code == 200, resp.text
    clock, energy, profile = resp.json()["results"]
    assert clock["key"] == "clock" and abs(dt.datetime.fromisoformat(clock["value"]).timestamp() - before) < 5
    assert energy["unit"] == "Wh" and expected.import_wh(before) <= energy["value"] <= expected.import_wh(after)
    assert energy["read_at"]
    rows = profile["rows"]
    assert len(rows) in (24, 25)
    for row in rows:
        stamp = dt.datetime.fromisoformat(row[0]).timestamp()
        assert row[1] == expected.import_wh(stamp) and row[2] == expected.export_wh(stamp)
    # A successful dial-out session marks the meter seen.
    assert meter(hes, meter_id)["online"] is True


def test_unknown_parameter_and_offline_meter_are_clear_errors(hes, simulators):
    sim = simulators(meters=1, first_serial=201, extra=["--prefix", "ERR"])
    meter_id = add_dialout_meter(hes, sim, 0, "ERR")
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import", "no_such_thing"]})
    assert resp.status_code == 422 and "no_such_thing" in resp.json()["message"]
    offline = add_meter(hes, "OFF00000001")
    resp = hes.api("POST", f"/meter/{offline}/read", json={"points": ["energy_import"]})
    assert resp.status_code == 503 and "offline" in resp.json()["message"]


def test_hls_gmac_meter_reads_and_counter_is_persisted(hes, simulators):
    sim = simulators(meters=1, interface="hdlc", auth="high_gmac", first_serial=301, extra=["--prefix", "GMAC"])
    meter_id = add_dialout_meter(hes, sim, 0, "GMAC", interface="hdlc", auth_level="high_gmac")
    creds = {"block_cipher_key": BLOCK_KEY.hex(), "authentication_key": AUTH_KEY.hex(),
             "system_title": CLIENT_TITLE.hex()}
    resp = hes.api("PUT", f"/meter/{meter_id}/credentials", json=creds)
    assert resp.status_code == 200 and resp.json()["keys_set"] is True
    assert AUTH_KEY.hex() not in resp.text and "authentication_key" not in meter(hes, meter_id)
    counters = []
    for _ in range(2):
        resp = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
        assert resp.status_code == 200, resp.text
        counters.append(hes.api("PUT", f"/meter/{meter_id}/credentials", json={}).json()["invocation_counter"])
    assert 0 < counters[0] < counters[1]  # persisted and only moving forward
    assert sim.get(f"/meters/{sim.serial(0)}")["last_client_invocation_counter"] < counters[1]


def test_wrong_secret_is_refused_cleanly(hes, simulators):
    sim = simulators(meters=1, first_serial=401, extra=["--prefix", "BADPW"])
    meter_id = add_dialout_meter(hes, sim, 0, "BADPW")
    assert hes.api("PUT", f"/meter/{meter_id}/credentials", json={"password": "not-the-password"}).status_code == 200
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
    assert resp.status_code == 503 and "refused the association" in resp.json()["message"]


def test_brand_defined_through_the_api_reads_by_obis_code(hes, simulators):
    csv = ("key,name,obis,class_id,attribute,unit,group,access\n"
           "kwh_in,Import register,1-0:1.8.0.255,3,2,Wh,Energy,r\n"
           "volts,Voltage,1.0.32.7.0.255,3,2,V,Instantaneous,r\n")
    resp = hes.api("POST", "/brand/", json={"name": "acme_api", "title": "ACME (API)", "points_csv": csv,
                                             "defaults": {"auth": "low", "interface": "wrapper"}})
    assert resp.status_code == 201, resp.text
    brand_id = resp.json()["id"]
    from tests.support.simulator import PASSWORD

    assert hes.api("PUT", f"/brand/{brand_id}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    sim = simulators(meters=1, first_serial=501, extra=["--prefix", "ACME"])
    meter_id = add_dialout_meter(hes, sim, 0, "ACME", brand="acme_api")
    before = time.time()
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["1.0.1.8.0.255", "volts"]})
    assert resp.status_code == 200, resp.text
    kwh, volts = resp.json()["results"]
    assert kwh["key"] == "kwh_in" and kwh["value"] >= sim.model_meter(0).import_wh(before)
    assert 180 < volts["value"] < 280 and volts["unit"] == "V"
    bad = hes.api("POST", "/brand/", json={"name": "acme_bad", "points_csv":
                                           "key,name,obis,class_id\nx,X,1.0.1.8.0,3\ny,Y,1.2.3,3\nz,Z,1.0.1.8.0.255,999\n"})
    assert bad.status_code == 422
    errors = {(e["line"], e["column"]) for e in bad.json()["errors"]}
    assert errors == {(3, "obis"), (4, "class_id")}


def test_prepaid_amounts_are_read_scaled_as_the_brand_says(hes, simulators):
    """The brand's credit points have scaler -2: the read shows 500.0, not the meter's 50000 cents."""
    sim = simulators(meters=1, first_serial=301, extra=["--prefix", "CRED"])
    meter_id = add_dialout_meter(hes, sim, 0, "CRED")
    expected = sim.model_meter(0)
    before = time.time()
    resp = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["credit_balance", "low_credit_threshold"]})
    after = time.time()
    assert resp.status_code == 200, resp.text
    balance, threshold = resp.json()["results"]
    assert balance["unit"] == "currency" and threshold["unit"] == "currency"
    # Credit falls as energy is used: between the model's balance at the end and at the start of the read.
    assert expected.credit(after) / 100 <= balance["value"] <= expected.credit(before) / 100
    assert 400 < balance["value"] <= 500.0
    assert threshold["value"] == 10.0
