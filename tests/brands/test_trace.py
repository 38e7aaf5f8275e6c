"""A meter's communication trace: what the HES sent and received, decoded by gurux's translator, secrets
masked — over real sockets to the simulator, through the HES API."""

from __future__ import annotations

from tests.brands.conftest import dial_out_meter
from tests.support.simulator import PASSWORD


def test_trace_of_a_read_shows_association_and_get_decoded_with_the_password_masked(hes, simulators):
    sim = simulators(meters=1, first_serial=1, extra=["--prefix", "TRC"])
    meter_id = dial_out_meter(hes, sim, "TRC")
    untraced = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
    assert untraced.status_code == 200, untraced.text
    assert hes.api("GET", f"/meter_trace/{meter_id}").json()["result"] == []  # off: nothing kept

    on = hes.api("PUT", f"/meter_trace/{meter_id}", json={"minutes": 10})
    assert on.status_code == 200 and on.json()["trace_until"], on.text
    read = hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
    assert read.status_code == 200, read.text
    trace = hes.api("GET", f"/meter_trace/{meter_id}").json()
    frames = trace["result"]
    assert trace["on"] is True
    assert [f["direction"] for f in frames[:2]] == ["tx", "rx"]
    aarq, aare = frames[0], frames[1]
    assert "<AssociationRequest>" in aarq["xml"] and '<MechanismName Value="Low" />' in aarq["xml"]
    assert '<CallingAuthentication Value="********"' in aarq["xml"]
    assert "<AssociationResponse>" in aare["xml"] and "AssociationResult" in aare["xml"]
    get = next(f for f in frames if "<GetRequest>" in f["xml"])
    assert "<InstanceId Value=\"0100010800FF\" />" in get["xml"]  # 1.0.1.8.0.255
    answer = frames[frames.index(get) + 1]
    assert answer["direction"] == "rx" and "<GetResponse>" in answer["xml"]
    secret_forms = (PASSWORD.decode(), PASSWORD.hex(), PASSWORD.hex().upper())
    for frame in frames:
        assert not any(s in frame["xml"] or s in frame["hex"] for s in secret_forms), frame
    assert any("********" in f["hex"] for f in frames)  # the AARQ's bytes carry the password: masked

    off = hes.api("PUT", f"/meter_trace/{meter_id}", json={"minutes": 0})
    assert off.status_code == 200 and off.json()["trace_until"] is None
    kept = len(frames)
    hes.api("POST", f"/meter/{meter_id}/read", json={"points": ["energy_import"]})
    assert len(hes.api("GET", f"/meter_trace/{meter_id}").json()["result"]) == kept
    bad = hes.api("PUT", f"/meter_trace/{meter_id}", json={"minutes": "soon"})
    assert bad.status_code == 422
