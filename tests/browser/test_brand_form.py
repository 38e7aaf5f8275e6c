"""In the browser: an integrator pastes a bare OBIS list into System › Define Brand, previews what will be
collected, saves, and a meter of that brand collects its load profile; the meter's communication trace
page shows the association and the GET decoded, with the password masked. Real HES, real simulator.
On a HES of this module's own: the meters added here must not show in the shared server's fleet counts."""

from __future__ import annotations

import datetime as dt
import sqlite3

from tests.support.simulator import PASSWORD, start_simulator

UTC = dt.UTC
BARE_LIST = "1.0.1.8.0.255\n1.0.2.8.0.255\n1.0.99.1.0.255\n0.0.1.0.0.255\n0.0.96.3.10.255\n0.0.99.98.0.255\n"


def test_brand_pasted_in_the_form_collects_and_its_trace_is_readable(private_page, private_server):
    private_page.goto("/brands/define/")
    private_page.fill("#bf-name", "form_bare")
    private_page.fill("#bf-title", "Pasted in the form")
    private_page.fill("#bf-points", BARE_LIST)
    private_page.click("#brand-preview")
    private_page.wait_for_selector("#brand-plan, #brand-errors")
    plan = private_page.locator("#brand-plan li").all_inner_texts()
    assert "Collects load profile every 15 min from 1.0.99.1.0.255" in plan
    assert "Switches the relay through 0.0.96.3.10.255" in plan
    assert private_page.locator("#role-load_profile").input_value() == "load_profile"
    assert private_page.locator("#role-relay").input_value() == "relay_output_state"
    rows = private_page.locator("#brand-points tbody tr")
    assert rows.count() == 11  # 2 registers, profile, log, clock (2), relay (state, control, mode, 2 methods)
    assert "date_time" in private_page.locator("#brand-points tbody tr", has_text="0.0.1.0.0.255").first.inner_text()
    private_page.click("#brand-save")
    private_page.get_by_text("Brand Pasted in the form saved with 11 points.").wait_for()

    headers = private_server.token()
    brand = private_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:form_bare)))",
                            headers=headers).json()["ids"][0]
    assert private_server.api("PUT", f"/api/v1/brand/{brand}/credentials", headers=headers,
                           json={"password": PASSWORD.decode()}).status_code == 200
    sim = start_simulator(meters=1, history_days=1, first_serial=1, extra=["--prefix", "FRM"])
    try:
        meter_id = private_server.add_dial_out_meter(headers, brand, sim, "FRM-SIM0")
        collect = private_server.api("POST", f"/api/v1/meter/{meter_id}/collect", headers=headers,
                                  json={"kind": "load_profile"})
        assert collect.status_code == 200 and "skipped" not in collect.text, collect.text
        truth = sim.model_meter(0)
        expected = truth.profile_times(bytes([1, 0, 99, 1, 0, 255]), dt.datetime.now(UTC).timestamp())
        with sqlite3.connect(private_server.data_dir / "hes.db") as conn:
            stored = conn.execute("SELECT count(*) FROM reading r JOIN channel c ON c.id = r.channel_id "
                                  "WHERE r.meter_id = ? AND c.obis = '1.0.1.8.0.255'", (meter_id,)).fetchone()[0]
        assert expected and stored == len(expected)

        # The meter's page leads to its trace; start tracing there, read the meter, see the frames.
        private_page.goto(f"/meterview/show/{meter_id}")
        private_page.click("#meter-trace-link")
        private_page.select_option("#trace-minutes", "15")
        private_page.click("#trace-on")
        assert "Tracing" in private_page.locator("#trace-state").inner_text()
        read = private_server.api("POST", f"/api/v1/meter/{meter_id}/read", headers=headers,
                               json={"points": ["energy_import"]})
        assert read.status_code == 200, read.text
        private_page.reload()
        frames = private_page.locator("#trace-frames tbody tr")
        assert frames.count() >= 4
        first = frames.nth(0).inner_text()
        assert "HES → meter" in first and "AssociationRequest" in first and "********" in first
        assert "meter → HES" in frames.nth(1).inner_text() and "AssociationResponse" in frames.nth(1).inner_text()
        assert "GetRequest" in private_page.locator("#trace-frames").inner_text()
        assert PASSWORD.decode() not in private_page.content() and PASSWORD.hex() not in private_page.content().lower()
        with private_page.expect_download() as download:
            private_page.click("#trace-download")
        text = download.value.path().read_text()
        assert "AssociationRequest" in text and PASSWORD.decode() not in text
    finally:
        sim.stop()


def test_brand_learned_from_a_meter_in_the_form_is_reviewed_and_saved(private_page, private_server):
    headers = private_server.token()
    hes_sim = private_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))",
                              headers=headers).json()["ids"][0]
    sim = start_simulator(meters=1, history_days=1, first_serial=1, extra=["--prefix", "FLRN"])
    try:
        private_server.add_dial_out_meter(headers, hes_sim, sim, "FLRN-SIM0", PASSWORD)
        private_page.goto("/brands/define/")
        private_page.fill("#bf-learn", sim.serial(0))
        private_page.click("#brand-learn")
        private_page.wait_for_selector("#brand-plan, #brand-errors", timeout=60_000)  # a few seconds of DLMS reads
        plan = private_page.locator("#brand-plan li").all_inner_texts()
        assert plan, private_page.locator(".alert, #brand-errors").all_inner_texts()
        assert "Collects load profile every 15 min from 1.0.99.1.0.255" in plan
        assert "Decodes pushes of serial_number, clock, last_standard_event, energy_import" in plan
        assert private_page.locator("#brand-points tbody tr").count() == 52
        volts = private_page.locator("#brand-points tbody tr", has_text="1.0.32.7.0.255").first.inner_text()
        assert "V" in volts and "-1" in volts and "uint16" in volts  # unit and scaler as the meter said
        private_page.fill("#bf-name", "form_learned")
        private_page.fill("#bf-title", "Learned in the form")
        private_page.click("#brand-save")
        private_page.get_by_text("Brand Learned in the form saved with 52 points.").wait_for()
        brand = private_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:form_learned)))",
                                headers=headers).json()["ids"][0]
        saved = private_server.api("GET", f"/api/v1/brand/{brand}/definition", headers=headers).json()["result"]
        assert saved["roles"]["push_objects"] == ["serial_number", "clock", "last_standard_event", "energy_import"]
        assert saved["roles"]["load_profile"] == "load_profile"
    finally:
        sim.stop()
