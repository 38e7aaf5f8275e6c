"""Dashboard figures: counts per scope, energy of the past hour per quarter-hour, completeness, alerts, API."""

from __future__ import annotations

import datetime as dt

import pytest

from app.extensions import db
from app.models import Alert, AlertState, Event, Severity
from app.services.dashboard import (
    Scope,
    active_alert_count,
    completeness_today,
    dashboard_summary,
    energy_last_hour,
    fleet_counts,
    latest_events,
)
from app.services.ingest import Value, store_readings
from tests.console.conftest import NOW

END = NOW.replace(minute=0)  # the last complete quarter-hour before NOW
ENERGY = "1.0.1.8.0.255"


def q(minutes_before_end: int) -> dt.datetime:
    return END - dt.timedelta(minutes=minutes_before_end)


@pytest.fixture
def readings(app, console_fleet):
    """Register values (Wh): N1 every quarter-hour, S1 with a gap, N2 with a register reset."""
    m = console_fleet.meters
    series = {
        m["N1"]: [(75, 0), (60, 1000), (45, 2000), (30, 3500), (15, 3500), (0, 7000)],
        m["S1"]: [(30, 10000), (0, 12000)],
        m["N2"]: [(45, 500), (30, 100)],
    }
    with app.app_context():
        store_readings([Value(meter_id, ENERGY, q(minutes), value)
                        for meter_id, points in series.items() for minutes, value in points])


def test_fleet_counts_per_scope(app, console_fleet):
    with app.app_context():
        everything = fleet_counts(Scope())
        counts = tuple(everything[k] for k in ("total", "online", "offline", "warehouse"))
        assert counts == (5, 2, 3, 1)
        assert everything["online_percent"] == 40.0
        assert fleet_counts(Scope(area_id=console_fleet.areas["North"]))["total"] == 3  # with Kano below it
        assert fleet_counts(Scope(area_id=console_fleet.areas["Kano"]))["online"] == 1
        assert fleet_counts(Scope(customer_id=console_fleet.ada))["total"] == 2
        assert fleet_counts(Scope(customer_id=-1))["total"] == 0


def test_energy_of_the_past_hour_per_quarter_hour(app, console_fleet, readings):
    with app.app_context():
        energy = energy_last_hour(Scope(), now=NOW)
        assert [b["kwh"] for b in energy["buckets"]] == [1.0, 1.5, 0.0, 5.5]  # S1's gap lands where it ends
        assert energy["total_kwh"] == 8.0  # N2's reset (500 → 100 Wh) counts as nothing
        assert energy["buckets"][-1]["end"] == END.isoformat()
        north = energy_last_hour(Scope(area_id=console_fleet.areas["North"]), now=NOW)
        assert [b["kwh"] for b in north["buckets"]] == [1.0, 1.5, 0.0, 3.5]


def test_completeness_today_counts_received_against_expected_intervals(app, console_fleet, readings):
    with app.app_context():
        result = completeness_today(Scope(), "UTC", now=NOW)
        # 4 meters in the field (N1, N2, S1 active; S2 installed) × 48 quarter-hours since midnight.
        assert (result["meters"], result["expected"]) == (4, 4 * 48)
        # Complete rows (no cursor yet: the import register alone): N1 six, N2 two, S1 two.
        assert result["received"] == 6 + 2 + 2
        assert result["percent"] == round(100 * 10 / 192, 1)
        assert completeness_today(Scope(area_id=console_fleet.areas["South"]), "UTC", now=NOW)["received"] == 2


def test_completeness_today_is_the_gaps_definition(app, console_fleet):
    """A meter whose profile captures import and voltage, with 3 rows missing the voltage and 2 rows missing
    everything since midnight: the dashboard says 48 - 5 received, as many as the gaps API leaves."""
    from app.models import CollectionCursor, Meter
    from app.services.gaps import missing_times

    voltage = "1.0.32.27.0.255"
    meter_id = console_fleet.meters["N1"]
    midnight = NOW.replace(hour=0, minute=5)
    stamps = [END - dt.timedelta(minutes=15 * i) for i in range(48)]  # 00:15 … 12:00
    no_voltage, nothing = set(stamps[10:13]), set(stamps[:2])  # 3 + 2 gaps, two of them at the end
    with app.app_context():
        db.session.add(CollectionCursor(meter_id=meter_id, profile="load_profile", last_ts=END,
                                        captures=[ENERGY, voltage], capture_period=900))
        db.session.commit()
        store_readings([Value(meter_id, ENERGY, ts, 1000.0 + i) for i, ts in enumerate(stamps) if ts not in nothing]
                       + [Value(meter_id, voltage, ts, 230.0) for ts in stamps if ts not in nothing | no_voltage]
                       + [Value(meter_id, ENERGY, midnight.replace(minute=0), 900.0)])  # yesterday's last row
        result = completeness_today(Scope(meter_id=meter_id), "UTC", now=NOW)
        assert (result["meters"], result["expected"], result["received"]) == (1, 48, 43)
        assert result["percent"] == round(100 * 43 / 48, 1)
        _found, missing = missing_times(db.session.get(Meter, meter_id), stamps[-1], NOW)
        assert len(missing) == 5 and result["expected"] - result["received"] == len(missing)


