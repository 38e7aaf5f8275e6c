"""Every HLS mechanism reads a meter through the HES API: 3 (MD5), 4 (SHA-1), 5 (GMAC, with and without ciphered
APDUs) and 6 (SHA-256, the one some documents call 7), with per-meter or per-brand secrets; invocation counters
persisted; a meter that cannot answer the HES's challenge is refused."""

from __future__ import annotations

import pytest

from tests.interop.test_profiles_and_errors import dial_out_meter
from tests.support.live import brand_id
from tests.support.simulator import AUTH_KEY, BLOCK_KEY, CLIENT_TITLE, PASSWORD

SECRETS = {"password": PASSWORD.decode(), "block_cipher_key": BLOCK_KEY.hex(), "authentication_key": AUTH_KEY.hex(),
           "system_title": CLIENT_TITLE.hex()}


def read_energy(hes, meter_id: int):
    return hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})


@pytest.mark.parametrize("auth,interface", [("high_md5", "wrapper"), ("high_sha1", "hdlc"),
                                            ("high_sha256", "wrapper"), ("high_gmac_plain", "hdlc"),
                                            ("high_gmac", "wrapper")])
def test_each_hls_mechanism_reads_a_meter(hes, simulators, auth, interface):
    prefix = "H" + "".join(part[0] for part in auth.split("_")).upper() + interface[0].upper()
    sim = simulators(meters=1, interface=interface, auth=auth, first_serial=1, extra=["--prefix", prefix])
    meter_id = dial_out_meter(hes, sim, prefix, interface=interface, auth_level=auth)
    assert hes.api("PUT", f"/meter/{meter_id}/credentials", json=SECRETS).status_code == 200
    before = sim.model_meter(0)
    resp = read_energy(hes, meter_id)
    assert resp.status_code == 200, resp.text
    result = resp.json()["results"][0]
    assert "error" not in result and result["value"] >= before.import_wh(sim.ready["start_time"])
    if auth in ("high_sha256", "high_gmac_plain", "high_gmac"):  # the AARE carries the meter's system title
        learnt = hes.api("GET", f"/meter/{meter_id}").json()["result"]["system_title"]
        assert learnt == sim.get(f"/meters/{sim.serial(0)}")["system_title"]
    if auth.startswith("high_gmac"):
        counter = hes.api("PUT", f"/meter/{meter_id}/credentials", json={}).json()["invocation_counter"]
        assert read_energy(hes, meter_id).status_code == 200
        after = hes.api("PUT", f"/meter/{meter_id}/credentials", json={}).json()["invocation_counter"]
        assert 0 < counter < after  # persisted, and only forward
        assert sim.get(f"/meters/{sim.serial(0)}")["last_client_invocation_counter"] < after
    # The wrong secret is refused by the meter, in words.
    wrong = {"password": "not-the-secret"} if auth in ("high_md5", "high_sha1", "high_sha256") else \
        {"authentication_key": bytes(16).hex()}
    assert hes.api("PUT", f"/meter/{meter_id}/credentials", json=wrong).status_code == 200
    refused = read_energy(hes, meter_id)
    assert refused.status_code == 503 and "refused the association" in refused.json()["message"]


def test_brand_wide_hls_secret_and_an_impostor_that_cannot_answer_the_challenge(hes, simulators):
    csv = ("key,name,obis,class_id,attribute,unit,scaler,group,access\n"
           "energy_import,Import,1.0.1.8.0.255,3,2,Wh,0,Energy,r\n")
    resp = hes.api("POST", "/brand/", json={"name": "sha1_brand", "title": "SHA-1 meters", "points_csv": csv,
                                             "defaults": {"auth": "high_sha1"}})
    assert resp.status_code == 201, resp.text
    brand = brand_id(hes, "sha1_brand")
    assert hes.api("PUT", f"/brand/{brand}/credentials", json={"password": PASSWORD.decode()}).status_code == 200
    sim = simulators(meters=2, auth="high_sha1", first_serial=1, extra=["--prefix", "HBRD"])
    genuine = dial_out_meter(hes, sim, "HBRD", 0, brand="sha1_brand")
    assert read_energy(hes, genuine).status_code == 200
    # A device at the second meter's address that does not know the secret accepts anything the HES says,
    # but cannot answer the HES's challenge: the HES refuses to go on with it.
    sim.post(f"/meters/{sim.serial(1)}/behaviour", {"name": "impostor"})
    impostor = dial_out_meter(hes, sim, "HBRD", 1, brand="sha1_brand")
    resp = read_energy(hes, impostor)
    assert resp.status_code == 503
    assert "answer to the HES's challenge is wrong" in resp.json()["message"]
