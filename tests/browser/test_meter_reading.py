"""In the browser: Meter Management › Meter Reading reads a simulated meter's load profile and shows it as a
person reads it: channels by name, values scaled with their units, one chart axis per unit. Real HES, real
simulator, on a HES of this module's own (the meter added here must not show in the shared fleet's counts)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.browser import screenshot
from tests.support.simulator import PASSWORD, start_simulator

LOAD_PROFILE = bytes([1, 0, 99, 1, 0, 255])


@pytest.fixture
def sim_meter(private_server):
    """One simulated meter of the stock brand, reachable over its SIM's address: (meter id, simulator)."""
    headers = private_server.token()
    brand = private_server.api("GET", "/api/v1/brand/?q=(filters:!((col:name,opr:eq,value:hes_sim)))",
                               headers=headers).json()["ids"][0]
    sim = start_simulator(meters=1, history_days=1, first_serial=1, extra=["--prefix", "RDG"])
    try:
        yield private_server.add_dial_out_meter(headers, brand, sim, "RDG-SIM0", PASSWORD), sim
    finally:
        sim.stop()


def test_profile_chart_names_channels_scales_values_and_has_one_axis_per_unit(private_page, sim_meter):
    meter_id, sim = sim_meter
    page = private_page
    now = dt.datetime.now(dt.UTC).timestamp()  # the page's range ends at its load time, to the minute
    page.goto(f"/meter-reading/?meter={meter_id}")
    row = page.locator("#mp-groups tr", has_text="Load profile (15 min)")
    row.locator("xpath=ancestor::details/summary").click()  # its group is folded
    row.locator("input[type=checkbox]").check()
    page.click("#mp-read")
    page.wait_for_selector("#mp-profile:not([hidden])", timeout=60_000)

    chart = page.evaluate("""() => { const c = Chart.getChart('mp-chart');
        return { legend: c.data.datasets.map(d => d.label),
                 axes: Object.entries(c.options.scales).filter(([k]) => k !== 'x').map(([, s]) => s.title.text) }; }""")
    assert chart["legend"] == ["Active energy import (Wh)", "Active energy export (Wh)",
                               "Voltage L1 (last 15-min average) (V)", "Current L1 (last 15-min average) (A)"]
    assert chart["axes"] == ["Wh", "V", "A"]  # one axis per unit, each titled; no empty axis
    headers = page.locator("#mp-profile-table thead th").all_text_contents()
    assert headers[0] == "Time" and "Voltage L1 (last 15-min average) (V)" in headers
    assert not any("1.0." in h for h in headers)  # names, not OBIS codes

    # The newest row shown is the simulator's newest capture, scaled as the meter's scaler says (226.7 V, not 2267).
    newest_time, newest = sim.model_meter(0).recorded(now - 3600, now, parts=("load_profile",))["load_profile"][-1]
    volts = newest["1.0.32.27.0.255"]
    first_row = page.locator("#mp-profile-table tbody tr").first.locator("td").all_inner_texts()
    shown = first_row[headers.index("Voltage L1 (last 15-min average) (V)")]
    assert 100 < volts < 300 and float(shown.replace(",", "")) == pytest.approx(volts, abs=0.05), (shown, volts)
    chart_volts = page.evaluate("() => { const d = Chart.getChart('mp-chart').data.datasets[2].data; "
                                "return d[d.length - 1]; }")
    assert chart_volts == pytest.approx(volts, abs=0.05)
    assert dt.datetime.fromtimestamp(newest_time, dt.UTC).strftime("%H:%M") in first_row[0]
    screenshot(page, "meter-reading-profile")