def test_active_alerts_and_latest_events_follow_the_scope(app, console_fleet):
    m, south = console_fleet.meters, console_fleet.areas["South"]
    with app.app_context():
        db.session.add_all([
            Alert(meter_id=m["N1"], alert_type="tamper", title="Cover opened", severity=Severity.critical),
            Alert(meter_id=m["S1"], alert_type="outage", title="Power down"),
            Alert(meter_id=m["S2"], alert_type="outage", title="Power down", state=AlertState.acknowledged),
            Alert(meter_id=None, area_id=south, alert_type="loss", title="Energy balance loss"),
            Event(meter_id=m["N1"], ts=NOW - dt.timedelta(minutes=5), event_type="cover_open", code=40),
            Event(meter_id=m["S1"], ts=NOW - dt.timedelta(minutes=1), event_type="power_down", code=1),
        ])
        db.session.commit()
        assert active_alert_count(Scope()) == 3
        assert active_alert_count(Scope(area_id=south)) == 2  # S1 and the area's own alert
        assert active_alert_count(Scope(customer_id=console_fleet.ada)) == 1
        assert [e["meter_number"] for e in latest_events(Scope())] == ["S1", "N1"]
        assert [e["event_type"] for e in latest_events(Scope(customer_id=console_fleet.ada))] == ["cover_open"]


def test_summary_api_for_staff_narrows_by_area_and_refuses_customers(app, client, console_fleet, make_user,
                                                                   api_token, operator_headers):
    resp = client.get("/api/v1/dashboard/summary", headers=operator_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.json
    assert body["meters"]["total"] == 5 and body["meters"]["online"] == 2 and body["active_alerts"] == 0
    assert len(body["energy"]["buckets"]) == 4 and "percent" in body["completeness"]
    south = client.get(f"/api/v1/dashboard/summary?area={console_fleet.areas['South']}", headers=operator_headers)
    assert south.json["meters"]["total"] == 2 and south.json["area_id"] == console_fleet.areas["South"]
    customer = api_token(make_user("Customer", customer_id=console_fleet.ada))
    assert client.get("/api/v1/dashboard/summary", headers=customer).status_code == 403


def test_dashboard_page_renders_the_figures(app, client, console_fleet, make_user):
    username = make_user("Operator")
    client.post("/login/", data={"username": username, "password": "pw-" + username})
    page = client.get("/dashboard/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-field="total">5<' in html and 'data-field="online">2<' in html
    with app.app_context():
        assert dashboard_summary(Scope())["meters"]["offline"] == 3


def test_dashboard_completeness_is_served_from_a_recent_figure_and_refreshed_in_the_background(
        app, console_fleet, readings):
    """With HES_SLOW_FIGURES_MAX_AGE set, a request reuses the figure counted for the scope (the count
    reads every reading since midnight); once older than that, the stale figure is served while a background
    refresh counts again, and the next request sees the new count."""
    import time

    from app.services import recent

    m = console_fleet.meters
    app.config["HES_SLOW_FIGURES_MAX_AGE"] = 0.3
    recent.forget()
    try:
        with app.app_context():
            first = dashboard_summary(Scope())["completeness"]
            assert first == completeness_today(Scope(), "UTC", now=dt.datetime.fromisoformat(first["as_of"]))
            store_readings([Value(m["S1"], ENERGY, dt.datetime.now(dt.UTC).replace(second=0, microsecond=0), 1.0)])
            assert dashboard_summary(Scope())["completeness"] == first  # recent: not counted again
            time.sleep(0.4)
            assert dashboard_summary(Scope())["completeness"] == first  # stale: served while refreshed
            for _ in range(100):
                refreshed = dashboard_summary(Scope())["completeness"]
                if refreshed["as_of"] != first["as_of"]:
                    break
                time.sleep(0.05)
            assert refreshed["as_of"] > first["as_of"]
            assert refreshed == completeness_today(Scope(), "UTC", now=dt.datetime.fromisoformat(refreshed["as_of"]))
    finally:
        app.config["HES_SLOW_FIGURES_MAX_AGE"] = 0
        recent.forget()


def test_slow_figures_are_stored_shared_and_counted_at_start_up_not_in_requests(
        app, console_fleet, readings, monkeypatch):
    """The last count is kept in the database: after a restart (no copy in the process) the first request serves
    it with its time, counting nothing; the start-up refresh counts the fleet-wide figures nobody asked for yet,
    so the first request for them counts nothing either."""
    from app.services import recent

    app.config["HES_SLOW_FIGURES_MAX_AGE"] = 60
    recent.forget()
    try:
        with app.app_context():
            first = dashboard_summary(Scope())["completeness"]  # never asked: counted once, stored
            counted = []

            def refuse(*args):
                counted.append(args)
                raise AssertionError("counted in a request")

            monkeypatch.setitem(recent.FIGURES, "completeness_today", refuse)
            recent.drop_copies()  # a new process
            assert dashboard_summary(Scope())["completeness"] == first
            assert not counted
            monkeypatch.undo()
            stored = db.session.execute(db.select(recent.SlowFigure)).scalars().all()
            assert [(row.key, row.as_of is not None) for row in stored] == [
                (recent.key_text("completeness_today", Scope(), ("UTC",)), True)]
            # Start-up: the fleet's leakage (not stored yet) is counted in the background, then served.
            keys = [recent.key_text(*key) for key in recent.fleet_keys("UTC")]
            assert recent.refresh_stale(app, keys) == 1  # the completeness is fresh: only the leakage counted
            leakage_key = recent.key_text("leakage", Scope(), ("UTC", 30))
            expected = recent.db.session.execute(db.select(recent.SlowFigure.value)
                                                 .where(recent.SlowFigure.key == leakage_key)).scalar()
            assert expected is not None
            monkeypatch.setitem(recent.FIGURES, "leakage", refuse)
        with app.app_context():
            assert recent.recent("leakage", Scope(), "UTC", 30)["as_of"]
            assert not counted
    finally:
        app.config["HES_SLOW_FIGURES_MAX_AGE"] = 0
        recent.forget()
