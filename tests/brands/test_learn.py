"""Learning a brand from a live simulator meter proposes the shipped hes_sim brand: the same points (OBIS,
class, attribute or method, access, data type, group), roles, scalers and units — through the HES API."""

from __future__ import annotations

from tests.brands.conftest import dial_out_meter
from tests.support.live import brand_id

# What a meter cannot say about itself: the currency scale of prepaid amounts is in the vendor's manual
# (the simulator's account object has no currency attribute), so the shipped brand states it by hand.
NOT_READABLE = {("credit_balance", "scaler"): -2, ("low_credit_threshold", "scaler"): -2,
                ("available_credit", "scaler"): -2}
COMPARED = ("obis", "class_id", "attribute", "method", "access", "datatype", "group", "unit", "scaler")


def test_learned_brand_equals_the_shipped_hes_sim_brand_and_collects(hes, simulators):
    sim = simulators(meters=2, history_days=1, first_serial=1, extra=["--prefix", "LRN"])
    meter_id = dial_out_meter(hes, sim, "LRN")
    resp = hes.api("POST", "/brand/learn", json={"meter_id": meter_id, "client_address": 1, "auth_level": "low"})
    assert resp.status_code == 200, resp.text
    learned = resp.json()
    assert learned["refused"] == [] and learned["definition"], learned
    assert learned["profiles"]["1.0.99.1.0.255"]["capture_period_seconds"] == 900
    assert learned["profiles"]["1.0.99.1.0.255"]["captures"][1] == [3, "1.0.1.8.0.255", 2]
    shipped = hes.api("GET", f"/brand/{brand_id(hes)}/definition").json()["result"]
    proposal = learned["definition"]

    ours = {p["key"]: {f: p[f] for f in COMPARED} for p in proposal["points"]}
    theirs = {p["key"]: {f: p[f] for f in COMPARED} for p in shipped["points"]}
    assert set(ours) == set(theirs)
    differences = {(key, f): theirs[key][f] for key in theirs for f in COMPARED if ours[key][f] != theirs[key][f]}
    assert differences == NOT_READABLE
    assert all(ours[key][f] is None for key, f in NOT_READABLE)
    assert proposal["roles"] == shipped["roles"]
    assert proposal["connection"]["profile_period_minutes"] == shipped["connection"]["profile_period_minutes"] == 15

    # The integrator reviews, names and saves it; a meter of the new brand collects its load profile.
    saved = hes.api("POST", "/brand/", json={**proposal, "name": "learned_sim", "title": "Learned simulator"})
    assert saved.status_code == 201, saved.text
    from tests.support.simulator import PASSWORD

    assert hes.api("PUT", f"/brand/{saved.json()['id']}/credentials",
                   json={"password": PASSWORD.decode()}).status_code == 200
    other = dial_out_meter(hes, sim, "LRN", 1, brand="learned_sim")
    collect = hes.api("POST", f"/meter/{other}/collect", json={"kind": "load_profile"})
    assert collect.status_code == 200 and "skipped" not in collect.text, collect.text


def test_learning_an_offline_meter_says_so(hes, simulators):
    sim = simulators(meters=1, first_serial=1, extra=["--prefix", "LOFF"])
    meter_id = dial_out_meter(hes, sim, "LOFF")
    sim.stop()
    resp = hes.api("POST", "/brand/learn", json={"meter_id": meter_id})
    assert resp.status_code == 503 and "LOFF" in resp.json()["message"]
